#include "nudge/notifier/event_generator.hpp"

#include <algorithm>
#include <cmath>

namespace nudge::notifier {

namespace {
// Keeps exponential draws far from overflowing the 64-bit nanosecond clock.
constexpr double max_mean_gap_ns = 3.0e16;  // about a year
}  // namespace

event_generator::event_generator(double events_per_mailbox_hour, std::uint64_t seed)
    : rate_per_hour_(std::isfinite(events_per_mailbox_hour) && events_per_mailbox_hour > 0 ? events_per_mailbox_hour
                                                                                           : 0),
      rng_(seed) {}

void event_generator::set_mailbox_count(time_point now, std::size_t count) {
  if (count == count_ || !enabled()) return;
  count_ = count;
  if (count_ == 0) {
    next_ = never;
    return;
  }
  const double per_ns = rate_per_hour_ * static_cast<double>(count_) / 3.6e12;
  const double gap = std::clamp(1.0 / per_ns, 1.0, max_mean_gap_ns);
  mean_gap_ = duration(static_cast<duration::rep>(gap));
  // An arrival already due stays (the driver will collect it); otherwise the
  // next one is redrawn at the new rate, which memorylessness makes exact.
  if (next_ == never || next_ > now) redraw(now);
}

void event_generator::redraw(time_point from) { next_ = from + rng_.exponential(mean_gap_); }

void event_generator::due(time_point now, std::vector<mailbox_id>& out) {
  if (count_ == 0) return;
  std::size_t emitted = 0;
  while (next_ <= now) {
    if (emitted == max_burst) {
      // The driver fell far behind: skip the backlog (counting it, estimated
      // from the mean gap) rather than stall the event loop on it.
      dropped_ += 1 + static_cast<std::uint64_t>((now - next_) / mean_gap_);
      redraw(now);
      return;
    }
    out.push_back(static_cast<mailbox_id>(rng_.next() % count_));
    ++generated_;
    ++emitted;
    next_ += std::max(rng_.exponential(mean_gap_), duration(1));
  }
}

}  // namespace nudge::notifier
