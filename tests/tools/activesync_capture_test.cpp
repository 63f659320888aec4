// A virtual ActiveSync run captured by client-sim (--clock virtual --pcap),
// judged from outside: Debian libwbxml2-utils' `wbxml2xml -l ACTIVESYNC`
// decodes every distinct Ping and Sync body on the wire into the MS-ASCMD
// elements nudge's decoder read from it (same names, same text); nudge's
// decoder reads what `xml2wbxml -a -n -v 1.3` makes from the reference XML
// (shared/reference/judges/activesync) byte for byte as nudge writes it; and
// nudge-pcap analyse --family activesync counts, per mode, the messages,
// bytes and packets per kind and the pings, syncs and events the run counted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nudge/activesync/messages.hpp"
#include "nudge/activesync/wbxml.hpp"
#include "nudge/capture_reader/capture_file.hpp"
#include "nudge/capture_reader/packet.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/pcap/cli.hpp"
#include "nudge/sim/client_sim_cli.hpp"
#include "support/require.hpp"
#include "support/shell.hpp"

namespace nudge::test {
namespace {

namespace fs = std::filesystem;
namespace as = nudge::activesync;
namespace wb = nudge::activesync::wbxml;
using protocol::byte_buffer;

bool have(const std::string& program) { return test_support::have_program(program); }

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str(), nullptr, false);
}
std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr const char* scenario = R"(
[run]
clients = 10
seed = 5
duration = "40min"
ramp_up = "20s"
drain = "30s"

[[clients]]
protocol = "activesync"
mode = "fixed"
share = 1

[[clients]]
protocol = "activesync"
mode = "adaptive"
share = 1

[events]
process = "poisson"
per_client_hour = 6

[activesync]
port = 443
heartbeat = "300s"
)";

std::string escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

/// The element tree as compact XML without namespaces: what `wbxml2xml -m 0`
/// prints once its xmlns attributes and declarations are gone.
void to_xml(const wb::element& e, std::string& out) {
  const std::string name(wb::tag_name(e.cp, e.token));
  if (e.text.empty() && e.children.empty()) {
    out += "<" + name + "/>";
    return;
  }
  out += "<" + name + ">" + escaped(e.text);
  for (const auto& c : e.children) to_xml(c, out);
  out += "</" + name + ">";
}

/// libwbxml2's XML with the declaration, doctype and xmlns attributes removed.
std::string plain_xml(std::string xml) {
  for (std::size_t at = xml.find("<?"); at != std::string::npos; at = xml.find("<?")) xml.erase(at, xml.find("?>", at) + 2 - at);
  for (std::size_t at = xml.find("<!DOCTYPE"); at != std::string::npos; at = xml.find("<!DOCTYPE"))
    xml.erase(at, xml.find('>', at) + 1 - at);
  for (std::size_t at = xml.find(" xmlns=\""); at != std::string::npos; at = xml.find(" xmlns=\""))
    xml.erase(at, xml.find('"', at + 8) + 1 - at);
  std::string out;
  for (char c : xml)
    if (c != '\n' && c != '\r') out += c;
  return out;
}

class ActiveSyncCapture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("nudge_activesync_capture_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    { std::ofstream(dir_ / "as.toml") << scenario; }
    const std::string toml = (dir_ / "as.toml").string(), pcap = (dir_ / "as.pcap").string(),
                      json = (dir_ / "run.json").string();
    const char* args[] = {"client-sim", "--clock", "virtual", "--scenario", toml.c_str(), "--quiet",
                          "--json",     json.c_str(), "--pcap", pcap.c_str()};
    auto parsed = sim::parse_client_sim_options(static_cast<int>(std::size(args)), args);
    ASSERT_TRUE(parsed) << parsed.error().message;
    std::ostringstream table, err;
    ASSERT_EQ(sim::run_client_sim(parsed.value(), table, err, false), sim::exit_ok) << err.str();
    run_ = read_json(json);
    ASSERT_FALSE(run_.is_discarded());

    const std::string analysis = (dir_ / "analysis.json").string();
    const char* pargs[] = {"nudge-pcap", "analyse", pcap.c_str(), "--family", "activesync", "--json", analysis.c_str()};
    std::ostringstream out, perr;
    ASSERT_EQ(pcap_tool::pcap_main(static_cast<int>(std::size(pargs)), pargs, out, perr), 0) << perr.str();
    analysis_ = read_json(analysis);
    ASSERT_FALSE(analysis_.is_discarded());

    // Every WBXML body on the wire (each message is one segment in a virtual capture).
    auto file = capture_reader::capture_file::open(pcap);
    ASSERT_TRUE(file.ok()) << file.error().message;
    const int dlt = file->dlt();
    file->read_all([&](const capture_reader::record& r) {
      capture_reader::packet p;
      if (capture_reader::decode_frame(dlt, r.frame, r.wire_length, r.ts, p) != capture_reader::frame_verdict::ok) return;
      if (p.protocol != capture_reader::ip_proto_tcp || p.payload.empty()) return;
      const std::string_view s(reinterpret_cast<const char*>(p.payload.data()), p.payload.size());
      if (s.starts_with("POST ")) {
        http::request_reader rr;
        rr.feed(p.payload);
        auto d = rr.next();
        if (d.complete() && !d.value.body.empty()) bodies_.insert(d.value.body);
        ++requests_;
      } else if (s.starts_with("HTTP/1.1 ")) {
        http::response_reader rr;
        rr.feed(p.payload);
        auto d = rr.next();
        if (d.complete() && !d.value.body.empty()) bodies_.insert(d.value.body);
        ++responses_;
      }
    });
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!std::getenv("NUDGE_KEEP_CAPTURE")) fs::remove_all(dir_, ec);
  }

  static inline fs::path dir_;
  static inline nlohmann::json run_;
  static inline nlohmann::json analysis_;
  static inline std::set<std::string> bodies_;
  static inline std::uint64_t requests_ = 0, responses_ = 0;
};

