#pragma once
// The bus's TimeStamps are .NET DateTimes (milliseconds since 0001-01-01 UTC);
// nudge's time_point counts from the start of a run (virtual) or of the host's
// steady clock (live). Both cores map one onto the other with the same fixed
// origin, so a client measures an event's latency as now − its TimeStamp.
#include <chrono>
#include <cstdint>

#include "nudge/pollbus/codec.hpp"
#include "nudge/protocol/clock.hpp"

namespace nudge::pollbus {

/// time_point{} is 2026-01-05T09:00:00Z: where a virtual capture's time zero
/// lands by default (client-sim --pcap, default_pcap_epoch()), so a capture's
/// frame times and the TimeStamps in it agree (nudge-pcap measures latency
/// from them). The text forms are as long for any year after 1970.
inline constexpr std::int64_t dotnet_ms_at_time_zero = dotnet_ms_at_unix_epoch + 1767603600000;

inline std::int64_t timestamp_of(time_point t) {
  return dotnet_ms_at_time_zero + std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline time_point time_of_timestamp(std::int64_t dotnet_ms) {
  return time_point{} + std::chrono::milliseconds(dotnet_ms - dotnet_ms_at_time_zero);
}

}  // namespace nudge::pollbus
