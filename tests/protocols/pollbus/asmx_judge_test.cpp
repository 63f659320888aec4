// Independent judges of the bus codec (wave2-protocols.md §1.1, §2):
//  (a) Mono's real SoapHttpClientProtocol (reference/judges/asmx-poll-client.cs,
//      compiled here by mcs) polls a loopback server written with Boost.Asio
//      and this codec only; the client prints the typed messages it got, and
//      the bytes it sent decode with the codec and have §1.1's sizes;
//  (b) Mono's `wsdl` turns the WSDL the server serves into a proxy, mcs
//      compiles it with a small main, and that client polls the same server
//      with a ChatMessage and reads a ChatMessage back;
//  (c) tshark decodes a capture of exchange (a) as HTTP with the XML visible.
// Each part skips when its tool is missing, and fails under NUDGE_REQUIRE_TOOLS=1.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mono_capture.hpp"
#include "nudge/capture/frame_synthesizer.hpp"
#include "nudge/capture/pcap_file_writer.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/pollbus/http_binding.hpp"
#include "support/require.hpp"
#include "support/shell.hpp"

namespace nudge::pollbus {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace fs = std::filesystem;

std::string run(const std::string& command, int* status = nullptr) {
  return test_support::run_shell(command + " 2>&1", status);
}

bool have(const std::string& program) { return test_support::have_program(program); }

fs::path judge_source() {
  std::vector<fs::path> candidates;
  if (const char* dir = std::getenv("NUDGE_SHARED_DIR"); dir && *dir)
    candidates.push_back(fs::path(dir) / "reference" / "judges" / "asmx-poll-client.cs");
  candidates.push_back(fs::path(NUDGE_SOURCE_DIR).parent_path() / "shared" / "reference" / "judges" / "asmx-poll-client.cs");
  for (const auto& c : candidates)
    if (fs::exists(c)) return c;
  return {};
}

std::string text_of(const protocol::byte_buffer& b) { return std::string(b.begin(), b.end()); }

// One request and its answer, as the bytes travelled.
struct exchange {
  std::string request_bytes;
  std::string response_bytes;
  http::request request;
  bool continued = false;  // 100 Continue was sent before the body arrived
  bus_call call;
  bool malformed = false;
};

// A loopback HTTP server that knows nothing but this codec: read a request,
// decode it, answer with `answer` (or the WSDL, or a refusal).
class loopback_bus {
 public:
  explicit loopback_bus(std::vector<message> answer)
      : answer_(std::move(answer)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~loopback_bus() {
    stopping_ = true;
    boost::system::error_code ec;
    tcp::socket wake(io_);
    wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()), ec);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/Bus.asmx"; }
  std::vector<exchange> exchanges() {
    std::lock_guard lock(mutex_);
    return exchanges_;
  }

 private:
  void serve() {
    while (!stopping_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stopping_) return;
      serve_connection(s);
    }
  }

  void serve_connection(tcp::socket& s) {
    http::request_reader reader;
    std::string raw;  // bytes of the request being read
    bool continued = false;
    for (;;) {
      char buf[4096];
      boost::system::error_code ec;
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) return;
      raw.append(buf, n);
      reader.feed(protocol::bytes_view(reinterpret_cast<const std::uint8_t*>(buf), n));
      if (reader.take_continue()) {
        asio::write(s, asio::buffer(http::continue_line()), ec);
        continued = true;
      }
      for (auto d = reader.next(); !d.need_more(); d = reader.next()) {
        if (d.malformed()) {
          asio::write(s, asio::buffer(text_of(http::serialize(http::plain_response(reader.refusal_status(), d.reason)))), ec);
          return;
        }
        exchange x;
        x.request_bytes = raw.substr(0, d.consumed);
        raw.erase(0, d.consumed);
        x.request = d.value;
        x.continued = std::exchange(continued, false);
        auto call = read_bus_request(d.value);
        response_options o;
        o.keep_alive = d.value.keep_alive;
        http::response a;
        if (call.malformed()) {
          x.malformed = true;
          a = refusal_response(d.value, call.reason, o);
        } else {
          x.call = call.value;
          a = call.value.what == bus_call::kind::poll ? poll_response(answer_, call.value.enc, o)
                                                      : route_response(call.value, d.value, o);
        }
        x.response_bytes = text_of(http::serialize(a));
        asio::write(s, asio::buffer(x.response_bytes), ec);
        {
          std::lock_guard lock(mutex_);
          exchanges_.push_back(std::move(x));
        }
        if (ec || !a.keep_alive) return;
      }
    }
  }

  std::vector<message> answer_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<exchange> exchanges_;
};

