// fuzz_http_request: http::request_reader on arbitrary bytes with small
// limits, fed whole and in chunks. Properties: the same requests and the same
// refusal either way; a refusal has a reason and one of the statuses a server
// answers with; bodies respect the limit; consumed bytes add up to no more
// than what was fed; a request without Transfer-Encoding serialises back to
// bytes that read as the same request.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "http_fuzz_split.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"

using namespace nudge;

namespace {

struct outcome {
  std::vector<http::request> requests;
  std::size_t consumed = 0;
  int refusal = 0;
};

constexpr http::limits small{512, 2048};

void drain(http::request_reader& r, outcome& out) {
  for (;;) {
    auto d = r.next();
    if (d.need_more()) return;
    if (d.malformed()) {
      NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
      out.refusal = r.refusal_status();
      return;
    }
    NUDGE_FUZZ_CHECK(d.consumed > 0, "a request from no bytes");
    NUDGE_FUZZ_CHECK(d.value.body.size() <= small.max_body_bytes, "body over the limit");
    out.consumed += d.consumed;
    out.requests.push_back(std::move(d.value));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = fuzz::split(data, size);

  outcome whole;
  {
    http::request_reader r(small);
    r.feed(in.stream);
    (void)r.take_continue();
    drain(r, whole);
  }
  outcome pieces;
  {
    http::request_reader r(small);
    for (std::size_t at = 0; at < in.stream.size() && pieces.refusal == 0; at += in.chunk) {
      r.feed(in.stream.subspan(at, std::min(in.chunk, in.stream.size() - at)));
      (void)r.take_continue();
      drain(r, pieces);
    }
  }
  NUDGE_FUZZ_CHECK(whole.consumed <= in.stream.size(), "consumed more than fed");
  NUDGE_FUZZ_CHECK(whole.requests == pieces.requests, "requests depend on how the bytes were split");
  NUDGE_FUZZ_CHECK(whole.refusal == pieces.refusal, "refusal depends on how the bytes were split");
  if (whole.refusal != 0) {
    const int s = whole.refusal;
    NUDGE_FUZZ_CHECK(s == 400 || s == 413 || s == 417 || s == 431 || s == 505, "unexpected refusal status");
  }

  for (const auto& q : whole.requests) {
    if (q.headers.has("Transfer-Encoding")) continue;  // the body was de-chunked
    const auto wire = http::serialize(q);
    http::request_reader again({64 * 1024, 64 * 1024});
    again.feed(wire);
    auto d = again.next();
    NUDGE_FUZZ_CHECK(d.complete(), "a serialised request does not read back");
    NUDGE_FUZZ_CHECK(d.consumed == wire.size(), "a serialised request reads back from part of its bytes");
    NUDGE_FUZZ_CHECK(d.value == q, "a serialised request reads back as another");
  }
  return 0;
}
