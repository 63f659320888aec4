// The polling bus as the `notifier` program serves it (the bus beside EMSMDB,
// configured with --set pollbus.*), judged from outside:
//  * Mono's `wsdl` generates a proxy from the notifier's own WSDL
//    (GET /Bus.asmx?WSDL); compiled with a small main it registers, and gets
//    a typed PollIntervalMessage and the ChatMessage an EVENT@pollbus on the
//    control port queued for its mailbox;
//  * Mono's real SoapHttpClientProtocol (reference/judges/asmx-poll-client.cs)
//    registers and gets its PollIntervalMessage;
//  * hostile HTTP on real sockets (truncated requests, oversized headers and
//    bodies, a slowloris header, bad XML, an unknown xsi:type) gets 4xx/5xx
//    answers or a close, never a crash, while another agent keeps polling.
// The Mono parts skip when mono/mcs/wsdl are missing and fail under
// NUDGE_REQUIRE_TOOLS=1.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/pollbus/http_binding.hpp"
#include "support/notifier_process.hpp"
#include "support/require.hpp"
#include "support/shell.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace bus = nudge::pollbus;
using asio::ip::tcp;
using namespace std::chrono_literals;
using nudge::test_support::notifier_process;

std::string run(const std::string& command, int* status = nullptr) {
  return nudge::test_support::run_shell(command + " 2>&1", status);
}

bool have(const std::string& program) { return nudge::test_support::have_program(program); }

fs::path judge_source() {
  std::vector<fs::path> candidates;
  if (const char* dir = std::getenv("NUDGE_SHARED_DIR"); dir && *dir)
    candidates.push_back(fs::path(dir) / "reference" / "judges" / "asmx-poll-client.cs");
  candidates.push_back(fs::path(NUDGE_SOURCE_DIR).parent_path() / "shared" / "reference" / "judges" / "asmx-poll-client.cs");
  for (const auto& c : candidates)
    if (fs::exists(c)) return c;
  return {};
}

/// One request line to the control port, its one-line answer.
std::string control(const notifier_process& n, const std::string& line) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), n.control_ep().port));
  asio::write(s, asio::buffer(line + "\n"));
  asio::streambuf buf;
  asio::read_until(s, buf, '\n');
  std::istream in(&buf);
  std::string reply;
  std::getline(in, reply);
  return reply;
}

/// The notifier serving the bus on a port of its own choosing; the port, from SERVICES.
std::uint16_t bus_port(const notifier_process& n) {
  const auto services = nlohmann::json::parse(control(n, "SERVICES"));
  const std::string at = services.at("pollbus").at("listeners").at(0).at("at");
  return static_cast<std::uint16_t>(std::stoi(at.substr(at.rfind(':') + 1)));
}

std::string bus_url(std::uint16_t port) { return "http://127.0.0.1:" + std::to_string(port) + "/Bus.asmx"; }

class notifier_bus : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra) {
    std::vector<std::string> args{"--set", "pollbus.interval=3s"};
    args.insert(args.end(), extra.begin(), extra.end());
    notifier_ = std::make_unique<notifier_process>(args);
    ASSERT_TRUE(notifier_->running());
    port_ = bus_port(*notifier_);
    ASSERT_NE(port_, 0);
  }
  std::unique_ptr<notifier_process> notifier_;
  std::uint16_t port_ = 0;
};

class notifier_mono : public notifier_bus {
 protected:
  void SetUp() override {
    NUDGE_REQUIRE(have("mcs") && have("mono"), "mcs and mono (Debian mono-mcs, libmono-system-web-services4.0-cil)");
    work_ = fs::path(NUDGE_TEST_BUILD_DIR) / "pollbus-notifier-judge";
    fs::create_directories(work_);
    start({});
  }
  std::string compile(const std::vector<fs::path>& sources, const fs::path& exe, int& status) {
    std::string cmd = "mcs -r:System.Web.Services.dll -r:System.Xml.dll -out:'" + exe.string() + "'";
    for (const auto& s : sources) cmd += " '" + s.string() + "'";
    return run(cmd, &status);
  }
  fs::path work_;
};

