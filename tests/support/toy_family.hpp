#pragma once
// A test-only protocol family, "toy": the worked example of
// docs/architecture.md ("Adding a protocol"). It lives in tests/, registers
// itself when a test asks (never in protocols/registrations.cpp), and touches
// no driver, no result writer and no report: they learn its names from the
// registry and from a result's vocabulary block.
//
// The "tick" protocol: a client connects to the server's listener 0 and,
// every tick.interval (30 s), sends one line "TICK <mailbox>\n"; the server answers
// "<n> <age_ms>\n": the events pending for that mailbox (now fetched) and the
// age of the oldest of them. The client counts ticks, empty ticks, the events
// it fetched and their latency on its one path, "tick".
//
// It reads captures too (engine::capture_classifier, in toy_family.cpp): each
// TCP connection is a client session; "TICK" lines are its polls, replies of
// "0 ..." its empty ticks, and a reply's age dates the oldest event it carried.
#include <chrono>
#include <cstdint>
#include <string_view>

namespace nudge::toy {

inline constexpr std::string_view family_name = "toy";
/// The default of its key "tick.interval".
inline constexpr std::chrono::seconds tick_interval{30};

/// Traffic rows (kinds), paths and counters, as the vocabulary lists them.
enum class kind : std::uint8_t { tcp_setup, tcp_ack, tick_request, tick_reply };
enum class counter : std::uint8_t { ticks, empty_ticks };

/// Adds the family to the registry (once; later calls do nothing).
void register_toy_family();

}  // namespace nudge::toy
