#include "nudge/kernelnat/kernel_run.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "nudge/kernelnat/testbed.hpp"

namespace nudge::kernelnat {

namespace {

constexpr std::uint16_t rpc_port = 7777, ping_port = 7778, control_port = 7779;

std::string seconds_arg(duration d) { return fmt::format("{:g}", to_seconds(d)); }

/// Whether 127.0.0.1:port accepts a TCP connection in the calling thread's namespace.
bool accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

void stop_process(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string kernel_plan_problem(const sim::run_plan& plan) {
  if (plan.nat_mix.size() != 1)
    return fmt::format("a kernel NAT run puts every client behind one router: give exactly one [[nat]] entry (the "
                       "plan has {})",
                       plan.nat_mix.size());
  const auto& share = plan.nat_mix[0];
  if (!share.kernel) return "the [[nat]] entry does not say kernel = true";
  if (share.clients_per_device != 1)
    return "nat[0].clients_per_device: the testbed's clients sit on one LAN address, so the router never gives "
           "two of them one port, as a device per client (clients_per_device = 1) never does; the model's "
           "shared devices collide on fixed private ports, which the kernel testbed cannot reproduce";
  const auto config = preset_config(share.preset, share.udp_timeout, share.tcp_timeout);
  if (!config) return fmt::format("nat[0].preset: \"{}\" is not a NAT preset the kernel could realise", share.preset);
  const auto verdict = realise(*config);
  if (!verdict.realisation) return fmt::format("nat[0].preset \"{}\": {}", share.preset, verdict.refusal.message());
  if (plan.server.max_pending_per_mailbox != notifier::notifier_config{}.max_pending_per_mailbox)
    return "server.max_pending_per_mailbox: the notifier program has no such setting";
  return {};
}

result<sim::run_result> run_through_kernel_nat(const sim::run_plan& plan, sim::real_options real,
                                               const kernel_run_options& options) {
  if (auto problem = kernel_plan_problem(plan); !problem.empty()) return fail(problem, 2);
  if (auto why = testbed_unavailable(); !why.empty()) return fail(why);
  if (::access(options.notifier_program.c_str(), X_OK) != 0)
    return fail("cannot run the notifier program " + options.notifier_program);
  const auto realisation = *realise(*preset_config(plan.nat_mix[0].preset, plan.nat_mix[0].udp_timeout, plan.nat_mix[0].tcp_timeout)).realisation;

  auto bed = testbed::create(realisation);
  if (!bed) return fail(bed.error().message);
  testbed& t = **bed;

  const auto& s = plan.server;
  std::vector<std::string> args{options.notifier_program,
                                "--listen", fmt::format("203.0.113.2:{}", rpc_port),
                                "--udp", fmt::format("203.0.113.2:{}", ping_port),
                                "--control", fmt::format("127.0.0.1:{}", control_port),
                                "--allow-non-loopback",
                                "--policy", std::string(notifier::to_string(s.policy)),
                                "--polls-max-ms", std::to_string(s.polls_max_ms),
                                "--ping-resend", seconds_arg(s.ping_resend),
                                "--async-hold", seconds_arg(s.async_hold)};
  if (!s.push_enabled) args.push_back("--no-push");
  if (!s.async_enabled) args.push_back("--no-async");
  auto notifier = t.spawn(zone::wan, args, options.notifier_log);
  if (!notifier) return fail(notifier.error().message);

  result<sim::run_result> out = fail("the run did not happen");
  {
    // The control connection (and so this thread) lives in wan, where the
    // control port is loopback; the clients' threads enter the LAN.
    netns_return back;
    if (!back.ok()) {
      stop_process(*notifier);
      return fail("cannot save this thread's network namespace");
    }
    if (auto e = t.enter(zone::wan); !e.empty()) {
      stop_process(*notifier);
      return fail(e);
    }
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i) {  // the notifier opens its ports within a second or so
      up = accepts(control_port);
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!up) {
      stop_process(*notifier);
      return fail("the notifier " + options.notifier_program +
                  " did not open its control port in the testbed's wan namespace within 10 s" +
                  (options.notifier_log == "/dev/null" ? std::string() : " (its output: " + options.notifier_log + ")"));
    }

    real.control = protocol::ip_endpoint::v4(127, 0, 0, 1, control_port);
    real.notifier = protocol::ip_endpoint::v4(203, 0, 113, 2, rpc_port);
    real.notifier_udp = protocol::ip_endpoint::v4(203, 0, 113, 2, ping_port);
    real.notifier_stated = real.notifier_udp_stated = false;
    real.source_first = lan_host;
    real.source_count = 1;  // one LAN host: its sockets never share a port, so the router preserves them all
    real.testbed_networks = {{protocol::ip_endpoint::v4(10, 0, 0, 0, 0), 24},
                             {protocol::ip_endpoint::v4(203, 0, 113, 0, 0), 24}};
    real.enter_client_network = [&t] {
      if (auto e = t.enter(zone::lan); !e.empty()) throw std::runtime_error(e);
    };
    sim::run_plan inner = plan;
    inner.nat_mix.clear();  // run_real runs plain sockets; the NAT is the kernel's
    try {
      sim::run_result r = sim::run_real(inner, real);
      r.plan = plan;
      for (const auto& m : r.modes) {
        sim::group_result g;
        g.protocol = m.protocol;
        g.mode = m.mode;
        g.nat = plan.nat_label(0);
        g.clients = m.clients;
        g.metrics = m.metrics;
        g.events_generated = m.events_generated;
        r.groups.push_back(std::move(g));
      }
      out = std::move(r);
    } catch (const std::exception& e) {
      out = fail(e.what());
    }
  }
  stop_process(*notifier);
  if (out) {
    const auto c = t.counters();
    out->network.nat_filtered = c.input_udp_dropped;
    out->network.no_route = c.forward_dropped;
  }
  t.tear_down();
  return out;
}

}  // namespace nudge::kernelnat
