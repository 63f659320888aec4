// notifier: parse the command line, serve every registered protocol (EMSMDB
// as the options configure it, each other family at its defaults on its own
// ports) until SIGINT/SIGTERM or --duration, then print a one-line summary and
// write --stats-json.
#include <csignal>
#include <deque>
#include <cstdio>
#include <exception>
#include <fstream>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "nudge/notifier/notifier_options.hpp"
#include "nudge/notifier/notifier_server.hpp"
#include "nudge/notifier/stats_report.hpp"
#include "nudge/protocols/registrations.hpp"

namespace {

int run(const nudge::notifier::notifier_options& opts) {
  using namespace nudge::notifier;
  nudge::protocols::register_all();
  boost::asio::io_context io(1);
  const server_config cfg = to_server_config(opts);
  std::deque<nudge::engine::settings> keys;  // the other families' settings, as long as their cores
  auto others = other_registered_servers(cfg, keys, opts.family_keys);
  if (!others) {
    fmt::print(stderr, "notifier: {}\nRun notifier --protocols to list the protocols and their keys.\n",
               others.error().message);
    return nudge::notifier::exit_usage;
  }
  notifier_server server(io, cfg, stderr_log(opts.quiet), std::move(*others));
  if (auto error = server.start()) {
    fmt::print(stderr, "notifier: {}\n", *error);
    return 1;
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer deadline(io);
  auto stop = [&] {
    server.stop();
    signals.cancel();
    deadline.cancel();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (!opts.quiet) fmt::print(stderr, "notifier: {}, stopping\n", signo == SIGINT ? "SIGINT" : "SIGTERM");
    stop();
  });
  if (opts.duration_s) {
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(*opts.duration_s)));
    deadline.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) stop();
    });
  }
  io.run();

  const auto now = steady_now();
  fmt::print(stderr, "{}\n", summary_line(server.core(), server.stats(), now - server.started_at()));
  if (!opts.stats_json.empty()) {
    std::ofstream out(opts.stats_json);
    out << dump_json(server.host().stats_json(now), 2) << '\n';
    if (!out) {
      fmt::print(stderr, "notifier: cannot write {}\n", opts.stats_json);
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    nudge::protocols::register_all();  // --protocols and --set read the registry
    const auto parsed = nudge::notifier::parse_notifier_options(argc, argv);
    if (!parsed) {
      fmt::print(stderr, "notifier: {}\nRun with --help for more information.\n", parsed.error().message);
      return parsed.error().exit_code;
    }
    if (parsed->cmd != nudge::notifier::notifier_options::command::run) {
      fmt::print("{}\n", parsed->text);
      return 0;
    }
    return run(*parsed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notifier: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "notifier: fatal: unknown exception\n");
  }
  return 1;
}
