// fuzz_dcerpc_stream: dcerpc::stream_framer on an arbitrary byte stream cut
// into arbitrary pieces. Properties: the cut does not change what is framed
// (the same PDUs, then the same outcome, as framing the whole stream at once);
// the PDUs are the stream's bytes in order, each of its own frag_length and
// within the limit; the bytes held while waiting stay below one PDU; nothing
// appended is lost (framed + pending = appended).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/protocol/dcerpc.hpp"

using namespace nudge::protocol;
using namespace nudge::protocol::dcerpc;
using status = stream_framer::status;

namespace {

struct outcome {
  std::vector<byte_buffer> pdus;
  status last = status::need_more;
  std::size_t pending = 0;
};

outcome frame(bytes_view stream, std::size_t max_pdu, stream_framer::header_rule rule, bytes_view cuts) {
  stream_framer framer(max_pdu, rule);
  outcome o;
  std::size_t at = 0, appended = 0, framed = 0, cut = 0;
  while (at < stream.size() && o.last != status::malformed) {
    // Each piece is a fresh copy, freed after its turn: the framer must not keep views of it.
    const std::size_t n = cuts.empty() ? stream.size() : 1 + cuts[cut++ % cuts.size()] % 97;
    const byte_buffer piece(stream.begin() + static_cast<std::ptrdiff_t>(at),
                            stream.begin() + static_cast<std::ptrdiff_t>(std::min(stream.size(), at + n)));
    at += piece.size();
    appended += piece.size();
    framer.append(piece);
    for (auto f = framer.next();; f = framer.next()) {
      o.last = f.outcome;
      if (f.outcome != status::complete) break;
      NUDGE_FUZZ_CHECK(f.pdu.size() >= common_header_size && f.pdu.size() <= framer.max_pdu(), "PDU size out of range");
      NUDGE_FUZZ_CHECK(static_cast<std::size_t>(f.pdu[8] | (f.pdu[9] << 8)) == f.pdu.size(),
                       "a PDU of another length than its frag_length");
      if (rule == stream_framer::header_rule::strict)
        NUDGE_FUZZ_CHECK(decode_common_header(f.pdu).complete(), "strict framing passed a bad header");
      else
        NUDGE_FUZZ_CHECK(plausible_common_header(f.pdu), "lenient framing passed an implausible header");
      NUDGE_FUZZ_CHECK(nudge::fuzz::same_bytes(stream.subspan(framed, f.pdu.size()), f.pdu),
                       "a PDU that is not the stream's next bytes");
      framed += f.pdu.size();
      o.pdus.emplace_back(f.pdu.begin(), f.pdu.end());
    }
    NUDGE_FUZZ_CHECK(framed + framer.pending() == appended, "bytes lost or invented");
    if (o.last == status::need_more)
      NUDGE_FUZZ_CHECK(framer.pending() < std::max(common_header_size, framer.max_pdu()), "held more than one PDU");
  }
  o.pending = framer.pending();
  if (o.last == status::malformed) {
    NUDGE_FUZZ_CHECK(framer.next().outcome == status::malformed, "a refused stream framed again");
    framer.clear();
    NUDGE_FUZZ_CHECK(framer.pending() == 0 && framer.next().outcome == status::need_more, "clear() kept bytes");
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const auto rule = (data[0] & 1) ? stream_framer::header_rule::lenient : stream_framer::header_rule::strict;
  const std::size_t max_pdu = (data[0] & 2) ? stream_framer::max_frag_length : 16 + data[1] * 4;
  const std::size_t n_cuts = data[2] % 16;
  if (size < 3 + n_cuts) return 0;
  const bytes_view cuts(data + 3, n_cuts);
  const bytes_view stream(data + 3 + n_cuts, size - 3 - n_cuts);

  const outcome whole = frame(stream, max_pdu, rule, {});
  const outcome cut = frame(stream, max_pdu, rule, cuts.empty() ? bytes_view(data + 1, 1) : cuts);
  NUDGE_FUZZ_CHECK(whole.pdus == cut.pdus, "the cut changed the PDUs framed");
  NUDGE_FUZZ_CHECK(whole.last == cut.last, "the cut changed the outcome");
  if (whole.last == status::need_more) NUDGE_FUZZ_CHECK(whole.pending == cut.pending, "the cut changed the tail held");
  return 0;
}