TEST_F(ActiveSyncCapture, Wbxml2xmlDecodesEveryBodyOnTheWireAsNudgeReadsIt) {
  if (!have("wbxml2xml")) {
    NUDGE_REQUIRE(false, "wbxml2xml (Debian libwbxml2-utils)");
    return;
  }
  ASSERT_GT(requests_, 50u);
  ASSERT_GT(responses_, 50u);
  std::map<std::string, int> roots;
  std::size_t index = 0;
  for (const std::string& body : bodies_) {
    const auto in = dir_ / ("body" + std::to_string(index) + ".wbxml");
    const auto out = dir_ / ("body" + std::to_string(index) + ".xml");
    ++index;
    { std::ofstream(in, std::ios::binary) << body; }
    int status = 0;
    test_support::run_shell("wbxml2xml -m 0 -l ACTIVESYNC -o '" + out.string() + "' '" + in.string() + "' 2>&1", &status);
    ASSERT_EQ(status, 0) << "wbxml2xml refused a body nudge sent";
    auto mine = wb::decode(protocol::as_bytes(body));
    ASSERT_TRUE(mine.complete()) << mine.reason;
    std::string want;
    to_xml(mine.value, want);
    EXPECT_EQ(plain_xml(read_text(out)), want);
    ++roots[std::string(wb::tag_name(mine.value.cp, mine.value.token))];
  }
  // Ping requests (one per heartbeat a client asked for), Status 1 and 2 answers, Sync both ways.
  EXPECT_GE(roots["Ping"], 4) << "requests at 300 s, 470 s, 650 s..., Status 1, Status 2";
  EXPECT_GE(roots["Sync"], 2) << "Sync requests and answers with new message headers";
}

