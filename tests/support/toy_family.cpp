#include "toy_family.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"

namespace nudge::toy {
namespace {

using engine::byte_buffer;

byte_buffer bytes_of(const std::string& s) { return byte_buffer(s.begin(), s.end()); }

class tick_client final : public engine::session {
 public:
  explicit tick_client(const engine::client_context& ctx) : ctx_(ctx), m_(*ctx.metrics) {
    m_.fit(1, 2);
    interval_ = ctx.keys->span("tick.interval");
    for (const auto& l : ctx.server.listeners)
      if (l.id == 0) server_ = l.at;
  }
  void start(time_point) override {
    ++m_.clients_started;
    acts_.push_back(engine::connect{conn, server_});
    m_.traffic.add(kind::tcp_setup, metrics::direction::to_server, ctx_.wire.tcp_message(0));
  }
  void handle(time_point now, const engine::event& e) override {
    if (!failure_.empty()) return;
    if (std::holds_alternative<engine::connected>(e)) {
      ++m_.clients_ready;
      tick(now);
    } else if (const auto* r = std::get_if<engine::refused>(&e)) {
      fail("connect refused: " + r->reason);
    } else if (std::holds_alternative<engine::closed>(e)) {
      fail("the server closed the connection");
    } else if (const auto* b = std::get_if<engine::stream_bytes>(&e)) {
      buf_.append(reinterpret_cast<const char*>(b->bytes.data()), b->bytes.size());
      for (auto nl = buf_.find('\n'); nl != std::string::npos; nl = buf_.find('\n')) {
        reply(buf_.substr(0, nl + 1));
        buf_.erase(0, nl + 1);
      }
    } else if (std::holds_alternative<engine::timer>(e)) {
      tick(now);
    }
  }
  time_point next_deadline() const override { return failure_.empty() ? next_ : never; }
  std::vector<engine::action>& actions() override { return acts_; }
  std::string_view failure() const override { return failure_; }

  static constexpr engine::connection_id conn = engine::outgoing_bit | 0;

 private:
  void tick(time_point now) {
    const std::string line = "TICK " + ctx_.mailbox + "\n";
    m_.traffic.add(kind::tick_request, metrics::direction::to_server, ctx_.wire.tcp_message(line.size()));
    acts_.push_back(engine::send{conn, bytes_of(line)});
    m_.add(counter::ticks);
    next_ = now + interval_;
  }
  void reply(const std::string& line) {
    m_.traffic.add(kind::tick_reply, metrics::direction::to_client, ctx_.wire.tcp_message(line.size()));
    const auto space = line.find(' ');
    const std::uint64_t n = std::stoull(line.substr(0, space));
    const auto age = std::chrono::milliseconds(std::stoll(line.substr(space + 1)));
    if (n == 0) {
      m_.add(counter::empty_ticks);
      return;
    }
    m_.events_by_path[0] += n;
    m_.latency.record(age);
    m_.latency_by_path[0].record(age);
  }
  void fail(std::string why) {
    failure_ = std::move(why);
    ++m_.clients_failed;
  }

  engine::client_context ctx_;
  metrics::client_metrics& m_;
  engine::ip_endpoint server_;
  std::vector<engine::action> acts_;
  std::string buf_;
  std::string failure_;
  time_point next_ = never;
  duration interval_{};
};

class tick_server final : public engine::server_session {
 public:
  void start(time_point) override { acts_.push_back(engine::listen{0, 0}); }
  void handle(time_point now, const engine::event& e) override {
    const auto* b = std::get_if<engine::stream_bytes>(&e);
    if (!b) return;
    std::string& buf = bufs_[b->conn];
    buf.append(reinterpret_cast<const char*>(b->bytes.data()), b->bytes.size());
    for (auto nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n')) {
      const std::string mailbox = buf.substr(5, nl - 5);  // after "TICK "
      buf.erase(0, nl + 1);
      auto& mb = boxes_[mailbox];
      const std::uint64_t n = mb.times.size();
      const auto age = n ? std::chrono::duration_cast<std::chrono::milliseconds>(now - mb.times.front()).count() : 0;
      fetched_ += n;
      mb.times.clear();
      acts_.push_back(engine::send{b->conn, bytes_of(std::to_string(n) + " " + std::to_string(age) + "\n")});
    }
  }
  time_point next_deadline() const override { return never; }
  std::vector<engine::action>& actions() override { return acts_; }
  std::uint64_t inject_event(time_point now, std::string_view mailbox) override {
    boxes_[std::string(mailbox)].times.push_back(now);
    return ++generated_;
  }
  std::vector<std::pair<std::string, std::uint64_t>> stats() const override {
    return {{"events_generated", generated_}, {"events_fetched", fetched_}};
  }

