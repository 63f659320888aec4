// Stub round trips, and byte-for-byte agreement with the reference capture
// built from the public layouts (shared/reference/emsmdb-reference.pcap).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"
#include "support/require.hpp"

using namespace nudge::protocol;
using namespace nudge::protocol::emsmdb;

namespace {

context_handle test_handle(const char* text) {
  context_handle h;
  h.uuid = guid::parse(text);
  return h;
}

template <class Stub>
byte_buffer request(std::uint32_t call_id, std::uint16_t op, const Stub& s) {
  byte_buffer out;
  dcerpc::encode_request(out, call_id, 0, op, [&](byte_writer& w) { encode(w, s); });
  return out;
}
template <class Stub>
byte_buffer response(std::uint32_t call_id, const Stub& s) {
  byte_buffer out;
  dcerpc::encode_response(out, call_id, 0, [&](byte_writer& w) { encode(w, s); });
  return out;
}

bytes_view stub_of(const byte_buffer& pdu) { return bytes_view(pdu).subspan(24); }

// TCP payloads of the reference capture, in frame order (UDP payloads too).
std::vector<byte_buffer> reference_payloads() {
  std::vector<byte_buffer> out;
  const char* env = std::getenv("NUDGE_SHARED_DIR");
  std::filesystem::path p = env ? env : "../shared";
  p /= "reference/emsmdb-reference.pcap";
  std::ifstream f(p, std::ios::binary);
  if (!f) return out;
  byte_buffer file((std::istreambuf_iterator<char>(f)), {});
  std::size_t pos = 24;
  while (pos + 16 <= file.size()) {
    const std::uint32_t caplen = file[pos + 8] | file[pos + 9] << 8 | file[pos + 10] << 16 | file[pos + 11] << 24;
    const std::size_t frame = pos + 16;
    if (frame + caplen > file.size()) break;
    const std::size_t ip = frame + 14;
    const std::size_t ihl = (file[ip] & 0x0F) * 4u;
    const std::size_t total = (file[ip + 2] << 8) | file[ip + 3];
    const std::size_t l4 = ip + ihl;
    std::size_t hdr = file[ip + 9] == 6 ? ((file[l4 + 12] >> 4) * 4u) : 8u;
    out.emplace_back(file.begin() + static_cast<std::ptrdiff_t>(l4 + hdr), file.begin() + static_cast<std::ptrdiff_t>(ip + total));
    pos = frame + caplen;
  }
  return out;
}

const context_handle cxh = test_handle("11111111-2222-3333-4444-555555555555");
const context_handle acxh = test_handle("66666666-7777-8888-9999-aaaaaaaaaaaa");

}  // namespace

TEST(emsmdb, connect_ex_round_trip) {
  connect_ex_request req;
  req.user_dn = "/o=nudge/ou=Exchange Administrative Group/cn=Recipients/cn=user00042";
  auto pdu = request(1, opnum::do_connect_ex, req);
  auto d = decode_connect_ex_request(stub_of(pdu));
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value.user_dn, req.user_dn);
  EXPECT_EQ(d.value.icxr_link, 0xFFFFFFFFu);
  EXPECT_EQ(d.value.client_version, req.client_version);

  connect_ex_response rsp;
  rsp.cxh = cxh;
  rsp.polls_max_ms = 5000;
  rsp.session_index = 17;
  rsp.dn_prefix = "/o=nudge";
  rsp.display_name = "user00042";
  auto rpdu = response(1, rsp);
  auto dr = decode_connect_ex_response(stub_of(rpdu));
  ASSERT_TRUE(dr.complete()) << dr.reason;
  EXPECT_EQ(dr.value.cxh, cxh);
  EXPECT_EQ(dr.value.polls_max_ms, 5000u);
  EXPECT_EQ(dr.value.session_index, 17);
  EXPECT_EQ(dr.value.dn_prefix, "/o=nudge");
  EXPECT_EQ(dr.value.display_name, "user00042");
  EXPECT_EQ(dr.value.server_version, rsp.server_version);
}

TEST(emsmdb, connect_ex_rejects_unterminated_or_oversized_dn) {
  connect_ex_request req;
  req.user_dn = "/o=x";
  auto pdu = request(1, opnum::do_connect_ex, req);
  byte_buffer stub(pdu.begin() + 24, pdu.end());
  stub[12 + 4] = 'X';  // overwrite the NUL
  EXPECT_TRUE(decode_connect_ex_request(stub).malformed());
  stub = byte_buffer(pdu.begin() + 24, pdu.end());
  stub[8] = 0xFF, stub[9] = 0xFF;  // actual_count huge
  EXPECT_TRUE(decode_connect_ex_request(stub).malformed());
}

