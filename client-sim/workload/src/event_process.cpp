#include "nudge/sim/event_process.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nudge::sim {

namespace {

using namespace std::chrono_literals;
constexpr duration day_length = 24h;
// Arrivals further than this into active time are "never" (keeps every
// conversion to integer nanoseconds far from overflow: ~31 years).
constexpr double horizon_ns = 1e18;
constexpr double ns_per_hour = 3.6e12;

double hours_of(duration d) { return to_seconds(d) / 3600.0; }

// -ln(U), U uniform in (0, 1]: one rng draw, like rng::exponential.
double standard_exponential(rng& r) { return -std::log(1.0 - r.uniform()); }

}  // namespace

std::string_view to_string(event_process_kind k) {
  switch (k) {
    case event_process_kind::poisson: return "poisson";
    case event_process_kind::mmpp: return "mmpp";
  }
  return "?";
}

std::optional<event_process_kind> parse_event_process_kind(std::string_view s) {
  if (s == "poisson") return event_process_kind::poisson;
  if (s == "mmpp") return event_process_kind::mmpp;
  return std::nullopt;
}

std::string_view to_string(day_kind k) {
  switch (k) {
    case day_kind::calendar: return "24h";
    case day_kind::business: return "business";
  }
  return "?";
}

std::optional<day_kind> parse_day_kind(std::string_view s) {
  if (s == "24h" || s == "calendar") return day_kind::calendar;
  if (s == "business") return day_kind::business;
  return std::nullopt;
}

// ---- mmpp_shape -------------------------------------------------------------------

double mmpp_shape::high_share() const {
  const double h = to_seconds(high_mean), l = to_seconds(low_mean);
  return h + l > 0 ? h / (h + l) : 0.0;
}

double mmpp_shape::high_rate(double mean) const {
  const double share = high_share();
  const double low_weight = std::isinf(burst_ratio) ? 0.0 : (1.0 - share) / burst_ratio;
  const double denominator = share + low_weight;
  return denominator > 0 ? mean / denominator : 0.0;
}

double mmpp_shape::low_rate(double mean) const {
  return std::isinf(burst_ratio) ? 0.0 : high_rate(mean) / burst_ratio;
}

double mmpp_shape::set_rates(double high, double low) {
  burst_ratio = low > 0 ? high / low : std::numeric_limits<double>::infinity();
  const double share = high_share();
  return high * share + low * (1.0 - share);
}

std::string mmpp_shape::validate() const {
  if (std::isnan(burst_ratio) || burst_ratio < 1.0)
    return "MMPP burst ratio (high rate / low rate) must be at least 1 (inf: a silent low state)";
  if (high_mean <= duration::zero() || low_mean <= duration::zero())
    return "MMPP mean times in the high and low states must be positive";
  return {};
}

// ---- business_hours ---------------------------------------------------------------

duration business_hours::window() const { return end > start ? end - start : end + day_length - start; }

std::string business_hours::validate() const {
  if (start < duration::zero() || start >= day_length) return "business hours start must be a time of day in [00:00, 24:00)";
  if (end < duration::zero() || end > day_length) return "business hours end must be a time of day in [00:00, 24:00]";
  if (end == start) return "business hours start and end must differ (00:00-24:00 is the whole day)";
  if (run_starts_at && (*run_starts_at < duration::zero() || *run_starts_at >= day_length))
    return "the run's start time must be a time of day in [00:00, 24:00)";
  return {};
}

// ---- event_process_spec ------------------------------------------------------------

double event_process_spec::active_hours_per_day() const { return hours.enabled ? hours_of(hours.window()) : 24.0; }

std::string event_process_spec::validate() const {
  if (kind == event_process_kind::mmpp)
    if (auto e = mmpp.validate(); !e.empty()) return e;
  if (hours.enabled)
    if (auto e = hours.validate(); !e.empty()) return e;
  return {};
}

// ---- event_process ------------------------------------------------------------------

