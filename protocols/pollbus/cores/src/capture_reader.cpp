// The bus's capture reader (nudge/pollbus/capture_classifier.hpp).
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nudge/http/reader.hpp"
#include "nudge/pollbus/bus_time.hpp"
#include "nudge/pollbus/capture_classifier.hpp"
#include "nudge/pollbus/family.hpp"
#include "nudge/pollbus/http_binding.hpp"

namespace nudge::pollbus {
namespace {

using engine::capture_none;

// Per-session counters, named as the client core's (family.hpp, counter).
enum class seen : std::uint8_t {
  polls,
  wasted_polls,
  registrations,
  connections,
  received_empty,
  received_poll_interval,
  received_poll_mode,
  received_chat,
  received_other,
  http_errors,
  count_
};
constexpr std::array<std::string_view, static_cast<std::size_t>(seen::count_)> counter_list = {
    "polls",          "wasted_polls",           "registrations", "connections",    "received_empty",
    "received_poll_interval", "received_poll_mode", "received_chat", "received_other", "http_errors"};

constexpr std::array<std::string_view, message_kind_count> kind_list = {"tcp_setup", "tcp_ack", "register",
                                                                         "poll",      "continue", "http_error"};
constexpr std::array<std::string_view, client_mode_count> mode_list = {"poll", "fixed", "activity", "load"};
constexpr std::array<std::string_view, 1> path_list = {"poll"};

constexpr std::uint32_t kind_index(message_kind k) { return static_cast<std::uint32_t>(k); }

std::uint32_t mode_of_path(std::string_view target) {
  for (std::size_t m = 0; m < client_mode_count; ++m)
    if (target == mode_path(static_cast<client_mode>(m))) return static_cast<std::uint32_t>(m);
  return 0;
}

class reader final : public engine::capture_reader {
 public:
  void on_stream(engine::capture_flow& f, int side, protocol::bytes_view data, time_point at,
                 engine::capture_stream_sink& out) override {
    flow_state& st = state(f);
    if (f.client_side < 0 && !data.empty()) {
      // Only a server writes a status line first.
      const std::string_view s(reinterpret_cast<const char*>(data.data()), std::min<std::size_t>(data.size(), 5));
      f.client_side = static_cast<std::int8_t>(s == "HTTP/" ? 1 - side : side);
    }
    if (side == f.client_side) on_client_bytes(f, st, data, at, out);
    else on_server_bytes(f, st, data, at, out);
  }

  std::size_t pending(const engine::capture_flow& f, int side) const override {
    if (f.id >= flows_.size() || !flows_[f.id]) return 0;
    const flow_state& st = *flows_[f.id];
    return side == f.client_side ? st.raw.size() : st.responses->buffered();
  }

  void drop_pending(const engine::capture_flow& f, int side) override {
    if (f.id >= flows_.size() || !flows_[f.id]) return;
    flow_state& st = *flows_[f.id];
    if (side == f.client_side) {
      st.raw.clear();
      st.requests = std::make_unique<http::request_reader>();
    } else {
      st.responses = std::make_unique<http::response_reader>();
    }
  }

  engine::datagram_verdict on_datagram(const engine::capture_datagram&) override { return {}; }
  std::string_view flow_label(const engine::capture_flow&) const override { return "http"; }
  bool primary_flow(const engine::capture_flow&) const override { return true; }

  engine::capture_findings findings() const override {
    engine::capture_findings out = found_;
    for (const session_state& s : sessions_) {
      engine::capture_session& c = out.sessions.emplace_back();
      c.host = s.host;
      c.mode = s.mode;
      c.counters.assign(s.counters.begin(), s.counters.end());
    }
    return out;
  }

 private:
  struct asked {
    std::uint32_t kind = capture_none;
    bool empty = false;  // an EmptyMessage poll: wasted if the answer carries nothing
  };
  struct flow_state {
    std::string raw;  // the client's bytes not yet framed (the readers do not say where a head ends)
    std::unique_ptr<http::request_reader> requests = std::make_unique<http::request_reader>();
    std::unique_ptr<http::response_reader> responses = std::make_unique<http::response_reader>();
    std::deque<asked> outstanding;  // requests not yet answered, in order
  };
  struct session_state {
    engine::capture_host host = 0;
    std::uint32_t mode = 0;
    std::array<std::uint64_t, counter_list.size()> counters{};
    std::optional<time_point> last_poll;
  };

  flow_state& state(const engine::capture_flow& f) {
    if (flows_.size() <= f.id) flows_.resize(f.id + 1);
    if (!flows_[f.id]) flows_[f.id] = std::make_unique<flow_state>();
    return *flows_[f.id];
  }

  void add(std::uint32_t session, seen c, std::uint64_t n = 1) {
    if (session < sessions_.size()) sessions_[session].counters[static_cast<std::size_t>(c)] += n;
  }

  std::uint32_t session_of(engine::capture_flow& f, const guid& agent, std::uint32_t mode) {
    auto [it, fresh] = by_agent_.try_emplace(agent, static_cast<std::uint32_t>(sessions_.size()));
    if (fresh) sessions_.push_back({f.host[static_cast<std::size_t>(f.client_side)], mode, {}, std::nullopt});
    if (f.session != it->second) {
      f.session = it->second;
      add(f.session, seen::connections);
    }
    return it->second;
  }

