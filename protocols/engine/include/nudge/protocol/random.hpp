#pragma once
// The one random number generator of nudge: xoshiro256** seeded through
// splitmix64. Every random choice comes from an instance its owner seeded,
// so a virtual run is reproducible from (scenario, seed).
#include <cmath>
#include <cstdint>

#include "nudge/protocol/clock.hpp"

namespace nudge {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class rng {
 public:
  explicit rng(std::uint64_t seed = 1) {
    std::uint64_t sm = seed;
    for (auto& v : s_) v = splitmix64(sm);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform duration in [lo, hi].
  duration between(duration lo, duration hi) {
    if (hi <= lo) return lo;
    const auto span = static_cast<std::uint64_t>((hi - lo).count()) + 1;
    return lo + duration(static_cast<std::int64_t>(next() % span));
  }
  /// Exponentially distributed with the given mean (Poisson inter-arrival times).
  duration exponential(duration mean) {
    const double u = 1.0 - uniform();  // (0, 1]
    return duration(static_cast<std::int64_t>(-std::log(u) * static_cast<double>(mean.count())));
  }
  bool chance(double p) { return uniform() < p; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace nudge