TEST(emsmdb, register_push_round_trip_and_reference_bytes) {
  const byte_buffer ctx = {'l', 'i', 'b', 'm', 'a', 'p', 'i', 1};
  const byte_buffer sa = windows_sockaddr(ip_endpoint::v4(10, 0, 0, 2, 2500));
  register_push_request req{cxh, 0, ctx, 0xFFFFFFFF, sa};
  auto pdu = request(2, opnum::register_push_notification, req);
  EXPECT_EQ(pdu.size(), 90u);
  auto d = decode_register_push_request(stub_of(pdu));
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(byte_buffer(d.value.context.begin(), d.value.context.end()), ctx);
  EXPECT_EQ(byte_buffer(d.value.callback_address.begin(), d.value.callback_address.end()), sa);
  EXPECT_EQ(d.value.advise_bits, 0xFFFFFFFFu);

  auto rpdu = response(2, register_push_response{cxh, 244, 0});
  EXPECT_EQ(rpdu.size(), 52u);
  auto dr = decode_register_push_response(stub_of(rpdu));
  ASSERT_TRUE(dr.complete());
  EXPECT_EQ(dr.value.notification_handle, 244u);

  auto ref = reference_payloads();
  NUDGE_REQUIRE(ref.size() >= 17, "the reference capture shared/reference/emsmdb-reference.pcap (set NUDGE_SHARED_DIR)");
  EXPECT_EQ(pdu, ref[2]);
  EXPECT_EQ(rpdu, ref[3]);
}

TEST(emsmdb, register_push_with_odd_context_sizes_round_trips) {
  for (std::size_t n : {0u, 1u, 3u, 5u, 16u, 17u, 40u}) {
    byte_buffer ctx(n, 0xAB);
    const byte_buffer sa = windows_sockaddr(ip_endpoint::v4(127, 0, 0, 1, 40000));
    auto pdu = request(2, opnum::register_push_notification, register_push_request{cxh, 0, ctx, 0xFFFFFFFF, sa});
    auto d = decode_register_push_request(stub_of(pdu));
    ASSERT_TRUE(d.complete()) << n << ": " << d.reason;
    EXPECT_EQ(d.value.context.size(), n);
    EXPECT_EQ(d.value.callback_address.size(), 16u);
  }
}

TEST(emsmdb, register_push_size_field_mismatch_is_malformed) {
  const byte_buffer ctx(8, 1);
  const byte_buffer sa = windows_sockaddr(ip_endpoint::v4(127, 0, 0, 1, 1));
  auto pdu = request(2, opnum::register_push_notification, register_push_request{cxh, 0, ctx, 0xFFFFFFFF, sa});
  byte_buffer stub(pdu.begin() + 24, pdu.end());
  stub[36] = 9;  // cbContext
  EXPECT_TRUE(decode_register_push_request(stub).malformed());
}

TEST(emsmdb, rpc_ext2_poll_round_trip_and_reference_bytes) {
  byte_buffer rgb_in;
  rop::encode_empty_request(rgb_in);
  auto pdu = request(3, opnum::do_rpc_ext2, rpc_ext2_request{cxh, 3, rgb_in, 0x8008, {}, 0x1008});
  EXPECT_EQ(pdu.size(), 84u);
  auto d = decode_rpc_ext2_request(stub_of(pdu));
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value.rgb_in.size(), 10u);
  EXPECT_EQ(d.value.max_out, 0x8008u);

  byte_buffer rgb_out;
  rop::response_builder(rgb_out).finish();
  rpc_ext2_response rsp;
  rsp.cxh = cxh;
  rsp.rgb_out = rgb_out;
  rsp.trans_time_ms = 3;
  auto rpdu = response(3, rsp);
  EXPECT_EQ(rpdu.size(), 100u);
  auto dr = decode_rpc_ext2_response(stub_of(rpdu));
  ASSERT_TRUE(dr.complete()) << dr.reason;
  EXPECT_EQ(dr.value.rgb_out.size(), 10u);
  EXPECT_EQ(dr.value.trans_time_ms, 3u);

  auto ref = reference_payloads();
  NUDGE_REQUIRE(ref.size() >= 17, "the reference capture shared/reference/emsmdb-reference.pcap (set NUDGE_SHARED_DIR)");
  EXPECT_EQ(pdu, ref[4]);
  EXPECT_EQ(rpdu, ref[5]);
}

TEST(emsmdb, rpc_ext2_with_pending_is_104_bytes) {
  byte_buffer rgb_out;
  rop::response_builder b(rgb_out);
  b.add_pending(1);
  b.finish();
  rpc_ext2_response rsp;
  rsp.rgb_out = rgb_out;
  EXPECT_EQ(response(4, rsp).size(), 104u);
}

TEST(emsmdb, cb_in_mismatch_is_malformed) {
  byte_buffer rgb_in;
  rop::encode_empty_request(rgb_in);
  auto pdu = request(3, opnum::do_rpc_ext2, rpc_ext2_request{cxh, 3, rgb_in, 0x8008, {}, 0x1008});
  byte_buffer stub(pdu.begin() + 24, pdu.end());
  stub[40] = 11;  // cbIn
  EXPECT_TRUE(decode_rpc_ext2_request(stub).malformed());
}