TEST_F(notifier_mono, a_wsdl_proxy_registers_and_gets_a_typed_interval_and_the_queued_chat_message) {
  NUDGE_REQUIRE(have("wsdl"), "wsdl (Debian mono-devel)");
  // Mail for the proxy's mailbox before it registers: it waits for the agent.
  const std::string reply = control(*notifier_, "EVENT@pollbus alice");
  ASSERT_EQ(reply.rfind("OK ", 0), 0u) << reply;

  int status = 0;
  const std::string gen =
      run("cd '" + work_.string() + "' && timeout 120 wsdl -nologo -out:NotifierBus.cs '" + bus_url(port_) + "?WSDL'", &status);
  ASSERT_EQ(status, 0) << gen;
  ASSERT_TRUE(fs::exists(work_ / "NotifierBus.cs")) << gen;
  const fs::path main_cs = work_ / "notifier-proxy-main.cs";
  {
    std::ofstream f(main_cs);
    f << "using System;\n"
         "public static class ProxyMain { public static void Main(string[] a) {\n"
         "  var bus = new Bus(); bus.Url = a[0];\n"
         "  var m = new RegisterMessage(); m.AgentId = new Guid(\"0b8d1c7e-2f4a-4c6b-9e1d-5a7f3c2b1e90\");\n"
         "  m.TimeStamp = DateTime.UtcNow; m.ComputerName = \"PC-PROXY\"; m.UserInfo = \"alice\";\n"
         "  foreach (BaseMessage x in bus.Poll(m))\n"
         "    Console.WriteLine(\"got \" + x.GetType().Name + (x is PollIntervalMessage ? \" interval=\" + "
         "((PollIntervalMessage)x).IntervalInMilliseconds : \"\") + (x is ChatMessage ? \" text=\" + ((ChatMessage)x).Text : \"\"));\n"
         "  var e = new EmptyMessage(); e.AgentId = m.AgentId; e.TimeStamp = DateTime.UtcNow;\n"
         "  Console.WriteLine(\"then \" + bus.Poll(e).Length + \" messages\");\n"
         "}}\n";
  }
  const fs::path exe = work_ / "notifier-proxy-client.exe";
  const std::string built = compile({work_ / "NotifierBus.cs", main_cs}, exe, status);
  ASSERT_EQ(status, 0) << built;
  const std::string out = run("timeout 120 mono '" + exe.string() + "' " + bus_url(port_), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("got ChatMessage text=changed\n"), std::string::npos) << out;
  EXPECT_NE(out.find("got PollIntervalMessage interval=3000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("then 0 messages\n"), std::string::npos) << out;  // delivered once

  const auto stats = notifier_->stats();
  const auto& b = stats.at("protocols").at("pollbus");
  EXPECT_EQ(b.at("registrations"), 1);
  EXPECT_EQ(b.at("events_fetched"), 1);
  EXPECT_EQ(b.at("wsdl"), 1);
}

TEST_F(notifier_mono, the_reference_mono_client_registers_and_gets_its_poll_interval) {
  NUDGE_REQUIRE(!judge_source().empty(), "reference/judges/asmx-poll-client.cs (set NUDGE_SHARED_DIR)");
  int status = 0;
  const fs::path exe = work_ / "asmx-poll-client.exe";
  const std::string built = compile({judge_source()}, exe, status);
  ASSERT_EQ(status, 0) << built;
  const std::string out = run("timeout 120 mono '" + exe.string() + "' " + bus_url(port_), &status);
  ASSERT_EQ(status, 0) << out;
  // It knows Empty, Register and PollInterval only; the notifier sends it the interval alone.
  EXPECT_NE(out.find("got PollIntervalMessage interval=3000\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("got "), out.rfind("got ")) << out;
  const auto stats = notifier_->stats();
  EXPECT_EQ(stats.at("protocols").at("pollbus").at("registrations"), 1);
}

// ---- hostile HTTP ----

/// Sends `bytes`, optionally half-closes, then reads until the server closes
/// (or `wait` passes): everything the server answered.
struct outcome {
  std::string answer;
  bool closed = false;
};
outcome send_and_read(std::uint16_t port, const std::string& bytes, bool half_close, std::chrono::milliseconds wait = 5000ms) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port));
  boost::system::error_code ec;
  asio::write(s, asio::buffer(bytes), ec);
  if (half_close) s.shutdown(tcp::socket::shutdown_send, ec);
  outcome o;
  s.non_blocking(true);
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    char buf[4096];
    const std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    if (ec) {
      o.closed = true;
      break;
    }
    o.answer.append(buf, n);
  }
  return o;
}

int status_of(const std::string& answer) {
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || answer.size() < 12) return 0;
  return std::stoi(answer.substr(9, 3));
}

std::string poll_bytes(const bus::message& m, std::uint16_t port, bool keep_alive) {
  bus::request_options o;
  o.host = "127.0.0.1:" + std::to_string(port);
  o.expect_continue = false;
  o.keep_alive = keep_alive;
  const auto b = nudge::http::serialize(bus::poll_request(m, bus::encoding::soap, o));
  return std::string(b.begin(), b.end());
}

bus::message message_of(bus::message_type t) {
  bus::message m;
  m.type = t;
  m.agent_id = *bus::parse_guid("6a1f9c2e-8b3d-4e5f-a7c9-0d1e2f3a4b5c");
  m.timestamp_ms = bus::dotnet_ms(2026, 12, 3, 12, 0, 0, 0);
  m.computer_name = "PC-STEADY";
  m.user_info = "steady";
  return m;
}

/// An agent that registers, then polls on one keep-alive connection every
/// 50 ms until stopped, counting answers that read as poll responses.
class steady_agent {
 public:
  explicit steady_agent(std::uint16_t port) : port_(port), thread_([this] { loop(); }) {}
  ~steady_agent() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t good() const { return good_; }
  std::uint64_t bad() const { return bad_; }

