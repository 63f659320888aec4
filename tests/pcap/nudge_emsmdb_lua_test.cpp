// tools/wireshark/nudge_emsmdb.lua judged through tshark: on the whole-session
// capture it names every EMSMDB/AsyncEMSMDB call and decodes what nudge put in
// the stubs (pcmsPollsMax, the registered context and callback, every NewMail's
// MID, RopPending's SessionIndex, pulFlagsOut); on a hand-built capture it
// handles an IPv6 SOCKADDR, an XorMagic-obfuscated rgbOut, a truncated stub
// (reported as malformed, not a Lua error), a fault, a ping and a cookie; on
// the shared reference capture it decodes the reference's calls. A Lua error
// anywhere (loading: "Lua:" on stderr; dissecting: a "Lua Error" expert item)
// fails the test.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/capture/pcap_file_writer.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/identifiers.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/rop.hpp"
#include "nudge/protocol/sockaddr.hpp"
#include "session_capture.hpp"
#include "support/require.hpp"

#ifndef NUDGE_SOURCE_DIR
#error "NUDGE_SOURCE_DIR must name the repository root"
#endif

namespace nudge::pcap_test {
namespace {

using namespace std::chrono_literals;
using protocol::byte_buffer;
using protocol::ip_endpoint;

const std::vector<std::string> lua_fields = {
    "frame.number",
    "dcerpc.pkt_type",
    "dcerpc.cn_call_id",
    "nudge_emsmdb.interface",
    "nudge_emsmdb.opnum",
    "nudge_emsmdb.opname",
    "nudge_emsmdb.type",
    "nudge_emsmdb.call_id",
    "nudge_emsmdb.request_in",
    "nudge_emsmdb.polls_max_ms",
    "nudge_emsmdb.session_index",
    "nudge_emsmdb.user_dn",
    "nudge_emsmdb.cxh",
    "nudge_emsmdb.context",
    "nudge_emsmdb.callback",
    "nudge_emsmdb.callback_family",
    "nudge_emsmdb.notification_handle",
    "nudge_emsmdb.rop",
    "nudge_emsmdb.event_mid_counter",
    "nudge_emsmdb.message_class",
    "nudge_emsmdb.pending_session",
    "nudge_emsmdb.notify_count",
    "nudge_emsmdb.empty_poll",
    "nudge_emsmdb.async_flags",
    "nudge_emsmdb.rc",
    "nudge_emsmdb.fault_status",
    "nudge_emsmdb.hdr.flags.xor_magic",
    "nudge_emsmdb.ping_context",
    "nudge_emsmdb.cookie_handle",
    "nudge_emsmdb.cookie_context",
    "_ws.expert.severity",
    "_ws.expert.message",
};

constexpr unsigned long severity_error = 0x00800000ul;

// One tshark run's field table, columns addressed by field name.
struct field_table {
  std::vector<std::vector<std::string>> rows;
  std::map<std::string, std::size_t> column;
  const std::string& at(const std::vector<std::string>& row, const std::string& name) const {
    return row.at(column.at(name));
  }
  // The row of a frame number (fails the test when absent).
  const std::vector<std::string>& frame(int number) const {
    for (const auto& r : rows)
      if (r.at(0) == std::to_string(number)) return r;
    ADD_FAILURE() << "no frame " << number;
    static const std::vector<std::string> empty(lua_fields.size());
    return empty;
  }
  std::vector<std::string> values(const std::vector<std::string>& row, const std::string& name) const {
    const std::string& v = at(row, name);
    if (v.empty()) return {};
    return split(v, '|');
  }
};

std::string emsmdb_opname(std::uint16_t opnum) {
  switch (opnum) {
    case 4: return "EcRRegisterPushNotification";
    case 5: return "EcRUnregisterPushNotification";
    case 6: return "EcDummyRpc";
    case 10: return "EcDoConnectEx";
    case 11: return "EcDoRpcExt2";
    case 14: return "EcDoAsyncConnectEx";
    default: return "?";
  }
}

// The repository root, without a trailing separator.
std::filesystem::path source_root() {
  std::filesystem::path root = std::filesystem::path(NUDGE_SOURCE_DIR).lexically_normal();
  if (!root.has_filename()) root = root.parent_path();
  return root;
}

std::filesystem::path reference_capture() {
  std::vector<std::filesystem::path> candidates;
  if (const char* dir = std::getenv("NUDGE_SHARED_DIR"); dir && *dir) {
    candidates.emplace_back(std::filesystem::path(dir) / "reference" / "emsmdb-reference.pcap");
    candidates.emplace_back(std::filesystem::path(dir) / "emsmdb-reference.pcap");
  }
  candidates.emplace_back(source_root().parent_path() / "shared" / "reference" /
                          "emsmdb-reference.pcap");
  for (const auto& c : candidates)
    if (std::filesystem::exists(c)) return c;
  return {};
}

class NudgeLua : public ::testing::Test {
 protected:
  void SetUp() override {
    tshark_ = find_tshark();
    NUDGE_REQUIRE(!tshark_.empty(), "tshark");
    script_ = source_root() / "tools" / "wireshark" / "nudge_emsmdb.lua";
    ASSERT_TRUE(std::filesystem::exists(script_)) << script_;
  }