const guid judge_agent = *parse_guid("3f2504e0-4f89-11d3-9a0c-0305e82c3301");

message interval_message(std::int32_t ms) {
  message m;
  m.type = message_type::poll_interval;
  m.agent_id = judge_agent;
  m.timestamp_ms = dotnet_ms(2026, 12, 3, 12, 0, 0, 125);
  m.interval_ms = ms;
  return m;
}

class AsmxJudge : public ::testing::Test {
 protected:
  void SetUp() override {
    NUDGE_REQUIRE(have("mcs") && have("mono"), "mcs and mono (Debian mono-mcs, libmono-system-web-services4.0-cil)");
    work_ = fs::path(NUDGE_JUDGE_BUILD_DIR) / "asmx-judge";
    fs::create_directories(work_);
  }
  fs::path work_;
};

// Compiles the reference judge once per build (mcs takes about a second).
fs::path compiled_judge(const fs::path& work, std::string& log) {
  const fs::path exe = work / "asmx-poll-client.exe";
  const fs::path source = judge_source();
  if (source.empty()) return {};
  int status = 0;
  log = run("mcs -r:System.Web.Services.dll -r:System.Xml.dll -out:'" + exe.string() + "' '" + source.string() + "'", &status);
  return status == 0 ? exe : fs::path();
}

std::size_t head_size(std::string_view wire) { return wire.find("\r\n\r\n") + 4; }

TEST_F(AsmxJudge, MonoClientPollsOurServer) {
  NUDGE_REQUIRE(!judge_source().empty(), "reference/judges/asmx-poll-client.cs (set NUDGE_SHARED_DIR)");
  std::string log;
  const fs::path exe = compiled_judge(work_, log);
  ASSERT_FALSE(exe.empty()) << log;

  // The reference client knows EmptyMessage, RegisterMessage and
  // PollIntervalMessage; the queued message it can read is an EmptyMessage.
  message queued;
  queued.type = message_type::empty;
  queued.agent_id = judge_agent;
  loopback_bus bus({interval_message(7000), queued});
  int status = 0;
  const std::string out = run("timeout 120 mono '" + exe.string() + "' " + bus.url(), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("got PollIntervalMessage interval=7000\ngot EmptyMessage\n"), std::string::npos) << out;

  const auto xs = bus.exchanges();
  ASSERT_EQ(xs.size(), 1u);
  const exchange& x = xs[0];
  ASSERT_FALSE(x.malformed);
  EXPECT_EQ(x.call.what, bus_call::kind::poll);
  EXPECT_EQ(x.call.enc, encoding::soap);
  message sent;
  sent.type = message_type::register_agent;
  sent.agent_id = judge_agent;
  sent.timestamp_ms = dotnet_ms(2009, 8, 26, 10);
  sent.computer_name = "PC1";
  sent.user_info = "bob";
  EXPECT_EQ(x.call.msg, sent);

  // §1.1's sizes: 292 bytes of head with a 5-digit port, 487 of body.
  const std::string port = std::to_string(bus.port());
  const std::size_t head = head_size(x.request_bytes);
  EXPECT_EQ(head, 292u - 5 + port.size());
  EXPECT_EQ(x.request_bytes.size() - head, 487u);
  EXPECT_EQ(x.request.body, test::mono_body);
  std::string expected_head(test::mono_head);
  expected_head.replace(expected_head.find("18765"), 5, port);
  EXPECT_EQ(x.request_bytes.substr(0, head), expected_head);
  EXPECT_TRUE(x.request.expect_continue);
  EXPECT_TRUE(x.request.keep_alive);

  // (c) tshark: the same exchange in a synthetic capture, decoded as HTTP with the XML visible.
  if (!have("tshark")) {
    NUDGE_REQUIRE(false, "tshark");
    return;
  }
  const fs::path pcap = work_ / ("exchange_" + std::to_string(::getpid()) + ".pcap");
  {
    capture::pcap_file_writer w;
    ASSERT_EQ(w.open(pcap), capture::capture_error::none) << w.error_text();
    capture::frame_synthesizer s(w);
    const auto client = protocol::ip_endpoint::v4(10, 0, 0, 2, 50123);
    const auto server = protocol::ip_endpoint::v4(10, 0, 0, 1, 80);
    const auto at = [](int ms) { return time_point{std::chrono::milliseconds(ms)}; };
    const auto bytes = [](std::string_view v) { return std::vector<std::uint8_t>(v.begin(), v.end()); };
    const std::string_view wire = x.request_bytes;
    ASSERT_EQ(s.tcp_open(at(0), client, server), capture::capture_error::none);
    ASSERT_EQ(s.tcp_data(at(1), client, server, bytes(wire.substr(0, head))), capture::capture_error::none);
    ASSERT_EQ(s.tcp_data(at(2), server, client, bytes(http::continue_line())), capture::capture_error::none);
    ASSERT_EQ(s.tcp_data(at(3), client, server, bytes(wire.substr(head))), capture::capture_error::none);
    ASSERT_EQ(s.tcp_data(at(4), server, client, bytes(x.response_bytes)), capture::capture_error::none);
    ASSERT_EQ(s.tcp_close(at(5), client, server), capture::capture_error::none);
    ASSERT_EQ(w.close(), capture::capture_error::none);
  }
  const std::string fields = run("tshark -n -r '" + pcap.string() +
                                     "' -Y http -T fields -e http.request.method -e http.response.code "
                                     "-e http.content_length -e xml.tag -e _ws.malformed 2>/dev/null",
                                 &status);
  if (std::getenv("NUDGE_JUDGE_VERBOSE")) std::fprintf(stderr, "%s\n", fields.c_str());
  fs::remove(pcap);
  ASSERT_EQ(status, 0) << fields;
  EXPECT_NE(fields.find("POST\t\t487\t"), std::string::npos) << fields;
  EXPECT_NE(fields.find("\t100\t"), std::string::npos) << fields;
  EXPECT_NE(fields.find("<message xsi:type=\"RegisterMessage\">"), std::string::npos) << fields;
  EXPECT_NE(fields.find("<BaseMessage xsi:type=\"PollIntervalMessage\">"), std::string::npos) << fields;
  EXPECT_EQ(fields.find("alformed"), std::string::npos) << fields;
}

