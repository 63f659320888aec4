// A whole session (push, async and poll clients against one notifier_core)
// written as a pcap and decoded by tshark 4.0's own dissectors: every DCE/RPC
// PDU nudge produced appears with the right packet type, frag_length, call_id
// and opnum, the binds name EMSMDB v0.81 and AsyncEMSMDB v0.1, the ping decodes
// as NEWMAIL carrying the registered context, and nothing is malformed.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "session_capture.hpp"
#include "support/require.hpp"

namespace nudge::pcap_test {
namespace {

constexpr const char* emsmdb_uuid = "a4f1db00-ca47-1067-b31f-00dd010662da";
constexpr const char* async_uuid = "5261574a-4572-206e-b268-6b199213b4e4";

// Expert severities (epan/proto.h): chat 0x00200000, note 0x00400000,
// warning 0x00600000, error 0x00800000.
constexpr unsigned long severity_warning = 0x00600000ul;
constexpr unsigned long severity_error = 0x00800000ul;

class SessionTshark : public ::testing::Test {
 protected:
  void SetUp() override {
    tshark_ = find_tshark();
    NUDGE_REQUIRE(!tshark_.empty(), "tshark");
    const auto& f = shared_capture();
    ASSERT_TRUE(f.info.error.empty()) << f.info.error;
    path_ = f.path.string();
    info_ = &f.info;
  }

  // Columns: frame, pkt_type, frag_len, opnum, bind uuid, if_ver, if_ver_minor,
  // call_id, newmail payload, malformed, expert severities, tcp.stream, udp.dstport.
  std::vector<std::vector<std::string>> decode(const std::string& extra) {
    const std::string cmd = "'" + tshark_ + "' -n -r '" + path_ + "' -d tcp.port==" +
                            std::to_string(info_->server.port) + ",dcerpc -d udp.port==" +
                            std::to_string(info_->callback.port) + ",newmail " + extra +
                            " -T fields -E separator=, -E occurrence=a -E aggregator=';'"
                            " -e frame.number -e dcerpc.pkt_type -e dcerpc.cn_frag_len -e dcerpc.opnum"
                            " -e dcerpc.cn_bind_to_uuid -e dcerpc.cn_bind_if_ver -e dcerpc.cn_bind_if_ver_minor"
                            " -e dcerpc.cn_call_id -e newmail.notification_payload -e _ws.malformed"
                            " -e _ws.expert.severity -e tcp.stream -e udp.dstport -e _ws.expert.message";
    const auto r = run_command(cmd);
    EXPECT_EQ(r.status, 0) << cmd << "\n" << r.err;
    auto table = split_rows(r.out, ',');
    // _ws.expert.message may itself contain commas: fold the tail into one column.
    for (auto& row : table) {
      if (row.size() > 14) {
        for (std::size_t i = 14; i < row.size(); ++i) row[13] += "," + row[i];
        row.resize(14);
      }
    }
    return table;
  }

  // The checks shared by both decodes (with and without the MAPI dissector).
  void check_decode(const std::vector<std::vector<std::string>>& table, unsigned long worst_allowed) {
    ASSERT_EQ(table.size(), info_->frames);
    std::size_t next_pdu = 0;
    std::size_t datagrams = 0;
    std::map<std::string, std::string> stream_iface;  // tcp.stream -> bound uuid
    std::map<std::string, std::set<std::string>> opnums_by_iface;
    for (const auto& row : table) {
      ASSERT_EQ(row.size(), 14u) << "frame " << row[0];
      SCOPED_TRACE("frame " + row[0] + " (" + row[13] + ")");
      EXPECT_TRUE(row[9].empty()) << "malformed";
      for (const auto& s : split(row[10], ';')) {
        if (s.empty()) continue;
        EXPECT_LT(std::stoul(s, nullptr, 0), worst_allowed) << "expert severity " << s;
      }
      if (!row[8].empty() || !row[12].empty()) {  // a UDP datagram
        ASSERT_LT(datagrams, info_->datagrams.size());
        const auto& d = info_->datagrams[datagrams++];
        EXPECT_EQ(row[12], std::to_string(d.to.port));
        EXPECT_EQ(row[8], hex(info_->context)) << "NEWMAIL payload is not the registered context";
        continue;
      }
      if (row[1].empty()) continue;  // TCP control or a segment of a larger PDU
      // One PDU per frame in this capture, so no aggregation is expected.
      ASSERT_EQ(row[1].find(';'), std::string::npos);
      ASSERT_LT(next_pdu, info_->pdus.size()) << "more DCE/RPC PDUs than nudge sent";
      const pdu_record& want = info_->pdus[next_pdu++];
      EXPECT_EQ(row[1], std::to_string(want.ptype)) << "pkt_type";
      EXPECT_EQ(row[2], std::to_string(want.frag_length)) << "frag_length";
      EXPECT_EQ(row[7], std::to_string(want.call_id)) << "call_id";
      EXPECT_EQ(row[11], std::to_string(want.stream)) << "tcp.stream";
      if (want.ptype == 0 || want.ptype == 2) {
        ASSERT_TRUE(want.opnum.has_value());
        EXPECT_EQ(row[3], std::to_string(*want.opnum)) << "opnum (tshark pairs responses with requests)";
      }
      if (want.ptype == 11) {
        const bool async = want.bound == iface::async_emsmdb;
        EXPECT_EQ(row[4], async ? async_uuid : emsmdb_uuid);
        EXPECT_EQ(row[5], "0");
        EXPECT_EQ(row[6], async ? "1" : "81");
        stream_iface[row[11]] = row[4];
      }
      if (want.ptype == 0) opnums_by_iface[stream_iface[row[11]]].insert(row[3]);
    }
    EXPECT_EQ(next_pdu, info_->pdus.size()) << "tshark found fewer DCE/RPC PDUs than nudge sent";
    EXPECT_EQ(datagrams, info_->datagrams.size());
    EXPECT_EQ(opnums_by_iface[emsmdb_uuid], (std::set<std::string>{"4", "6", "10", "11", "14"}));
    EXPECT_EQ(opnums_by_iface[async_uuid], (std::set<std::string>{"0"}));
  }

