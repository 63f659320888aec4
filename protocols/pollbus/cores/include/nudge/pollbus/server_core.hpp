#pragma once
// The bus's server core on the session contract (nudge/engine/session.hpp):
// an ASMX-like host serving `List<BaseMessage> Poll(BaseMessage)` over
// HTTP/1.1, sans-IO. It keeps one registration and one queue per agent
// (AgentId), takes the agent's message from each request and piggybacks what
// is queued for it on the response. "Something changed" events
// (inject_event(mailbox)) become ChatMessages stamped with the event's
// creation time, queued to the agent whose RegisterMessage named the mailbox
// in UserInfo. An agent it does not know is told to register
// (PollModeMessage Register).
//
// Several bus services share the host, each at its own path with its own rate
// policy (IIS virtual directories): /Bus.asmx (the configured policy),
// /fixed/Bus.asmx, /activity/Bus.asmx, /load/Bus.asmx. The policy decides the
// PollIntervalMessage an agent gets:
//  - fixed: always `slow_interval`;
//  - activity: `fast_interval` while the agent had traffic within
//    `quiet_period`, `slow_interval` after (the seed's dynamic rate);
//  - load: every load agent gets the same interval, lengthened (whole
//    seconds, at least `slow_interval`) so the whole server's expected polls
//    per second stay within `load_budget`.
// An agent is told its interval when it registers and whenever the policy
// changes it. Hostile HTTP gets its 4xx and a close (nudge/http/reader.hpp);
// other connections never notice. After a `Connection: close` request the
// client closes once it has read the answer (idle connections are closed after
// `idle_timeout`). `GET ...?WSDL` answers the WSDL; a request
// with `Expect: 100-continue` gets `100 Continue` before its body.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nudge/engine/registry.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/http/message.hpp"
#include "nudge/http/reader.hpp"
#include "nudge/pollbus/family.hpp"
#include "nudge/pollbus/messages.hpp"
#include "nudge/protocol/byte_io.hpp"

namespace nudge::pollbus {

using protocol::byte_buffer;
using protocol::bytes_view;

struct server_config {
  std::uint16_t port = 0;  // 0: the driver picks
  rate_policy default_policy = rate_policy::fixed;  // the policy of /Bus.asmx
  duration slow_interval = std::chrono::seconds(15);
  duration fast_interval = std::chrono::seconds(2);
  duration quiet_period = std::chrono::seconds(60);
  double load_budget = 100.0;  // polls per second, the whole server
  duration max_interval = std::chrono::minutes(10);
  /// load: a longer interval is told at once (the budget is a ceiling); a shorter
  /// one only after the policy has wanted it this long, so that the other agents'
  /// rates swinging back and forth do not cost a PollIntervalMessage per poll.
  duration load_hold = std::chrono::minutes(2);
  /// Keep-alive connections idle this long are closed (IIS's connectionTimeout).
  duration idle_timeout = std::chrono::seconds(120);
  http::limits limits{8 * 1024, 64 * 1024};
  std::size_t max_queue = 1000;  // queued messages per mailbox; more are dropped
  std::size_t max_connections = 1 << 20;
};

/// The configuration the family's keys give (docs/pollbus.md).
server_config server_config_of(const engine::settings& keys);

class server_core final : public engine::server_session {
 public:
  explicit server_core(server_config cfg);

  void start(time_point now) override;
  void handle(time_point now, const engine::event& e) override;
  time_point next_deadline() const override;
  std::vector<engine::action>& actions() override { return actions_; }

  std::uint64_t inject_event(time_point now, std::string_view mailbox) override;
  mailbox_handle_t mailbox_handle(std::string_view mailbox) override;
  std::uint64_t inject_event(time_point now, mailbox_handle_t mailbox) override;
  std::vector<std::pair<std::string, std::uint64_t>> stats() const override;
  std::size_t mailbox_count() const override { return mailboxes_.size(); }
  std::string_view mailbox_name(std::size_t index) const override { return mailboxes_[index].name; }
  std::vector<mailbox_backlog> backlog(std::size_t max, bool& truncated) const override;

  /// Queues any message to a registered agent (delivered on its next poll);
  /// false when the agent is unknown.
  bool queue_to_agent(const guid& agent, message m);
  /// The interval the load policy gives now.
  duration load_interval() const;
  std::size_t agent_count() const { return agents_.size(); }
  std::size_t open_connections() const { return conns_.size(); }

 private:
  struct connection {
    http::request_reader reader;
    time_point idle_deadline = never;
  };
  struct pending_event {
    time_point created;
    std::uint64_t id;
  };
  struct mailbox {
    std::string name;
    std::deque<pending_event> events;
    std::uint64_t generated = 0;
    std::uint64_t fetched = 0;
  };
  struct agent {
    std::uint32_t mailbox = 0;
    rate_policy policy = rate_policy::fixed;
    duration told{};           // the interval it was last told
    double expected_rate = 0;  // 1 / told, while counted in other_rate_
    bool counted_load = false; // counted in load_agents_
    time_point last_traffic = never;
    time_point shorter_wanted_since = never;  // load: since when a shorter interval than `told` is wanted
    std::deque<message> queue;  // messages for it other than events
  };
  struct guid_hash {
    std::size_t operator()(const guid& g) const;
  };

  void on_bytes(time_point now, engine::connection_id conn, bytes_view bytes);
  void drop(engine::connection_id conn, std::string reason);
  http::response answer(time_point now, http::request& req);
  std::vector<message> poll(time_point now, rate_policy policy, const message& in);
  duration desired_interval(time_point now, const agent& a) const;
  /// Whether the agent must be told `wanted` now (the load policy's hold on shortening).
  bool must_tell(time_point now, agent& a, duration wanted) const;
  void tell_interval(agent& a, duration d, const guid& id, time_point now, std::vector<message>& out);
  std::uint32_t mailbox_index(std::string_view name);

  server_config cfg_;
  std::vector<engine::action> actions_;
  std::unordered_map<engine::connection_id, connection> conns_;
  // Idle deadlines, earliest first; an entry is stale once its connection's deadline moved.
  using idle_entry = std::pair<time_point, engine::connection_id>;
  std::priority_queue<idle_entry, std::vector<idle_entry>, std::greater<>> idle_;
  std::unordered_map<guid, agent, guid_hash> agents_;
  std::vector<mailbox> mailboxes_;
  std::unordered_map<std::string, std::uint32_t> mailbox_by_name_;
  std::size_t load_agents_ = 0;
  double other_rate_ = 0;  // expected polls per second of the agents not on the load policy

  struct counts {
    std::uint64_t connections = 0, connections_refused = 0, requests = 0, polls = 0, registrations = 0,
                  unknown_agents = 0, bad_requests = 0, wsdl = 0, not_found = 0, interval_messages = 0,
                  events_generated = 0, events_fetched = 0, events_dropped = 0, messages_from_agents = 0,
                  idle_closes = 0;
    std::uint64_t polls_by_policy[3] = {0, 0, 0};
  } n_;
};

}  // namespace nudge::pollbus
