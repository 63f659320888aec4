#include "nudge/sim/virtual_driver.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include "nudge/netsim/nat.hpp"
#include "nudge/sim/event_queue.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::sim {

using client::channel;
using client::client_mode;
using client::client_session;
using notifier::connection_id;
using protocol::byte_buffer;
using protocol::ip_endpoint;

namespace {

enum class ev_type : std::uint8_t {
  client_start,
  client_timer,
  server_timer,
  to_server_tcp,
  to_client_tcp,
  to_server_udp,
  to_client_udp,
  mailbox_event,
  progress,
  sample,  // a point of run_result::timeline
};

struct event {
  time_point at;
  ev_type type;
  std::uint8_t ch = 0;
  std::uint32_t client = 0;
  byte_buffer bytes;
  ip_endpoint from;
};



// The virtual world's addresses never reach a socket:
//   notifier           192.0.2.1 (documentation range)
//   directly reachable 198.18.0.0/15 (benchmark range), 20,000 clients per host address
//   behind a NAT       private 10.0.0.0/8, one address per client; its NAT's public address in 100.64.0.0/10
const ip_endpoint server_tcp = ip_endpoint::v4(192, 0, 2, 1, 7777);
const ip_endpoint server_udp = ip_endpoint::v4(192, 0, 2, 1, 7778);
constexpr std::uint32_t clients_per_host = 20000;
constexpr std::uint32_t direct_base = (198u << 24) | (18u << 16);
constexpr std::uint32_t private_base = 10u << 24;
constexpr std::uint32_t nat_public_base = (100u << 24) | (64u << 16);
constexpr std::uint16_t private_udp_port = 50000;

ip_endpoint client_host(std::size_t i, std::uint16_t port_base) {
  const auto host = static_cast<std::uint32_t>(i / clients_per_host);
  const auto offset = static_cast<std::uint16_t>(i % clients_per_host);
  return ip_endpoint::v4(direct_base | (host + 2), static_cast<std::uint16_t>(port_base + offset));
}
ip_endpoint private_udp(std::size_t i) {
  return ip_endpoint::v4(private_base + 2 + static_cast<std::uint32_t>(i), private_udp_port);
}
ip_endpoint nat_public(std::size_t i, std::uint16_t port) {
  return ip_endpoint::v4(nat_public_base + 2 + static_cast<std::uint32_t>(i), port);
}
std::uint16_t tcp_port_base(channel ch) { return ch == channel::main ? 20000 : 40000; }

// Forwards a session's estimated pure ACKs to the capture, with the client's index.
struct ack_tap final : client::session_tap {
  ack_tap(virtual_capture& c, std::size_t i) : capture(&c), client(i) {}
  void pure_ack(time_point at, channel ch, metrics::direction d) override { capture->pure_ack(at, client, ch, d); }
  virtual_capture* capture;
  std::size_t client;
};

class world {
 public:
  world(const run_plan& plan, const virtual_options& opts)
      : plan_(plan), opts_(opts), net_rng_(plan.seed ^ 0x4E4554ull), core_(server_config(plan)), schedule_(plan) {
    modes_ = plan.assign_modes();
    groups_ = plan.assign_nat_groups();
    group_count_ = plan.nat_group_count();
    const std::size_t n = plan.clients;
    // Sized once: clients hold references into it.
    metrics_.resize(client::client_mode_count * group_count_);
    group_clients_.assign(metrics_.size(), 0);
    group_generated_.assign(metrics_.size(), 0);
    clients_.reserve(n);
    nats_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto cfg = plan.client_config_for(i, modes_[i]);
      const std::size_t g = groups_[i];
      if (!plan.nat_mix.empty() && plan.nat_mix[g].preset != "none") {
        auto nc = *netsim::preset(plan.nat_mix[g].preset, nat_public(i, 0));
        if (plan.nat_mix[g].udp_timeout > duration::zero())
          nc.udp_mapping_timeout = nc.udp_timeout_established = plan.nat_mix[g].udp_timeout;
        nats_[i] = std::make_unique<netsim::nat>(nc, plan.seed ^ (0x4E4154ull + i));
        cfg.callback_address = private_udp(i);  // what the client sees of itself, as Outlook did
      } else {
        cfg.callback_address = client_host(i, 20000);
      }
      cfg.notifier_udp = server_udp;
      const bool observed = capture_ && capture_->observe(i, modes_[i]);
      if (observed) cfg.eager_acks = true;  // same counts, ACKs reported in time order
      const std::size_t cell = metrics_index(i);
      clients_.emplace_back(std::move(cfg), metrics_[cell]);
      ++group_clients_[cell];
      if (observed) {
        if (observed_.empty()) observed_.assign(n, false);
        observed_[i] = true;
        clients_.back().set_tap(&taps_.emplace_back(*capture_, i));
      }
    }
    conn_of_.assign(n, {0, 0});
    client_timer_at_.assign(n, never);
    last_tcp_.assign(n, {});
    if (plan.link.rate_bps > 0) link_free_.assign(n, {});
    mailbox_of_.assign(n, 0);
    mail_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) mail_.push_back(schedule_.mailbox_of(i));
  }

  run_result run() {
    const auto wall_start = std::chrono::steady_clock::now();
    const std::size_t n = plan_.clients;
    for (std::size_t i = 0; i < n; ++i) {
      push({schedule_.client_start(i), ev_type::client_start, 0, static_cast<std::uint32_t>(i), {}, {}});
    }
    if (opts_.progress) push({time_point{} + opts_.progress_every, ev_type::progress, 0, 0, {}, {}});
    const time_point end = time_point{} + plan_.length + plan_.drain;
    push({time_point{} + sample_every_, ev_type::sample, 0, 0, {}, {}});
    std::uint64_t processed = 0;
    while (!queue_.empty() && queue_.next_time() <= end) {
      event ev = queue_.pop();
      ++processed;
      dispatch(ev);
    }
    if (capture_) capture_->finishing(end);
    for (auto& c : clients_) c.finish(end);
    if (capture_) capture_->finished(end);
    sample(end);
    run_result r = snapshot(end);
    r.simulated_events = processed - samples_;  // as before the timeline: samples are bookkeeping
    r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    return r;
  }

 private:
  static notifier::notifier_config server_config(const run_plan& plan) {
    auto cfg = plan.server;
    cfg.allow_non_loopback = true;  // virtual addresses never reach a socket
    cfg.tcp_port = server_tcp.port;
    cfg.wire = plan.wire;
    return cfg;
  }

  void push(event ev) {
    const time_point at = ev.at;
    // With a constant link delay, deliveries are scheduled in time order and
    // take the queue's FIFO lane; timers and workload events take the heap.
    const bool in_order = fifo_deliveries_ && is_delivery(ev.type);
    queue_.push(at, std::move(ev), in_order);
  }

  static bool is_delivery(ev_type t) {
    return t == ev_type::to_server_tcp || t == ev_type::to_client_tcp || t == ev_type::to_server_udp ||
           t == ev_type::to_client_udp;
  }

  duration delay() {
    duration d = plan_.link.one_way_delay;
    if (plan_.link.jitter > duration::zero()) d += net_rng_.between(duration::zero(), plan_.link.jitter);
    return d;
  }

  void dispatch(event& ev) {
    const time_point now = ev.at;
    switch (ev.type) {
      case ev_type::client_start: return start_client(now, ev.client);
      case ev_type::client_timer:
        if (client_timer_at_[ev.client] != now) return;  // superseded
        client_timer_at_[ev.client] = never;
        clients_[ev.client].on_timer(now);
        return after_client(now, ev.client);
      case ev_type::server_timer:
        if (server_timer_at_ != now) return;
        server_timer_at_ = never;
        core_.on_timer(now);
        return after_server(now);
      case ev_type::to_server_tcp:
        core_.receive(now, conn_of_[ev.client][ev.ch], ev.bytes);
        return after_server(now);
      case ev_type::to_client_tcp:
        if (observed(ev.client))
          capture_->tcp_data(now, ev.client, static_cast<channel>(ev.ch), metrics::direction::to_client, ev.bytes);
        clients_[ev.client].receive(now, static_cast<channel>(ev.ch), ev.bytes);
        return after_client(now, ev.client);
      case ev_type::to_server_udp:
        core_.receive_datagram(now, ev.from, ev.bytes);
        return after_server(now);
      case ev_type::to_client_udp:
        if (observed(ev.client))
          capture_->datagram(now, ev.client, server_udp, clients_[ev.client].config().callback_address, ev.bytes);
        clients_[ev.client].receive_datagram(now, server_udp, ev.bytes);
        return after_client(now, ev.client);
      case ev_type::mailbox_event:
        core_.inject_event(now, mailbox_of_[ev.client]);
        ++group_generated_[metrics_index(ev.client)];
        if (opts_.on_event) opts_.on_event(ev.client, now);
        schedule_next_event(ev.client);
        return after_server(now);
      case ev_type::progress: {
        opts_.progress(now, snapshot(now));
        push({now + opts_.progress_every, ev_type::progress, 0, 0, {}, {}});
        return;
      }
      case ev_type::sample:
        ++samples_;
        sample(now);
        push({now + sample_every_, ev_type::sample, 0, 0, {}, {}});
        return;
    }
  }

  // "Traffic over the day" (run_result::timeline): cumulative wire bytes and
  // packets per mode, without the pure-ACK estimate (settled late, not at its time).
  void sample(time_point now) {
    run_result::timeline_sample s;
    s.at = now - time_point{};
    s.wire_bytes.assign(plan_.mix.size(), 0);
    s.packets.assign(plan_.mix.size(), 0);
    for (std::size_t cell = 0; cell < metrics_.size(); ++cell) {
      const auto group = plan_.group_of(static_cast<client_mode>(cell / group_count_));
      if (!group) continue;  // no clients in a mode the plan has no group for
      const auto& t = metrics_[cell].traffic;
      auto acks = t.cell(protocol::emsmdb::message_kind::tcp_ack, metrics::direction::to_server);
      acks += t.cell(protocol::emsmdb::message_kind::tcp_ack, metrics::direction::to_client);
      const auto all = t.total();
      s.wire_bytes[*group] += all.wire_bytes - acks.wire_bytes;
      s.packets[*group] += all.packets - acks.packets;
    }
    if (!timeline_.empty() && timeline_.back().at == s.at) timeline_.back() = s;
    else timeline_.push_back(s);
  }

  // About 100 points over the run, at a round interval (1 s .. 1 h).
  static duration timeline_interval(duration run) {
    using namespace std::chrono_literals;
    static constexpr duration steps[] = {1s, 2s, 5s, 10s, 15s, 30s, 1min, 2min, 5min, 10min, 15min, 30min, 1h};
    for (const duration d : steps)
      if (d * 100 >= run) return d;
    return run / 100;
  }

  void start_client(time_point now, std::uint32_t i) {
    client_session& c = clients_[i];
    conn_of_[i][0] = open(now, i, channel::main);
    if (c.needs_async_channel()) conn_of_[i][1] = open(now, i, channel::async);
    if (observed(i)) {
      capture_->tcp_open(now, i, channel::main, local_tcp(i, channel::main), server_tcp);
      if (c.needs_async_channel()) capture_->tcp_open(now, i, channel::async, local_tcp(i, channel::async), server_tcp);
    }
    mailbox_of_[i] = core_.mailbox(c.config().user_dn);
    c.start(now);
    schedule_next_event(i);
    after_client(now, i);
  }

  std::size_t metrics_index(std::size_t i) const {
    return static_cast<std::size_t>(modes_[i]) * group_count_ + groups_[i];
  }

  // TCP is not NAT-modelled beyond its source address: client connections are
  // outbound and stay mapped while open.
  connection_id open(time_point now, std::uint32_t i, channel ch) {
    const std::uint16_t port = tcp_port_base(ch);
    const ip_endpoint peer = nats_[i] ? nat_public(i, static_cast<std::uint16_t>(port + 1)) : client_host(i, port);
    const auto id = core_.open_connection(now, peer);
    const auto slot = notifier::connection_slot(id);
    if (client_of_conn_.size() <= slot) client_of_conn_.resize(slot + 1);
    client_of_conn_[slot] = {i, static_cast<std::uint8_t>(ch)};
    return id;
  }

  // A channel's address as the client sees it (private behind a NAT).
  ip_endpoint local_tcp(std::size_t i, channel ch) const {
    if (nats_[i]) return ip_endpoint::v4(private_base + 2 + static_cast<std::uint32_t>(i), tcp_port_base(ch));
    return client_host(i, tcp_port_base(ch));
  }

  bool observed(std::size_t i) const { return !observed_.empty() && observed_[i]; }

  // The mailbox's next "something changed", from the run's event schedule
  // (shared with the real driver: the same times for the same plan).
  void schedule_next_event(std::uint32_t i) {
    const time_point at = schedule_.next(mail_[i]);
    if (at != never) push({at, ev_type::mailbox_event, 0, i, {}, {}});
  }

  // When the last bit of `wire_bytes` leaves client i's access link in direction
  // `dir` (0 up, 1 down): packets queue behind each other at the link's rate.
  time_point transmitted(time_point now, std::uint32_t i, int dir, std::uint64_t wire_bytes) {
    if (plan_.link.rate_bps <= 0) return now;
    time_point& free_at = link_free_[i][static_cast<std::size_t>(dir)];
    const auto serialize = duration(static_cast<std::int64_t>(static_cast<double>(wire_bytes) * 8e9 / plan_.link.rate_bps));
    free_at = std::max(now, free_at) + serialize;
    return free_at;
  }

  time_point tcp_arrival(time_point now, std::uint32_t i, std::uint8_t ch, int dir, std::size_t bytes) {
    time_point& last = last_tcp_[i][ch * 2u + static_cast<unsigned>(dir)];
    const time_point sent = transmitted(now, i, dir, plan_.wire.tcp_message(bytes).wire_bytes);
    last = std::max(sent + delay(), last);  // TCP delivers in order
    return last;
  }

  void after_client(time_point now, std::uint32_t i) {
    client_session& c = clients_[i];
    for (auto& o : c.outputs()) {
      if (auto* t = std::get_if<client::tcp_send>(&o)) {
        const auto ch = static_cast<std::uint8_t>(t->ch);
        if (observed(i)) capture_->tcp_data(now, i, t->ch, metrics::direction::to_server, t->bytes);
        const time_point at = tcp_arrival(now, i, ch, 0, t->bytes.size());
        push({at, ev_type::to_server_tcp, ch, i, std::move(t->bytes), {}});
      } else if (auto* u = std::get_if<client::udp_send>(&o)) {
        if (observed(i)) capture_->datagram(now, i, c.config().callback_address, u->to, u->bytes);
        if (u->to != server_udp) continue;
        ip_endpoint from = c.config().callback_address;
        if (nats_[i]) {
          auto mapped = nats_[i]->outbound(now, from, server_udp);
          if (!mapped) {
            ++dropped_nat_;
            continue;
          }
          from = *mapped;
        }
        if (net_rng_.chance(plan_.link.udp_loss)) {
          ++lost_;
          continue;
        }
        const time_point sent = transmitted(now, i, 0, plan_.wire.udp_message(u->bytes.size()).wire_bytes);
        push({sent + delay(), ev_type::to_server_udp, 0, i, std::move(u->bytes), from});
      }
    }
    c.outputs().clear();
    const time_point t = c.next_deadline();
    if (t != client_timer_at_[i]) {
      client_timer_at_[i] = t;
      if (t != never) push({std::max(t, now), ev_type::client_timer, 0, i, {}, {}});
      if (t != never && t < now) client_timer_at_[i] = now;
    }
  }

  void after_server(time_point now) {
    for (auto& o : core_.outputs()) {
      if (auto* t = std::get_if<notifier::tcp_send>(&o)) {
        const auto [i, ch] = client_of_conn_[notifier::connection_slot(t->conn)];
        const time_point at = tcp_arrival(now, i, ch, 1, t->bytes.size());
        push({at, ev_type::to_client_tcp, ch, i, std::move(t->bytes), {}});
      } else if (auto* u = std::get_if<notifier::udp_send>(&o)) {
        const auto to_client = route_datagram(now, u->to);
        if (!to_client) continue;
        if (net_rng_.chance(plan_.link.udp_loss)) {
          ++lost_;
          continue;
        }
        const time_point sent = transmitted(now, *to_client, 1, plan_.wire.udp_message(u->bytes.size()).wire_bytes);
        push({sent + delay(), ev_type::to_client_udp, 0, *to_client, std::move(u->bytes), {}});
      } else if (auto* cl = std::get_if<notifier::close_connection>(&o)) {
        const auto [i, ch] = client_of_conn_[notifier::connection_slot(cl->conn)];
        clients_[i].channel_closed(now, static_cast<channel>(ch));
      }
    }
    core_.outputs().clear();
    const time_point t = core_.next_deadline();
    if (t != server_timer_at_) {
      server_timer_at_ = std::max(t, now);
      if (t != never) push({server_timer_at_, ev_type::server_timer, 0, 0, {}, {}});
      else server_timer_at_ = never;
    }
  }

  // Where a datagram from the notifier ends up: a client, or nowhere (counted).
  std::optional<std::uint32_t> route_datagram(time_point now, const ip_endpoint& to) {
    const std::uint32_t a = to.is_v6 ? 0 : to.v4_host_order();
    const std::size_t n = clients_.size();
    if ((a & 0xFFC00000u) == nat_public_base) {
      const std::size_t i = a - nat_public_base - 2;
      if (i < n && nats_[i]) {
        auto inside = nats_[i]->inbound(now, server_udp, to);
        if (inside && *inside == private_udp(i)) return static_cast<std::uint32_t>(i);
        ++dropped_nat_;  // no mapping, filtered, or mapped to another socket
        return std::nullopt;
      }
    } else if ((a & 0xFFFE0000u) == direct_base && to.port >= 20000) {
      const std::size_t i = (a - direct_base - 2) * std::size_t{clients_per_host} + (to.port - 20000u);
      if (i < n && !nats_[i] && to == client_host(i, 20000)) return static_cast<std::uint32_t>(i);
    }
    ++no_route_;  // e.g. a private address registered from behind a NAT
    return std::nullopt;
  }

  run_result snapshot(time_point) const {
    run_result r;
    r.clock = "virtual";
    r.plan = plan_;
    r.measured = plan_.length;
    r.modes.resize(plan_.mix.size());
    for (std::size_t m = 0; m < plan_.mix.size(); ++m) {
      const auto k = static_cast<std::size_t>(plan_.group_mode(m));
      r.modes[m].protocol = plan_.mix[m].protocol;
      r.modes[m].mode = plan_.group_mode(m);
      for (std::size_t g = 0; g < group_count_; ++g) {
        const std::size_t cell = k * group_count_ + g;
        r.modes[m].clients += group_clients_[cell];
        r.modes[m].metrics += metrics_[cell];
        r.modes[m].events_generated += group_generated_[cell];
        if (!plan_.nat_mix.empty())
          r.groups.push_back({plan_.mix[m].protocol, plan_.group_mode(m), plan_.nat_label(g), group_clients_[cell],
                              metrics_[cell], group_generated_[cell]});
      }
    }
    r.server = core_.stats();
    r.network = {dropped_nat_, no_route_, lost_};
    r.timeline = timeline_;
    return r;
  }

  const run_plan& plan_;
  const virtual_options& opts_;
  virtual_capture* capture_ = opts_.capture;
  std::vector<bool> observed_;  // empty: nobody observed
  std::deque<ack_tap> taps_;    // stable addresses: sessions point at them
  rng net_rng_;
  notifier::notifier_core core_;
  event_schedule schedule_;
  std::vector<event_schedule::mailbox> mail_;  // per client: its event generator
  std::vector<client::client_metrics> metrics_;  // per (mode, NAT group)
  std::vector<std::size_t> group_clients_;
  std::vector<std::uint64_t> group_generated_;
  std::vector<client_mode> modes_;
  std::vector<std::size_t> groups_;
  std::size_t group_count_ = 1;
  std::vector<std::unique_ptr<netsim::nat>> nats_;  // null: directly reachable
  std::vector<client_session> clients_;
  std::vector<std::array<connection_id, 2>> conn_of_;
  std::vector<std::pair<std::uint32_t, std::uint8_t>> client_of_conn_;
  std::vector<time_point> client_timer_at_;
  time_point server_timer_at_ = never;
  std::vector<std::array<time_point, 4>> last_tcp_;
  std::vector<std::array<time_point, 2>> link_free_;  // per client: when its link is free, up and down
  std::vector<notifier::mailbox_id> mailbox_of_;
  event_queue<event> queue_;
  bool fifo_deliveries_ = plan_.link.jitter == duration::zero() && plan_.link.rate_bps <= 0;
  std::uint64_t dropped_nat_ = 0;
  std::uint64_t no_route_ = 0;
  std::uint64_t lost_ = 0;
  std::vector<run_result::timeline_sample> timeline_;
  duration sample_every_ = timeline_interval(plan_.length + plan_.drain);
  std::uint64_t samples_ = 0;
};

}  // namespace

run_result run_virtual(const run_plan& plan, const virtual_options& opts) {
  world w(plan, opts);
  return w.run();
}

}  // namespace nudge::sim
