#pragma once
// Test support: the `notifier` program as a child process on free loopback
// ports, stopped with SIGTERM when the test ends (and killed with the test if
// ctest kills it). Tests that drive real sockets share it.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <csignal>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "nudge/protocol/endpoint.hpp"
#include "nudge/sim/asio_driver.hpp"

#ifndef NUDGE_NOTIFIER_BIN
#error "NUDGE_NOTIFIER_BIN must name the notifier program"
#endif

namespace nudge::test_support {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using namespace std::chrono_literals;
using sim::real_options;

/// A port nothing listens on right now (the kernel's pick, released at once).
template <class Protocol>
std::uint16_t free_port() {
  asio::io_context io;
  typename Protocol::socket s(io, typename Protocol::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

/// The notifier program on free loopback ports, stopped with SIGTERM at the end.
class notifier_process {
 public:
  explicit notifier_process(std::vector<std::string> extra) {
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) start(extra);
  }
  ~notifier_process() { stop(); }

  bool running() const { return pid_ > 0; }
  const protocol::ip_endpoint& tcp_ep() const { return tcp_; }
  const protocol::ip_endpoint& udp_ep() const { return udp_; }
  const protocol::ip_endpoint& control_ep() const { return control_; }

  real_options options() const {
    real_options o;
    o.notifier = tcp_;
    o.notifier_udp = udp_;
    o.control = control_;
    return o;
  }

  /// Kills the notifier at once (SIGKILL), as a crash would.
  void crash() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  /// The notifier's STATS line, parsed.
  nlohmann::json stats() const {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), control_.port));
    asio::write(s, asio::buffer(std::string("STATS\n")));
    asio::streambuf buf;
    asio::read_until(s, buf, '\n');
    std::istream in(&buf);
    std::string line;
    std::getline(in, line);
    return nlohmann::json::parse(line);
  }

 private:
  void start(const std::vector<std::string>& extra) {
    tcp_ = protocol::ip_endpoint::v4(127, 0, 0, 1, free_port<tcp>());
    udp_ = protocol::ip_endpoint::v4(127, 0, 0, 1, free_port<udp>());
    control_ = protocol::ip_endpoint::v4(127, 0, 0, 1, free_port<tcp>());
    std::vector<std::string> args{NUDGE_NOTIFIER_BIN, "--listen", tcp_.to_string(),   "--udp", udp_.to_string(),
                                  "--control",        control_.to_string(), "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return;
    if (pid == 0) {
      // Dies with the test, even when ctest kills the test on a timeout.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int devnull = ::open("/dev/null", O_WRONLY);
      if (devnull >= 0) ::dup2(devnull, STDOUT_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Ready when the control port accepts; gone early means a port was taken: retry.
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return;
      asio::io_context io;
      tcp::socket s(io);
      boost::system::error_code ec;
      s.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), control_.port), ec);
      if (!ec) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  pid_t pid_ = -1;
  protocol::ip_endpoint tcp_, udp_, control_;
};


}  // namespace nudge::test_support
