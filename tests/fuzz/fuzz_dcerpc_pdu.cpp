// fuzz_dcerpc_pdu: dcerpc::decode_pdu on arbitrary bytes. When a PDU decodes,
// it is re-encoded and decoded again (differential check): the fields must
// survive, and encoding the re-decoded PDU must give the same bytes again.
#include <cstdint>
#include <variant>

#include "fuzz_common.hpp"
#include "nudge/protocol/dcerpc.hpp"

using namespace nudge::protocol;
using namespace nudge::protocol::dcerpc;
using nudge::fuzz::same_bytes;

namespace {

bool same(const presentation_context& a, const presentation_context& b) {
  return a.context_id == b.context_id && a.abstract_syntax == b.abstract_syntax &&
         a.transfer_syntaxes == b.transfer_syntaxes;
}

bool same(const bind_pdu& a, const bind_pdu& b) {
  if (a.call_id != b.call_id || a.max_xmit_frag != b.max_xmit_frag || a.max_recv_frag != b.max_recv_frag ||
      a.assoc_group_id != b.assoc_group_id || a.contexts.size() != b.contexts.size())
    return false;
  for (std::size_t i = 0; i < a.contexts.size(); ++i)
    if (!same(a.contexts[i], b.contexts[i])) return false;
  return true;
}

bool same(const bind_ack_pdu& a, const bind_ack_pdu& b) {
  if (a.call_id != b.call_id || a.max_xmit_frag != b.max_xmit_frag || a.max_recv_frag != b.max_recv_frag ||
      a.assoc_group_id != b.assoc_group_id || a.secondary_address != b.secondary_address ||
      a.results.size() != b.results.size())
    return false;
  for (std::size_t i = 0; i < a.results.size(); ++i)
    if (a.results[i].result != b.results[i].result || a.results[i].reason != b.results[i].reason ||
        !(a.results[i].transfer_syntax == b.results[i].transfer_syntax))
      return false;
  return true;
}

bool same(const bind_nak_pdu& a, const bind_nak_pdu& b) {
  return a.call_id == b.call_id && a.reject_reason == b.reject_reason;
}

// alloc_hint is recomputed by the encoder (the stub length): not compared.
bool same(const request_pdu& a, const request_pdu& b) {
  return a.call_id == b.call_id && a.context_id == b.context_id && a.opnum == b.opnum && same_bytes(a.stub, b.stub);
}

bool same(const response_pdu& a, const response_pdu& b) {
  return a.call_id == b.call_id && a.context_id == b.context_id && same_bytes(a.stub, b.stub);
}

bool same(const fault_pdu& a, const fault_pdu& b) {
  return a.call_id == b.call_id && a.context_id == b.context_id && a.status == b.status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view in(data, size);

  auto hd = decode_common_header(in);
  auto d = decode_pdu(in);
  NUDGE_FUZZ_CHECK(!d.complete() || hd.complete(), "a PDU decoded although its common header did not");
  if (!d.complete()) return 0;
  NUDGE_FUZZ_CHECK(d.consumed == hd.value.frag_length, "consumed differs from frag_length");
  NUDGE_FUZZ_CHECK(d.consumed >= common_header_size && d.consumed <= size, "consumed out of range");

  // A request or response stub re-cut into fragments joins back to itself,
  // every fragment within the size it was cut to.
  auto refragment = [&](std::uint32_t call_id, bytes_view stub, auto encode_fragments) {
    const std::size_t max_frag = 32 + stub.size() % 200;
    byte_buffer cut;
    const std::size_t n = encode_fragments(cut, call_id, stub, max_frag);
    stub_reassembler joiner(stub.size());
    stub_reassembler::result joined;
    std::size_t seen = 0;
    for (std::size_t used = 0; used < cut.size(); ++seen) {
      auto f = decode_pdu(bytes_view(cut).subspan(used));
      NUDGE_FUZZ_CHECK(f.complete(), "a fragment does not decode");
      NUDGE_FUZZ_CHECK(f.consumed <= max_frag, "a fragment larger than max_frag");
      used += f.consumed;
      std::visit(
          [&](const auto& p) {
            if constexpr (requires { p.pfc_flags; }) joined = joiner.add(p.call_id, 0, p.pfc_flags, p.stub);
          },
          f.value);
    }
    NUDGE_FUZZ_CHECK(seen == n, "encode_*_fragments miscounted its fragments");
    NUDGE_FUZZ_CHECK(joined.outcome == stub_reassembler::status::whole, "fragments do not join");
    NUDGE_FUZZ_CHECK(same_bytes(joined.stub(), stub), "fragments join to another stub");
  };
  if (auto* r = std::get_if<request_pdu>(&d.value))
    refragment(r->call_id, r->stub, [&](byte_buffer& out, std::uint32_t id, bytes_view s, std::size_t m) {
      return encode_request_fragments(out, id, r->context_id, r->opnum, s, m);
    });
  if (auto* r = std::get_if<response_pdu>(&d.value))
    refragment(r->call_id, r->stub, [&](byte_buffer& out, std::uint32_t id, bytes_view s, std::size_t m) {
      return encode_response_fragments(out, id, r->context_id, s, m);
    });

  std::visit(
      [&](const auto& first) {
        // Views (stubs) point into `in` or `again`, both alive until the end of this scope.
        byte_buffer again;
        const std::size_t n = encode(again, first);
        NUDGE_FUZZ_CHECK(n == again.size(), "encode returned a size other than what it appended");
        // Only single-fragment PDUs below 64 KiB exist: the re-encoding must fit frag_length.
        if (again.size() > 0xFFFF) return;
        auto d2 = decode_pdu(again);
        NUDGE_FUZZ_CHECK(d2.complete(), "a re-encoded PDU does not decode");
        NUDGE_FUZZ_CHECK(d2.consumed == again.size(), "a re-encoded PDU decodes to another length");
        using T = std::decay_t<decltype(first)>;
        const T* second = std::get_if<T>(&d2.value);
        NUDGE_FUZZ_CHECK(second != nullptr, "a re-encoded PDU decodes as another packet type");
        NUDGE_FUZZ_CHECK(same(first, *second), "fields changed across encode/decode");
        // Idempotence: the canonical form encodes to itself.
        byte_buffer third;
        encode(third, *second);
        NUDGE_FUZZ_CHECK(third == again, "re-encoding a re-decoded PDU gives other bytes");
      },
      d.value);
  return 0;
}
