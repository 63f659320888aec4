#include "nudge/model/seed_model.hpp"

#include "nudge/model/bus_model.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>

namespace nudge::model {

std::string seed_inputs::validate() const {
  auto bad = [](double v) { return !std::isfinite(v) || v < 0; };
  if (bad(users)) return "users must be a non-negative number";
  if (bad(events_per_day)) return "events per day must be a non-negative number";
  if (bad(day_hours) || day_hours <= 0 || day_hours > 24) return "the business day must last more than 0 and at most 24 hours";
  if (bad(poll_interval_s) || poll_interval_s <= 0) return "the poll interval must be positive";
  if (bad(request_bytes) || bad(response_bytes)) return "message sizes must be non-negative";
  if (bad(request_tsdus) || bad(response_tsdus)) return "TSDU counts must be non-negative";
  return {};
}

namespace {

poll_waste waste(const seed_inputs& in, double empty_fraction, double polls_per_client_hour) {
  poll_waste w;
  w.empty_fraction = empty_fraction;
  w.polls_per_client_hour = polls_per_client_hour;
  w.empty_polls_per_client_hour = empty_fraction * polls_per_client_hour;
  w.bytes_per_client_hour = w.empty_polls_per_client_hour * (in.request_bytes + in.response_bytes);
  w.tsdus_per_client_hour = w.empty_polls_per_client_hour * (in.request_tsdus + in.response_tsdus);
  w.bytes_per_hour = w.bytes_per_client_hour * in.users;
  w.tsdus_per_hour = w.tsdus_per_client_hour * in.users;
  return w;
}

}  // namespace

seed_estimate estimate(const seed_inputs& in) {
  seed_estimate e;
  e.in = in;
  const double lambda_per_s = in.events_per_client_hour() / 3600.0;
  const double T = in.poll_interval_s;
  const double mean_interval = in.jitter ? 1.5 * T : T;
  const double polls_per_hour = 3600.0 / mean_interval;
  e.events_per_client_hour = in.events_per_client_hour();
  e.events_per_poll = lambda_per_s * mean_interval;
  // (a) every event makes one poll non-empty: empty share = 1 - events/polls.
  e.article = waste(in, std::max(0.0, 1.0 - e.events_per_poll), polls_per_hour);
  // (b) Poisson arrivals: an interval of length X is empty with probability exp(-lambda X).
  double empty;
  const double x = lambda_per_s * T;
  if (!in.jitter) empty = std::exp(-x);
  else empty = x > 0 ? (std::exp(-x) - std::exp(-2 * x)) / x : 1.0;  // X ~ U[T, 2T]
  e.poisson = waste(in, empty, polls_per_hour);
  return e;
}

std::string slip_statement() {
  const article_as_printed a;
  return fmt::format("the article says {} million TSDUs per hour; its own numbers give {} million",
                     a.tsdus_per_hour_said / 1e6, a.tsdus_per_hour_own_numbers() / 1e6);
}

nlohmann::json to_json(const seed_estimate& e) {
  auto w = [](const poll_waste& p) {
    return nlohmann::json{{"empty_fraction", p.empty_fraction},
                          {"per_client_hour",
                           {{"polls", p.polls_per_client_hour},
                            {"empty_polls", p.empty_polls_per_client_hour},
                            {"unnecessary_bytes", p.bytes_per_client_hour},
                            {"unnecessary_tsdus", p.tsdus_per_client_hour}}},
                          {"all_users_per_hour",
                           {{"unnecessary_bytes", p.bytes_per_hour}, {"unnecessary_tsdus", p.tsdus_per_hour}}}};
  };
  const article_as_printed a;
  return {{"schema", "nudge.model/1"},
          {"inputs",
           {{"users", e.in.users},
            {"events_per_day", e.in.events_per_day},
            {"day_hours", e.in.day_hours},
            {"poll_interval_s", e.in.poll_interval_s},
            {"jitter", e.in.jitter},
            {"request_bytes", e.in.request_bytes},
            {"response_bytes", e.in.response_bytes},
            {"request_tsdus", e.in.request_tsdus},
            {"response_tsdus", e.in.response_tsdus}}},
          {"events_per_client_hour", e.events_per_client_hour},
          {"events_per_poll", e.events_per_poll},
          {"article_arithmetic", w(e.article)},
          {"poisson", w(e.poisson)},
          {"article_as_printed",
           {{"empty_fraction", a.empty_fraction},
            {"bytes_per_client_hour", a.bytes_per_client_hour},
            {"tsdus_per_client_hour", a.tsdus_per_client_hour},
            {"users", a.users},
            {"bytes_per_hour", a.bytes_per_hour},
            {"tsdus_per_hour_said", a.tsdus_per_hour_said},
            {"tsdus_per_hour_own_numbers", a.tsdus_per_hour_own_numbers()}}},
          {"slip", slip_statement()}};
}

std::string grouped(double v, int decimals) {
  std::string s = fmt::format("{:.{}f}", std::abs(v), decimals);
  const auto dot = s.find('.');
  std::string whole = s.substr(0, dot), frac = dot == std::string::npos ? "" : s.substr(dot);
  std::string out;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    if (i && (whole.size() - i) % 3 == 0) out += ',';
    out += whole[i];
  }
  return (v < 0 ? "-" : "") + out + frac;
}

