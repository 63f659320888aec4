// fuzz_sockaddr: decode_windows_sockaddr on arbitrary bytes. A SOCKADDR that
// decodes has exactly the size of its family, and re-encoding the endpoint
// decodes back to the same endpoint (sin_zero, flowinfo and scope_id are not kept).
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "nudge/protocol/sockaddr.hpp"

using namespace nudge::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view in(data, size);
  auto d = decode_windows_sockaddr(in);
  if (!d.complete()) {
    NUDGE_FUZZ_CHECK(!d.reason.empty(), "a refusal without a reason");
    return 0;
  }
  NUDGE_FUZZ_CHECK(d.consumed == size, "a SOCKADDR decoded from part of its bytes");
  NUDGE_FUZZ_CHECK(size == (d.value.is_v6 ? sockaddr_in6_size : sockaddr_in_size), "size does not match the family");
  const std::uint16_t family = static_cast<std::uint16_t>(data[0] | (data[1] << 8));
  NUDGE_FUZZ_CHECK(family == (d.value.is_v6 ? windows_af_inet6 : windows_af_inet), "family misread");
  NUDGE_FUZZ_CHECK(d.value.port == static_cast<std::uint16_t>((data[2] << 8) | data[3]), "port not in network order");

  byte_buffer again = windows_sockaddr(d.value);
  NUDGE_FUZZ_CHECK(again.size() == size, "re-encoded SOCKADDR has another size");
  auto d2 = decode_windows_sockaddr(again);
  NUDGE_FUZZ_CHECK(d2.complete() && d2.value == d.value, "endpoint changed across encode/decode");
  // Formatting the endpoint (as the notifier does in notices) must not fail either.
  const std::string text = d.value.to_string();
  NUDGE_FUZZ_CHECK(!text.empty(), "empty endpoint text");
  if (auto parsed = ip_endpoint::parse(text)) NUDGE_FUZZ_CHECK(*parsed == d.value, "to_string/parse round trip");
  return 0;
}