TEST_F(ActiveSyncCapture, NudgeReadsWhatXml2wbxmlWritesFromTheReferenceXml) {
  if (!have("xml2wbxml")) {
    NUDGE_REQUIRE(false, "xml2wbxml (Debian libwbxml2-utils)");
    return;
  }
  const char* shared = std::getenv("NUDGE_SHARED_DIR");
  if (!shared) {
    NUDGE_REQUIRE(false, "NUDGE_SHARED_DIR (the reference's judges/activesync XML)");
    return;
  }
  const fs::path judges = fs::path(shared) / "reference" / "judges" / "activesync";
  auto judge = [&](const std::string& name) {
    const auto out = dir_ / (name + ".wbxml");
    int status = 0;
    test_support::run_shell("xml2wbxml -a -n -v 1.3 -o '" + out.string() + "' '" + (judges / (name + ".xml")).string() + "' 2>&1",
                            &status);
    EXPECT_EQ(status, 0) << name;
    const std::string s = read_text(out);
    return byte_buffer(s.begin(), s.end());
  };
  const byte_buffer request = judge("ping");
  auto r = as::decode_ping_request(request);
  ASSERT_TRUE(r.complete()) << r.reason;
  EXPECT_EQ(r.value.heartbeat_s, 480u);
  ASSERT_EQ(r.value.folders.size(), 1u);
  EXPECT_EQ(r.value.folders[0], (as::ping_folder{"5", "Email"}));
  EXPECT_EQ(request.size(), 33u);
  EXPECT_EQ(as::encode(r.value), request);

  const byte_buffer changes = judge("pingresp");
  auto c = as::decode_ping_response(changes);
  ASSERT_TRUE(c.complete()) << c.reason;
  EXPECT_EQ(c.value.status, as::ping_status::changes);
  EXPECT_EQ(c.value.folders, std::vector<std::string>{"5"});
  EXPECT_EQ(changes.size(), 20u);
  EXPECT_EQ(as::encode(c.value), changes);

  const byte_buffer expired = judge("pingresp1");
  auto e = as::decode_ping_response(expired);
  ASSERT_TRUE(e.complete()) << e.reason;
  EXPECT_EQ(e.value.status, as::ping_status::expired);
  EXPECT_EQ(expired.size(), 13u);
  EXPECT_EQ(as::encode(e.value), expired);

  // A Sync answer with one new message header, written as MS-ASCMD XML (AirSync: and Email: namespaces).
  {
    std::ofstream(dir_ / "sync.xml")
        << "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
           "<!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" \"http://www.microsoft.com/\">\n"
           "<Sync xmlns=\"AirSync:\" xmlns:email=\"Email:\"><Collections><Collection><SyncKey>2</SyncKey>"
           "<CollectionId>5</CollectionId><Status>1</Status><Commands><Add><ServerId>5:1</ServerId><ApplicationData>"
           "<email:To>alice@example.com</email:To><email:From>events@example.com</email:From>"
           "<email:Subject>Something changed #1</email:Subject><email:DateReceived>2026-01-05T09:00:01.000Z</email:DateReceived>"
           "<email:DisplayTo>alice</email:DisplayTo><email:ThreadTopic>Something changed #1</email:ThreadTopic>"
           "<email:Importance>1</email:Importance><email:Read>0</email:Read><email:MessageClass>IPM.Note</email:MessageClass>"
           "<email:InternetCPID>65001</email:InternetCPID></ApplicationData></Add></Commands></Collection></Collections></Sync>\n";
  }
  int status = 0;
  const auto sync_out = dir_ / "sync.wbxml";
  test_support::run_shell("xml2wbxml -a -n -v 1.3 -o '" + sync_out.string() + "' '" + (dir_ / "sync.xml").string() + "' 2>&1",
                          &status);
  ASSERT_EQ(status, 0);
  const std::string sync_text = read_text(sync_out);
  const byte_buffer sync(sync_text.begin(), sync_text.end());
  auto s = as::decode_sync_response(sync);
  ASSERT_TRUE(s.complete()) << s.reason;
  ASSERT_EQ(s.value.adds.size(), 1u);
  EXPECT_EQ(s.value.adds[0].subject, "Something changed #1");
  EXPECT_EQ(s.value.adds[0].date_received, "2026-01-05T09:00:01.000Z");
  EXPECT_EQ(as::encode(s.value), sync) << "nudge writes the Email code page as libwbxml2 does";
}

TEST_F(ActiveSyncCapture, NudgePcapCountsWhatTheRunCounted) {
  const auto& modes = run_.at("modes");
  const auto& amodes = analysis_.at("modes");
  for (const char* mode : {"fixed", "adaptive"}) {
    SCOPED_TRACE(mode);
    ASSERT_TRUE(modes.contains(mode)) << modes.dump(1);
    ASSERT_TRUE(amodes.contains(mode)) << amodes.dump(1);
    const auto& r = modes.at(mode);
    const auto& a = amodes.at(mode);
    EXPECT_EQ(a.at("clients"), r.at("clients"));
    const auto& rk = r.at("traffic").at("by_kind");
    const auto& ak = a.at("traffic").at("by_kind");
    for (auto it = rk.begin(); it != rk.end(); ++it) {
      SCOPED_TRACE(it.key());
      ASSERT_TRUE(ak.contains(it.key())) << ak.dump(1);
      for (const char* dir : {"to_server", "to_client"})
        for (const char* field : {"messages", "payload_bytes", "wire_bytes", "packets"})
          EXPECT_EQ(ak.at(it.key()).at(dir).at(field), it.value().at(dir).at(field)) << dir << " " << field;
    }
    for (const char* dir : {"to_server", "to_client"}) EXPECT_EQ(a.at("traffic").at("other").at(dir).at("packets"), 0);
    const auto& counters = a.at("counters");
    for (const char* c : {"pings", "pings_expired", "pings_changes", "syncs", "messages", "connections", "http_errors"})
      EXPECT_EQ(counters.at(c), r.at(c)) << c;
    EXPECT_GT(r.at("messages").get<std::uint64_t>(), 0u) << "the run should deliver events";
  }
  // The events' DateReceived and the frame times share a clock.
  EXPECT_EQ(analysis_.at("event_clock").at("basis"), "same") << analysis_.at("event_clock").dump();
  EXPECT_EQ(analysis_.at("event_clock").at("negative_latencies"), 0);
}

}  // namespace
}  // namespace nudge::test