 private:
  struct backlog_of {
    std::vector<time_point> times;
  };
  std::map<std::string, backlog_of, std::less<>> boxes_;
  std::map<engine::connection_id, std::string> bufs_;
  std::vector<engine::action> acts_;
  std::uint64_t generated_ = 0;
  std::uint64_t fetched_ = 0;
};

// ---- reading captures ------------------------------------------------------------------
// What nudge-pcap needs from a family, and no more: where a message starts, how
// lines frame, which side is the client (it sends "TICK"), and per session the
// ticks, the empty ones, their gaps and each reply's events with their age.

constexpr std::array<std::string_view, 4> capture_kinds = {"tcp_setup", "tcp_ack", "tick_request", "tick_reply"};
constexpr std::array<std::string_view, 1> capture_modes = {"tick"};
constexpr std::array<std::string_view, 3> capture_counters = {"ticks", "empty_ticks", "events"};
constexpr std::array<std::string_view, 1> capture_paths = {"tick"};
constexpr std::size_t max_line = 512;  // longer without a newline: not the toy's

class tick_capture_reader final : public engine::capture_reader {
 public:
  void on_stream(engine::capture_flow& f, int side, engine::bytes_view data, time_point at,
                 engine::capture_stream_sink& out) override {
    std::string& buf = state(f).line[static_cast<std::size_t>(side)];
    buf.append(reinterpret_cast<const char*>(data.data()), data.size());
    for (auto nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n')) {
      const std::string_view line(buf.data(), nl + 1);
      out.message(on_line(f, side, line, at), line.size());
      buf.erase(0, nl + 1);
    }
    if (buf.size() > max_line) {
      const std::size_t dropped = buf.size();
      buf.clear();
      out.malformed(dropped);
    }
  }
  std::size_t pending(const engine::capture_flow& f, int side) const override {
    const auto it = flows_.find(f.id);
    return it == flows_.end() ? 0 : it->second.line[static_cast<std::size_t>(side)].size();
  }
  void drop_pending(const engine::capture_flow& f, int side) override {
    if (auto it = flows_.find(f.id); it != flows_.end()) it->second.line[static_cast<std::size_t>(side)].clear();
  }
  engine::datagram_verdict on_datagram(const engine::capture_datagram&) override { return {}; }
  std::string_view flow_label(const engine::capture_flow&) const override { return "tick"; }
  bool primary_flow(const engine::capture_flow&) const override { return true; }
  engine::capture_findings findings() const override {
    engine::capture_findings out = found_;
    for (const session_state& s : sessions_) {
      engine::capture_session& c = out.sessions.emplace_back();
      c.host = s.host;
      c.counters.assign(s.counters.begin(), s.counters.end());
    }
    return out;
  }

 private:
  struct flow_state {
    std::array<std::string, 2> line;
  };
  struct session_state {
    engine::capture_host host = 0;
    std::array<std::uint64_t, capture_counters.size()> counters{};
    std::optional<time_point> last_tick;
  };

  flow_state& state(const engine::capture_flow& f) { return flows_[f.id]; }

