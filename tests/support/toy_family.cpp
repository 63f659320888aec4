#include "toy_family.hpp"

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
  r.add(std::move(f));
}

}  // namespace nudge::toy