TEST_F(AsmxJudge, WsdlProxyPollsOurServer) {
  NUDGE_REQUIRE(have("wsdl"), "wsdl (Debian mono-devel)");
  message chat;
  chat.type = message_type::chat;
  chat.agent_id = judge_agent;
  chat.text = "folder 7 changed";
  loopback_bus bus({interval_message(2500), chat});

  int status = 0;
  const fs::path proxy = work_ / "BusProxy.cs";
  const std::string gen = run("cd '" + work_.string() + "' && timeout 120 wsdl -nologo -out:BusProxy.cs '" + bus.url() + "?WSDL'", &status);
  ASSERT_EQ(status, 0) << gen;
  ASSERT_TRUE(fs::exists(proxy)) << gen;

  const fs::path main_cs = work_ / "proxy-main.cs";
  {
    std::ofstream f(main_cs);
    f << "using System;\n"
         "public static class ProxyMain { public static void Main(string[] a) {\n"
         "  var bus = new Bus(); bus.Url = a[0];\n"
         "  var m = new ChatMessage(); m.AgentId = new Guid(\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\");\n"
         "  m.TimeStamp = new DateTime(2009, 8, 26, 10, 0, 0, DateTimeKind.Utc); m.Text = \"hello from a wsdl proxy\";\n"
         "  foreach (BaseMessage x in bus.Poll(m))\n"
         "    Console.WriteLine(\"got \" + x.GetType().Name + (x is PollIntervalMessage ? \" interval=\" + "
         "((PollIntervalMessage)x).IntervalInMilliseconds : \"\") + (x is ChatMessage ? \" text=\" + ((ChatMessage)x).Text : \"\"));\n"
         "}}\n";
  }
  const fs::path exe = work_ / "proxy-client.exe";
  const std::string built = run("mcs -r:System.Web.Services.dll -r:System.Xml.dll -out:'" + exe.string() + "' '" +
                                    proxy.string() + "' '" + main_cs.string() + "'",
                                &status);
  ASSERT_EQ(status, 0) << built;
  const std::string out = run("timeout 120 mono '" + exe.string() + "' " + bus.url(), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("got PollIntervalMessage interval=2500\ngot ChatMessage text=folder 7 changed\n"), std::string::npos)
      << out;

  const auto xs = bus.exchanges();
  ASSERT_EQ(xs.size(), 2u);
  EXPECT_EQ(xs[0].call.what, bus_call::kind::wsdl);
  ASSERT_FALSE(xs[1].malformed);
  EXPECT_EQ(xs[1].call.what, bus_call::kind::poll);
  EXPECT_EQ(xs[1].call.msg.type, message_type::chat);
  EXPECT_EQ(xs[1].call.msg.text, "hello from a wsdl proxy");
  EXPECT_EQ(xs[1].call.msg.agent_id, judge_agent);
}

}  // namespace
}  // namespace nudge::pollbus