  std::string tshark_;
  std::string path_;
  const session_capture* info_ = nullptr;
};

TEST_F(SessionTshark, SessionCoversEveryCallKind) {
  // What the scripted session must contain for the decode checks to mean anything.
  std::map<std::uint8_t, int> by_type;
  std::map<std::uint16_t, int> requests;
  std::uint16_t largest = 0;
  for (const auto& p : info_->pdus) {
    ++by_type[p.ptype];
    if (p.ptype == 0) ++requests[*p.opnum];
    if (p.ptype == 2) largest = std::max(largest, p.frag_length);
  }
  EXPECT_EQ(by_type[11], 4);  // push, async (2 channels), poll
  EXPECT_EQ(by_type[12], 4);
  EXPECT_EQ(by_type[3], 0) << "no faults";
  EXPECT_EQ(requests[10], 3);
  EXPECT_EQ(requests[4], 1);
  EXPECT_EQ(requests[14], 1);
  EXPECT_EQ(requests[6], 1);
  EXPECT_GE(requests[0], 2);
  EXPECT_GE(requests[11], 5);
  // The RopPending response fills rgbOut up to the negotiated fragment size, and no further.
  EXPECT_GT(largest, 5000);
  EXPECT_LE(largest, 5840);
  EXPECT_GE(info_->pending_sent, 1u);
  EXPECT_EQ(info_->events_fetched, info_->events_injected);
  ASSERT_EQ(info_->datagrams.size(), 1u);
  EXPECT_EQ(info_->datagrams[0].payload, info_->context);
  EXPECT_EQ(info_->datagrams[0].from, info_->server_udp);
  EXPECT_EQ(info_->datagrams[0].to, info_->callback);
}

TEST_F(SessionTshark, DecodesWithWiresharksMapiDissector) {
  // The MAPI dissector knows opnum 4 by a pre-spec layout and flags nudge's
  // spec-conformant stub (and EcDummyRpc's return value) as "Long frame", a
  // warning: allowed here, but never an error or a malformed frame.
  check_decode(decode(""), severity_error);
}

TEST_F(SessionTshark, DecodesCleanlyWithoutTheMapiDissector) {
  // With MAPI off, the stubs are plain data: not even a warning anywhere.
  check_decode(decode("--disable-protocol mapi"), severity_warning);
}

TEST_F(SessionTshark, DecodesWithoutDecodeAsThroughTheHeuristic) {
  // tshark's DCE/RPC-over-TCP heuristic finds the binds on any port by itself.
  const auto r = run_command("'" + tshark_ + "' -n -r '" + path_ +
                             "' -T fields -E separator=, -e dcerpc.pkt_type -e dcerpc.cn_frag_len");
  ASSERT_EQ(r.status, 0) << r.err;
  std::size_t pdus = 0;
  for (const auto& row : split_rows(r.out, ','))
    if (!row.empty() && !row[0].empty()) ++pdus;
  EXPECT_EQ(pdus, info_->pdus.size());
}

}  // namespace
}  // namespace nudge::pcap_test
