// fuzz_activesync_wbxml: the ActiveSync WBXML reader and the Ping/Sync body
// decoders (protocols/activesync) on arbitrary bytes; the first byte picks the
// decoder. Properties: a refusal has a reason and never reads out of bounds;
// a decoded document re-encodes to bytes that decode to the same tree, and
// re-encoding that gives the same bytes; decoded bodies round-trip as values.
#include <cstdint>

#include "fuzz_common.hpp"
#include "nudge/activesync/messages.hpp"
#include "nudge/activesync/wbxml.hpp"

using namespace nudge;
using namespace nudge::activesync;

namespace {

template <class Decode>
void round_trip(protocol::bytes_view body, Decode decode) {
  auto d = decode(body);
  if (!d.complete()) {
    NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
    return;
  }
  const byte_buffer again = encode(d.value);
  auto d2 = decode(protocol::bytes_view(again));
  NUDGE_FUZZ_CHECK(d2.complete(), "a re-encoded body does not decode");
  NUDGE_FUZZ_CHECK(d2.value == d.value, "a body changed across encode/decode");
}

void check_document(protocol::bytes_view body) {
  auto d = wbxml::decode(body);
  if (!d.complete()) {
    NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
    return;
  }
  NUDGE_FUZZ_CHECK(d.consumed == body.size(), "a document that did not use the whole body");
  const byte_buffer again = wbxml::encode(d.value);
  auto d2 = wbxml::decode(again);
  NUDGE_FUZZ_CHECK(d2.complete(), "a re-encoded document does not decode");
  // Text split over several STR_I/OPAQUE pieces joins; an element with empty text loses nothing else.
  NUDGE_FUZZ_CHECK(wbxml::encode(d2.value) == again, "encoding is not stable");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const protocol::bytes_view body(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0: check_document(body); break;
    case 1: round_trip(body, [](protocol::bytes_view b) { return decode_ping_request(b); }); break;
    case 2: round_trip(body, [](protocol::bytes_view b) { return decode_ping_response(b); }); break;
    case 3: round_trip(body, [](protocol::bytes_view b) { return decode_sync_request(b); }); break;
    default: round_trip(body, [](protocol::bytes_view b) { return decode_sync_response(b); }); break;
  }
  return 0;
}
