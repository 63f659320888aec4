#pragma once
// Bounded little-endian byte cursors. The reader checks the remaining length
// before every read and latches a failure instead of reading past the end, so
// decoders can read a whole structure and test `ok()` once.
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace nudge::protocol {

using bytes_view = std::span<const std::uint8_t>;
using byte_buffer = std::vector<std::uint8_t>;

inline bytes_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

class byte_writer {
 public:
  explicit byte_writer(byte_buffer& out) : out_(out), start_(out.size()) {}

  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { put_le(v); }
  void u32(std::uint32_t v) { put_le(v); }
  void u64(std::uint64_t v) { put_le(v); }
  void u16_be(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void bytes(bytes_view b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void zeros(std::size_t n) { out_.insert(out_.end(), n, 0); }
  /// Pads with zeros so the offset relative to where this writer started is a multiple of n.
  void align(std::size_t n) {
    while ((out_.size() - start_) % n != 0) out_.push_back(0);
  }
  /// Offset relative to where this writer started.
  std::size_t offset() const { return out_.size() - start_; }
  std::size_t start() const { return start_; }
  /// Overwrites a u16 at an absolute buffer position (for lengths known only at the end).
  void patch_u16(std::size_t absolute_pos, std::uint16_t v) {
    out_[absolute_pos] = static_cast<std::uint8_t>(v);
    out_[absolute_pos + 1] = static_cast<std::uint8_t>(v >> 8);
  }
  void patch_u32(std::size_t absolute_pos, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_[absolute_pos + i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  byte_buffer& buffer() { return out_; }

 private:
  template <class T>
  void put_le(T v) {
    // One size change per value rather than one push_back per byte.
    const std::size_t at = out_.size();
    out_.resize(at + sizeof(T));
    for (std::size_t i = 0; i < sizeof(T); ++i) out_[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  byte_buffer& out_;
  std::size_t start_;
};

class byte_reader {
 public:
  explicit byte_reader(bytes_view in) : in_(in) {}

  bool ok() const { return ok_; }
  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }

  std::uint8_t u8() { return get_le<std::uint8_t>(); }
  std::uint16_t u16() { return get_le<std::uint16_t>(); }
  std::uint32_t u32() { return get_le<std::uint32_t>(); }
  std::uint64_t u64() { return get_le<std::uint64_t>(); }
  std::uint16_t u16_be() {
    if (!need(2)) return 0;
    std::uint16_t v = static_cast<std::uint16_t>((in_[pos_] << 8) | in_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  /// A view of the next n bytes (empty and failed if fewer remain).
  bytes_view bytes(std::size_t n) {
    if (!need(n)) return {};
    bytes_view v = in_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  void skip(std::size_t n) { (void)bytes(n); }
  /// Skips padding so the offset is a multiple of n (relative to the reader's start).
  void align(std::size_t n) {
    std::size_t pad = (n - pos_ % n) % n;
    skip(pad);
  }
  void fail() { ok_ = false; }

 private:
  bool need(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  template <class T>
  T get_le() {
    if (!need(sizeof(T))) return 0;
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v | (static_cast<T>(in_[pos_ + i]) << (8 * i)));
    pos_ += sizeof(T);
    return v;
  }
  bytes_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace nudge::protocol
