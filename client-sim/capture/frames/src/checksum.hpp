#pragma once
// RFC 1071 Internet checksum, shared by the IPv4, TCP and UDP writers.
#include <cstdint>
#include <span>

namespace nudge::capture::detail {

/// Adds `bytes` as big-endian 16-bit words to `acc` (an odd last byte is the
/// high half of a final word). 64-bit so no carry is lost before folding.
inline std::uint64_t checksum_add(std::uint64_t acc, std::span<const std::uint8_t> bytes) {
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) acc += (std::uint64_t{bytes[i]} << 8) | bytes[i + 1];
  if (i < bytes.size()) acc += std::uint64_t{bytes[i]} << 8;
  return acc;
}

/// Folds the carries back in and complements: the value to store in the header.
inline std::uint16_t checksum_finish(std::uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(~acc & 0xffff);
}

}  // namespace nudge::capture::detail