event_process::event_process(const event_process_spec& spec, double mean_per_active_hour)
    : spec_(spec), mean_(mean_per_active_hour > 0 && std::isfinite(mean_per_active_hour) ? mean_per_active_hour : 0.0) {
  if (mean_ > 0) {
    // The drivers' historical Poisson arithmetic (a mean gap, rng::exponential).
    // Far-off means are handled in next().
    const double gap_s = 3600.0 / mean_;
    if (gap_s * 1e9 < horizon_ns)
      poisson_gap_ = std::chrono::duration_cast<duration>(std::chrono::duration<double>(gap_s));
    else
      poisson_gap_ = duration::max();
  }
  if (spec_.kind == event_process_kind::mmpp && mean_ > 0) {
    high_per_ns_ = spec_.mmpp.high_rate(mean_) / ns_per_hour;
    low_per_ns_ = spec_.mmpp.low_rate(mean_) / ns_per_hour;
    auto per_ns = [](duration mean_sojourn) { return mean_sojourn.count() > 0 ? 1.0 / static_cast<double>(mean_sojourn.count()) : 0.0; };
    leave_high_per_ns_ = per_ns(spec_.mmpp.high_mean);
    leave_low_per_ns_ = per_ns(spec_.mmpp.low_mean);
    start_high_ = spec_.mmpp.high_share();
  }
  if (mapped()) {
    window_ = spec_.hours.window();
    duration diff = (spec_.hours.start - spec_.hours.run_start()) % day_length;
    if (diff < duration::zero()) diff += day_length;
    w0_ = diff - day_length;
    pre_ = std::min(window_, -w0_);
  }
}

duration event_process::active_before(time_point t) const {
  const duration since = t.time_since_epoch();
  if (!mapped()) return since;
  const duration shifted = since - w0_;
  const auto days = shifted / day_length;
  const duration into_day = shifted % day_length;
  return days * window_ + std::min(into_day, window_) - pre_;
}

time_point event_process::at_active(duration active) const {
  if (!mapped()) return time_point{} + active;
  const duration shifted = active + pre_;
  const auto windows = shifted / window_;
  const duration into_window = shifted % window_;
  return time_point{} + w0_ + windows * day_length + into_window;
}

bool event_process::active_at(time_point t) const {
  if (!mapped()) return true;
  const duration into_day = (t.time_since_epoch() - w0_) % day_length;
  return into_day >= duration::zero() && into_day < window_;
}

double event_process::expected_events(time_point a, time_point b) const {
  if (b <= a) return 0.0;
  return mean_ * hours_of(active_before(b) - active_before(a));
}

double event_process::long_run_rate_per_hour() const {
  return mapped() ? mean_ * spec_.active_hours_per_day() / 24.0 : mean_;
}

time_point event_process::next(time_point now, client_state& s, rng& r) const {
  if (mean_ <= 0) return never;
  const duration tau = active_before(now);
  double next_active_ns;
  if (spec_.kind == event_process_kind::poisson) {
    if (poisson_gap_ != duration::max() && static_cast<double>(poisson_gap_.count()) * 64 < horizon_ns) {
      const duration gap = r.exponential(poisson_gap_);
      if (!mapped()) return now + gap;  // the historical arithmetic, to the nanosecond
      next_active_ns = static_cast<double>((tau + gap).count());
    } else {
      next_active_ns = static_cast<double>(tau.count()) + standard_exponential(r) * 3.6e12 / mean_;
    }
  } else {
    if (s.phase == 0) s.phase = r.chance(start_high_) ? 2 : 1;
    double t = static_cast<double>(tau.count());
    for (;;) {
      const bool high = s.phase == 2;
      const double arrive = high ? high_per_ns_ : low_per_ns_;
      const double leave = high ? leave_high_per_ns_ : leave_low_per_ns_;
      const double total = arrive + leave;
      if (!(total > 0)) return never;  // an invalid shape (validate() says so)
      t += standard_exponential(r) / total;
      if (t > horizon_ns) return never;
      if (r.uniform() * total < arrive) break;  // an arrival before the state changed
      s.phase = high ? 1 : 2;
    }
    next_active_ns = t;
  }
  if (next_active_ns > horizon_ns) return never;
  const auto next_active = duration(static_cast<std::int64_t>(next_active_ns));
  if (mapped() && hours_of(next_active) * 24.0 / hours_of(window_) > horizon_ns / ns_per_hour) return never;
  return std::max(now, at_active(next_active));
}

}  // namespace nudge::sim
