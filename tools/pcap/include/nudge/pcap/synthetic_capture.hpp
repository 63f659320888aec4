#pragma once
// A synthetic capture of many clients talking to one notifier: poll clients
// (EcDoRpcExt2 every interval), push clients (register, poll until the first
// ping, then fetch on each ping) and async clients (EcDoAsyncConnectEx, a held
// EcDoAsyncWaitEx on a second connection, fetch when it completes), Poisson
// events, delayed pure ACKs (200 ms) and every frame through nudge_capture's
// frame_synthesizer. Valid PDUs from nudge_protocol's encoders throughout.
//
// It also returns what it put in the capture, per mode, counted with nudge's
// wire model (which the synthesizer's frames match byte for byte), so a test
// can hold the analyser to exact numbers and the benchmark has a realistic mix.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "nudge/capture/frame_sink.hpp"
#include "nudge/metrics/traffic.hpp"
#include "nudge/protocol/clock.hpp"

namespace nudge::pcap_tool {

struct synth_options {
  std::size_t clients = 2000;
  double poll_share = 0.4;   // the rest split by push_share, then async
  double push_share = 0.4;
  duration poll_interval = std::chrono::seconds(60);
  double events_per_client_hour = 6;
  std::uint64_t target_frames = 1'000'000;  // stop once this many frames are out
  duration max_length = std::chrono::hours(1000);  // or once virtual time reaches this
  std::uint64_t seed = 1;
  bool close_at_end = false;  // FIN exchange on every connection at the end (beyond target_frames)
};

struct synth_mode_counts {
  std::uint64_t clients = 0;
  std::uint64_t polls = 0;
  std::uint64_t fetches = 0;
  std::uint64_t pings = 0;
  std::uint64_t async_waits = 0;
  std::uint64_t async_notified = 0;
  std::uint64_t events = 0;  // NewMail details sent
  std::uint64_t registrations = 0;
  metrics::traffic_meter traffic;  // client view: to_server / to_client
};

struct synth_result {
  std::string error;  // empty on success
  std::uint64_t frames = 0;
  duration length{};
  std::array<synth_mode_counts, 3> modes;  // poll, push, async
};

/// Emits the capture into `sink` (time zero = virtual time zero).
synth_result synthesize(capture::frame_sink& sink, const synth_options& opt);

/// Writes it as a pcap file (time zero at 1700000000 s since the epoch).
synth_result write_synthetic_capture(const std::filesystem::path& path, const synth_options& opt);

}  // namespace nudge::pcap_tool