  std::uint32_t on_line(engine::capture_flow& f, int side, std::string_view line, time_point at) {
    const bool tick = line.starts_with("TICK ");
    if (f.client_side < 0) f.client_side = static_cast<std::int8_t>(tick ? side : 1 - side);
    if (f.session == engine::capture_none) {
      f.session = static_cast<std::uint32_t>(sessions_.size());
      sessions_.push_back({f.host[static_cast<std::size_t>(f.client_side)], {}, std::nullopt});
    }
    session_state& s = sessions_[f.session];
    if (side == f.client_side) {
      if (!tick) return engine::capture_none;
      ++s.counters[0];
      if (s.last_tick) found_.poll_gaps.push_back({f.session, 0, (at - *s.last_tick).count()});
      s.last_tick = at;
      return static_cast<std::uint32_t>(kind::tick_request);
    }
    // "<n> <age_ms>\n": n events, the oldest created age_ms before the reply.
    std::uint64_t n = 0;
    std::int64_t age_ms = 0;
    const char* p = line.data();
    const char* end = line.data() + line.size();
    const auto r1 = std::from_chars(p, end, n);
    if (r1.ec != std::errc{} || r1.ptr == end || *r1.ptr != ' ') return engine::capture_none;
    if (std::from_chars(r1.ptr + 1, end, age_ms).ec != std::errc{}) return engine::capture_none;
    if (n == 0) {
      ++s.counters[1];
    } else {
      s.counters[2] += n;
      // Only the oldest event's age is on the wire: it stands for the reply's first event.
      const std::int64_t created_us = at.time_since_epoch().count() / 1000 - age_ms * 1000;
      found_.events.push_back({0, f.session, 0, at, created_us});
    }
    return static_cast<std::uint32_t>(kind::tick_reply);
  }

  std::map<std::uint32_t, flow_state> flows_;
  std::vector<session_state> sessions_;
  engine::capture_findings found_;
};

class tick_capture_classifier final : public engine::capture_classifier {
 public:
  std::string_view family() const override { return family_name; }
  std::span<const std::string_view> kind_names() const override { return capture_kinds; }
  std::span<const std::string_view> mode_names() const override { return capture_modes; }
  bool begins_message(engine::bytes_view stream) const override {
    if (stream.empty()) return false;
    const std::string_view s(reinterpret_cast<const char*>(stream.data()), std::min<std::size_t>(stream.size(), 5));
    return std::string_view("TICK ").starts_with(s) || (stream[0] >= '0' && stream[0] <= '9');
  }
  std::span<const std::string_view> counter_names() const override { return capture_counters; }
  std::span<const std::string_view> path_names() const override { return capture_paths; }
  std::unique_ptr<engine::capture_reader> make_reader(const engine::capture_reading_options&) const override {
    return std::make_unique<tick_capture_reader>();
  }
};

}  // namespace

void register_toy_family() {
  auto& r = engine::registry::instance();
  if (r.find(family_name)) return;
  engine::family f;
  f.name = std::string(family_name);
  f.doc = "test-only tick polling: one line per tick, the server answers with the pending count";
  f.words.modes = {{"tick", "polls its mailbox every 30 s over one connection"}};
  f.words.kinds = {{"tcp_setup", "TCP handshakes"},
                   {"tcp_ack", "pure ACKs (not estimated by the toy)"},
                   {"tick_request", "TICK <mailbox>"},
                   {"tick_reply", "<pending> <age_ms>"}};
  f.words.paths = {{"tick", "fetched by a tick"}};
  f.words.counters = {{"ticks", "TICK requests sent"}, {"empty_ticks", "ticks that found nothing"}};
  // Its own scenario key: the drivers hand the family its keys at their
  // defaults (a scenario cannot set other families' keys yet).
  f.keys = {{"tick.interval", engine::key_spec::type::duration, "30s", "between ticks"}};
  f.make_client = [](const engine::client_context& ctx) -> std::unique_ptr<engine::session> {
    return std::make_unique<tick_client>(ctx);
  };
  f.make_server = [](const engine::server_context&) -> std::unique_ptr<engine::server_session> {
    return std::make_unique<tick_server>();
  };
  static const tick_capture_classifier capture;
  f.capture = &capture;
  r.add(std::move(f));
}

}  // namespace nudge::toy
