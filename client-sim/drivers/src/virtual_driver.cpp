#include "nudge/sim/virtual_driver.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "nudge/client/emsmdb_client_core.hpp"
#include "nudge/engine/session.hpp"
#include "nudge/engine/registry.hpp"
#include "nudge/notifier/emsmdb_server_core.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/event_queue.hpp"
#include "nudge/sim/event_schedule.hpp"
#include "virtual_network.hpp"

namespace nudge::sim {

using client::channel;
using client::client_mode;
using protocol::byte_buffer;
using protocol::ip_endpoint;

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

enum class ev_type : std::uint8_t {
  start,          // a client core starts
  timer,          // a core's deadline
  stream,         // bytes arrive on a connection
  datagram,       // a datagram arrives on a socket
  mailbox_event,  // the workload: "something changed" in a client's mailbox
  progress,
  sample,  // a point of run_result::timeline
  reset,   // a NAT's RST reaches a connection's end (ref: the connection)
};

struct event {
  time_point at;
  ev_type type;
  std::uint8_t to_dialer = 0;  // stream: towards the connection's dialer (else its acceptor)
  node_id node = 0;            // who receives it (for a mailbox event: the client whose mailbox it is)
  std::uint32_t ref = 0;       // stream: the connection's index; datagram: the receiving socket
  byte_buffer bytes;
  ip_endpoint from;            // datagram: its source as the receiver sees it
};

// Forwards an observed client's estimated pure ACKs to the capture, naming the
// connection as the capture does: the client's index and the connection's ordinal.
// It remembers each connection's ordinal itself: an estimate may settle after the
// network has recycled the connection's record.
struct ack_tap final : engine::transport_observer {
  ack_tap(virtual_capture& c, node_id i) : capture(&c), client(i) {}
  void pure_ack(time_point at, engine::connection_id conn, metrics::direction d) override {
    // The newest connection of that name, as the network's lookup found it.
    for (auto it = ordinals.rbegin(); it != ordinals.rend(); ++it)
      if (it->first == conn) return capture->pure_ack(at, client, static_cast<channel>(it->second), d);
  }
  virtual_capture* capture;
  node_id client;
  std::vector<std::pair<engine::connection_id, std::uint8_t>> ordinals;  // by dial order
};

// Runs the cores (the server, then one per client) through the session
// contract only: it starts them, hands them events in (time, sequence) order
// and carries out their actions on the virtual network. Events a core's
// action causes at once (connected, accepted, closed, udp_bound, listening,
// refused) are delivered at the same time, in order, before the next queued
// event. It counts nothing the cores count: only what the network drops and
// the events the workload generates.
class world {
 public:
  world(const run_plan& plan, const virtual_options& opts)
      : plan_(plan), opts_(opts), schedule_(plan), client_group_(plan.assign_groups()), groups_(plan.assign_nat_groups()),
        net_(plan, plan.clients, groups_) {
    group_count_ = plan.nat_group_count();
    const std::size_t n = plan.clients;
    // Sized once: clients hold references into it.
    metrics_.resize(plan.mix.size() * group_count_);
    group_clients_.assign(metrics_.size(), 0);
    group_generated_.assign(metrics_.size(), 0);
    find_families();
    cores_.resize(n + families_.size());
    timer_at_.assign(cores_.size(), never);
    for (std::size_t k = 0; k < families_.size(); ++k) start_server(k);
    for (std::size_t i = 0; i < n; ++i) cores_[i] = make_client(i);
    mail_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) mail_.push_back(schedule_.mailbox_of(i));
    mailbox_handles_.assign(n, 0);
    mailbox_resolved_.assign(n, false);
  }