  void on_client_bytes(engine::capture_flow& f, flow_state& st, protocol::bytes_view data, time_point at,
                       engine::capture_stream_sink& out) {
    st.raw.append(reinterpret_cast<const char*>(data.data()), data.size());
    st.requests->feed(data);
    for (;;) {
      auto d = st.requests->next();
      if (d.need_more()) return;
      if (d.malformed()) {
        const std::size_t dropped = st.raw.size();
        st.raw.clear();
        st.requests = std::make_unique<http::request_reader>();
        out.malformed(dropped);
        return;
      }
      const std::size_t whole = d.consumed;
      const std::size_t head_end = st.raw.find("\r\n\r\n");
      const std::size_t head = head_end == std::string::npos ? whole : std::min(whole, head_end + 4);
      st.raw.erase(0, std::min(whole, st.raw.size()));
      asked a;
      // The service's virtual directory names the mode; the binding reads the service's own path.
      const std::uint32_t mode = mode_of_path(d.value.target);
      if (d.value.target.ends_with(service_path)) d.value.target = std::string(service_path);
      auto call = read_bus_request(d.value);
      if (call.complete() && call.value.what == bus_call::kind::poll) {
        const message& m = call.value.msg;
        const std::uint32_t s = session_of(f, m.agent_id, mode);
        add(s, seen::polls);
        if (m.type == message_type::register_agent) {
          add(s, seen::registrations);
          a.kind = kind_index(message_kind::register_);
        } else {
          a.kind = kind_index(message_kind::poll);
          a.empty = m.type == message_type::empty;
        }
        session_state& ss = sessions_[s];
        if (ss.last_poll) found_.poll_gaps.push_back({s, 0, (at - *ss.last_poll).count()});
        ss.last_poll = at;
      }
      st.outstanding.push_back(a);
      // .NET sends the head and, after 100 Continue, the body: two messages.
      if (d.value.expect_continue && head < whole) {
        out.message(a.kind, head);
        out.message(a.kind, whole - head);
      } else {
        out.message(a.kind, whole);
      }
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
      if (d.value.status == 100) {
        out.message(kind_index(message_kind::continue_), d.consumed);
        continue;
      }
      asked a;
      if (!st.outstanding.empty()) {
        a = st.outstanding.front();
        st.outstanding.pop_front();
      }
      const std::uint32_t s = f.session;
      if (d.value.status != 200) {
        add(s, seen::http_errors);
        out.message(kind_index(message_kind::http_error), d.consumed);
        continue;
      }
      out.message(a.kind, d.consumed);
      if (a.kind == capture_none || s == capture_none) continue;
      auto messages = read_poll_response(d.value);
      if (!messages.complete()) continue;
      if (a.empty && messages.value.empty()) add(s, seen::wasted_polls);
      for (const message& m : messages.value) {
        switch (m.type) {
          case message_type::empty: add(s, seen::received_empty); break;
          case message_type::poll_interval: add(s, seen::received_poll_interval); break;
          case message_type::poll_mode: add(s, seen::received_poll_mode); break;
          case message_type::chat: {
            add(s, seen::received_chat);
            // TimeStamp: .NET milliseconds since 0001-01-01 UTC; the capture's clock counts from 1970.
            const std::int64_t created_us = (m.timestamp_ms - dotnet_ms_at_unix_epoch) * 1000;
            found_.events.push_back({next_event_++, s, 0, at, created_us});
            break;
          }
          default: add(s, seen::received_other); break;
        }
      }
    }
  }

  std::vector<std::unique_ptr<flow_state>> flows_;  // by capture_flow::id
  std::map<guid, std::uint32_t> by_agent_;
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

std::optional<engine::client_rebuild> capture_classifier::rebuild_client(const engine::captured_client_view& c) const {
  engine::client_rebuild r;
  r.mode = std::string(mode_name(c.mode));
  const auto count = [&](seen s) {
    const auto i = static_cast<std::size_t>(s);
    return i < c.counters.size() ? c.counters[i] : 0;
  };
  // An interval the server set is the live server's to set again; only the client's own is kept.
  if (c.poll_gap && count(seen::received_poll_interval) == 0) {
    const auto gap_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*c.poll_gap).count();
    r.keys.emplace_back("pollbus.client_interval", std::to_string(std::max<std::int64_t>(gap_ms, 1)) + "ms");
  }
  if (count(seen::connections) > 1 && count(seen::connections) >= count(seen::polls))
    r.keys.emplace_back("pollbus.keep_alive", "false");
  return r;
}

bool capture_classifier::begins_message(protocol::bytes_view stream) const {
  if (stream.empty()) return false;
  const std::string_view s(reinterpret_cast<const char*>(stream.data()), std::min<std::size_t>(stream.size(), 8));
  for (std::string_view start : {"POST ", "GET ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "HTTP/1."}) {
    const std::size_t n = std::min(s.size(), start.size());
    if (s.substr(0, n) == start.substr(0, n)) return true;
  }
  return false;
}

std::unique_ptr<engine::capture_reader> capture_classifier::make_reader(const engine::capture_reading_options&) const {
  return std::make_unique<reader>();
}

const capture_classifier& pollbus_capture_classifier() {
  static const capture_classifier instance;
  return instance;
}

}  // namespace nudge::pollbus
