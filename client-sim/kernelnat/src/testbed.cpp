#include "nudge/kernelnat/testbed.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

extern char** environ;

namespace nudge::kernelnat {

namespace {

std::atomic<unsigned> testbeds_made{0};

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

std::string_view zone_suffix(zone z) {
  switch (z) {
    case zone::lan: return "lan";
    case zone::router: return "rtr";
    case zone::wan: return "wan";
  }
  return "?";
}

// The guardian: waits for its stdin (our pipe) to close, then removes the
// namespaces, whatever happened to us. setsid keeps a terminal's Ctrl-C away from it.
std::string guardian_script(const std::string& name) {
  std::string all;
  for (const char* s : {"lan", "rtr", "wan"}) all += fmt::format(" {}-{}", name, s);
  return fmt::format(
      "trap '' INT TERM HUP\n"
      "while read -r _line; do :; done\n"
      "for ns in{0}; do for p in $(ip netns pids \"$ns\" 2>/dev/null); do kill -9 \"$p\" 2>/dev/null; done; done\n"
      "for ns in{0}; do ip netns del \"$ns\" 2>/dev/null; done\n"
      "exit 0\n",
      all);
}

std::uint64_t counter_packets(const std::string& listing) {
  const auto at = listing.find("packets ");
  if (at == std::string::npos) return 0;
  return std::strtoull(listing.c_str() + at + 8, nullptr, 10);
}

}  // namespace

program_output run_program(const std::vector<std::string>& argv, std::string_view input) {
  program_output out;
  int in[2], res[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return out;
  if (::pipe2(res, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return out;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, res[1], 1);
  posix_spawn_file_actions_adddup2(&fa, res[1], 2);
  pid_t pid = -1;
  auto args = c_argv(argv);
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(res[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(res[0]);
    out.text = fmt::format("cannot start {}: {}", argv[0], std::strerror(rc));
    return out;
  }
  // Inputs are a ruleset at most, far below a pipe's buffer: write, then read.
  struct sigaction ign {}, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);
  for (std::size_t done = 0; done < input.size();) {
    const ssize_t n = ::write(in[1], input.data() + done, input.size() - done);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  ::sigaction(SIGPIPE, &old, nullptr);
  ::close(in[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(res[0], buf, sizeof buf);
    if (n > 0) out.text.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(res[0]);
  out.exit_code = wait_exit(pid);
  return out;
}

std::string testbed_unavailable() {
  if (::geteuid() != 0)
    return "the kernel NAT testbed needs root: it creates network namespaces and loads nftables rules "
           "(CAP_SYS_ADMIN, CAP_NET_ADMIN); run as root, or drop `kernel = true` to use the NAT model";
  if (run_program({"ip", "-V"}).exit_code != 0) return "the kernel NAT testbed needs `ip` (Debian package iproute2)";
  if (run_program({"nft", "--version"}).exit_code != 0)
    return "the kernel NAT testbed needs `nft` (Debian package nftables)";
  return {};
}

std::string router_ruleset(const kernel_realisation& r) {
  return fmt::format(
      "flush ruleset\n"
      "table ip nudge {{\n"
      "  counter forward_dropped {{ }}\n"
      "  counter input_udp_dropped {{ }}\n"
      "  chain postrouting {{\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "    oifname \"rtr-wan\" ip saddr 10.0.0.0/8 snat to {}{}\n"
      "  }}\n"
      "  chain forward {{\n"
      "    type filter hook forward priority filter; policy drop;\n"
      "    ct state established,related accept\n"
      "    iifname \"rtr-lan\" oifname \"rtr-wan\" accept\n"
      "    counter name \"forward_dropped\" drop\n"
      "  }}\n"
      "  chain input {{\n"
      "    type filter hook input priority filter; policy accept;\n"
      "    iifname \"rtr-wan\" meta l4proto udp counter name \"input_udp_dropped\" drop\n"
      "  }}\n"
      "}}\n",
      router_public.address_string(), r.snat_flags);
}

testbed::testbed(std::string name, pid_t guardian, int guardian_pipe)
    : name_(std::move(name)), guardian_(guardian), guardian_pipe_(guardian_pipe) {}

testbed::~testbed() { tear_down(); }

std::string testbed::netns(zone z) const { return fmt::format("{}-{}", name_, zone_suffix(z)); }

result<std::unique_ptr<testbed>> testbed::create(const kernel_realisation& realisation) {
  if (auto why = testbed_unavailable(); !why.empty()) return fail(why);
  const std::string name = fmt::format("{}{}-{}", name_prefix, ::getpid(), testbeds_made.fetch_add(1));

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[0], 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  const std::string script = guardian_script(name);
  const std::vector<std::string> argv{"/bin/sh", "-c", script, "nudge-kernelnat-guardian"};
  auto args = c_argv(argv);
  pid_t guardian = -1;
  const int rc = ::posix_spawn(&guardian, "/bin/sh", &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(p[0]);
  if (rc != 0) {
    ::close(p[1]);
    return fail(std::string("cannot start the testbed's guardian: ") + std::strerror(rc));
  }
  std::unique_ptr<testbed> t(new testbed(name, guardian, p[1]));
  if (auto e = t->build(realisation); !e.empty()) return fail("kernel NAT testbed " + name + ": " + e);
  return t;
}

std::string testbed::build(const kernel_realisation& realisation) {
  const std::string lan = netns(zone::lan), rtr = netns(zone::router), wan = netns(zone::wan);
  const std::vector<std::vector<std::string>> steps = {
      {"ip", "netns", "add", lan},
      {"ip", "netns", "add", rtr},
      {"ip", "netns", "add", wan},
      {"ip", "-n", lan, "link", "set", "lo", "up"},
      {"ip", "-n", rtr, "link", "set", "lo", "up"},
      {"ip", "-n", wan, "link", "set", "lo", "up"},
      // Created inside the namespaces directly: the host never holds these links.
      {"ip", "-n", lan, "link", "add", "lan0", "type", "veth", "peer", "name", "rtr-lan", "netns", rtr},
      {"ip", "-n", wan, "link", "add", "wan0", "type", "veth", "peer", "name", "rtr-wan", "netns", rtr},
      {"ip", "-n", lan, "addr", "add", "10.0.0.2/24", "dev", "lan0"},
      {"ip", "-n", rtr, "addr", "add", "10.0.0.1/24", "dev", "rtr-lan"},
      {"ip", "-n", rtr, "addr", "add", "203.0.113.1/24", "dev", "rtr-wan"},
      {"ip", "-n", wan, "addr", "add", "203.0.113.2/24", "dev", "wan0"},
      {"ip", "-n", wan, "addr", "add", "203.0.113.3/24", "dev", "wan0"},
      {"ip", "-n", lan, "link", "set", "lan0", "up"},
      {"ip", "-n", rtr, "link", "set", "rtr-lan", "up"},
      {"ip", "-n", rtr, "link", "set", "rtr-wan", "up"},
      {"ip", "-n", wan, "link", "set", "wan0", "up"},
      {"ip", "-n", lan, "route", "add", "default", "via", "10.0.0.1"},
      // nat.md's worst case: the server side routes private addresses to the router, whose filter drops them.
      {"ip", "-n", wan, "route", "add", "10.0.0.0/8", "via", "203.0.113.1"},
      {"ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
  };
  for (const auto& s : steps) {
    const auto r = run_program(s);
    if (r.exit_code != 0) return fmt::format("`{}` failed: {}", joined(s), r.text);
  }
  return reconfigure(realisation);
}

std::string testbed::reconfigure(const kernel_realisation& realisation) const {
  const std::string rtr = netns(zone::router);
  std::vector<std::string> sysctl{"ip", "netns", "exec", rtr, "sysctl", "-qw"};
  for (const auto& [k, v] : realisation.sysctls) sysctl.push_back(k + "=" + v);
  if (auto r = run_program(sysctl); r.exit_code != 0) return fmt::format("`{}` failed: {}", joined(sysctl), r.text);
  if (auto r = run_program({"ip", "netns", "exec", rtr, "nft", "-f", "-"}, router_ruleset(realisation));
      r.exit_code != 0)
    return "nft -f (the router's ruleset) failed: " + r.text;
  return reset_router();
}

std::string testbed::reset_router() const {
  const std::string rtr = netns(zone::router);
  // conntrack -F exits 0 on an empty table too; without conntrack-tools, nft's reset is enough to fail loudly.
  if (auto r = run_program({"ip", "netns", "exec", rtr, "conntrack", "-F"}); r.exit_code != 0)
    return "conntrack -F in the router failed: " + r.text;
  if (auto r = run_program({"ip", "netns", "exec", rtr, "nft", "reset", "counters", "table", "ip", "nudge"});
      r.exit_code != 0)
    return "nft reset counters failed: " + r.text;
  return {};
}

router_counters testbed::counters() const {
  const std::string rtr = netns(zone::router);
  router_counters c;
  c.forward_dropped =
      counter_packets(run_program({"ip", "netns", "exec", rtr, "nft", "list", "counter", "ip", "nudge", "forward_dropped"}).text);
  c.input_udp_dropped = counter_packets(
      run_program({"ip", "netns", "exec", rtr, "nft", "list", "counter", "ip", "nudge", "input_udp_dropped"}).text);
  return c;
}

std::string testbed::enter(zone z) const {
  const std::string path = "/run/netns/" + netns(z);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  const int rc = ::setns(fd, CLONE_NEWNET);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return "setns " + path + ": " + std::strerror(err);
  return {};
}

program_output testbed::run(zone z, const std::vector<std::string>& argv, std::string_view input) const {
  std::vector<std::string> full{"ip", "netns", "exec", netns(z)};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_program(full, input);
}

result<pid_t> testbed::spawn(zone z, const std::vector<std::string>& argv, const std::string& log_path) const {
  std::vector<std::string> full{"ip", "netns", "exec", netns(z)};
  full.insert(full.end(), argv.begin(), argv.end());
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  auto args = c_argv(full);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, "ip", &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail(fmt::format("cannot start `{}`: {}", joined(full), std::strerror(rc)));
  return pid;
}

void testbed::tear_down() {
  if (guardian_pipe_ >= 0) {
    ::close(guardian_pipe_);
    guardian_pipe_ = -1;
  }
  if (guardian_ > 0) {
    wait_exit(guardian_);
    guardian_ = -1;
  }
}

netns_return::netns_return() : fd_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {}

netns_return::~netns_return() {
  if (fd_ >= 0) {
    ::setns(fd_, CLONE_NEWNET);
    ::close(fd_);
  }
}

}  // namespace nudge::kernelnat