  run_result run() {
    const auto wall_start = std::chrono::steady_clock::now();
    const std::size_t n = plan_.clients;
    for (std::size_t i = 0; i < n; ++i) push({schedule_.client_start(i), ev_type::start, 0, static_cast<node_id>(i), 0, {}, {}});
    if (opts_.progress) push({time_point{} + opts_.progress_every, ev_type::progress, 0, 0, 0, {}, {}});
    const time_point end = time_point{} + plan_.length + plan_.drain;
    push({time_point{} + sample_every_, ev_type::sample, 0, 0, 0, {}, {}});
    std::uint64_t processed = 0;
    while (!queue_.empty() && queue_.next_time() <= end) {
      event ev = queue_.pop();
      ++processed;
      dispatch(ev);
    }
    if (capture_) capture_->finishing(end);
    for (auto& c : cores_) c->finish(end);
    if (capture_) capture_->finished(end);
    if (opts_.connection_records) *opts_.connection_records = net_.connection_records();
    sample(end);
    run_result r = snapshot(end);
    r.simulated_events = processed - samples_;  // as before the timeline: samples are bookkeeping
    r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    return r;
  }

 private:
  // ---- the cores ----

  // One server core per family in the plan, in the order the groups name
  // them; they share the server node (their ids are told apart below).
  void find_families() {
    protocols::register_all();
    for (const auto& g : plan_.mix) {
      const engine::family* f = engine::registry::instance().find(g.protocol);
      if (std::find(families_.begin(), families_.end(), f) == families_.end()) families_.push_back(f);
    }
    for (const auto& g : plan_.mix) {
      const engine::family* f = engine::registry::instance().find(g.protocol);
      group_family_.push_back(static_cast<std::size_t>(std::find(families_.begin(), families_.end(), f) - families_.begin()));
      group_mode_index_.push_back(engine::index_of(f->words.modes, g.mode).value_or(0));
    }
    service_.resize(families_.size());
    servers_.resize(families_.size(), nullptr);
    // Each family's keys as the plan sets them; a group with its own keys gets its own copy.
    for (const engine::family* f : families_) keys_.push_back(plan_.settings_for(*f));
    group_keys_.resize(plan_.mix.size());
    for (std::size_t g = 0; g < plan_.mix.size(); ++g)
      if (!plan_.mix[g].keys.empty()) group_keys_[g] = plan_.settings_for(*families_[group_family_[g]], g);
  }

  void start_server(std::size_t k) {
    engine::server_context ctx;
    ctx.keys = &keys_[k];
    ctx.wire = plan_.wire;
    ctx.allow_non_loopback = true;  // virtual addresses never reach a socket
    auto core = families_[k]->make_server(ctx);
    servers_[k] = core.get();
    // The result's server block is still EMSMDB's counters (run_result::server).
    if (!emsmdb_server_) emsmdb_server_ = dynamic_cast<notifier::emsmdb_server_core*>(core.get());
    const node_id slot = server_slot(k);
    cores_[slot] = std::move(core);
    cores_[slot]->start(time_point{});
    settle(slot, time_point{});
    drain_immediate(time_point{});
  }

  std::unique_ptr<engine::session> make_client(std::size_t i) {
    const std::size_t group = client_group_[i];
    const std::size_t k = group_family_[group];
    engine::client_context ctx;
    ctx.client = i;
    ctx.mode = group_mode_index_[group];
    ctx.seed = plan_.seed;
    ctx.mailbox = run_plan::user_dn(i);
    ctx.keys = group_keys_[group] ? &*group_keys_[group] : &keys_[k];
    ctx.server = service_[k];
    ctx.wire = plan_.wire;
    ctx.metrics = &metrics_[metrics_index(i)];
    if (capture_ && capture_->observe(i, *families_[k])) {
      if (observed_.empty()) observed_.assign(plan_.clients, false);
      observed_[i] = true;
      if (tap_of_.empty()) tap_of_.assign(plan_.clients, nullptr);
      tap_of_[i] = &taps_.emplace_back(*capture_, static_cast<node_id>(i));
      ctx.observer = tap_of_[i];
    }
    const std::size_t cell = metrics_index(i);
    ++group_clients_[cell];
    return families_[k]->make_client(ctx);
  }

