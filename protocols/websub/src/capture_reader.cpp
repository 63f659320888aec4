// WebSub's capture reader (nudge/websub/capture_classifier.hpp).
#include <algorithm>
#include <array>
#include <deque>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nudge/http/reader.hpp"
#include "nudge/websub/capture_classifier.hpp"
#include "nudge/websub/family.hpp"
#include "nudge/websub/form.hpp"

namespace nudge::websub {
namespace {

using engine::capture_none;

// Per-session counters, named as the subscriber core's (family.hpp, counter).
enum class seen : std::uint8_t { subscriptions, verifications, received, bad_signatures, connections, callbacks, http_errors, count_ };
constexpr std::array<std::string_view, static_cast<std::size_t>(seen::count_)> counter_list = {
    "subscriptions", "verifications", "received", "bad_signatures", "connections", "callbacks", "http_errors"};

constexpr std::array<std::string_view, message_kind_count> kind_list = {"tcp_setup", "tcp_ack", "subscribe", "verify",
                                                                         "content",   "publish", "http_error"};
constexpr std::array<std::string_view, 1> mode_list = {"subscriber"};
constexpr std::array<std::string_view, 1> path_list = {"callback"};

constexpr std::uint32_t kind_index(message_kind k) { return static_cast<std::uint32_t>(k); }

/// "authority/path" of a callback: what names a subscriber in a capture.
std::string callback_key(std::string_view authority, std::string_view path) {
  return std::string(authority) + std::string(path);
}

class reader final : public engine::capture_reader {
 public:
  void on_stream(engine::capture_flow& f, int side, protocol::bytes_view data, time_point at,
                 engine::capture_stream_sink& out) override {
    flow_state& st = state(f);
    if (st.requester < 0 && !data.empty()) {
      // Either side may dial: whoever writes a request first is the requester.
      const std::string_view s(reinterpret_cast<const char*>(data.data()), std::min<std::size_t>(data.size(), 5));
      st.requester = s == "HTTP/" ? 1 - side : side;
    }
    if (side == st.requester) on_requests(f, st, data, at, out);
    else on_responses(f, st, data, out);
  }

  std::size_t pending(const engine::capture_flow& f, int side) const override {
    if (f.id >= flows_.size() || !flows_[f.id]) return 0;
    const flow_state& st = *flows_[f.id];
    return side == st.requester ? st.requests->buffered() : st.responses->buffered();
  }

  void drop_pending(const engine::capture_flow& f, int side) override {
    if (f.id >= flows_.size() || !flows_[f.id]) return;
    flow_state& st = *flows_[f.id];
    if (side == st.requester) st.requests = std::make_unique<http::request_reader>();
    else st.responses = std::make_unique<http::response_reader>();
  }

  engine::datagram_verdict on_datagram(const engine::capture_datagram&) override { return {}; }
  std::string_view flow_label(const engine::capture_flow& f) const override {
    if (f.id < flows_.size() && flows_[f.id] && flows_[f.id]->callback) return "callback";
    return "hub";
  }
  bool primary_flow(const engine::capture_flow& f) const override { return !flow_label(f).starts_with("callback"); }

  engine::capture_findings findings() const override {
    engine::capture_findings out = found_;
    for (const session_state& s : sessions_) {
      engine::capture_session& c = out.sessions.emplace_back();
      c.host = s.host;
      c.mode = 0;
      c.counters.assign(s.counters.begin(), s.counters.end());
    }
    return out;
  }

 private:
  struct asked {
    std::uint32_t kind = capture_none;
    std::uint32_t session = capture_none;
    std::string challenge;  // a verification's
  };
  struct flow_state {
    int requester = -1;
    bool callback = false;  // the hub dialled it
    std::unique_ptr<http::request_reader> requests = std::make_unique<http::request_reader>();
    std::unique_ptr<http::response_reader> responses = std::make_unique<http::response_reader>();
    std::deque<asked> outstanding;
  };
  struct session_state {
    engine::capture_host host = 0;
    std::array<std::uint64_t, counter_list.size()> counters{};
    std::string secret;  // from its subscribe request (WebSub over plain HTTP shows it)
  };

  flow_state& state(const engine::capture_flow& f) {
    if (flows_.size() <= f.id) flows_.resize(f.id + 1);
    if (!flows_[f.id]) flows_[f.id] = std::make_unique<flow_state>();
    return *flows_[f.id];
  }

  void add(std::uint32_t session, seen c) {
    if (session < sessions_.size()) ++sessions_[session].counters[static_cast<std::size_t>(c)];
  }

