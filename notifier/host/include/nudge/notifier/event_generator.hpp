#pragma once
// The notifier's built-in workload, sans-IO: every mailbox the notifier knows
// receives new mail as an independent Poisson process of rate R per hour.
// The superposition of N such processes is one Poisson process of rate N*R
// whose arrivals pick a mailbox uniformly, so the generator keeps a single
// deadline whatever the mailbox count; when the count changes it redraws the
// next arrival at the new rate (exact, because the process is memoryless).
// It reads no clock: the driver passes `now` and asks for the due mailboxes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::notifier {

/// A mailbox by its index in the core's first-use order (server_session::mailbox_name).
using mailbox_id = std::uint32_t;

class event_generator {
 public:
  /// At most this many events per due() call; a backlog beyond it (the driver
  /// stalled) is dropped and the process restarts from `now`.
  static constexpr std::size_t max_burst = 100000;

  /// `events_per_mailbox_hour` <= 0 disables the generator.
  event_generator(double events_per_mailbox_hour, std::uint64_t seed);

  bool enabled() const { return rate_per_hour_ > 0; }
  double events_per_mailbox_hour() const { return rate_per_hour_; }

  /// The notifier now knows `count` mailboxes (ids 0..count-1).
  void set_mailbox_count(time_point now, std::size_t count);
  std::size_t mailbox_count() const { return count_; }

  /// When the next event is due (`never` when disabled or without mailboxes).
  time_point next_deadline() const { return next_; }

  /// Appends the mailbox of every event due at or before `now`, in order.
  void due(time_point now, std::vector<mailbox_id>& out);

  std::uint64_t generated() const { return generated_; }
  std::uint64_t dropped_backlog() const { return dropped_; }

 private:
  void redraw(time_point from);

  double rate_per_hour_ = 0;
  rng rng_;
  std::size_t count_ = 0;
  duration mean_gap_{};  // mean time between two events over all mailboxes
  time_point next_ = never;
  std::uint64_t generated_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace nudge::notifier