  // ---- cores and network nodes ----
  // Cores are numbered: clients 0..n-1, then server core k at n + k. Every
  // server core lives on the network's server node; the ids it picks carry k
  // on the network (listeners and sockets in bits 24.., its outgoing
  // connections in bits 48..), so the first family's ids are unchanged.
  node_id server_slot(std::size_t k) const { return static_cast<node_id>(plan_.clients + k); }
  node_id net_node(node_id slot) const { return slot < plan_.clients ? slot : server_node(); }
  static std::uint32_t net_local_id(std::size_t k, std::uint32_t id) { return id | static_cast<std::uint32_t>(k << 24); }
  static engine::connection_id net_conn(std::size_t k, engine::connection_id c) {
    return engine::is_outgoing(c) ? c | (static_cast<engine::connection_id>(k) << 48) : c;
  }
  static std::size_t owner_of_local(std::uint32_t id) { return id >> 24; }
  static std::uint32_t local_of(std::uint32_t id) { return id & 0xFFFFFFu; }
  std::size_t owner_of_conn(engine::connection_id c) const {
    if (engine::is_outgoing(c)) return static_cast<std::size_t>((c >> 48) & 0x7FFF);
    // Accepted: the core that owns the listener it came in on.
    const std::uint32_t index = net_.find(server_node(), c);
    return index == virtual_network::none ? 0 : owner_of_local(net_.at(index).listener);
  }
  static engine::connection_id local_conn(engine::connection_id c) {
    return engine::is_outgoing(c) ? c & ~(engine::connection_id{0x7FFF} << 48) : c;
  }

  // Delivers a network-level event to network node n: a client, or the
  // server core that owns the listener, socket or connection it names.
  void deliver_net(node_id n, time_point now, engine::event e) {
    if (n != server_node()) {
      deliver(n, now, e);
      if (const auto* c = std::get_if<engine::closed>(&e); c && observed(n)) capture_close(now, n, c->conn, metrics::direction::to_client);
      return;
    }
    if (families_.size() == 1) return deliver(server_slot(0), now, e);  // one server core: its ids as they are
    deliver_to_family(now, std::move(e));
  }

  // A network event for the server node, to the server core that owns what it names (in its own ids).
  [[gnu::noinline]] void deliver_to_family(time_point now, engine::event e) {
    std::size_t k = 0;
    std::visit(overloaded{
                   [&](engine::connected& x) { k = owner_of_conn(x.conn); x.conn = local_conn(x.conn); },
                   [&](engine::refused& x) { k = owner_of_conn(x.conn); x.conn = local_conn(x.conn); },
                   [&](engine::accepted& x) {
                     k = owner_of_local(x.listener);
                     x.listener = local_of(x.listener);
                   },
                   [&](engine::closed& x) { k = owner_of_conn(x.conn); x.conn = local_conn(x.conn); },
                   [&](engine::listening& x) { k = owner_of_local(x.listener); x.listener = local_of(x.listener); },
                   [&](engine::udp_bound& x) { k = owner_of_local(x.socket); x.socket = local_of(x.socket); },
                   [&](engine::stream_bytes& x) { k = owner_of_conn(x.conn); x.conn = local_conn(x.conn); },
                   [&](engine::datagram& x) { k = owner_of_local(x.socket); x.socket = local_of(x.socket); },
                   [&](engine::timer&) {},
               },
               e);
    deliver(server_slot(k), now, e);
  }

  node_id server_node() const { return net_.server_node(); }

  // ---- events ----

  void push(event ev) {
    const time_point at = ev.at;
    // With a constant link delay, deliveries are scheduled in time order and
    // take the queue's FIFO lane; timers and workload events take the heap.
    const bool in_order = fifo_deliveries_ && (ev.type == ev_type::stream || ev.type == ev_type::datagram);
    queue_.push(at, std::move(ev), in_order);
  }

