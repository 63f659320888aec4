#include "nudge/metrics/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace nudge::metrics {

namespace {
constexpr int sub_bits = latency_histogram::sub_bucket_bits;
constexpr std::uint64_t sub_count = 1ull << sub_bits;
// Values below sub_count are exact; above, each power of two has sub_count buckets.
constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub_count;
}  // namespace

latency_histogram::latency_histogram() : counts_(bucket_count, 0) {}

std::size_t latency_histogram::index_of(std::uint64_t v) {
  if (v < sub_count) return static_cast<std::size_t>(v);
  const int msb = 63 - std::countl_zero(v);  // >= sub_bits
  const int shift = msb - sub_bits;
  const std::uint64_t sub = (v >> shift) - sub_count;  // 0 .. sub_count-1
  return static_cast<std::size_t>((static_cast<std::uint64_t>(shift + 1) << sub_bits) + sub);
}

std::uint64_t latency_histogram::upper_edge(std::size_t index) {
  if (index < sub_count) return index;
  const std::uint64_t shift = (index >> sub_bits) - 1;
  const std::uint64_t sub = index & (sub_count - 1);
  return ((sub_count + sub + 1) << shift) - 1;
}

void latency_histogram::record(duration d) {
  const std::int64_t ns = std::max<std::int64_t>(0, d.count());
  ++counts_[index_of(static_cast<std::uint64_t>(ns))];
  if (count_ == 0 || ns < min_) min_ = ns;
  if (ns > max_) max_ = ns;
  ++count_;
  sum_ += static_cast<double>(ns);
}

latency_histogram& latency_histogram::operator+=(const latency_histogram& o) {
  if (o.count_ == 0) return *this;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  if (count_ == 0 || o.min_ < min_) min_ = o.min_;
  max_ = std::max(max_, o.max_);
  count_ += o.count_;
  sum_ += o.sum_;
  return *this;
}

duration latency_histogram::quantile(double q) const {
  if (count_ == 0) return duration::zero();
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the q-th value, 1-based: the smallest value with at least q of the mass at or below it.
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.5);
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const auto edge = static_cast<std::int64_t>(upper_edge(i));
      return duration(std::clamp(edge, min_, max_));
    }
  }
  return duration(max_);
}

std::vector<std::pair<std::int64_t, std::uint64_t>> latency_histogram::buckets() const {
  std::vector<std::pair<std::int64_t, std::uint64_t>> out;
  for (std::size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i]) out.emplace_back(std::min<std::int64_t>(static_cast<std::int64_t>(upper_edge(i)), max_), counts_[i]);
  return out;
}

std::vector<std::pair<std::uint32_t, std::uint64_t>> latency_histogram::raw_buckets() const {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
  for (std::size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i]) out.emplace_back(static_cast<std::uint32_t>(i), counts_[i]);
  return out;
}

latency_histogram latency_histogram::from_raw(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& buckets,
                                              double sum_ns, std::int64_t min_ns, std::int64_t max_ns) {
  latency_histogram h;
  for (const auto& [index, n] : buckets) {
    if (index >= h.counts_.size()) throw std::out_of_range("latency_histogram: bucket index out of range");
    h.counts_[index] += n;
    h.count_ += n;
  }
  if (h.count_) {
    h.sum_ = sum_ns;
    h.min_ = min_ns;
    h.max_ = max_ns;
  }
  return h;
}

}  // namespace nudge::metrics
