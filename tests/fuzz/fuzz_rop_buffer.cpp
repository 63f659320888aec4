// fuzz_rop_buffer: rop::decode_request and rop::decode_response on arbitrary
// bytes. A response that decodes is rebuilt with response_builder from what the
// visitor saw and decoded again: the same ROPs must come back, in order.
#include <cstdint>
#include <variant>
#include <vector>

#include "fuzz_common.hpp"
#include "nudge/protocol/rop.hpp"

using namespace nudge;
using namespace nudge::protocol;
using namespace nudge::protocol::rop;

namespace {

using rop_event = std::variant<new_mail_notification, std::uint16_t>;

struct recorder : rop_visitor {
  std::vector<rop_event> seen;
  void on_new_mail(const new_mail_notification& n) override { seen.emplace_back(n); }
  void on_pending(std::uint16_t s) override { seen.emplace_back(s); }
};

bool same(const new_mail_notification& a, const new_mail_notification& b) {
  return a.notification_handle == b.notification_handle && a.logon_id == b.logon_id && a.folder_id == b.folder_id &&
         a.event == b.event && a.message_flags == b.message_flags;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view in(data, size);

  // ---- rgbIn ----
  auto rq = decode_request(in);
  if (rq.complete()) {
    NUDGE_FUZZ_CHECK(rq.consumed >= empty_buffer_size - 2 && rq.consumed <= size, "consumed out of range");
    NUDGE_FUZZ_CHECK(rq.value.empty() || (rq.value.data() >= data && rq.value.data() + rq.value.size() <= data + size),
                     "the ROP list does not view the input");
  }

  // ---- rgbOut ----
  recorder first;
  auto rs = decode_response(in, first);
  if (!rs.complete()) return 0;
  NUDGE_FUZZ_CHECK(rs.consumed <= size, "consumed beyond the input");
  NUDGE_FUZZ_CHECK(rs.value == first.seen.size(), "the ROP count differs from the visitor's calls");

  byte_buffer again;
  response_builder b(again);
  for (const auto& e : first.seen) {
    if (auto* n = std::get_if<new_mail_notification>(&e)) {
      // The MID's counter is 48 bits on the wire: what was decoded always fits.
      NUDGE_FUZZ_CHECK(n->event.id < (1ull << 48), "a decoded event id wider than 48 bits");
      b.add(*n);
    } else {
      b.add_pending(std::get<std::uint16_t>(e));
    }
  }
  const std::size_t total = b.finish();
  NUDGE_FUZZ_CHECK(total == again.size(), "finish() returned another size");
  // Canonical NewMails (56 bytes) may be longer than what was decoded: RopSize is a u16.
  if (again.size() - rpc_header_ext_size > 0xFFFF) return 0;

  recorder second;
  auto rs2 = decode_response(again, second);
  NUDGE_FUZZ_CHECK(rs2.complete(), "a rebuilt response does not decode");
  NUDGE_FUZZ_CHECK(rs2.consumed == again.size(), "a rebuilt response decodes to another length");
  NUDGE_FUZZ_CHECK(second.seen.size() == first.seen.size(), "a rebuilt response has another ROP count");
  for (std::size_t i = 0; i < first.seen.size(); ++i) {
    const auto& a = first.seen[i];
    const auto& c = second.seen[i];
    NUDGE_FUZZ_CHECK(a.index() == c.index(), "ROP order changed");
    if (auto* n = std::get_if<new_mail_notification>(&a))
      NUDGE_FUZZ_CHECK(same(*n, std::get<new_mail_notification>(c)), "NewMail fields changed");
    else
      NUDGE_FUZZ_CHECK(std::get<std::uint16_t>(a) == std::get<std::uint16_t>(c), "RopPending session changed");
  }
  return 0;
}
