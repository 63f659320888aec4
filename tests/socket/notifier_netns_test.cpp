// The `legacy` policy sends pings where the client said, so a client behind a
// NAT registers an address the notifier must not reach: by default it refuses
// anything outside loopback. This test feeds the notifier a private callback
// address, so it runs in a fresh network namespace with only `lo` up: even a
// bug would have no route out. Needs root (CI runs as root); skipped otherwise, failed
// under NUDGE_REQUIRE_TOOLS=1.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "notifier_test_client.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "support/require.hpp"

namespace nudge::test {
namespace {

// Exit codes of the child, one per step that can go wrong.
enum step : int { ok = 0, no_netns = 10, no_server, no_session, no_event, no_stats, sent_a_datagram, did_not_refuse };

int refuse_in_fresh_namespace() {
  if (::unshare(CLONE_NEWNET) != 0) return no_netns;
  if (std::system("ip link set lo up") != 0) return no_netns;

  boost::asio::io_context io;
  notifier::server_config cfg;  // default policy: legacy; non-loopback not allowed
  cfg.tcp_listen = ip_endpoint::v4(127, 0, 0, 1, 0);
  cfg.udp_bind = ip_endpoint::v4(127, 0, 0, 1, 0);
  cfg.control = ip_endpoint::v4(127, 0, 0, 1, 0);
  auto server = std::make_unique<notifier::notifier_server>(io, cfg, notifier::stderr_log(true));
  if (server->start()) return no_server;
  const ip_endpoint tcp = server->tcp_endpoint();
  const ip_endpoint control = *server->control_endpoint();
  std::thread runner([&] { io.run(); });
  auto finish = [&](int code) {
    boost::asio::post(io, [&] { server->stop(); });
    runner.join();
    return code;
  };

  const std::string dn = "/o=nudge/cn=Recipients/cn=behind-a-nat";
  emsmdb_client client(tcp);
  if (!client.socket().connected() || !client.bind()) return finish(no_session);
  byte_buffer keeper;
  auto connected = client.connect(dn, keeper);
  if (!connected) return finish(no_session);
  const byte_buffer context = {'n', 'a', 't', 't', 'e', 'd', 0, 1};
  auto reg = client.register_push(connected->cxh, context, ip_endpoint::v4(10, 0, 0, 2, 2500));
  if (!reg || reg->return_code != ec::success) return finish(no_session);

  tcp_client ctl(control);
  if (!ctl.send("EVENT " + dn + "\n")) return finish(no_event);
  auto ok_line = ctl.read_line();
  if (!ok_line || ok_line->rfind("OK ", 0) != 0) return finish(no_event);
  if (!ctl.send(std::string("STATS\n"))) return finish(no_stats);
  auto line = ctl.read_line();
  if (!line) return finish(no_stats);
  auto stats = nlohmann::json::parse(*line, nullptr, false);
  if (!stats.is_object()) return finish(no_stats);
  if (stats["driver"]["udp_datagrams_sent"] != 0 || stats["datagrams_sent"] != 0) return finish(sent_a_datagram);
  if (stats["datagrams_refused"] != 1) return finish(did_not_refuse);
  return finish(ok);
}

TEST(notifier_netns, legacy_policy_refuses_a_non_loopback_callback) {
  NUDGE_REQUIRE(::geteuid() == 0, "root, for a fresh network namespace");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(refuse_in_fresh_namespace());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  NUDGE_REQUIRE(WEXITSTATUS(status) != no_netns, "a fresh network namespace with lo up (unshare, ip link)");
  EXPECT_EQ(WEXITSTATUS(status), ok) << "failed at step " << WEXITSTATUS(status)
                                     << " (11 server, 12 session, 13 event, 14 stats, 15 sent, 16 not refused)";
}

}  // namespace
}  // namespace nudge::test
