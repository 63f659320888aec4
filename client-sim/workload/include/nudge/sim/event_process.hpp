#pragma once
// When "something changes" in a mailbox: the arrival process of new-mail
// events, per client, in simulated time.
//
//   poisson  events at a constant rate (what nudge always did);
//   mmpp     a two-state Markov-modulated Poisson process: each mailbox
//            alternates between a busy ("high") and a quiet ("low") state, with
//            exponentially distributed times in each, and Poisson arrivals at
//            the state's rate. Same mean, more variance: mail comes in bursts
//            ("since email traffic tends to be bursty", the seed article);
//   business hours (either process): events only within [start, end) of each
//            24-hour simulated day, the run starting at a configurable time of
//            day; or a "business" day that is just the business hours (an 8-hour
//            run is one working day, with no night in it).
//
// The rate (run_plan::events_per_client_hour) is the long-run mean rate *while
// events may arrive*, i.e. per business hour when business hours are on.
//
// How: every process runs on "active time", the simulated time during which
// events may arrive (all of it, or only the business hours), and maps its
// arrivals onto simulated time. The MMPP's state therefore stands still at
// night. The class is pure: no clock, no hidden state; the per-client state and
// the rng belong to the caller, so a driver stays deterministic from its seed.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/random.hpp"

namespace nudge::sim {

enum class event_process_kind : std::uint8_t { poisson, mmpp };
std::string_view to_string(event_process_kind k);
std::optional<event_process_kind> parse_event_process_kind(std::string_view s);

/// The shape of a two-state MMPP; its mean rate is given separately (the run's
/// events_per_client_hour), so changing the shape keeps the mean.
struct mmpp_shape {
  /// High rate / low rate, >= 1; +infinity makes the low state silent (an on/off source).
  double burst_ratio = 10.0;
  /// Mean sojourn time in each state (exponentially distributed).
  duration high_mean = std::chrono::minutes(15);
  duration low_mean = std::chrono::minutes(45);

  /// Long-run share of (active) time spent in the high state.
  double high_share() const;
  /// The state rates (per client-hour) that give `mean` events per client-hour.
  double high_rate(double mean) const;
  double low_rate(double mean) const;
  /// Sets burst_ratio from two rates (high >= low >= 0, high > 0) and returns the mean they give.
  double set_rates(double high, double low);
  /// Empty when valid, else what is wrong.
  std::string validate() const;
};

enum class day_kind : std::uint8_t {
  calendar,  // a 24-hour day: events only in the business window, none at night
  business,  // the day is just the business hours: simulated time is all business time
};
std::string_view to_string(day_kind k);
std::optional<day_kind> parse_day_kind(std::string_view s);

struct business_hours {
  bool enabled = false;
  /// Times of day (since midnight). end <= start is a window across midnight (a night shift).
  duration start = std::chrono::hours(9);
  duration end = std::chrono::hours(17);
  /// Time of day at simulated time zero (calendar days only); unset: at `start`.
  std::optional<duration> run_starts_at;
  day_kind day = day_kind::calendar;

  /// Length of the business window (0 < window <= 24 h).
  duration window() const;
  duration run_start() const { return run_starts_at ? *run_starts_at : start; }
  std::string validate() const;
};

/// What the run_plan says about event arrivals (the rate is the plan's events_per_client_hour).
struct event_process_spec {
  event_process_kind kind = event_process_kind::poisson;
  mmpp_shape mmpp;
  business_hours hours;

  /// Hours per simulated day in which events arrive: the business window when
  /// business hours are on, else 24. per_client_day = per_client_hour x this.
  double active_hours_per_day() const;
  std::string validate() const;
};

class event_process {
 public:
  /// Per-client state (the caller keeps one per mailbox, zero-initialised).
  struct client_state {
    std::uint8_t phase = 0;  // 0: not started; 1: low; 2: high (MMPP)
  };

  /// `mean_per_active_hour`: long-run mean events per client per active hour.
  event_process(const event_process_spec& spec, double mean_per_active_hour);

  /// The client's next event strictly after `now` (or at `now` only for a zero
  /// draw), or `never` when the rate is zero. The first call for a client draws
  /// its MMPP state from the stationary distribution.
  time_point next(time_point now, client_state& s, rng& r) const;

  /// Whether an event may arrive at `t` (inside business hours).
  bool active_at(time_point t) const;
  /// Active time in [0, t] (t >= 0).
  duration active_before(time_point t) const;
  /// The simulated time at which `active` active time has passed (the inverse of active_before).
  time_point at_active(duration active) const;
  /// Expected events for one client in [a, b) (stationary start).
  double expected_events(time_point a, time_point b) const;
  /// Mean events per client-hour over whole simulated days (nights count as zero).
  double long_run_rate_per_hour() const;

  const event_process_spec& spec() const { return spec_; }
  double mean_per_active_hour() const { return mean_; }

 private:
  bool mapped() const { return spec_.hours.enabled && spec_.hours.day == day_kind::calendar; }

  event_process_spec spec_;
  double mean_;
  // Poisson: the mean gap, computed exactly as the driver always did.
  duration poisson_gap_{};
  // MMPP: rates per nanosecond of active time, and the chance to start high.
  double high_per_ns_ = 0, low_per_ns_ = 0, leave_high_per_ns_ = 0, leave_low_per_ns_ = 0, start_high_ = 0;
  // Calendar business hours: window [w0 + k*24h, w0 + k*24h + L), k >= 0, w0 in [-24h, 0);
  // `pre_` is the active time of window 0 that lies before simulated time zero.
  duration window_{}, w0_{}, pre_{};
};

}  // namespace nudge::sim