 private:
  void loop() {
    asio::io_context io;
    tcp::socket s(io);
    boost::system::error_code ec;
    s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port_), ec);
    if (ec) {
      ++bad_;
      return;
    }
    bool registered = false;
    nudge::http::response_reader reader;
    while (!stop_) {
      const auto m = message_of(registered ? bus::message_type::empty : bus::message_type::register_agent);
      asio::write(s, asio::buffer(poll_bytes(m, port_, true)), ec);
      if (ec) {
        ++bad_;
        return;
      }
      bool answered = false;
      while (!answered) {
        char buf[8192];
        const std::size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) {
          ++bad_;
          return;
        }
        reader.feed(nudge::protocol::bytes_view(reinterpret_cast<const std::uint8_t*>(buf), n));
        for (auto d = reader.next(); !d.need_more(); d = reader.next()) {
          if (d.malformed() || d.value.status != 200 || !bus::read_poll_response(d.value).complete()) {
            ++bad_;
            return;
          }
          answered = true;
          registered = true;
          ++good_;
        }
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  std::uint16_t port_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> good_{0}, bad_{0};
  std::thread thread_;
};

TEST_F(notifier_bus, hostile_http_gets_an_error_or_a_close_and_never_disturbs_a_polling_agent) {
  start({"--set", "pollbus.idle_timeout=2s"});
  steady_agent agent(port_);
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port_) + "\r\n";
  const std::string good = poll_bytes(message_of(bus::message_type::empty), port_, false);

  // Truncated requests: a head cut short, a body shorter than its Content-Length; the peer then half-closes.
  for (std::size_t cut : {std::size_t{5}, good.find("\r\n\r\n"), good.size() - 10}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const auto o = send_and_read(port_, good.substr(0, cut), true);
    EXPECT_TRUE(o.closed);
    EXPECT_TRUE(o.answer.empty() || status_of(o.answer) >= 400) << o.answer;
  }
  // Oversized header (431) and body (413, by Content-Length at once).
  {
    const auto o = send_and_read(port_, "POST /Bus.asmx HTTP/1.1\r\n" + host + "X-Pad: " + std::string(10000, 'a') + "\r\n\r\n", false);
    EXPECT_EQ(status_of(o.answer), 431) << o.answer;
    EXPECT_TRUE(o.closed);
  }
  {
    const auto o = send_and_read(port_,
                                 "POST /Bus.asmx HTTP/1.1\r\n" + host +
                                     "Content-Type: text/xml; charset=utf-8\r\nContent-Length: 10000000\r\n\r\n<soap:",
                                 false);
    EXPECT_EQ(status_of(o.answer), 413) << o.answer;
    EXPECT_TRUE(o.closed);
  }
  // Not HTTP at all.
  {
    const auto o = send_and_read(port_, std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 17), false);
    EXPECT_EQ(status_of(o.answer), 400) << o.answer;
    EXPECT_TRUE(o.closed);
  }
  // Bad XML and an unknown xsi:type: ASMX's 500 with a soap:Client fault.
  {
    std::string bad_xml = good;
    bad_xml.replace(bad_xml.find("<soap:Body>"), 11, "<soap:Body ");  // same length: Content-Length holds
    std::string unknown_type = good;
    unknown_type.replace(unknown_type.find("EmptyMessage"), 12, "EmptyMassage");
    for (const auto& body : {bad_xml, unknown_type}) {
      const auto o = send_and_read(port_, body, false, 1000ms);
      EXPECT_EQ(status_of(o.answer), 500) << o.answer;
      EXPECT_NE(o.answer.find("<faultcode>soap:Client</faultcode>"), std::string::npos) << o.answer;
    }
  }
  // Slowloris: one byte of a header every 100 ms, never finishing it. The
  // server closes it at its idle timeout (2 s here), long before 8 KiB.
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port_));
    const std::string trickle = "POST /Bus.asmx HTTP/1.1\r\n" + host + "X-Slow: " + std::string(1000, 'z');
    const auto began = std::chrono::steady_clock::now();
    bool closed = false;
    boost::system::error_code ec;
    for (std::size_t i = 0; i < trickle.size() && !closed; ++i) {
      asio::write(s, asio::buffer(&trickle[i], 1), ec);
      if (ec) closed = true;
      std::this_thread::sleep_for(100ms);
      s.non_blocking(true);
      char buf[256];
      s.read_some(asio::buffer(buf), ec);
      if (ec && ec != asio::error::would_block) closed = true;
      if (std::chrono::steady_clock::now() - began > 30s) break;
    }
    EXPECT_TRUE(closed) << "a header trickling in one byte at a time was never closed";
  }

  // Through all of it the agent polled, every answer a good one, and the notifier is still serving.
  const std::uint64_t before = agent.good();
  std::this_thread::sleep_for(300ms);
  agent.stop();
  EXPECT_EQ(agent.bad(), 0u);
  EXPECT_GT(agent.good(), 20u);
  EXPECT_GT(agent.good(), before);
  const auto o = send_and_read(port_, good, false, 2000ms);
  EXPECT_EQ(status_of(o.answer), 200) << o.answer;
  const auto stats = notifier_->stats();
  EXPECT_GE(stats.at("protocols").at("pollbus").at("bad_requests"), 5);
}

}  // namespace
