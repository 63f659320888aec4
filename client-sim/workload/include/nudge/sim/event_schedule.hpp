#pragma once
// A run's mail, mailbox by mailbox: the times at which "something changes" in
// each client's mailbox, relative to the run's time zero. Both drivers draw
// every event from here (the virtual driver in simulated time, the real driver
// mapping time zero onto the clock), so one seeded plan gives the same event
// times, client by client, in virtual and in real time.
//
//   event_schedule schedule(plan);
//   auto mailbox = schedule.mailbox_of(i);           // client i's generator
//   for (time_point t = schedule.next(mailbox); t != never; t = schedule.next(mailbox)) ...
//
// Each mailbox's events come from the plan's event_process (Poisson, MMPP,
// business hours), starting when the client starts (its place in the ramp-up)
// and ending before plan.length, drawn from a generator seeded by (plan.seed,
// client index) alone: the schedule does not depend on how clients are split
// over threads or processes, nor on the order in which mailboxes are asked.
#include <cstddef>
#include <functional>
#include <queue>
#include <vector>

#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/random.hpp"
#include "nudge/sim/event_process.hpp"
#include "nudge/sim/run_plan.hpp"

namespace nudge::sim {

class event_schedule {
 public:
  /// One mailbox's generator: its random numbers, its MMPP state, its last event.
  struct mailbox {
    rng random;
    time_point last;  // the previous event, or the client's start; `never` once done
    event_process::client_state state;
  };

  explicit event_schedule(const run_plan& plan);

  /// Client i's start, relative to time zero: clients start evenly over the ramp-up.
  time_point client_start(std::size_t client) const;
  /// Client i's generator, before its first event.
  mailbox mailbox_of(std::size_t client) const;
  /// The mailbox's next event (relative to time zero), or `never` when it has
  /// none left before the plan's length.
  time_point next(mailbox& m) const;
  /// Every event of client i, in order (for tests and tools; the drivers draw one at a time).
  std::vector<time_point> times_of(std::size_t client) const;

  const event_process& process() const { return process_; }

 private:
  event_process process_;
  std::uint64_t seed_;
  std::size_t clients_;
  duration ramp_up_;
  time_point end_;
};

/// The events of some clients (the real driver's share of them) as one stream in
/// time order (ties: the lower client first): each mailbox's next event is drawn
/// when its previous one is taken, so the stream holds one event per mailbox.
class event_stream {
 public:
  struct event {
    time_point at;       // since time zero
    std::size_t client;  // index in the plan
  };

  event_stream(const run_plan& plan, const std::vector<std::size_t>& clients);
  event_stream(const event_stream&) = delete;  // the queue's ordering points at clients_
  event_stream& operator=(const event_stream&) = delete;

  bool empty() const { return due_.empty(); }
  /// The next event (the stream must not be empty).
  event peek() const { return {due_.top().at, clients_[due_.top().slot]}; }
  /// Takes the next event and draws its mailbox's following one.
  event pop();

 private:
  struct entry {
    time_point at;
    std::size_t slot;  // index in clients_ and mail_
  };
  struct later {
    const std::vector<std::size_t>* clients;
    bool operator()(const entry& a, const entry& b) const {
      return a.at != b.at ? a.at > b.at : (*clients)[a.slot] > (*clients)[b.slot];
    }
  };
  void draw(std::size_t slot);

  event_schedule schedule_;
  std::vector<std::size_t> clients_;
  std::vector<event_schedule::mailbox> mail_;
  std::priority_queue<entry, std::vector<entry>, later> due_;
};

}  // namespace nudge::sim
