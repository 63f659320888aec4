// fuzz_websub_form: WebSub's decoders (protocols/websub/form.hpp) fed
// arbitrary bytes: the form/query decoder, the http:// URL reader, the topic
// mapping, the signature check and the event body reader.
//
// Fatal (abort): memory errors, UB, a decoded form that does not survive
// encode -> decode unchanged, a URL that reads but whose text form does not
// read back to the same endpoint and path, and a signature the code made
// that it then refuses.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "fuzz_common.hpp"
#include "nudge/websub/form.hpp"

using namespace nudge::websub;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string secret = in.ConsumeRandomLengthString(64);
  const std::string text = in.ConsumeBytesAsString(in.remaining_bytes());

  form_limits l;
  l.max_pairs = 16;
  const auto f = decode_form(text, l);
  if (f.complete()) {
    NUDGE_FUZZ_CHECK(f.value.pairs.size() <= l.max_pairs, "more pairs than the limit");
    const auto again = decode_form(encode_form(f.value), {1 << 20, 64});
    NUDGE_FUZZ_CHECK(again.complete() && again.value.pairs == f.value.pairs, "a form does not round-trip");
  } else {
    NUDGE_FUZZ_CHECK(f.malformed() && !f.reason.empty(), "a refused form without a reason");
  }

  const auto u = parse_http_url(text);
  if (u.complete()) {
    const auto back = parse_http_url(to_string(u.value));
    NUDGE_FUZZ_CHECK(back.complete() && back.value.at == u.value.at && back.value.path == u.value.path,
                     "a URL does not read back");
  }
  if (const auto mb = mailbox_of_topic(text)) {
    const auto again = mailbox_of_topic(topic_url(nudge::protocol::ip_endpoint::v4(127, 0, 0, 1, 80), *mb));
    NUDGE_FUZZ_CHECK(again && *again == *mb, "a topic's mailbox does not round-trip");
  }
  (void)signature_matches(text, secret, text);
  NUDGE_FUZZ_CHECK(signature_matches(signature_header(secret, text), secret, text), "its own signature refused");
  (void)created_ms_of(text);
  return 0;
}
