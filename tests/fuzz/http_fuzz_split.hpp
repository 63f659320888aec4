#pragma once
// Shared by the HTTP reader targets: the input's first byte picks a chunk
// size, the rest is the stream. Feeding the stream whole and in chunks must
// give the same messages and the same refusal: the readers do not depend on
// where TCP splits the bytes.
#include <cstddef>
#include <cstdint>
#include <span>

namespace nudge::fuzz {

struct split_input {
  std::size_t chunk = 1;
  std::span<const std::uint8_t> stream;
};

inline split_input split(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {1, {}};
  return {static_cast<std::size_t>(data[0] % 64) + 1, {data + 1, size - 1}};
}

}  // namespace nudge::fuzz