  void dispatch(event& ev) {
    const time_point now = ev.at;
    switch (ev.type) {
      case ev_type::start:
        schedule_next_event(ev.node);
        cores_[ev.node]->start(now);
        settle(ev.node, now);
        break;
      case ev_type::timer:
        if (timer_at_[ev.node] != now) return;  // superseded
        timer_at_[ev.node] = never;
        deliver(ev.node, now, engine::timer{});
        break;
      case ev_type::stream: {
        const auto& c = net_.at(ev.ref);
        const engine::connection_id id = ev.to_dialer ? c.dialer_id : net_.acceptor_id(ev.ref);
        if (ev.to_dialer && observed(ev.node))
          capture_->tcp_data(now, ev.node, static_cast<channel>(c.ordinal), metrics::direction::to_client, ev.bytes);
        deliver_net(ev.node, now, engine::stream_bytes{id, ev.bytes});
        net_.release(ev.ref);
        break;
      }
      case ev_type::datagram:
        if (observed(ev.node)) capture_->datagram(now, ev.node, ev.from, *net_.socket_address(ev.node, ev.ref), ev.bytes);
        deliver_net(ev.node, now, engine::datagram{ev.ref, ev.from, ev.bytes});
        break;
      case ev_type::reset: {
        if (net_.reset(ev.ref, ev.node)) {
          const auto& c = net_.at(ev.ref);
          deliver_net(ev.node, now, engine::closed{ev.node == c.dialer ? c.dialer_id : net_.acceptor_id(ev.ref)});
        }
        net_.release(ev.ref);
        break;
      }
      case ev_type::mailbox_event: {
        const std::size_t k = group_family_[client_group_[ev.node]];
        servers_[k]->inject_event(now, mailbox_handle(ev.node, k));
        ++group_generated_[metrics_index(ev.node)];
        if (opts_.on_event) opts_.on_event(ev.node, now);
        schedule_next_event(ev.node);
        settle(server_slot(k), now);
        break;
      }
      case ev_type::progress:
        opts_.progress(now, snapshot(now));
        push({now + opts_.progress_every, ev_type::progress, 0, 0, 0, {}, {}});
        return;
      case ev_type::sample:
        ++samples_;
        sample(now);
        push({now + sample_every_, ev_type::sample, 0, 0, 0, {}, {}});
        return;
    }
    if (!immediate_.empty()) drain_immediate(now);
  }

  void deliver(node_id n, time_point now, const engine::event& e) {
    cores_[n]->handle(now, e);
    settle(n, now);
  }

  // What happens at once because of an action: delivered in order, at `now`.
  [[gnu::noinline]] void drain_immediate(time_point now) {
    while (!immediate_.empty()) {
      auto [n, e, held] = std::move(immediate_.front());
      immediate_.pop_front();
      deliver_net(n, now, std::move(e));
      if (held != virtual_network::none) net_.release(held);
    }
  }

  // Carries out node n's actions, then re-arms its timer.
  void settle(node_id slot, time_point now) {
    const node_id n = slot;
    auto& actions = cores_[n]->actions();
    for (auto& a : actions) perform(n, now, a);
    actions.clear();
    const time_point t = cores_[n]->next_deadline();
    if (t != timer_at_[n]) {
      timer_at_[n] = std::max(t, now);  // a deadline already past fires now
      if (t != never) push({timer_at_[n], ev_type::timer, 0, n, 0, {}, {}});
    }
  }

  // Carries out an action of core `slot` on the network (as its node, with
  // its ids as the network knows them). Sending bytes is nearly every action:
  // it takes the short way; the rest (connect, close, listen, ...) the long one.
  void perform(node_id slot, time_point now, engine::action& a) {
    if (auto* s = std::get_if<engine::send>(&a)) {
      const node_id n = net_node(slot);
      send(n, now, net_conn(slot - n, s->conn), s->bytes);
    } else if (auto* d = std::get_if<engine::send_datagram>(&a)) {
      const node_id n = net_node(slot);
      send_datagram(n, now, net_local_id(slot - n, d->socket), *d);
    } else {
      perform_rare(slot, now, a);
    }
  }

  // `socket`: d's socket as the network knows it.
  [[gnu::noinline]] void send_datagram(node_id n, time_point now, engine::socket_id socket, engine::send_datagram& d) {
    if (observed(n)) {
      if (const ip_endpoint* local = net_.socket_address(n, socket)) capture_->datagram(now, n, *local, d.to, d.bytes);
    }
    auto r = net_.route(now, n, socket, d.to, d.bytes.size());
    if (!r) return;
    push({r->arrival, ev_type::datagram, 0, r->node, r->socket, std::move(d.bytes), r->from});
  }

