// ActiveSync's capture reader (nudge/activesync/capture_classifier.hpp).
#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nudge/activesync/capture_classifier.hpp"
#include "nudge/activesync/family.hpp"
#include "nudge/activesync/messages.hpp"
#include "nudge/http/reader.hpp"

namespace nudge::activesync {
namespace {

using engine::capture_none;

enum class seen : std::uint8_t { pings, pings_expired, pings_changes, pings_refused, syncs, messages, connections, http_errors, count_ };
constexpr std::array<std::string_view, static_cast<std::size_t>(seen::count_)> counter_list = {
    "pings", "pings_expired", "pings_changes", "pings_refused", "syncs", "messages", "connections", "http_errors"};
constexpr std::array<std::string_view, message_kind_count> kind_list = {
    "tcp_setup", "tcp_ack", "ping", "ping_status1", "ping_status2", "sync", "http_error"};
constexpr std::array<std::string_view, client_mode_count> mode_list = {"fixed", "adaptive"};
constexpr std::array<std::string_view, 1> path_list = {"ping"};

constexpr std::uint32_t kind_index(message_kind k) { return static_cast<std::uint32_t>(k); }

class reader final : public engine::capture_reader {
 public:
  void on_stream(engine::capture_flow& f, int side, protocol::bytes_view data, time_point at,
                 engine::capture_stream_sink& out) override {
    flow_state& st = state(f);
    if (f.client_side < 0 && !data.empty()) {
      const std::string_view s(reinterpret_cast<const char*>(data.data()), std::min<std::size_t>(data.size(), 5));
      f.client_side = static_cast<std::int8_t>(s == "HTTP/" ? 1 - side : side);
    }
    if (side == f.client_side) on_client_bytes(f, st, data, at, out);
    else on_server_bytes(f, st, data, at, out);
  }

  std::size_t pending(const engine::capture_flow& f, int side) const override {
    if (f.id >= flows_.size() || !flows_[f.id]) return 0;
    const flow_state& st = *flows_[f.id];
    return side == f.client_side ? st.requests->buffered() : st.responses->buffered();
  }

  void drop_pending(const engine::capture_flow& f, int side) override {
    if (f.id >= flows_.size() || !flows_[f.id]) return;
    flow_state& st = *flows_[f.id];
    if (side == f.client_side) st.requests = std::make_unique<http::request_reader>();
    else st.responses = std::make_unique<http::response_reader>();
  }

  engine::datagram_verdict on_datagram(const engine::capture_datagram&) override { return {}; }
  std::string_view flow_label(const engine::capture_flow&) const override { return "activesync"; }
  bool primary_flow(const engine::capture_flow&) const override { return true; }

  engine::capture_findings findings() const override {
    engine::capture_findings out = found_;
    for (const session_state& s : sessions_) {
      engine::capture_session& c = out.sessions.emplace_back();
      c.host = s.host;
      c.mode = s.adaptive ? 1 : 0;
      c.counters.assign(s.counters.begin(), s.counters.end());
    }
    return out;
  }

 private:
  struct flow_state {
    std::unique_ptr<http::request_reader> requests = std::make_unique<http::request_reader>();
    std::unique_ptr<http::response_reader> responses = std::make_unique<http::response_reader>();
    std::deque<std::uint32_t> outstanding;  // kinds of requests not yet answered
  };
  struct session_state {
    engine::capture_host host = 0;
    bool adaptive = false;  // its HeartbeatInterval changed
    std::optional<std::uint32_t> heartbeat_s;
    std::array<std::uint64_t, counter_list.size()> counters{};
    std::optional<time_point> last_ping;
  };

  flow_state& state(const engine::capture_flow& f) {
    if (flows_.size() <= f.id) flows_.resize(f.id + 1);
    if (!flows_[f.id]) flows_[f.id] = std::make_unique<flow_state>();
    return *flows_[f.id];
  }
  void add(std::uint32_t session, seen c, std::uint64_t n = 1) {
    if (session < sessions_.size()) sessions_[session].counters[static_cast<std::size_t>(c)] += n;
  }
  std::uint32_t session_of(engine::capture_flow& f, const std::string& device) {
    auto [it, fresh] = by_device_.try_emplace(device, static_cast<std::uint32_t>(sessions_.size()));
    if (fresh) sessions_.push_back({f.host[static_cast<std::size_t>(f.client_side)], false, {}, {}, {}});
    if (f.session != it->second) {
      f.session = it->second;
      add(f.session, seen::connections);
    }
    return it->second;
  }

