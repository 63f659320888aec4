#pragma once
// The project's one notion of time. Sessions never read a clock: drivers pass
// `now` in. Virtual time starts at zero; the real-time driver maps steady_clock
// onto the same type, so both drivers feed identical values to the cores.
#include <chrono>
#include <cstdint>

namespace nudge {

struct nudge_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<nudge_clock>;
  static constexpr bool is_steady = true;
};

using duration = nudge_clock::duration;
using time_point = nudge_clock::time_point;

/// A deadline that never fires.
inline constexpr time_point never = time_point::max();

constexpr std::int64_t to_micros(time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
constexpr double to_seconds(duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace nudge