  void send(node_id n, time_point now, engine::connection_id conn, byte_buffer& bytes) {
    const std::uint32_t index = net_.find(n, conn);
    if (index == virtual_network::none) return;
    const auto& c = net_.at(index);
    const bool to_dialer = c.dialer != n;
    if (!to_dialer && observed(n))
      capture_->tcp_data(now, n, static_cast<channel>(c.ordinal), metrics::direction::to_server, bytes);
    const node_id to = to_dialer ? c.dialer : c.acceptor;
    const auto fate = net_.send(now, index, n, bytes.size());
    if (fate.delivered) {
      net_.hold(index);
      push({fate.arrival, ev_type::stream, static_cast<std::uint8_t>(to_dialer), to, index, std::move(bytes), {}});
    } else if (fate.reset) {  // a NAT lost the connection and says so; otherwise the bytes just vanish
      net_.hold(index);
      push({fate.reset_at, ev_type::reset, 0, n, index, {}, {}});
    }
  }

  [[gnu::noinline, gnu::cold]] void perform_rare(node_id slot, time_point now, engine::action& a) {
    const node_id n = net_node(slot);
    const std::size_t k = slot - n;  // a server core's index (0 for clients)
    std::visit(overloaded{[&](engine::connect& c) { c.conn = net_conn(k, c.conn); },
                          [&](engine::send& x) { x.conn = net_conn(k, x.conn); },
                          [&](engine::close& x) { x.conn = net_conn(k, x.conn); },
                          [&](engine::listen& x) { x.listener = net_local_id(k, x.listener); },
                          [&](engine::bind_udp& x) { x.socket = net_local_id(k, x.socket); },
                          [&](engine::send_datagram& x) { x.socket = net_local_id(k, x.socket); },
                          [&](engine::notice&) {}},
               a);
    std::visit(
        overloaded{
            [&](engine::connect& c) {
              auto r = net_.dial(now, n, c.conn, c.to);
              if (auto* why = std::get_if<std::string>(&r)) {
                immediate_.push_back({n, engine::refused{c.conn, std::move(*why)}});
                return;
              }
              const auto& d = std::get<virtual_network::dialled>(r);
              if (observed(n)) {
                const std::uint8_t ordinal = net_.at(d.index).ordinal;
                tap_of_[n]->ordinals.emplace_back(c.conn, ordinal);
                capture_->tcp_open(now, n, static_cast<channel>(ordinal), d.dialer_local, c.to);
              }
              immediate_.push_back({d.acceptor, engine::accepted{d.listener, d.id, d.peer_seen}});
              immediate_.push_back({n, engine::connected{c.conn, d.dialer_local}});
            },
            [&](engine::send& s) { send(n, now, s.conn, s.bytes); },
            [&](engine::close& c) {
              const std::uint32_t index = net_.find(n, c.conn);
              if (index == virtual_network::none) return;
              if (net_.at(index).open && observed(n)) capture_close(now, n, c.conn, metrics::direction::to_server);
              const auto [other, id] = net_.other_end(index, n);
              net_.hold(index);  // the record outlives close() until the other end has been told
              if (!net_.close(now, index, n)) return net_.release(index);
              immediate_.push_back({other, engine::closed{id}, index});
            },
            [&](engine::listen& l) {
              auto r = net_.listen(n, l.listener, l.port);
              if (auto* at = std::get_if<ip_endpoint>(&r)) {
                if (n == server_node()) service_[k].listeners.push_back({local_of(l.listener), *at});  // no NAT before it
                immediate_.push_back({n, engine::listening{l.listener, *at}});
              }
            },
            [&](engine::bind_udp& b) {
              auto r = net_.bind_udp(n, b.socket, b.port);
              if (auto* at = std::get_if<ip_endpoint>(&r)) {
                if (n == server_node()) service_[k].sockets.push_back({local_of(b.socket), *at});
                immediate_.push_back({n, engine::udp_bound{b.socket, *at}});
              }
            },
            [&](engine::send_datagram& d) { send_datagram(n, now, d.socket, d); },
            [&](engine::notice&) {},  // for a person; a virtual run has nobody to tell
        },
        a);
  }

