// The hub dials whatever callback a subscriber names, so by default it
// refuses anything outside loopback: the one policy the EMSMDB notifier's
// pings follow (notifier_netns_test). This test gives the live hub a private
// callback address in a fresh network namespace with only `lo` up, so even a
// bug would have no route out; the hub must answer 403, open no connection
// and count the refusal. Needs root (CI runs as root); skipped otherwise,
// failed under NUDGE_REQUIRE_TOOLS=1.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "nudge/engine/registry.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/websub/family.hpp"
#include "nudge/websub/form.hpp"
#include "support/require.hpp"

namespace nudge::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

enum step : int { ok = 0, no_netns = 10, no_server, no_answer, not_refused, dialled, not_counted };

int refuse_in_fresh_namespace() {
  if (::unshare(CLONE_NEWNET) != 0) return no_netns;
  if (std::system("ip link set lo up") != 0) return no_netns;

  protocols::register_all();
  const protocol::ip_endpoint any = protocol::ip_endpoint::v4(127, 0, 0, 1, 0);
  notifier::server_config cfg;  // non-loopback not allowed
  cfg.tcp_listen = any;
  cfg.udp_bind = any;
  cfg.control = any;
  const engine::family* f = engine::registry::instance().find(websub::family_name);
  engine::settings keys = engine::settings::defaults(*f);
  engine::server_context ctx;
  ctx.keys = &keys;
  std::vector<notifier::served_protocol> others;
  others.push_back({f->name, f->make_server(ctx), any, any, {}});
  asio::io_context io;
  auto server = std::make_unique<notifier::notifier_server>(io, cfg, [](notifier::log_level, std::string_view) {},
                                                            std::move(others));
  if (server->start()) return no_server;
  protocol::ip_endpoint hub;
  std::size_t index = 0;
  for (std::size_t i = 0; i < server->host().protocol_count(); ++i)
    if (server->host().protocol_name(i) == websub::family_name) {
      index = i;
      hub = *server->host().listener_endpoint(i, 0);
    }
  std::thread runner([&] { io.run(); });
  auto finish = [&](int code) {
    boost::asio::post(io, [&] { server->stop(); });
    runner.join();
    return code;
  };

  websub::form form;
  form.add("hub.mode", "subscribe");
  form.add("hub.topic", websub::topic_url(hub, "/o=nudge/cn=Recipients/cn=behind-a-nat"));
  form.add("hub.callback", "http://10.0.0.2:2500/callback");
  form.add("hub.lease_seconds", "600");
  const std::string body = websub::encode_form(form);
  std::string reply;
  try {
    asio::io_context cio;
    tcp::socket s(cio);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), hub.port));
    asio::write(s, asio::buffer("POST /hub HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
    boost::system::error_code ec;
    char buf[1024];
    for (;;) {  // the hub closes after a refusal
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      reply.append(buf, n);
    }
  } catch (const std::exception&) {
    return finish(no_answer);
  }
  if (reply.rfind("HTTP/1.1 403", 0) != 0) return finish(not_refused);
  const int code = finish(ok);
  const auto& stats = server->host().stats();
  if (stats.tcp_connects != 0 || stats.tcp_refused_non_loopback != 0) return dialled;
  for (const auto& [name, value] : server->host().core(index).stats()) {
    if (name == "refused_callbacks" && value != 1) return not_counted;
    if (name == "verifications_sent" && value != 0) return dialled;
  }
  return code;
}

TEST(websub_netns, the_hub_refuses_a_non_loopback_callback) {
  NUDGE_REQUIRE(::geteuid() == 0, "root, for a fresh network namespace");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(refuse_in_fresh_namespace());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  NUDGE_REQUIRE(WEXITSTATUS(status) != no_netns, "a fresh network namespace with lo up (unshare, ip link)");
  EXPECT_EQ(WEXITSTATUS(status), ok) << "failed at step " << WEXITSTATUS(status)
                                     << " (11 server, 12 no answer, 13 not refused, 14 dialled, 15 not counted)";
}

}  // namespace
}  // namespace nudge::test
