#pragma once
// Writes frames to a classic pcap file (LINKTYPE_ETHERNET, microsecond
// timestamps, snaplen 65535) through libpcap's dump API, so the file is exactly
// what tcpdump would write and every pcap reader accepts it. <pcap.h> stays out
// of this header so users of nudge_capture need no libpcap include path.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "nudge/capture/error.hpp"
#include "nudge/capture/frame_sink.hpp"
#include "nudge/protocol/clock.hpp"

struct pcap;
struct pcap_dumper;

namespace nudge::capture {

class pcap_file_writer final : public frame_sink {
 public:
  static constexpr std::uint32_t snaplen = 65535;

  pcap_file_writer() = default;
  ~pcap_file_writer() override;
  pcap_file_writer(pcap_file_writer&& other) noexcept;
  pcap_file_writer& operator=(pcap_file_writer&& other) noexcept;
  pcap_file_writer(const pcap_file_writer&) = delete;
  pcap_file_writer& operator=(const pcap_file_writer&) = delete;

  /// Creates (truncates) `path`. Timestamps are written as `t + epoch_offset`
  /// since 1970: virtual time starts at zero, so pass an offset to make a
  /// simulated run look recent. open_failed (libpcap's reason in error_text())
  /// if the file cannot be created; closes any file opened before.
  [[nodiscard]] capture_error open(const std::filesystem::path& path, duration epoch_offset = {});

  /// Appends one frame; frames longer than snaplen are truncated to it (the
  /// record keeps the real length). Counted in frames_dropped() when not open.
  void frame(time_point t, std::span<const std::uint8_t> bytes) override;

  /// Flushes and closes. write_failed if writing failed (e.g. disk full),
  /// not_open if no file was open.
  [[nodiscard]] capture_error close();

  bool is_open() const { return dumper_ != nullptr; }
  const std::string& error_text() const { return error_text_; }
  std::uint64_t frames_written() const { return frames_written_; }
  /// Frames handed over while no file was open (reset by open()).
  std::uint64_t frames_dropped() const { return frames_dropped_; }

 private:
  void release() noexcept;

  pcap* pcap_ = nullptr;
  pcap_dumper* dumper_ = nullptr;
  duration epoch_offset_{};
  std::string error_text_;
  std::uint64_t frames_written_ = 0;
  std::uint64_t frames_dropped_ = 0;
};

}  // namespace nudge::capture