  // "Traffic over the day" (run_result::timeline): cumulative wire bytes and
  // packets per mode, without the pure-ACK estimate (settled late, not at its time).
  void sample(time_point now) {
    run_result::timeline_sample s;
    s.at = now - time_point{};
    s.wire_bytes.assign(plan_.mix.size(), 0);
    s.packets.assign(plan_.mix.size(), 0);
    for (std::size_t cell = 0; cell < metrics_.size(); ++cell) {
      const std::optional<std::size_t> group = cell / group_count_;
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

  std::size_t metrics_index(std::size_t i) const {
    return client_group_[i] * group_count_ + groups_[i];
  }

  // Client i's mailbox as the server names it, resolved at its first event
  // (not before: a mailbox is created on first use, in the order it is met).
  engine::server_session::mailbox_handle_t mailbox_handle(node_id i, std::size_t family) {
    if (!mailbox_resolved_[i]) {
      mailbox_handles_[i] = servers_[family]->mailbox_handle(run_plan::user_dn(i));
      mailbox_resolved_[i] = true;
    }
    return mailbox_handles_[i];
  }

  void capture_close(time_point now, node_id client, engine::connection_id conn, metrics::direction closer) {
    const std::uint32_t index = net_.find(client, conn);
    if (index != virtual_network::none) capture_->tcp_close(now, client, static_cast<channel>(net_.at(index).ordinal), closer);
  }

  bool observed(node_id n) const { return !observed_.empty() && n < observed_.size() && observed_[n]; }

  // The mailbox's next "something changed", from the run's event schedule
  // (shared with the real driver: the same times for the same plan).
  void schedule_next_event(node_id i) {
    const time_point at = schedule_.next(mail_[i]);
    if (at != never) push({at, ev_type::mailbox_event, 0, i, 0, {}, {}});
  }

  run_result snapshot(time_point) const {
    run_result r;
    r.clock = "virtual";
    r.plan = plan_;
    r.measured = plan_.length;
    r.modes.resize(plan_.mix.size());
    for (std::size_t m = 0; m < plan_.mix.size(); ++m) {
      const std::size_t k = m;
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
    if (emsmdb_server_) r.server = emsmdb_server_->core().stats();
    r.network = {net_.dropped_by_nat(), net_.no_route(), net_.lost()};
    r.timeline = timeline_;
    return r;
  }

  const run_plan& plan_;
  const virtual_options& opts_;
  virtual_capture* capture_ = opts_.capture;
  std::vector<bool> observed_;  // empty: nobody observed
  std::deque<ack_tap> taps_;    // stable addresses: sessions point at them
  std::vector<ack_tap*> tap_of_;  // per client (empty: nobody observed)
  event_schedule schedule_;
  std::vector<std::size_t> client_group_;  // per client: its client group (an index into plan.mix)
  std::vector<std::size_t> groups_;
  virtual_network net_;
  std::vector<event_schedule::mailbox> mail_;  // per client: its event generator
  std::vector<engine::server_session::mailbox_handle_t> mailbox_handles_;  // per client, once resolved
  std::vector<bool> mailbox_resolved_;
  std::vector<client::client_metrics> metrics_;  // per (client group, NAT group)
  std::vector<std::size_t> group_clients_;
  std::vector<std::uint64_t> group_generated_;
  std::size_t group_count_ = 1;
  std::vector<engine::settings> keys_;  // by family
  std::vector<std::optional<engine::settings>> group_keys_;  // by client group, when it sets its own
  std::vector<const engine::family*> families_;  // the plan's, in order of first mention
  std::vector<std::size_t> group_family_;         // per client group: an index into families_
  std::vector<std::size_t> group_mode_index_;     // per client group: its mode in the family's vocabulary
  std::vector<std::unique_ptr<engine::session>> cores_;  // by slot: clients, then one server per family
  std::vector<engine::server_session*> servers_;         // by family: cores_[server_slot(k)]
  notifier::emsmdb_server_core* emsmdb_server_ = nullptr;
  std::vector<engine::service_address> service_;  // by family: where its server listens, once it does
  std::vector<time_point> timer_at_;  // by node: the deadline its queued timer is for
  // Events an action causes at once; `held`: a connection record held for it (none: no record).
  struct immediate_event {
    node_id node;
    engine::event e;
    std::uint32_t held = virtual_network::none;
  };
  std::deque<immediate_event> immediate_;
  event_queue<event> queue_;
  bool fifo_deliveries_ = net_.constant_delay();
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
