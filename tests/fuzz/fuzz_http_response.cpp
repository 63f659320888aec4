// fuzz_http_response: http::response_reader on arbitrary bytes, fed whole
// and in chunks, then the end of the connection. Properties: the same
// responses and the same refusal either way; bodies respect the limit; a
// refusal has a reason; consumed bytes add up to no more than what was fed.
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "http_fuzz_split.hpp"
#include "nudge/http/reader.hpp"

using namespace nudge;

namespace {

struct outcome {
  std::vector<http::response> responses;
  std::size_t consumed = 0;
  int refusal = 0;
};

constexpr http::limits small{512, 2048};

void drain(http::response_reader& r, outcome& out) {
  for (;;) {
    auto d = r.next();
    if (d.need_more()) return;
    if (d.malformed()) {
      NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
      out.refusal = r.refusal_status();
      return;
    }
    NUDGE_FUZZ_CHECK(d.value.body.size() <= small.max_body_bytes, "body over the limit");
    out.consumed += d.consumed;
    out.responses.push_back(std::move(d.value));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = fuzz::split(data, size);
  const bool head = size > 0 && (data[0] & 0x80) != 0;

  outcome whole;
  {
    http::response_reader r(small);
    if (head) r.expect_head_response();
    r.feed(in.stream);
    drain(r, whole);
    if (whole.refusal == 0) {
      r.feed_eof();
      drain(r, whole);
    }
  }
  outcome pieces;
  {
    http::response_reader r(small);
    if (head) r.expect_head_response();
    for (std::size_t at = 0; at < in.stream.size() && pieces.refusal == 0; at += in.chunk) {
      r.feed(in.stream.subspan(at, std::min(in.chunk, in.stream.size() - at)));
      drain(r, pieces);
    }
    if (pieces.refusal == 0) {
      r.feed_eof();
      drain(r, pieces);
    }
  }
  NUDGE_FUZZ_CHECK(whole.consumed <= in.stream.size(), "consumed more than fed");
  NUDGE_FUZZ_CHECK(whole.responses == pieces.responses, "responses depend on how the bytes were split");
  NUDGE_FUZZ_CHECK(whole.refusal == pieces.refusal, "refusal depends on how the bytes were split");
  return 0;
}
