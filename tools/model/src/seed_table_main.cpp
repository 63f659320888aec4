// nudge-seed-table: runs scenario files in virtual time and sets the
// simulated "unnecessary" polling traffic beside the closed-form model
// (the article's arithmetic and the Poisson expectation) for the same inputs.
// docs/seed-table.md is made with it.
//
//   nudge-seed-table scenarios/seed-article.toml
//   nudge-seed-table --set run.clients=2000 --json out.json scenarios/seed-article*.toml
#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nudge/model/poll_sizes.hpp"
#include "nudge/model/seed_model.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"

namespace {

using namespace nudge;
using namespace nudge::sim;

double per_client_hour(double v, std::size_t clients, duration measured) {
  const double ch = static_cast<double>(clients) * to_seconds(measured) / 3600.0;
  return ch > 0 ? v / ch : 0.0;
}

std::string num(double v, int decimals = 0) { return model::grouped(v, decimals); }

struct mode_figures {
  std::string mode;
  std::size_t clients = 0;
  double polls = 0, empty_polls = 0, bytes = 0, tsdus = 0;  // per client-hour
  double all_bytes = 0, all_packets = 0;                    // every kind of traffic, per client-hour
  std::uint64_t generated = 0, fetched = 0, missed = 0;
  double latency_p50 = 0, latency_p99 = 0;
};

mode_figures figures(const mode_result& m, duration measured) {
  mode_figures f;
  const auto& x = m.metrics;
  f.mode = std::string(client::to_string(m.mode));
  f.clients = m.clients;
  f.polls = per_client_hour(static_cast<double>(x.counter(protocol::emsmdb::counter::polls)), m.clients, measured);
  f.empty_polls = per_client_hour(static_cast<double>(x.counter(protocol::emsmdb::counter::wasted_polls)), m.clients, measured);
  f.bytes = per_client_hour(static_cast<double>(x.wasted_poll_traffic.wire_bytes), m.clients, measured);
  f.tsdus = per_client_hour(static_cast<double>(x.wasted_poll_traffic.packets), m.clients, measured);
  const auto total = x.traffic.total();
  f.all_bytes = per_client_hour(static_cast<double>(total.wire_bytes), m.clients, measured);
  f.all_packets = per_client_hour(static_cast<double>(total.packets), m.clients, measured);
  f.generated = m.events_generated;
  f.fetched = x.counter(protocol::emsmdb::counter::events_fetched);
  f.missed = m.events_missed();
  f.latency_p50 = to_seconds(x.latency.quantile(0.5));
  f.latency_p99 = to_seconds(x.latency.quantile(0.99));
  return f;
}

/// The closed form's inputs for a plan. Message sizes come from the encoders and
/// the plan's wire model (model/poll_sizes.hpp), never from the run it is compared with.
model::seed_inputs model_inputs(const run_plan& p) {
  model::seed_inputs in;
  in.users = static_cast<double>(p.clients);
  in.day_hours = p.event_process.active_hours_per_day();
  in.events_per_day = p.events_per_client_hour * in.day_hours;
  in.poll_interval_s = to_seconds(p.poll_interval);
  in.jitter = p.poll_jitter;
  return model::with_empty_poll_sizes(in, p.wire);
}

nlohmann::json run_one(const std::string& file, const std::vector<std::string>& sets, bool full, std::ostream& out) {
  auto loaded = load_scenario(file);
  if (auto* e = std::get_if<scenario_error>(&loaded)) throw std::runtime_error(e->what());
  run_plan plan = std::get<run_plan>(std::move(loaded));
  if (auto e = apply_overrides(plan, sets)) throw std::runtime_error(e->what());

  const run_result r = run_virtual(plan);
  std::vector<mode_figures> modes;
  for (const auto& m : r.modes)
    if (m.clients) modes.push_back(figures(m, r.measured));
  const mode_figures* poll = nullptr;  // the poll mode, for the simulated / model ratio
  for (const auto& m : modes)
    if (m.mode == "poll") poll = &m;
  const auto in = model_inputs(plan);
  const auto est = model::estimate(in);

  fmt::print(out, "scenario {}{}\n", file, sets.empty() ? "" : fmt::format(" (--set {})", fmt::join(sets, " --set ")));
  fmt::print(out, "  {} clients, {}, poll every {}{}, {} events per client-hour ({}{}), {} profile{}\n",
             num(static_cast<double>(plan.clients)), format_duration(plan.length), format_duration(plan.poll_interval),
             plan.poll_jitter ? " (jitter)" : "", plan.events_per_client_hour, to_string(plan.event_process.kind),
             plan.event_process.hours.enabled ? ", business hours" : "", plan.wire.is_abstract() ? "abstract" : "faithful",
             plan.wire.is_abstract() ? fmt::format(" ({} B messages)", plan.wire.abstract_message_bytes) : "");
  fmt::print(out, "  wall {:.2f} s, {} simulated events\n\n", r.wall_seconds, num(static_cast<double>(r.simulated_events)));
  fmt::print(out, "  {:<46}", "simulated, per client-hour");
  for (const auto& m : modes) fmt::print(out, "{:>14}", m.mode);
  fmt::print(out, "\n");
  auto row = [&](std::string_view label, auto value) {
    fmt::print(out, "  {:<46}", label);
    for (const auto& m : modes) fmt::print(out, "{:>14}", value(m));
    fmt::print(out, "\n");
  };
  row("clients", [](const mode_figures& m) { return num(static_cast<double>(m.clients)); });
  row("polls", [](const mode_figures& m) { return num(m.polls, 2); });
  row("polls that found nothing", [](const mode_figures& m) { return num(m.empty_polls, 2); });
  row("unnecessary bytes", [](const mode_figures& m) { return num(m.bytes, 1); });
  row("unnecessary TSDUs (packets)", [](const mode_figures& m) { return num(m.tsdus, 2); });
  row("all traffic: wire bytes", [](const mode_figures& m) { return num(m.all_bytes, 0); });
  row("all traffic: packets", [](const mode_figures& m) { return num(m.all_packets, 1); });
  row("unnecessary bytes / hour, 10,000 users", [](const mode_figures& m) { return num(m.bytes * 10000, 0); });
  row("unnecessary TSDUs / hour, 10,000 users", [](const mode_figures& m) { return num(m.tsdus * 10000, 0); });
  row("events generated", [](const mode_figures& m) { return num(static_cast<double>(m.generated)); });
  row("events missed", [](const mode_figures& m) { return num(static_cast<double>(m.missed)); });
  row("latency p50 / p99 (s)", [](const mode_figures& m) { return fmt::format("{:.2f}/{:.2f}", m.latency_p50, m.latency_p99); });
  // The sizes are one empty poll as the encoders write it, on this plan's wire model.
  fmt::print(out, "\n  {:<74}{:>14}{:>14}\n",
             fmt::format("closed form, same inputs (one empty poll: {} B + {} B, {} + {} TSDUs)",
                         num(in.request_bytes, 0), num(in.response_bytes, 0), in.request_tsdus, in.response_tsdus),
             "article", "Poisson");
  auto mrow = [&](std::string_view label, double a, double p, int d) {
    fmt::print(out, "  {:<74}{:>14}{:>14}\n", label, num(a, d), num(p, d));
  };
  mrow("empty fraction of polls", est.article.empty_fraction, est.poisson.empty_fraction, 4);
  mrow("unnecessary bytes per client-hour", est.article.bytes_per_client_hour, est.poisson.bytes_per_client_hour, 1);
  mrow("unnecessary TSDUs per client-hour", est.article.tsdus_per_client_hour, est.poisson.tsdus_per_client_hour, 2);
  if (poll && est.poisson.bytes_per_client_hour > 0)
    fmt::print(out, "  poll mode, simulated / Poisson model: bytes {:.4f}, TSDUs {:.4f}\n",
               poll->bytes / est.poisson.bytes_per_client_hour, poll->tsdus / est.poisson.tsdus_per_client_hour);
  fmt::print(out, "\n");
  if (full) {
    print_table(out, r);
    fmt::print(out, "\n");
  }

  nlohmann::json j;
  j["scenario"] = file;
  j["set"] = sets;
  j["wall_s"] = r.wall_seconds;
  j["simulated_events"] = r.simulated_events;
  for (const auto& m : modes)
    j["modes"][m.mode] = {{"clients", m.clients},
                          {"per_client_hour",
                           {{"polls", m.polls},
                            {"empty_polls", m.empty_polls},
                            {"unnecessary_bytes", m.bytes},
                            {"unnecessary_tsdus", m.tsdus},
                            {"wire_bytes", m.all_bytes},
                            {"packets", m.all_packets}}},
                          {"events", {{"generated", m.generated}, {"fetched", m.fetched}, {"missed", m.missed}}},
                          {"latency_p50_s", m.latency_p50},
                          {"latency_p99_s", m.latency_p99}};
  j["model"] = model::to_json(est);
  j["result"] = to_json(r);
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Runs scenario files in virtual time and prints the simulated unnecessary polling traffic beside the "
               "closed-form model (docs/seed-table.md).",
               "nudge-seed-table"};
  std::vector<std::string> files, sets;
  std::string json_path;
  app.add_option("scenarios", files, "Scenario files (TOML, docs/scenarios.md)")->required()->check(CLI::ExistingFile);
  app.add_option("--set", sets, "Override a scenario key, e.g. --set run.clients=2000 (repeatable)")
      ->type_name("KEY=VALUE");
  bool full = false;
  app.add_flag("--full", full, "Also print client-sim's result table (with the per mode and NAT breakdown)");
  app.add_option("--json", json_path, "Also write the figures, the model and each full result (nudge.result/1) as JSON");
  CLI11_PARSE(app, argc, argv);
  nlohmann::json all = nlohmann::json::array();
  try {
    for (const auto& f : files) all.push_back(run_one(f, sets, full, std::cout));
  } catch (const std::exception& e) {
    std::cerr << "nudge-seed-table: " << e.what() << "\n";
    return 2;
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << all.dump(2) << "\n";
    if (!out) {
      std::cerr << "nudge-seed-table: cannot write " << json_path << "\n";
      return 1;
    }
  }
  return 0;
}