TEST(emsmdb, dummy_async_connect_and_wait_match_reference) {
  byte_buffer dummy_req;
  dcerpc::encode_request(dummy_req, 5, 0, opnum::dummy_rpc, [](byte_writer&) {});
  byte_buffer dummy_rsp;
  dcerpc::encode_response(dummy_rsp, 5, 0, [](byte_writer& w) { encode_dummy_response(w, 0); });
  EXPECT_EQ(dummy_req.size(), 24u);
  EXPECT_EQ(dummy_rsp.size(), 28u);
  EXPECT_TRUE(decode_dummy_response(stub_of(dummy_rsp)).complete());

  auto wait_req = request(2, opnum::do_async_wait_ex, async_wait_request{acxh, 0});
  auto wait_rsp = response(2, async_wait_response{notification_pending, 0});
  auto conn_req = request(6, opnum::do_async_connect_ex, async_connect_request{cxh});
  auto conn_rsp = response(6, async_connect_response{acxh, 0});
  EXPECT_EQ(wait_req.size(), 48u);
  EXPECT_EQ(wait_rsp.size(), 32u);
  EXPECT_EQ(conn_req.size(), 44u);
  EXPECT_EQ(conn_rsp.size(), 48u);
  EXPECT_EQ(decode_async_wait_request(stub_of(wait_req)).value.acxh, acxh);
  EXPECT_EQ(decode_async_wait_response(stub_of(wait_rsp)).value.flags_out, notification_pending);
  EXPECT_EQ(decode_async_connect_request(stub_of(conn_req)).value.cxh, cxh);
  EXPECT_EQ(decode_async_connect_response(stub_of(conn_rsp)).value.acxh, acxh);

  auto ref = reference_payloads();
  NUDGE_REQUIRE(ref.size() >= 17, "the reference capture shared/reference/emsmdb-reference.pcap (set NUDGE_SHARED_DIR)");
  EXPECT_EQ(dummy_req, ref[9]);
  EXPECT_EQ(dummy_rsp, ref[10]);
  EXPECT_EQ(wait_req, ref[13]);
  EXPECT_EQ(wait_rsp, ref[14]);
  EXPECT_EQ(conn_req, ref[15]);
  EXPECT_EQ(conn_rsp, ref[16]);
}

TEST(emsmdb, truncated_stubs_are_malformed_never_out_of_bounds) {
  byte_buffer rgb_in;
  rop::encode_empty_request(rgb_in);
  auto pdu = request(3, opnum::do_rpc_ext2, rpc_ext2_request{cxh, 3, rgb_in, 0x8008, {}, 0x1008});
  const byte_buffer stub(pdu.begin() + 24, pdu.end());
  for (std::size_t n = 0; n < stub.size(); ++n) {
    byte_buffer cut(stub.begin(), stub.begin() + static_cast<std::ptrdiff_t>(n));  // exact-size heap copy for ASan
    EXPECT_FALSE(decode_rpc_ext2_request(cut).complete()) << n;
  }
}

TEST(emsmdb, disconnect_round_trip_returns_a_zeroed_handle) {
  auto req = request(4, opnum::do_disconnect, disconnect_request{cxh});
  EXPECT_EQ(req.size(), 24u + 20u);  // the CXH alone
  auto d = decode_disconnect_request(stub_of(req));
  ASSERT_TRUE(d.complete()) << d.reason;
  EXPECT_EQ(d.value.cxh, cxh);
  EXPECT_EQ(d.consumed, 20u);
  auto rsp = response(4, disconnect_response{{}, ec::success});
  EXPECT_EQ(rsp.size(), 24u + 24u);  // CXH + return value
  auto r = decode_disconnect_response(stub_of(rsp));
  ASSERT_TRUE(r.complete()) << r.reason;
  EXPECT_TRUE(r.value.cxh.is_null());
  EXPECT_EQ(r.value.return_code, ec::success);
}

TEST(emsmdb, truncated_disconnect_stubs_are_malformed) {
  auto req = request(4, opnum::do_disconnect, disconnect_request{cxh});
  const byte_buffer stub(req.begin() + 24, req.end());
  for (std::size_t n = 0; n < stub.size(); ++n) {
    byte_buffer cut(stub.begin(), stub.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_TRUE(decode_disconnect_request(cut).malformed()) << n;
  }
  auto rsp = response(4, disconnect_response{{}, 0});
  const byte_buffer rstub(rsp.begin() + 24, rsp.end());
  for (std::size_t n = 0; n < rstub.size(); ++n) {
    byte_buffer cut(rstub.begin(), rstub.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_TRUE(decode_disconnect_response(cut).malformed()) << n;
  }
}
