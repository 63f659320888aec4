#pragma once
// Helpers shared by the libFuzzer targets and the seed-corpus generator.
//  - NUDGE_FUZZ_CHECK: a property violation is a crash (abort), with a message,
//    so libFuzzer saves the input and .ci/fuzz.sh fails. Protocol limits (pcbOut,
//    max_xmit_frag, a deadline after now) are properties too: none only prints.
//  - fdp_writer: builds inputs that FuzzedDataProvider reads back as a given
//    sequence of ConsumeIntegralInRange / ConsumeBool / ConsumeBytes calls, so
//    make_corpus can write meaningful seeds for the structured targets.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#define NUDGE_FUZZ_CHECK(cond, what)                                                           \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: property violated: %s (%s)\n", __FILE__, __LINE__, (what), \
                   #cond);                                                                     \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

namespace nudge::fuzz {

/// NUDGE_FUZZ_TRACE=1 makes the session targets print the script they execute
/// (to check that make_corpus's seeds do what they say).
inline bool tracing() {
  static const bool on = std::getenv("NUDGE_FUZZ_TRACE") != nullptr;
  return on;
}
#define NUDGE_FUZZ_TRACE(...) \
  do {                        \
    if (::nudge::fuzz::tracing()) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

inline bool same_bytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

/// The mirror of FuzzedDataProvider (LLVM 14): integers are taken from the end
/// of the input, most significant byte first; bytes from the front.
class fdp_writer {
 public:
  template <class T>
  void integral(T lo, T hi, T v) {
    static_assert(std::is_unsigned_v<T>, "the targets only consume unsigned integers");
    const std::uint64_t range = static_cast<std::uint64_t>(hi) - lo;
    const std::uint64_t r = static_cast<std::uint64_t>(v) - lo;
    std::size_t k = 0;
    while (k * 8 < sizeof(T) * 8 && (range >> (k * 8)) > 0) ++k;
    for (std::size_t i = 0; i < k; ++i) back_.push_back(static_cast<std::uint8_t>(r >> (8 * (k - 1 - i))));
  }
  void boolean(bool b) { integral<std::uint8_t>(0, 255, b ? 1 : 0); }
  void bytes(std::span<const std::uint8_t> b) { front_.insert(front_.end(), b.begin(), b.end()); }
  /// A length in [0, max_len] followed by that many bytes (what the targets' `blob` helper reads).
  void blob(std::span<const std::uint8_t> b, std::size_t max_len) {
    integral<std::size_t>(0, max_len, b.size());
    bytes(b);
  }
  std::vector<std::uint8_t> finish() const {
    std::vector<std::uint8_t> out = front_;
    out.insert(out.end(), back_.rbegin(), back_.rend());
    return out;
  }

 private:
  std::vector<std::uint8_t> front_;
  std::vector<std::uint8_t> back_;  // in consumption order
};

}  // namespace nudge::fuzz
