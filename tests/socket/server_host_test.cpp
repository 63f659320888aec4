// The server host runs any core on the session contract, not only EMSMDB:
// two toy echo cores served side by side, each on the ports it asked for,
// behind one control port.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <deque>
#include <string>
#include <thread>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "nudge/live/asio_bridge.hpp"
#include "nudge/notifier/notifier_options.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/notifier/server_host.hpp"

using namespace nudge;
namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

/// Echoes every byte and datagram back; counts events per mailbox.
class echo_core final : public engine::server_session {
 public:
  void start(time_point) override {
    acts_.push_back(engine::listen{7, 0});
    acts_.push_back(engine::bind_udp{3, 0});
  }
  void handle(time_point, const engine::event& e) override {
    if (const auto* b = std::get_if<engine::stream_bytes>(&e)) {
      echoed_ += b->bytes.size();
      acts_.push_back(engine::send{b->conn, protocol::byte_buffer(b->bytes.begin(), b->bytes.end())});
    } else if (const auto* d = std::get_if<engine::datagram>(&e)) {
      acts_.push_back(engine::send_datagram{d->socket, d->from, protocol::byte_buffer(d->bytes.begin(), d->bytes.end())});
    } else if (std::holds_alternative<engine::accepted>(e)) {
      ++accepted_;
    }
  }
  time_point next_deadline() const override { return never; }
  std::vector<engine::action>& actions() override { return acts_; }
  std::uint64_t inject_event(time_point, std::string_view mailbox) override {
    if (std::find(mailboxes_.begin(), mailboxes_.end(), mailbox) == mailboxes_.end())
      mailboxes_.emplace_back(mailbox);
    return ++events_;
  }
  std::vector<std::pair<std::string, std::uint64_t>> stats() const override {
    return {{"events", events_}, {"echo.bytes", echoed_}, {"echo.accepted", accepted_}};
  }
  std::size_t mailbox_count() const override { return mailboxes_.size(); }
  std::string_view mailbox_name(std::size_t i) const override { return mailboxes_[i]; }

 private:
  std::vector<engine::action> acts_;
  std::vector<std::string> mailboxes_;
  std::uint64_t events_ = 0;
  std::uint64_t echoed_ = 0;
  std::uint64_t accepted_ = 0;
};

notifier::served_protocol echo(std::string name) {
  notifier::served_protocol p;
  p.name = std::move(name);
  p.core = std::make_unique<echo_core>();
  return p;
}

std::string line_from(tcp::socket& s, asio::streambuf& buf) {
  asio::read_until(s, buf, '\n');
  std::istream in(&buf);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

TEST(server_host, ServesTwoCoresOnTheirOwnPortsBehindOneControlPort) {
  asio::io_context io;
  notifier::host_config cfg;
  cfg.control = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);
  std::vector<notifier::served_protocol> served;
  served.push_back(echo("first"));
  served.push_back(echo("second"));
  notifier::server_host host(io, cfg, std::move(served), notifier::stderr_log(true));
  ASSERT_FALSE(host.start());
  const auto tcp1 = host.listener_endpoint(0, 7);
  const auto tcp2 = host.listener_endpoint(1, 7);
  const auto udp2 = host.socket_endpoint(1, 3);
  const auto control = host.control_endpoint();
  ASSERT_TRUE(tcp1 && tcp2 && udp2 && control);
  EXPECT_NE(tcp1->port, tcp2->port);
  EXPECT_FALSE(host.listener_endpoint(0, 8));  // no listener of that id
  const auto udp1 = host.socket_endpoint(0, 3);
  ASSERT_TRUE(udp1);
  const std::array<std::string, 2> tcp_at{tcp1->to_string(), tcp2->to_string()};
  const std::array<std::string, 2> udp_at{udp1->to_string(), udp2->to_string()};

  std::thread loop([&] { io.run(); });
  asio::io_context client_io;
  // TCP: the second core echoes.
  tcp::socket t(client_io);
  t.connect(live::to_asio<tcp::endpoint>(*tcp2));
  asio::write(t, asio::buffer(std::string("hello\n")));
  asio::streambuf tbuf;
  EXPECT_EQ(line_from(t, tbuf), "hello");
  // UDP: the second core echoes to the sender.
  udp::socket u(client_io, udp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  u.send_to(asio::buffer(std::string("ping")), live::to_asio<udp::endpoint>(*udp2));
  std::array<char, 16> reply{};
  udp::endpoint from;
  const std::size_t n = u.receive_from(asio::buffer(reply), from);
  EXPECT_EQ(std::string(reply.data(), n), "ping");
  EXPECT_EQ(live::from_asio(from), *udp2);
  // The control port: an event reaches the core of the family it names, and
  // only that one; naming none, the first core (the default family).
  tcp::socket c(client_io);
  c.connect(live::to_asio<tcp::endpoint>(*control));
  asio::write(c, asio::buffer(std::string("EVENT box\nEVENTS@Second 2 box\nEVENT@second other\nEVENT@third box\n"
                                          "STATS\nSERVICES\nQUIT\n")));
  asio::streambuf cbuf;
  EXPECT_EQ(line_from(c, cbuf), "OK 1");
  EXPECT_EQ(line_from(c, cbuf), "OK 1 2");  // the second core's own ids
  EXPECT_EQ(line_from(c, cbuf), "OK 3");
  EXPECT_EQ(line_from(c, cbuf), "ERR no family 'third' is served here (serving first, second)");
  const auto stats = nlohmann::json::parse(line_from(c, cbuf));
  const auto services = nlohmann::json::parse(line_from(c, cbuf));
  EXPECT_EQ(line_from(c, cbuf), "OK bye");
  // SERVICES: each core's listeners and sockets by its own ids, where they are bound.
  ASSERT_EQ(services.size(), 2u) << services.dump();
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& block = services.at(i == 0 ? "first" : "second");
    ASSERT_EQ(block.at("listeners").size(), 1u) << block.dump();
    EXPECT_EQ(block.at("listeners")[0].at("id"), 7u);
    EXPECT_EQ(block.at("listeners")[0].at("at"), tcp_at[i]);
    ASSERT_EQ(block.at("sockets").size(), 1u) << block.dump();
    EXPECT_EQ(block.at("sockets")[0].at("id"), 3u);
    EXPECT_EQ(block.at("sockets")[0].at("at"), udp_at[i]);
  }
  EXPECT_EQ(stats.at("protocols").at("first").at("events"), 1u);
  EXPECT_EQ(stats.at("protocols").at("second").at("events"), 3u);
  for (const char* name : {"first", "second"}) {
    const auto& block = stats.at("protocols").at(name);
    EXPECT_EQ(block.at("echo").at("accepted"), std::string(name) == "second" ? 1u : 0u) << name;
  }
  EXPECT_EQ(stats.at("protocols").at("second").at("echo").at("bytes"), 6u);
  EXPECT_EQ(stats.at("driver").at("events_from_control"), 4u);
  EXPECT_EQ(stats.at("driver").at("control_errors"), 1u);
  asio::post(io, [&] { host.stop(); });
  loop.join();
  // Each core knows only the mailboxes its own events named.
  ASSERT_EQ(host.core(0).mailbox_count(), 1u);
  EXPECT_EQ(host.core(0).mailbox_name(0), "box");
  ASSERT_EQ(host.core(1).mailbox_count(), 2u);
  EXPECT_EQ(host.core(1).mailbox_name(1), "other");
}