  void on_client_bytes(engine::capture_flow& f, flow_state& st, protocol::bytes_view data, time_point at,
                       engine::capture_stream_sink& out) {
    st.requests->feed(data);
    for (;;) {
      auto d = st.requests->next();
      if (d.need_more()) return;
      if (d.malformed()) {
        const std::size_t dropped = st.requests->buffered();
        st.requests = std::make_unique<http::request_reader>();
        out.malformed(dropped);
        return;
      }
      std::uint32_t kind = capture_none;
      auto call = read_command_request(d.value);
      if (call.complete()) {
        const std::uint32_t s = session_of(f, call.value.device_id);
        session_state& ss = sessions_[s];
        if (call.value.cmd == "Ping") {
          kind = kind_index(message_kind::ping);
          add(s, seen::pings);
          auto p = decode_ping_request(protocol::as_bytes(call.value.body));
          if (p.complete() && p.value.heartbeat_s) {
            if (ss.heartbeat_s && *ss.heartbeat_s != *p.value.heartbeat_s) ss.adaptive = true;
            ss.heartbeat_s = p.value.heartbeat_s;
          }
          if (ss.last_ping) found_.poll_gaps.push_back({s, 0, (at - *ss.last_ping).count()});
          ss.last_ping = at;
        } else if (call.value.cmd == "Sync") {
          kind = kind_index(message_kind::sync);
          add(s, seen::syncs);
        }
      }
      st.outstanding.push_back(kind);
      out.message(kind, d.consumed);
    }
  }

  void on_server_bytes(engine::capture_flow& f, flow_state& st, protocol::bytes_view data, time_point at,
                       engine::capture_stream_sink& out) {
    st.responses->feed(data);
    for (;;) {
      auto d = st.responses->next();
      if (d.need_more()) return;
      if (d.malformed()) {
        const std::size_t dropped = st.responses->buffered();
        st.responses = std::make_unique<http::response_reader>();
        out.malformed(dropped);
        return;
      }
      if (d.value.status == 100) continue;
      std::uint32_t asked = capture_none;
      if (!st.outstanding.empty()) {
        asked = st.outstanding.front();
        st.outstanding.pop_front();
      }
      const std::uint32_t s = f.session;
      if (d.value.status != 200) {
        add(s, seen::http_errors);
        out.message(kind_index(message_kind::http_error), d.consumed);
        continue;
      }
      if (asked == kind_index(message_kind::ping)) {
        auto p = decode_ping_response(protocol::as_bytes(d.value.body));
        std::uint32_t kind = asked;
        if (p.complete()) {
          if (p.value.status == ping_status::expired) {
            kind = kind_index(message_kind::ping_status1);
            add(s, seen::pings_expired);
          } else if (p.value.status == ping_status::changes) {
            kind = kind_index(message_kind::ping_status2);
            add(s, seen::pings_changes);
          } else {
            add(s, seen::pings_refused);
          }
        }
        out.message(kind, d.consumed);
        continue;
      }
      out.message(asked, d.consumed);
      if (asked != kind_index(message_kind::sync) || s == capture_none) continue;
      auto r = decode_sync_response(protocol::as_bytes(d.value.body));
      if (!r.complete()) continue;
      for (const message_header& m : r.value.adds) {
        add(s, seen::messages);
        found_.events.push_back({next_event_++, s, 0, at, unix_us_of_date_received(m.date_received)});
      }
    }
  }

  std::vector<std::unique_ptr<flow_state>> flows_;
  std::map<std::string, std::uint32_t> by_device_;
  std::vector<session_state> sessions_;
  engine::capture_findings found_;
  std::uint64_t next_event_ = 0;
};

}  // namespace

std::string_view capture_classifier::family() const { return family_name; }
std::span<const std::string_view> capture_classifier::kind_names() const { return kind_list; }
std::span<const std::string_view> capture_classifier::mode_names() const { return mode_list; }
std::span<const std::string_view> capture_classifier::counter_names() const { return counter_list; }
std::span<const std::string_view> capture_classifier::path_names() const { return path_list; }

bool capture_classifier::begins_message(protocol::bytes_view stream) const {
  if (stream.empty()) return false;
  const std::string_view s(reinterpret_cast<const char*>(stream.data()), std::min<std::size_t>(stream.size(), 8));
  for (std::string_view start : {"POST ", "HTTP/1."}) {
    const std::size_t n = std::min(s.size(), start.size());
    if (s.substr(0, n) == start.substr(0, n)) return true;
  }
  return false;
}

std::unique_ptr<engine::capture_reader> capture_classifier::make_reader(const engine::capture_reading_options&) const {
  return std::make_unique<reader>();
}

const capture_classifier& activesync_capture_classifier() {
  static const capture_classifier instance;
  return instance;
}

}  // namespace nudge::activesync