  /// The subscriber's session, tying the flow to it (the subscriber is `subscriber_side`).
  std::uint32_t session_of(engine::capture_flow& f, const std::string& key, int subscriber_side, bool callback) {
    f.client_side = static_cast<std::int8_t>(subscriber_side);
    auto [it, fresh] = by_callback_.try_emplace(key, static_cast<std::uint32_t>(sessions_.size()));
    if (fresh) sessions_.push_back({f.host[static_cast<std::size_t>(subscriber_side)], {}, {}});
    if (f.session != it->second) {
      f.session = it->second;
      add(f.session, callback ? seen::callbacks : seen::connections);
    }
    return it->second;
  }

  void on_requests(engine::capture_flow& f, flow_state& st, protocol::bytes_view data, time_point at,
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
      asked a = classify(f, st, d.value, at);
      out.message(a.kind, d.consumed);
      st.outstanding.push_back(std::move(a));
    }
  }

  asked classify(engine::capture_flow& f, flow_state& st, const http::request& req, time_point at) {
    asked a;
    const std::string_view target = req.target;
    const std::size_t q = target.find('?');
    const std::string host(req.headers.find("Host").value_or(""));
    if (req.method == "POST" && !req.headers.has("X-Hub-Signature") && !req.headers.has("Link")) {
      const auto form = decode_form(req.body);
      if (!form.complete()) return a;
      const auto mode = form.value.find("hub.mode");
      if (!mode) return a;
      if (*mode == "publish") {
        a.kind = kind_index(message_kind::publish);
        f.client_side = static_cast<std::int8_t>(st.requester);
        return a;
      }
      if (*mode != "subscribe" && *mode != "unsubscribe") return a;
      a.kind = kind_index(message_kind::subscribe);
      const auto cb = parse_http_url(form.value.find("hub.callback").value_or(""));
      if (!cb.complete()) return a;
      a.session = session_of(f, callback_key(cb.value.authority, cb.value.path), st.requester, false);
      add(a.session, seen::subscriptions);
      if (const auto secret = form.value.find("hub.secret"); secret && *mode == "subscribe")
        sessions_[a.session].secret = std::string(*secret);
      return a;
    }
    if (req.method == "GET" && q != std::string_view::npos) {
      const auto form = decode_form(target.substr(q + 1));
      if (!form.complete() || !form.value.find("hub.challenge")) return a;
      // The hub appends its query to the callback's own: the callback is what comes before "hub.mode".
      std::size_t cut = target.find("hub.mode=");
      if (cut == std::string_view::npos) cut = q + 1;
      const std::string_view path = target.substr(0, cut - 1);
      st.callback = true;
      a.kind = kind_index(message_kind::verify);
      a.challenge = std::string(*form.value.find("hub.challenge"));
      a.session = session_of(f, callback_key(host, path), 1 - st.requester, true);
      return a;
    }
    if (req.method == "POST") {
      st.callback = true;
      a.kind = kind_index(message_kind::content);
      a.session = session_of(f, callback_key(host, target), 1 - st.requester, true);
      const session_state& s = sessions_[a.session];
      const auto signature = req.headers.find("X-Hub-Signature");
      if (!s.secret.empty() && (!signature || !signature_matches(*signature, s.secret, req.body))) {
        add(a.session, seen::bad_signatures);
        return a;
      }
      add(a.session, seen::received);
      const auto created = created_ms_of(req.body);
      found_.events.push_back({next_event_++, a.session, 0, at, created ? *created * 1000 : -1});
    }
    return a;
  }

  void on_responses(engine::capture_flow&, flow_state& st, protocol::bytes_view data, engine::capture_stream_sink& out) {
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
      if (d.value.status >= 100 && d.value.status < 200) {
        out.message(capture_none, d.consumed);
        continue;
      }
      asked a;
      if (!st.outstanding.empty()) {
        a = std::move(st.outstanding.front());
        st.outstanding.pop_front();
      }
      if (d.value.status >= 400) {
        add(a.session, seen::http_errors);
        out.message(kind_index(message_kind::http_error), d.consumed);
        continue;
      }
      out.message(a.kind, d.consumed);
      if (a.kind == kind_index(message_kind::verify) && d.value.status < 300 && d.value.body == a.challenge)
        add(a.session, seen::verifications);
    }
  }

  std::vector<std::unique_ptr<flow_state>> flows_;  // by capture_flow::id
  std::map<std::string, std::uint32_t> by_callback_;
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
  for (const std::string_view start : {"POST ", "GET ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "HTTP/1."}) {
    const std::size_t n = std::min(s.size(), start.size());
    if (s.substr(0, n) == start.substr(0, n)) return true;
  }
  return false;
}

std::unique_ptr<engine::capture_reader> capture_classifier::make_reader(const engine::capture_reading_options&) const {
  return std::make_unique<reader>();
}

const capture_classifier& websub_capture_classifier() {
  static const capture_classifier instance;
  return instance;
}

}  // namespace nudge::websub
