#pragma once
// The virtual-time driver's event queue: events pop in (time, insertion order),
// so equal times resolve the same way on every run. Two lanes: a binary heap for
// anything, and a FIFO for events the caller knows arrive in time order (link
// deliveries under a constant delay), which then skip the heap's log n.
// Payloads sit in a slab so heap moves touch only 24-byte keys.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

#include "nudge/protocol/clock.hpp"

namespace nudge::sim {

template <class Payload>
class event_queue {
 public:
  /// `in_order`: the caller promises `at` is not earlier than the last in-order push;
  /// if it is anyway, the event goes to the heap (still correct, just slower).
  void push(time_point at, Payload payload, bool in_order = false) {
    std::uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
      slab_[slot] = std::move(payload);
    } else {
      slot = static_cast<std::uint32_t>(slab_.size());
      slab_.push_back(std::move(payload));
    }
    const key k{at, next_seq_++, slot};
    if (in_order && (lane_.empty() || lane_.back().at <= at)) {
      lane_.push_back(k);
      return;
    }
    heap_.push_back(k);
    std::push_heap(heap_.begin(), heap_.end(), later{});
  }

  bool empty() const { return lane_.empty() && heap_.empty(); }
  std::size_t size() const { return lane_.size() + heap_.size(); }
  /// Time of the next event; `never` when empty.
  time_point next_time() const {
    if (empty()) return never;
    return from_lane() ? lane_.front().at : heap_.front().at;
  }
  /// Removes the next event; the queue must not be empty.
  Payload pop() {
    std::uint32_t slot;
    if (from_lane()) {
      slot = lane_.front().slot;
      lane_.pop_front();
    } else {
      std::pop_heap(heap_.begin(), heap_.end(), later{});
      slot = heap_.back().slot;
      heap_.pop_back();
    }
    free_slots_.push_back(slot);
    return std::move(slab_[slot]);
  }

 private:
  struct key {
    time_point at;
    std::uint64_t seq;
    std::uint32_t slot;
  };
  struct later {
    bool operator()(const key& a, const key& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };
  bool from_lane() const { return !lane_.empty() && (heap_.empty() || later{}(heap_.front(), lane_.front())); }

  std::vector<key> heap_;
  std::deque<key> lane_;
  std::vector<Payload> slab_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace nudge::sim