TEST(server_host, RefusesAListenerOutsideLoopbackUnlessAllowed) {
  asio::io_context io;
  auto p = echo("echo");
  p.tcp_address = protocol::ip_endpoint::v4(0, 0, 0, 0, 0);
  std::vector<notifier::served_protocol> served;
  served.push_back(std::move(p));
  notifier::server_host host(io, notifier::host_config{}, std::move(served), notifier::stderr_log(true));
  const auto error = host.start();
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("not a loopback address"), std::string::npos) << *error;
  EXPECT_FALSE(host.listener_endpoint(0, 7));
}

TEST(notifier_server, ServesEveryRegisteredFamilyNextToEmsmdbOnItsOwnPorts) {
  engine::family f;
  f.name = "test_echo";
  f.words.kinds = {{"tcp_setup", "handshakes"}, {"tcp_ack", "pure ACKs"}, {"echo", "bytes sent back"}};
  f.keys = {{"echo.greeting", engine::key_spec::type::text, "hello", "what the echo says first"},
            {"echo.slow", engine::key_spec::type::boolean, "false", "answer late"}};
  f.make_server = [](const engine::server_context&) { return std::make_unique<echo_core>(); };
  engine::registry::instance().add(std::move(f));

  {  // --set reaches the family that declares the key, type-checked; anything else is refused with a reason
    notifier::server_config cfg;
    std::deque<engine::settings> keys;
    const auto set = notifier::other_registered_servers(cfg, keys, {{"echo.greeting", "hi"}, {"echo.slow", "true"}});
    ASSERT_TRUE(set) << set.error().message;
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys.back().text("echo.greeting"), "hi");
    EXPECT_TRUE(keys.back().boolean("echo.slow"));
    const auto unknown = notifier::other_registered_servers(cfg, keys, {{"echo.colour", "red"}});
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message.find("--set echo.colour: no served protocol declares that key"),
              std::string::npos) << unknown.error().message;
    const auto mistyped = notifier::other_registered_servers(cfg, keys, {{"echo.slow", "yes"}});
    ASSERT_FALSE(mistyped);
    EXPECT_NE(mistyped.error().message.find("echo.slow takes true or false, not \"yes\""), std::string::npos)
        << mistyped.error().message;
    EXPECT_NE(notifier::protocols_text().find("--set echo.greeting=hello"), std::string::npos);
  }

  asio::io_context io;
  notifier::server_config cfg;
  cfg.tcp_listen = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);
  cfg.udp_bind = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);
  std::deque<engine::settings> keys;
  notifier::notifier_server server(io, cfg, notifier::stderr_log(true),
                                  std::move(notifier::other_registered_servers(cfg, keys).value()));
  ASSERT_FALSE(server.start());
  ASSERT_EQ(server.host().protocol_count(), 2u);
  EXPECT_EQ(server.host().protocol_name(0), "emsmdb");
  EXPECT_EQ(server.host().protocol_name(1), "test_echo");
  const auto echo_at = server.host().listener_endpoint(1, 7);
  ASSERT_TRUE(echo_at);
  EXPECT_NE(echo_at->port, server.tcp_endpoint().port);

  std::thread loop([&] { io.run(); });
  asio::io_context client_io;
  tcp::socket t(client_io);
  t.connect(live::to_asio<tcp::endpoint>(*echo_at));
  asio::write(t, asio::buffer(std::string("still here\n")));
  asio::streambuf buf;
  EXPECT_EQ(line_from(t, buf), "still here");
  asio::post(io, [&] { server.stop(); });
  loop.join();
}
