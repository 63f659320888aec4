// fuzz_pollbus_body: the bus decoders on arbitrary bytes. The first byte
// picks the decoder (request or response body, SOAP or JSON, or a whole HTTP
// request routed as the server would). Properties: a refusal has a reason;
// what decodes re-encodes to bytes that decode to the same messages, and
// re-encoding those gives the same bytes (the encoders are deterministic); a
// server always has an answer whose Content-Length is its body's size.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/pollbus/codec.hpp"
#include "nudge/pollbus/http_binding.hpp"

using namespace nudge;
using namespace nudge::pollbus;

namespace {

void check_request(std::string_view body, encoding e) {
  auto d = decode_poll_request(body, e);
  if (!d.complete()) {
    NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
    (void)decode_fault(body, e);
    return;
  }
  const std::string again = encode_poll_request(d.value, e);
  auto d2 = decode_poll_request(again, e);
  NUDGE_FUZZ_CHECK(d2.complete(), "a re-encoded request does not decode");
  if (e == encoding::json) {
    NUDGE_FUZZ_CHECK(d2.value == d.value, "a message changed across encode/decode");
  } else {
    // pugixml's C strings end a text at a decoded NUL; compare the second round.
    NUDGE_FUZZ_CHECK(encode_poll_request(d2.value, e) == again, "encoding is not stable");
  }
}

void check_response(std::string_view body, encoding e) {
  auto d = decode_poll_response(body, e);
  if (!d.complete()) {
    NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
    return;
  }
  const std::string again = encode_poll_response(d.value, e);
  auto d2 = decode_poll_response(again, e);
  NUDGE_FUZZ_CHECK(d2.complete(), "a re-encoded response does not decode");
  NUDGE_FUZZ_CHECK(d2.value.size() == d.value.size(), "message count changed across encode/decode");
  NUDGE_FUZZ_CHECK(encode_poll_response(d2.value, e) == again, "encoding is not stable");
}

void check_server(std::string_view wire) {
  http::request_reader r;
  r.feed(protocol::as_bytes(wire));
  for (auto d = r.next(); d.complete(); d = r.next()) {
    auto call = read_bus_request(d.value);
    http::response a;
    if (call.malformed()) {
      NUDGE_FUZZ_CHECK(!call.reason.empty(), "a refusal without a reason");
      a = refusal_response(d.value, call.reason);
      NUDGE_FUZZ_CHECK(a.status == 500 || a.status == 400, "a refused poll is not 500/400");
    } else if (call.value.what == bus_call::kind::poll) {
      a = poll_response(std::span<const message>(&call.value.msg, 1), call.value.enc);
    } else {
      a = route_response(call.value, d.value);
    }
    NUDGE_FUZZ_CHECK(a.headers.find("Content-Length") == std::to_string(a.body.size()), "Content-Length is not the body's size");
    http::response_reader back;
    back.feed(http::serialize(a));
    auto b = back.next();
    NUDGE_FUZZ_CHECK(b.complete() && b.value.body == a.body, "the answer does not read back");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 5) {
    case 0: check_request(body, encoding::soap); break;
    case 1: check_request(body, encoding::json); break;
    case 2: check_response(body, encoding::soap); break;
    case 3: check_response(body, encoding::json); break;
    default: check_server(body); break;
  }
  return 0;
}