void print(std::ostream& out, const seed_estimate& e) {
  const auto& in = e.in;
  fmt::print(out, "nudge-model: unnecessary polling traffic, closed form (the seed article, paragraphs 13-19)\n");
  fmt::print(out, "inputs: {} users, {} events per {} h business day ({} per client-hour), poll every {} s{}\n",
             grouped(in.users), in.events_per_day, in.day_hours, e.events_per_client_hour, in.poll_interval_s,
             in.jitter ? " (jitter U[1x, 2x])" : "");
  fmt::print(out, "        request {} B in {} TSDU, response {} B in {} TSDU; {:.4f} events per poll interval\n\n",
             in.request_bytes, in.request_tsdus, in.response_bytes, in.response_tsdus, e.events_per_poll);
  fmt::print(out, "{:<44}{:>20}{:>20}\n", "", "article arithmetic", "Poisson");
  fmt::print(out, "{:<44}{:>20}{:>20}\n", "", "1 - events/polls", "exp(-lambda T)");
  auto row = [&](std::string_view label, double a, double p, int decimals) {
    fmt::print(out, "{:<44}{:>20}{:>20}\n", label, grouped(a, decimals), grouped(p, decimals));
  };
  row("empty fraction of polls", e.article.empty_fraction, e.poisson.empty_fraction, 4);
  row("per client-hour: polls", e.article.polls_per_client_hour, e.poisson.polls_per_client_hour, 2);
  row("per client-hour: empty polls", e.article.empty_polls_per_client_hour, e.poisson.empty_polls_per_client_hour, 2);
  row("per client-hour: unnecessary bytes", e.article.bytes_per_client_hour, e.poisson.bytes_per_client_hour, 0);
  row("per client-hour: unnecessary TSDUs", e.article.tsdus_per_client_hour, e.poisson.tsdus_per_client_hour, 1);
  row("all users, per hour: unnecessary bytes", e.article.bytes_per_hour, e.poisson.bytes_per_hour, 0);
  row("all users, per hour: unnecessary TSDUs", e.article.tsdus_per_hour, e.poisson.tsdus_per_hour, 0);
  const article_as_printed a;
  fmt::print(out, "\nthe article as printed: {:.0f}% of polls empty; {} bytes and {} TSDUs per client-hour; for {} users "
                  "{} MB and \"1.8 million\" TSDUs per hour\n",
             a.empty_fraction * 100, grouped(a.bytes_per_client_hour), a.tsdus_per_client_hour, grouped(a.users),
             a.bytes_per_hour / 1e6);
  fmt::print(out, "{} ({} TSDUs x {} users)\n", slip_statement(), a.tsdus_per_client_hour, grouped(a.users));
}

