#include "nudge/kernelnat/stun_judge.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

namespace nudge::kernelnat {

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\t' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

/// turnserver listens on both ports of both addresses: the classifiers need all four.
bool stun_server_ready(const testbed& t) {
  const auto r = t.run(zone::wan, {"ss", "-Hunl"});
  for (const char* a : {"203.0.113.2:3478", "203.0.113.2:3479", "203.0.113.3:3478", "203.0.113.3:3479"})
    if (r.text.find(a) == std::string::npos) return false;
  return true;
}

}  // namespace

std::string classifiers_unavailable() {
  for (const char* p : {"stun", "turnutils_natdiscovery", "turnserver", "ss"}) {
    const auto r = run_program({"/bin/sh", "-c", std::string("command -v ") + p});
    if (r.exit_code != 0)
      return fmt::format("`{}` is missing (Debian packages stun-client, coturn and iproute2)", p);
  }
  return {};
}

std::string parse_stun_verdict(const std::string& output) {
  const auto at = output.find("Primary: ");
  if (at == std::string::npos) return {};
  const auto end = output.find('\n', at);
  return trimmed(output.substr(at + 9, end == std::string::npos ? std::string::npos : end - at - 9));
}

std::string parse_natdiscovery_line(const std::string& output, const std::string& ending) {
  std::size_t at = 0;
  while ((at = output.find("NAT with ", at)) != std::string::npos) {
    const auto end = output.find('\n', at);
    const std::string line = trimmed(output.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (line.size() >= ending.size() && line.compare(line.size() - ending.size(), ending.size(), ending) == 0)
      return line;
    at = end == std::string::npos ? output.size() : end;
  }
  return {};
}

result<classifier_verdicts> judge(const testbed& t) {
  if (auto why = classifiers_unavailable(); !why.empty()) return fail(why);
  char dir_template[] = "/tmp/nudge-stun-XXXXXX";
  if (!::mkdtemp(dir_template)) return fail("mkdtemp failed");
  const std::string dir = dir_template;
  auto server = t.spawn(zone::wan,
                        {"turnserver", "-n", "--listening-ip", "203.0.113.2", "--listening-ip", "203.0.113.3",
                         "--listening-port", "3478", "--stun-only", "--no-tls", "--no-dtls", "--no-cli",
                         "--log-file", "stdout", "--simple-log", "--pidfile", dir + "/turnserver.pid", "--userdb",
                         dir + "/turndb"},
                        dir + "/turnserver.log");
  if (!server) return fail(server.error().message);
  auto stop = [&] {
    ::kill(*server, SIGTERM);
    int status = 0;
    ::waitpid(*server, &status, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  bool ready = false;
  for (int i = 0; i < 200 && !ready; ++i) {  // up to 10 s for its sockets to appear
    ready = stun_server_ready(t);
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!ready) {
    stop();
    return fail("turnserver did not open its four STUN sockets in the testbed's wan namespace");
  }

  classifier_verdicts v;
  if (auto e = t.reset_router(); !e.empty()) {
    stop();
    return fail(e);
  }
  const auto stun = t.run(zone::lan, {"stun", "203.0.113.2:3478"});
  v.stun_output = stun.text;
  v.stun_exit = stun.exit_code;
  v.stun_verdict = parse_stun_verdict(stun.text);
  if (auto e = t.reset_router(); !e.empty()) {
    stop();
    return fail(e);
  }
  const auto nd = t.run(zone::lan, {"turnutils_natdiscovery", "-m", "-f", "203.0.113.2"});
  v.natdiscovery_output = nd.text;
  v.natdiscovery_mapping = parse_natdiscovery_line(nd.text, "Mapping!");
  v.natdiscovery_filtering = parse_natdiscovery_line(nd.text, "Filtering!");
  stop();
  return v;
}

}  // namespace nudge::kernelnat
