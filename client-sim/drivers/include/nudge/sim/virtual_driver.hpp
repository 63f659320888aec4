#pragma once
// The discrete-event driver: runs the same notifier_core and client_session
// state machines as the Asio driver, in virtual time, in one thread. Time
// jumps from event to event; every random choice comes from the plan's seed,
// so (plan, seed) gives byte-identical results.
#include <functional>

#include "nudge/sim/run_plan.hpp"
#include "nudge/sim/run_result.hpp"

namespace nudge::sim {

struct virtual_options {
  /// Called about every `progress_every` of simulated time (for a progress line).
  std::function<void(time_point now, const run_result& so_far)> progress;
  duration progress_every = std::chrono::minutes(10);
};

run_result run_virtual(const run_plan& plan, const virtual_options& opts = {});

}  // namespace nudge::sim
