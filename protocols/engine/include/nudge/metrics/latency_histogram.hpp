#pragma once
// A bounded-memory latency histogram (log-linear buckets, like HdrHistogram):
// 64 sub-buckets per power of two gives under 1.6 % relative error from 1 ns to
// centuries, in a fixed ~30 KB. Merging is exact (bucket counts add).
#include <cstdint>
#include <vector>

#include "nudge/protocol/clock.hpp"

namespace nudge::metrics {

class latency_histogram {
 public:
  latency_histogram();
  void record(duration d);
  latency_histogram& operator+=(const latency_histogram& o);

  std::uint64_t count() const { return count_; }
  duration min() const { return count_ ? duration(min_) : duration::zero(); }
  duration max() const { return duration(max_); }
  duration mean() const { return count_ ? duration(static_cast<std::int64_t>(sum_ / static_cast<double>(count_))) : duration::zero(); }
  /// The value at quantile q in [0, 1] (q = 0.5 is the median), as the upper
  /// edge of its bucket clamped to the observed maximum.
  duration quantile(double q) const;

  /// Non-empty buckets as (upper edge in ns, count), for CDF charts and export.
  std::vector<std::pair<std::int64_t, std::uint64_t>> buckets() const;

  /// Exact state for moving a histogram between processes: non-empty buckets
  /// as (index, count), plus the sum (min() and max() are already exposed).
  std::vector<std::pair<std::uint32_t, std::uint64_t>> raw_buckets() const;
  double sum_ns() const { return sum_; }
  /// Rebuilds a histogram from raw_buckets(), sum_ns(), min() and max(); the
  /// count is the sum of the bucket counts. Throws std::out_of_range on a bad index.
  static latency_histogram from_raw(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& buckets, double sum_ns,
                                    std::int64_t min_ns, std::int64_t max_ns);

  static constexpr int sub_bucket_bits = 6;

 private:
  static std::size_t index_of(std::uint64_t v);
  static std::uint64_t upper_edge(std::size_t index);
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
  std::int64_t min_ = 0;
  std::int64_t max_ = 0;
};

}  // namespace nudge::metrics