  // Runs tshark with the script and returns the field table; fails on any Lua error.
  field_table decode(const std::filesystem::path& capture, const std::string& extra = "") {
    std::string cmd = "'" + tshark_ + "' -n -X 'lua_script:" + script_.string() + "' -r '" + capture.string() +
                      "' " + extra + " -T fields -E occurrence=a -E aggregator='|'";
    for (const auto& fld : lua_fields) cmd += " -e " + fld;
    const auto r = run_command(cmd);
    field_table t;
    EXPECT_EQ(r.status, 0) << cmd << "\n" << r.err;
    EXPECT_EQ(r.err.find("Lua"), std::string::npos) << "tshark reported a Lua problem:\n" << r.err;
    for (std::size_t i = 0; i < lua_fields.size(); ++i) t.column[lua_fields[i]] = i;
    t.rows = split_rows(r.out, '\t');
    for (auto& row : t.rows) {
      EXPECT_EQ(row.size(), lua_fields.size()) << "frame " << row.at(0);
      row.resize(lua_fields.size());
      EXPECT_EQ(t.at(row, "_ws.expert.message").find("Lua Error"), std::string::npos)
          << "frame " << row[0] << ": " << t.at(row, "_ws.expert.message");
    }
    return t;
  }

  static void expect_no_errors(const field_table& t) {
    for (const auto& row : t.rows)
      for (const auto& s : t.values(row, "_ws.expert.severity"))
        EXPECT_LT(std::stoul(s, nullptr, 0), severity_error)
            << "frame " << row[0] << ": " << t.at(row, "_ws.expert.message");
  }

