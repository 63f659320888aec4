#include "nudge/replay/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

namespace nudge::replay {

using nlohmann::json;

pacing_summary summarize_pacing(std::vector<double> e) {
  pacing_summary s;
  s.count = e.size();
  if (e.empty()) return s;
  std::sort(e.begin(), e.end());
  auto rank = [&](double q) {
    const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(e.size())));
    return e[std::clamp<std::size_t>(k, 1, e.size()) - 1];
  };
  s.p50_ms = rank(0.50);
  s.p99_ms = rank(0.99);
  s.max_ms = e.back();
  double sum = 0;
  for (double v : e) sum += v;
  s.mean_ms = sum / static_cast<double>(e.size());
  return s;
}

namespace {

double ms(duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

client_report report_client(const captured_client& cap, const client_replay& rep, const replay_options& o,
                            std::vector<double>& all_errors) {
  client_report r;
  r.user_dn = cap.user_dn;
  r.mode = cap.mode;
  r.failure = rep.failure;
  r.pings_received = rep.pings_received;
  r.events_injected = rep.events_injected;
  r.ops_captured = cap.ops.size();
  for (const auto& op : cap.ops) r.captured.push_back(op.name());
  for (const std::size_t k : rep.send_order) r.replayed.push_back(cap.ops[k].name());
  std::vector<double> errors;
  bool match = rep.failure.empty();
  bool consistent = match;
  auto problem = [&](std::string text) {
    if (r.problems.size() < 5) r.problems.push_back(std::move(text));
  };
  for (std::size_t lane_i = 0; lane_i < lane_count; ++lane_i) {
    const auto l = static_cast<lane>(lane_i);
    bool blocked_by_pending = false;  // an earlier op of this lane is still unanswered
    for (const std::size_t k : cap.lane_ops(l)) {
      const captured_op& c = cap.ops[k];
      const replayed_op& p = rep.ops[k];
      const bool expects_answer = c.kind != op_kind::cookie;
      if (expects_answer && !c.answered) ++r.captured_pending_at_end;
      if (!p.sent) {
        ++r.blocked;
        match = false;
        if (!blocked_by_pending) consistent = false;
        problem(c.name() + " at " + fmt::format("{:.3f}", to_seconds(c.sent)) + " s: " + p.note);
        continue;
      }
      ++r.ops_sent;
      if (!o.topspeed) {
        const double e = std::abs(ms(*p.sent - p.due));
        errors.push_back(e);
        all_errors.push_back(e);
      }
      if (p.fault) {
        ++r.faults;
        if (!c.answer_fault) {
          match = consistent = false;
          problem(c.name() + ": " + p.note);
        }
      }
      if (expects_answer && !p.answered) {
        ++r.pending_at_end;
        if (c.answered) blocked_by_pending = true;  // the live notifier held what the capture's answered
      }
    }
  }
  for (std::size_t k = 0; k < cap.ops.size(); ++k) {
    const captured_op& c = cap.ops[k];
    const replayed_op& p = rep.ops[k];
    client_report::op_line line;
    line.name = c.name();
    line.captured_s = to_seconds(c.sent);
    if (c.answered) line.captured_answer_s = to_seconds(*c.answered);
    line.due_s = to_seconds(p.due);
    if (p.sent) line.sent_s = to_seconds(*p.sent);
    if (p.answered) line.answered_s = to_seconds(*p.answered);
    line.note = p.note;
    r.timeline.push_back(std::move(line));
  }
  r.match = match;
  r.consistent = consistent;
  r.pacing = summarize_pacing(std::move(errors));
  return r;
}

json pacing_json(const pacing_summary& p, bool paced) {
  if (!paced) return nullptr;
  return {{"count", p.count}, {"p50_ms", p.p50_ms}, {"p99_ms", p.p99_ms}, {"max_ms", p.max_ms}, {"mean_ms", p.mean_ms}};
}

json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json timeline_json(const std::vector<client_report::op_line>& t) {
  json out = json::array();
  for (const auto& l : t) {
    json j = {{"op", l.name},       {"captured_s", l.captured_s}, {"captured_answer_s", opt(l.captured_answer_s)},
              {"due_s", l.due_s},   {"sent_s", opt(l.sent_s)},    {"answered_s", opt(l.answered_s)}};
    if (!l.note.empty()) j["note"] = l.note;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

replay_report make_report(const std::string& capture_path, const capture_sessions& capture,
                          const replay_outcome& outcome, const replay_options& options) {
  replay_report r;
  r.capture = capture_path;
  r.options = options;
  r.summary = capture.summary;
  r.clients_in_capture = capture.clients.size();
  r.events_injected = outcome.events_injected;
  r.events_acknowledged = outcome.events_acknowledged;
  r.wall_seconds = outcome.wall_seconds;
  std::vector<double> errors;
  for (const auto& rep : outcome.clients) {
    auto c = report_client(capture.clients[rep.capture_index], rep, options, errors);
    r.matched += c.match;
    r.consistent += c.consistent;
    r.failed += !c.failure.empty();
    r.ops_captured += c.ops_captured;
    r.ops_sent += c.ops_sent;
    r.blocked += c.blocked;
    r.pending_at_end += c.pending_at_end;
    r.captured_pending_at_end += c.captured_pending_at_end;
    r.faults += c.faults;
    r.pings_received += c.pings_received;
    r.clients.push_back(std::move(c));
  }
  r.pacing = summarize_pacing(std::move(errors));
  return r;
}

json to_json(const replay_report& r) {
  const bool paced = !r.options.topspeed;
  json clients = json::array();
  for (const auto& c : r.clients) {
    clients.push_back({{"user_dn", c.user_dn},
                       {"mode", c.mode},
                       {"match", c.match},
                       {"consistent", c.consistent},
                       {"failure", c.failure.empty() ? json(nullptr) : json(c.failure)},
                       {"ops_captured", c.ops_captured},
                       {"ops_sent", c.ops_sent},
                       {"blocked", c.blocked},
                       {"pending_at_end", c.pending_at_end},
                       {"captured_pending_at_end", c.captured_pending_at_end},
                       {"faults", c.faults},
                       {"pings_received", c.pings_received},
                       {"events_injected", c.events_injected},
                       {"problems", c.problems},
                       {"pacing", pacing_json(c.pacing, paced)},
                       {"captured", c.captured},
                       {"replayed", c.replayed},
                       {"timeline", timeline_json(c.timeline)}});
  }
  std::map<std::string, std::size_t> modes;
  for (const auto& c : r.clients) ++modes[c.mode];
  return {{"schema", "nudge.replay/1"},
          {"capture",
           {{"file", r.capture},
            {"link_type", r.summary.link_type},
            {"packets", r.summary.packets},
            {"tcp_connections", r.summary.tcp_connections},
            {"dcerpc_connections", r.summary.dcerpc_connections},
            {"pdus", r.summary.pdus},
            {"clients", r.clients_in_capture},
            {"span_s", to_seconds(r.summary.span)},
            {"skipped", r.summary.skipped}}},
          {"target",
           {{"notifier", r.options.notifier.to_string()},
            {"notifier_udp", r.options.notifier_udp.to_string()},
            {"control", r.options.control ? json(r.options.control->to_string()) : json(nullptr)}}},
          {"speed", paced ? json(r.options.speed) : json("topspeed")},
          {"wall_s", r.wall_seconds},
          {"summary",
           {{"clients", r.clients.size()},
            {"by_mode", modes},
            {"matched", r.matched},
            {"consistent", r.consistent},
            {"failed", r.failed},
            {"ok", r.ok()},
            {"ops_captured", r.ops_captured},
            {"ops_sent", r.ops_sent},
            {"blocked", r.blocked},
            {"pending_at_end", r.pending_at_end},
            {"captured_pending_at_end", r.captured_pending_at_end},
            {"faults", r.faults},
            {"events_injected", r.events_injected},
            {"events_acknowledged", r.events_acknowledged},
            {"pings_received", r.pings_received},
            {"pacing", pacing_json(r.pacing, paced)}}},
          {"clients", std::move(clients)}};
}

namespace {

std::string join(const std::vector<std::string>& names) {
  // Runs of the same operation are folded: "EcDoRpcExt2 x12".
  std::string out;
  for (std::size_t i = 0; i < names.size();) {
    std::size_t j = i;
    while (j < names.size() && names[j] == names[i]) ++j;
    if (!out.empty()) out += ", ";
    out += names[i];
    if (j - i > 1) out += " x" + std::to_string(j - i);
    i = j;
  }
  return out;
}

std::string pacing_text(const pacing_summary& p) {
  if (p.count == 0) return "none measured";
  return fmt::format("p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms over {} requests", p.p50_ms, p.p99_ms, p.max_ms,
                     p.count);
}

}  // namespace

void print_report(std::ostream& out, const replay_report& r, bool verbose) {
  std::map<std::string, std::size_t> modes;
  for (const auto& c : r.clients) ++modes[c.mode];
  std::string by_mode;
  for (const auto& [m, n] : modes) by_mode += (by_mode.empty() ? "" : ", ") + std::to_string(n) + " " + m;
  out << fmt::format("capture   {} ({}, {} packets, {} DCE/RPC connections, {} clients, {:.1f} s)\n", r.capture,
                     r.summary.link_type, r.summary.packets, r.summary.dcerpc_connections, r.clients_in_capture,
                     to_seconds(r.summary.span));
  for (const auto& s : r.summary.skipped) out << "  skipped: " << s << '\n';
  out << fmt::format("target    {} (UDP {}){}, {}\n", r.options.notifier.to_string(),
                     r.options.notifier_udp.to_string(),
                     r.options.control ? ", mail injected through " + r.options.control->to_string() : ", no mail injected",
                     r.options.topspeed ? std::string("at top speed") : fmt::format("speed {}", r.options.speed));
  out << fmt::format("clients   {} replayed ({}): {} match, {} consistent, {} failed\n", r.clients.size(), by_mode,
                     r.matched, r.consistent, r.failed);
  out << fmt::format("ops       {} captured, {} sent, {} not sent; {} pending at end (capture: {}); {} faults\n",
                     r.ops_captured, r.ops_sent, r.blocked, r.pending_at_end, r.captured_pending_at_end, r.faults);
  if (r.options.control)
    out << fmt::format("mail      {} events injected, {} acknowledged\n", r.events_injected, r.events_acknowledged);
  out << fmt::format("pings     {} received\n", r.pings_received);
  out << "pacing    " << (r.options.topspeed ? std::string("not paced (--topspeed)") : pacing_text(r.pacing)) << '\n';
  out << fmt::format("wall      {:.1f} s\n", r.wall_seconds);
  std::size_t shown = 0;
  for (const auto& c : r.clients) {
    if (!verbose && c.match) continue;
    if (!verbose && ++shown > 20) {
      out << "  ... (more clients differ; --json has them all)\n";
      break;
    }
    out << fmt::format("\n{} [{}]: {}{}\n", c.user_dn, c.mode,
                       c.match ? "match" : c.consistent ? "consistent (blocked behind pending calls)" : "DIFFERS",
                       c.failure.empty() ? "" : " - failed: " + c.failure);
    out << "  captured: " << join(c.captured) << '\n';
    out << "  replayed: " << join(c.replayed) << '\n';
    if (!r.options.topspeed) out << "  pacing:   " << pacing_text(c.pacing) << '\n';
    for (const auto& p : c.problems) out << "  - " << p << '\n';
  }
}

}  // namespace nudge::replay