int model_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"The closed-form model of polling waste (the seed article's arithmetic and the Poisson expectation).",
               "nudge-model"};
  seed_inputs in;
  bool json = false;
  app.add_option("--users", in.users, "Users (clients), one mailbox each")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--events-per-day", in.events_per_day, "New-mail events per user per business day")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--day-hours", in.day_hours, "Hours in the business day")->capture_default_str()->check(CLI::Range(1e-9, 24.0));
  app.add_option("--poll-interval", in.poll_interval_s, "Seconds between polls")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--jitter", in.jitter, "Wait U[1x, 2x] the interval between polls, as Outlook did");
  app.add_option("--request-bytes", in.request_bytes, "Bytes of a poll request")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--response-bytes", in.response_bytes, "Bytes of an empty poll response")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--request-tsdus", in.request_tsdus, "TSDUs (packets) of a poll request")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--response-tsdus", in.response_tsdus, "TSDUs (packets) of an empty poll response")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", json, "Print JSON (schema nudge.model/1) instead of the table");
  bool bus = false, bus_json = false, bus_close = false, bus_no_expect = false;
  app.add_flag("--bus", bus, "The polling bus of seed 003 instead (docs/pollbus.md): bytes and packets per client-hour "
                             "at --poll-interval, sized by its encoders, on the faithful wire model");
  app.add_flag("--bus-json", bus_json, "The bus's JSON profile instead of SOAP");
  app.add_flag("--bus-close", bus_close, "A connection per poll instead of keep-alive");
  app.add_flag("--bus-no-expect", bus_no_expect, "Without Expect: 100-continue");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    err << "nudge-model: " << e.what() << "\n";
    return 2;
  }
  if (auto problem = in.validate(); !problem.empty()) {
    err << "nudge-model: " << problem << "\n";
    return 2;
  }
  if (bus) {
    bus_inputs b;
    b.enc = bus_json ? pollbus::encoding::json : pollbus::encoding::soap;
    b.keep_alive = !bus_close;
    b.expect_continue = !bus_no_expect;
    b.interval = std::chrono::duration_cast<duration>(std::chrono::duration<double>(in.poll_interval_s));
    b.events_per_client_hour = in.events_per_day / in.day_hours;
    const bus_hour h = bus_per_client_hour(b);
    const bus_poll_sizes s = bus_poll_on_the_wire(b);
    if (json) {
      out << nlohmann::json{{"schema", "nudge.model.bus/1"},
                            {"encoding", std::string(pollbus::encoding_name(b.enc))},
                            {"keep_alive", b.keep_alive},
                            {"expect_continue", b.expect_continue},
                            {"poll_interval_s", in.poll_interval_s},
                            {"events_per_client_hour", b.events_per_client_hour},
                            {"polls_per_client_hour", h.polls},
                            {"wire_bytes_per_client_hour", h.wire_bytes()},
                            {"packets_per_client_hour", h.packets()},
                            {"wasted_polls_per_client_hour", h.wasted_polls},
                            {"request_bytes", s.request_head + s.request_body},
                            {"response_bytes", s.response}}
                 .dump(2)
          << "\n";
    } else {
      fmt::print(out, "bus ({}, {}, {}): a poll every {} s: request {} B + {} response {} B\n",
                 pollbus::encoding_name(b.enc), b.keep_alive ? "keep-alive" : "a connection per poll",
                 b.expect_continue ? "Expect: 100-continue" : "no Expect", in.poll_interval_s,
                 s.request_head + s.request_body, b.expect_continue ? "100 Continue +" : "", s.response);
      fmt::print(out, "per client-hour: {:.1f} polls ({:.1f} wasted), {} wire bytes, {:.1f} packets\n", h.polls,
                 h.wasted_polls, grouped(h.wire_bytes(), 0), h.packets());
    }
    return 0;
  }
  const auto e = estimate(in);
  if (json) out << to_json(e).dump(2) << "\n";
  else print(out, e);
  return 0;
}

}  // namespace nudge::model