  std::string tshark_;
  std::filesystem::path script_;
};

TEST_F(NudgeLua, NamesEveryCallOfTheSessionAndDecodesTheStubs) {
  const auto& f = shared_capture();
  ASSERT_TRUE(f.info.error.empty()) << f.info.error;
  const auto& info = f.info;
  const auto t = decode(f.path, "-d tcp.port==7777,dcerpc -d udp.port==" + std::to_string(info.callback.port) +
                                    ",newmail");
  ASSERT_EQ(t.rows.size(), info.frames);
  expect_no_errors(t);

  // Every request and response nudge sent, in order, named and typed.
  std::vector<const pdu_record*> calls;
  int binds = 0;
  for (const auto& p : info.pdus) {
    if (p.ptype == 0 || p.ptype == 2) calls.push_back(&p);
    if (p.ptype == 11) ++binds;
  }
  std::size_t next = 0;
  int bind_rows = 0;
  std::map<std::string, int> count;  // "opname type" -> rows
  for (const auto& row : t.rows) {
    const std::string& type = t.at(row, "nudge_emsmdb.type");
    if (type == "bind") {
      ++bind_rows;
      continue;
    }
    if (t.at(row, "dcerpc.pkt_type").empty()) {
      EXPECT_TRUE(type.empty()) << "frame " << row[0];
      continue;
    }
    SCOPED_TRACE("frame " + row[0]);
    if (t.at(row, "dcerpc.pkt_type") == "11" || t.at(row, "dcerpc.pkt_type") == "12") continue;
    ASSERT_LT(next, calls.size());
    const pdu_record& want = *calls[next++];
    const bool async = want.bound == iface::async_emsmdb;
    EXPECT_EQ(t.at(row, "nudge_emsmdb.interface"), async ? "AsyncEMSMDB" : "EMSMDB");
    EXPECT_EQ(t.at(row, "nudge_emsmdb.opnum"), std::to_string(*want.opnum));
    const std::string name = async ? "EcDoAsyncWaitEx" : emsmdb_opname(*want.opnum);
    EXPECT_EQ(t.at(row, "nudge_emsmdb.opname"), name);
    EXPECT_EQ(type, want.ptype == 0 ? "request" : "response");
    EXPECT_EQ(t.at(row, "nudge_emsmdb.call_id"), std::to_string(want.call_id));
    if (want.ptype == 2) {
      EXPECT_FALSE(t.at(row, "nudge_emsmdb.request_in").empty());
      EXPECT_EQ(t.at(row, "nudge_emsmdb.rc"), "0x00000000");
    } else {
      EXPECT_TRUE(t.at(row, "nudge_emsmdb.rc").empty());
    }
    ++count[name + " " + type];
  }
  EXPECT_EQ(next, calls.size()) << "the script named fewer calls than nudge made";
  EXPECT_EQ(bind_rows, binds);
  EXPECT_EQ(count["EcDoConnectEx request"], 3);
  EXPECT_EQ(count["EcDoConnectEx response"], 3);
  EXPECT_EQ(count["EcRRegisterPushNotification response"], 1);
  EXPECT_EQ(count["EcDoAsyncConnectEx response"], 1);
  EXPECT_EQ(count["EcDummyRpc response"], 1);
  EXPECT_GE(count["EcDoAsyncWaitEx request"], 2);

  // Field values against what the session used and produced.
  std::set<std::string> dns;
  std::vector<std::string> mids;
  std::uint64_t notifies = 0;
  int pending = 0, pings = 0, async_pending = 0, empty_polls = 0;
  for (const auto& row : t.rows) {
    SCOPED_TRACE("frame " + row[0]);
    const std::string& name = t.at(row, "nudge_emsmdb.opname");
    const std::string& type = t.at(row, "nudge_emsmdb.type");
    if (!t.at(row, "nudge_emsmdb.user_dn").empty()) dns.insert(t.at(row, "nudge_emsmdb.user_dn"));
    if (name == "EcDoConnectEx" && type == "response") {
      EXPECT_EQ(t.at(row, "nudge_emsmdb.polls_max_ms"), std::to_string(info.polls_max_ms));
    }
    if (name == "EcRRegisterPushNotification" && type == "request") {
      EXPECT_EQ(t.at(row, "nudge_emsmdb.context"), hex(info.context));
      EXPECT_EQ(t.at(row, "nudge_emsmdb.callback"), info.callback.to_string());
      EXPECT_EQ(t.at(row, "nudge_emsmdb.callback_family"), "2");
    }
    if (name == "EcRRegisterPushNotification" && type == "response") {
      EXPECT_FALSE(t.at(row, "nudge_emsmdb.notification_handle").empty());
    }
    if (name == "EcDoRpcExt2" && type == "request") {
      EXPECT_EQ(t.at(row, "nudge_emsmdb.empty_poll"), "1");
      ++empty_polls;
    }
    if (name == "EcDoRpcExt2" && type == "response") {
      const auto rops = t.values(row, "nudge_emsmdb.rop");
      const auto row_mids = t.values(row, "nudge_emsmdb.event_mid_counter");
      const std::string& n = t.at(row, "nudge_emsmdb.notify_count");
      ASSERT_FALSE(n.empty());
      notifies += std::stoull(n);
      EXPECT_EQ(row_mids.size(), std::stoull(n));
      EXPECT_EQ(t.values(row, "nudge_emsmdb.message_class").size(), row_mids.size());
      mids.insert(mids.end(), row_mids.begin(), row_mids.end());
      std::size_t pending_rops = 0;
      for (const auto& r : rops) pending_rops += r == "0x6e";
      EXPECT_EQ(rops.size(), row_mids.size() + pending_rops);
      for (const auto& s : t.values(row, "nudge_emsmdb.pending_session")) {
        EXPECT_EQ(s, std::to_string(info.poll_session_index));
        ++pending;
      }
    }
    if (name == "EcDoAsyncWaitEx" && type == "response" && t.at(row, "nudge_emsmdb.async_flags") == "0x00000001")
      ++async_pending;
    if (!t.at(row, "nudge_emsmdb.ping_context").empty()) {
      EXPECT_EQ(t.at(row, "nudge_emsmdb.ping_context"), hex(info.context));
      ++pings;
    }
  }
  EXPECT_EQ(dns, (std::set<std::string>(info.user_dns.begin(), info.user_dns.end())));
  EXPECT_EQ(notifies, info.events_fetched);
  // Event ids are 1..N in injection order; each MID's global counter is one.
  std::set<std::string> want_mids;
  for (std::uint64_t id = 1; id <= info.events_injected; ++id) want_mids.insert(std::to_string(id));
  EXPECT_EQ(mids.size(), info.events_injected);
  EXPECT_EQ(std::set<std::string>(mids.begin(), mids.end()), want_mids);
  EXPECT_EQ(static_cast<std::uint64_t>(pending), info.pending_sent);
  EXPECT_EQ(static_cast<std::uint64_t>(async_pending), info.async_completed);
  EXPECT_EQ(static_cast<std::size_t>(pings), info.datagrams.size());
  EXPECT_GE(empty_polls, 5);
}

TEST_F(NudgeLua, SessionDecodesTheSameInTwoPassesAndWithoutMapi) {
  const auto& f = shared_capture();
  ASSERT_TRUE(f.info.error.empty()) << f.info.error;
  const auto one = decode(f.path);
  const auto two = decode(f.path, "-2 --disable-protocol mapi");
  ASSERT_EQ(one.rows.size(), two.rows.size());
  for (std::size_t i = 0; i < one.rows.size(); ++i) {
    for (const auto& fld : lua_fields) {
      if (fld.rfind("nudge_emsmdb.", 0) != 0) continue;
      EXPECT_EQ(one.at(one.rows[i], fld), two.at(two.rows[i], fld)) << "frame " << one.rows[i][0] << " " << fld;
    }
  }
}

// ---- a hand-built capture for the paths the session does not take ---------------------------

struct hand_capture {
  std::filesystem::path path;
  byte_buffer context;
  ~hand_capture() {
    if (!std::getenv("NUDGE_KEEP_PCAP")) std::filesystem::remove(path);
  }
};

void write_hand_capture(hand_capture& hc) {
  namespace dce = protocol::dcerpc;
  namespace ems = protocol::emsmdb;
  hc.path = temp_pcap("nudge_lua_hand");
  for (std::uint8_t i = 0; i < 16; ++i) hc.context.push_back(i);
  capture::pcap_file_writer w;
  ASSERT_EQ(w.open(hc.path, std::chrono::seconds(1700000000)), capture::capture_error::none) << w.error_text();
  capture::frame_synthesizer s(w);
  const ip_endpoint client = ip_endpoint::v4(127, 0, 0, 9, 50100);
  const ip_endpoint server = ip_endpoint::v4(127, 0, 0, 1, 7777);
  const ip_endpoint client_udp = ip_endpoint::v4(127, 0, 0, 9, 2500);
  const ip_endpoint server_udp = ip_endpoint::v4(127, 0, 0, 1, 7778);
  time_point now{};
  auto tick = [&] { return now += 1ms; };
  auto c2s = [&](const byte_buffer& b) { ASSERT_EQ(s.tcp_data(tick(), client, server, b), capture::capture_error::none); };
  auto s2c = [&](const byte_buffer& b) { ASSERT_EQ(s.tcp_data(tick(), server, client, b), capture::capture_error::none); };
  ASSERT_EQ(s.tcp_open(tick(), client, server), capture::capture_error::none);

  dce::bind_pdu bind;
  bind.call_id = 1;
  bind.contexts.push_back({0, protocol::emsmdb_syntax(), {protocol::ndr_syntax()}});
  byte_buffer b;
  dce::encode(b, bind);
  c2s(b);
  dce::bind_ack_pdu ack;
  ack.call_id = 1;
  ack.secondary_address = "7777";
  ack.results.push_back({0, 0, protocol::ndr_syntax()});
  b.clear();
  dce::encode(b, ack);
  s2c(b);

  ems::context_handle cxh;
  for (std::uint8_t i = 0; i < 16; ++i) cxh.uuid.bytes[i] = static_cast<std::uint8_t>(0x10 + i);

  // EcRRegisterPushNotification with a 16-byte context and an IPv6 (documentation range) SOCKADDR_IN6.
  const auto v6 = ip_endpoint::parse("[2001:db8::1]:2500");
  ASSERT_TRUE(v6.has_value());
  const byte_buffer sockaddr = protocol::windows_sockaddr(*v6);
  ems::register_push_request reg;
  reg.cxh = cxh;
  reg.context = hc.context;
  reg.callback_address = sockaddr;
  b.clear();
  dce::encode_request(b, 2, 0, protocol::opnum::register_push_notification,
                      [&](protocol::byte_writer& wr) { ems::encode(wr, reg); });
  c2s(b);
  b.clear();
  dce::encode_response(b, 2, 0, [&](protocol::byte_writer& wr) { ems::encode(wr, ems::register_push_response{cxh, 0x0100002A, 0}); });
  s2c(b);

  // EcDoRpcExt2 whose rgbOut is XorMagic-obfuscated: one NewMail and a RopPending.
  byte_buffer rgb_in;
  protocol::rop::encode_empty_request(rgb_in);
  ems::rpc_ext2_request ext2;
  ext2.cxh = cxh;
  ext2.rgb_in = rgb_in;
  b.clear();
  dce::encode_request(b, 3, 0, protocol::opnum::do_rpc_ext2, [&](protocol::byte_writer& wr) { ems::encode(wr, ext2); });
  c2s(b);
  byte_buffer rgb_out;
  protocol::rop::response_builder rb(rgb_out);
  protocol::rop::new_mail_notification nm;
  nm.notification_handle = 1;
  nm.folder_id = 0x0001000000000001ull;
  nm.event = {4242, time_point{} + 1s};
  rb.add(nm);
  rb.add_pending(7);
  rb.finish();
  rgb_out[2] |= protocol::rop::header_flags::xor_magic;
  for (std::size_t i = protocol::rop::rpc_header_ext_size; i < rgb_out.size(); ++i) rgb_out[i] ^= 0xA5;
  ems::rpc_ext2_response ext2_rsp;
  ext2_rsp.cxh = cxh;
  ext2_rsp.rgb_out = rgb_out;
  b.clear();
  dce::encode_response(b, 3, 0, [&](protocol::byte_writer& wr) { ems::encode(wr, ext2_rsp); });
  s2c(b);

  // A truncated EcRRegisterPushNotification stub (10 bytes of a CXH): malformed, not a Lua error.
  b.clear();
  dce::encode_request(b, 4, 0, protocol::opnum::register_push_notification,
                      [](protocol::byte_writer& wr) { wr.zeros(10); });
  c2s(b);
  b.clear();
  dce::encode(b, dce::fault_pdu{4, 0, protocol::fault_status::bad_stub_data});
  s2c(b);

  // Opnum 5 (not used on the wire) and the fault it earns.
  b.clear();
  dce::encode_request(b, 5, 0, 5, [](protocol::byte_writer&) {});
  c2s(b);
  b.clear();
  dce::encode(b, dce::fault_pdu{5, 0, protocol::fault_status::op_rng_error});
  s2c(b);

  // EcDoDisconnect: the CXH in, the zeroed CXH and ecNone back.
  b.clear();
  dce::encode_request(b, 6, 0, protocol::opnum::do_disconnect,
                      [&](protocol::byte_writer& wr) { ems::encode(wr, ems::disconnect_request{cxh}); });
  c2s(b);
  b.clear();
  dce::encode_response(b, 6, 0, [](protocol::byte_writer& wr) { ems::encode(wr, ems::disconnect_response{{}, 0}); });
  s2c(b);

  // nudge's reachability cookie, then a ping to where it came from (not the registered address).
  b.clear();
  protocol::encode_reachability_cookie(b, 0x0100002A, hc.context);
  ASSERT_EQ(s.udp(tick(), client_udp, server_udp, b), capture::capture_error::none);
  ASSERT_EQ(s.udp(tick(), server_udp, client_udp, hc.context), capture::capture_error::none);
  ASSERT_EQ(s.tcp_close(tick(), client, server), capture::capture_error::none);
  ASSERT_EQ(w.close(), capture::capture_error::none) << w.error_text();
}

TEST_F(NudgeLua, HandBuiltCaptureCoversIpv6XorMagicTruncationFaultsAndCookies) {
  hand_capture hc;
  write_hand_capture(hc);
  if (HasFatalFailure()) return;
  const auto t = decode(hc.path);
  // Frames: 3 handshake, bind 4, bind_ack 5, register 6/7, ext2 8/9, truncated 10/11, opnum 5 12/13,
  // disconnect 14/15, cookie 16, ping 17, then the close.
  const auto& reg = t.frame(6);
  EXPECT_EQ(t.at(reg, "nudge_emsmdb.opname"), "EcRRegisterPushNotification");
  EXPECT_EQ(t.at(reg, "nudge_emsmdb.context"), hex(hc.context));
  EXPECT_EQ(t.at(reg, "nudge_emsmdb.callback"), "[2001:db8::1]:2500");
  EXPECT_EQ(t.at(reg, "nudge_emsmdb.callback_family"), "23");
  EXPECT_EQ(t.at(t.frame(7), "nudge_emsmdb.notification_handle"), "0x0100002a");

  const auto& rsp = t.frame(9);
  EXPECT_EQ(t.at(rsp, "nudge_emsmdb.opname"), "EcDoRpcExt2");
  EXPECT_EQ(t.at(rsp, "nudge_emsmdb.hdr.flags.xor_magic"), "1");
  EXPECT_EQ(t.at(rsp, "nudge_emsmdb.rop"), "0x2a|0x6e");
  EXPECT_EQ(t.at(rsp, "nudge_emsmdb.event_mid_counter"), "4242");
  EXPECT_EQ(t.at(rsp, "nudge_emsmdb.message_class"), "IPM.Note.t00000000000f4240");
  EXPECT_EQ(t.at(rsp, "nudge_emsmdb.pending_session"), "7");

  const auto& truncated = t.frame(10);
  EXPECT_EQ(t.at(truncated, "nudge_emsmdb.opname"), "EcRRegisterPushNotification");
  EXPECT_NE(t.at(truncated, "_ws.expert.message").find("Stub shorter than the EcRRegisterPushNotification layout"),
            std::string::npos)
      << t.at(truncated, "_ws.expert.message");
  EXPECT_EQ(t.at(t.frame(11), "nudge_emsmdb.type"), "fault");
  EXPECT_EQ(t.at(t.frame(11), "nudge_emsmdb.fault_status"), "0x000006f7");

  EXPECT_EQ(t.at(t.frame(12), "nudge_emsmdb.opname"), "EcRUnregisterPushNotification");
  EXPECT_EQ(t.at(t.frame(13), "nudge_emsmdb.opname"), "EcRUnregisterPushNotification");
  EXPECT_EQ(t.at(t.frame(13), "nudge_emsmdb.fault_status"), "0x1c010002");

  EXPECT_EQ(t.at(t.frame(14), "nudge_emsmdb.opname"), "EcDoDisconnect");
  byte_buffer session_handle(4, 0);  // attributes 0, then the GUID the capture used
  for (std::uint8_t i = 0; i < 16; ++i) session_handle.push_back(static_cast<std::uint8_t>(0x10 + i));
  EXPECT_EQ(t.at(t.frame(14), "nudge_emsmdb.cxh"), hex(session_handle));
  EXPECT_EQ(t.at(t.frame(15), "nudge_emsmdb.opname"), "EcDoDisconnect");
  EXPECT_EQ(t.at(t.frame(15), "nudge_emsmdb.cxh"), hex(byte_buffer(20, 0)));
  EXPECT_EQ(t.at(t.frame(15), "nudge_emsmdb.rc"), "0x00000000");

  EXPECT_EQ(t.at(t.frame(16), "nudge_emsmdb.cookie_handle"), "0x0100002a");
  EXPECT_EQ(t.at(t.frame(16), "nudge_emsmdb.cookie_context"), hex(hc.context));
  EXPECT_EQ(t.at(t.frame(17), "nudge_emsmdb.ping_context"), hex(hc.context));
}

TEST_F(NudgeLua, DecodesTheSharedReferenceCapture) {
  const auto ref = reference_capture();
  NUDGE_REQUIRE(!ref.empty(), "emsmdb-reference.pcap (NUDGE_SHARED_DIR or ../shared/reference)");
  const auto t = decode(ref, "-d udp.port==2500,newmail");
  expect_no_errors(t);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"", ""},  // 1 bind
      {"", ""},  // 2 bind_ack
      {"EcRRegisterPushNotification", "request"},
      {"EcRRegisterPushNotification", "response"},
      {"EcDoRpcExt2", "request"},
      {"EcDoRpcExt2", "response"},
      {"", ""},  // 7 the push datagram
      {"EcDoRpcExt2", "request"},
      {"EcDoRpcExt2", "response"},
      {"EcDummyRpc", "request"},
      {"EcDummyRpc", "response"},
      {"", ""},  // 12 bind (async)
      {"", ""},  // 13 bind_ack
      {"EcDoAsyncWaitEx", "request"},
      {"EcDoAsyncWaitEx", "response"},
      {"EcDoAsyncConnectEx", "request"},
      {"EcDoAsyncConnectEx", "response"},
  };
  ASSERT_EQ(t.rows.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(t.at(t.rows[i], "nudge_emsmdb.opname"), want[i].first) << "frame " << i + 1;
    if (!want[i].first.empty()) {
      EXPECT_EQ(t.at(t.rows[i], "nudge_emsmdb.type"), want[i].second) << "frame " << i + 1;
    }
  }
  EXPECT_EQ(t.at(t.frame(1), "nudge_emsmdb.interface"), "EMSMDB");
  EXPECT_EQ(t.at(t.frame(12), "nudge_emsmdb.interface"), "AsyncEMSMDB");
  EXPECT_EQ(t.at(t.frame(3), "nudge_emsmdb.context"), "6c69626d61706901");  // "libmapi\x01"
  EXPECT_EQ(t.at(t.frame(3), "nudge_emsmdb.callback"), "10.0.0.2:2500");
  EXPECT_EQ(t.at(t.frame(4), "nudge_emsmdb.notification_handle"), "0x000000f4");
  EXPECT_EQ(t.at(t.frame(5), "nudge_emsmdb.empty_poll"), "1");
  EXPECT_EQ(t.at(t.frame(6), "nudge_emsmdb.notify_count"), "0");
  EXPECT_EQ(t.at(t.frame(7), "nudge_emsmdb.ping_context"), "6c69626d61706901");
  EXPECT_EQ(t.at(t.frame(9), "nudge_emsmdb.pending_session"), "1");
  EXPECT_EQ(t.at(t.frame(11), "nudge_emsmdb.rc"), "0x00000000");
  EXPECT_EQ(t.at(t.frame(15), "nudge_emsmdb.async_flags"), "0x00000001");
  EXPECT_EQ(t.at(t.frame(17), "nudge_emsmdb.rc"), "0x00000000");
}

}  // namespace
}  // namespace nudge::pcap_test
