#pragma once
// An open-addressing hash index (linear probing, power-of-two capacity, load
// at most 1/2) from a small trivially copyable key to a 32-bit value, usually
// an index into a vector of records. No allocation on lookup; inserts allocate
// only when the table doubles. No erase: the analyser never forgets a flow.
#include <cstdint>
#include <cstring>
#include <vector>

namespace nudge::pcap_tool::detail {

inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/// Key must provide `std::uint64_t hash() const` and operator==.
template <class Key>
class flat_index {
 public:
  static constexpr std::uint32_t npos = 0xFFFFFFFFu;

  flat_index() { rehash(64); }

  std::size_t size() const { return size_; }

  /// The value stored for `key`, or npos.
  std::uint32_t find(const Key& key) const { return find(key, key.hash()); }
  std::uint32_t find(const Key& key, std::uint64_t hash) const {
    std::size_t i = hash & mask_;
    for (;;) {
      const slot& s = slots_[i];
      if (s.value == npos) return npos;
      if (s.key == key) return s.value;
      i = (i + 1) & mask_;
    }
  }

  /// The value stored for `key`; if absent, stores `value` and returns it
  /// (`inserted` tells which happened).
  std::uint32_t find_or_insert(const Key& key, std::uint32_t value, bool& inserted) {
    return find_or_insert(key, key.hash(), value, inserted);
  }
  std::uint32_t find_or_insert(const Key& key, std::uint64_t hash, std::uint32_t value, bool& inserted) {
    std::size_t i = hash & mask_;
    for (;;) {
      slot& s = slots_[i];
      if (s.value == npos) break;
      if (s.key == key) {
        inserted = false;
        return s.value;
      }
      i = (i + 1) & mask_;
    }
    inserted = true;
    if ((size_ + 1) * 2 > slots_.size()) {
      rehash(slots_.size() * 2);
      i = hash & mask_;
      while (slots_[i].value != npos) i = (i + 1) & mask_;
    }
    slots_[i].key = key;
    slots_[i].value = value;
    ++size_;
    return value;
  }

  /// Starts loading the slot where a key of this hash would be.
  void prefetch(std::uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

  /// Stores `value` for `key`, replacing any value stored before.
  void assign(const Key& key, std::uint32_t value) {
    std::size_t i = key.hash() & mask_;
    for (;;) {
      slot& s = slots_[i];
      if (s.value == npos) break;
      if (s.key == key) {
        s.value = value;
        return;
      }
      i = (i + 1) & mask_;
    }
    bool inserted = false;
    find_or_insert(key, value, inserted);
  }

 private:
  struct slot {
    Key key{};
    std::uint32_t value = npos;
  };

  void rehash(std::size_t capacity) {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(capacity, slot{});
    mask_ = capacity - 1;
    for (const slot& s : old) {
      if (s.value == npos) continue;
      std::size_t i = s.key.hash() & mask_;
      while (slots_[i].value != npos) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace nudge::pcap_tool::detail
