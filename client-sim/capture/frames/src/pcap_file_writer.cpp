#include "nudge/capture/pcap_file_writer.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace nudge::capture {

pcap_file_writer::~pcap_file_writer() { release(); }

pcap_file_writer::pcap_file_writer(pcap_file_writer&& other) noexcept
    : pcap_(std::exchange(other.pcap_, nullptr)),
      dumper_(std::exchange(other.dumper_, nullptr)),
      epoch_offset_(other.epoch_offset_),
      error_text_(std::move(other.error_text_)),
      frames_written_(other.frames_written_),
      frames_dropped_(other.frames_dropped_) {}

pcap_file_writer& pcap_file_writer::operator=(pcap_file_writer&& other) noexcept {
  if (this != &other) {
    release();
    pcap_ = std::exchange(other.pcap_, nullptr);
    dumper_ = std::exchange(other.dumper_, nullptr);
    epoch_offset_ = other.epoch_offset_;
    error_text_ = std::move(other.error_text_);
    frames_written_ = other.frames_written_;
    frames_dropped_ = other.frames_dropped_;
  }
  return *this;
}

void pcap_file_writer::release() noexcept {
  if (dumper_) pcap_dump_close(dumper_);
  if (pcap_) pcap_close(pcap_);
  dumper_ = nullptr;
  pcap_ = nullptr;
}

capture_error pcap_file_writer::open(const std::filesystem::path& path, duration epoch_offset) {
  release();
  error_text_.clear();
  frames_written_ = 0;
  frames_dropped_ = 0;
  epoch_offset_ = epoch_offset;
  // A "dead" handle only carries the link type and snaplen for the file header.
  pcap_ = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, static_cast<int>(snaplen), PCAP_TSTAMP_PRECISION_MICRO);
  if (!pcap_) {
    error_text_ = "pcap_open_dead failed";
    return capture_error::open_failed;
  }
  dumper_ = pcap_dump_open(pcap_, path.c_str());
  if (!dumper_) {
    error_text_ = pcap_geterr(pcap_);
    release();
    return capture_error::open_failed;
  }
  return capture_error::none;
}

void pcap_file_writer::frame(time_point t, std::span<const std::uint8_t> bytes) {
  if (!dumper_) {
    ++frames_dropped_;
    return;
  }
  // Floor division keeps tv_usec in [0, 1e6) for times before the epoch too.
  const std::int64_t us = to_micros(t + epoch_offset_);
  std::int64_t sec = us / 1'000'000;
  std::int64_t usec = us % 1'000'000;
  if (usec < 0) {
    usec += 1'000'000;
    --sec;
  }
  pcap_pkthdr header{};
  header.ts.tv_sec = static_cast<decltype(header.ts.tv_sec)>(sec);
  header.ts.tv_usec = static_cast<decltype(header.ts.tv_usec)>(usec);
  header.len = static_cast<bpf_u_int32>(bytes.size());
  header.caplen = static_cast<bpf_u_int32>(std::min<std::size_t>(bytes.size(), snaplen));
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, bytes.data());
  ++frames_written_;
}

capture_error pcap_file_writer::close() {
  if (!dumper_) {
    release();
    error_text_ = "not open";
    return capture_error::not_open;
  }
  capture_error result = capture_error::none;
  // pcap_dump() cannot report errors; they surface as a failed flush or a
  // stream error flag on the underlying FILE.
  if (pcap_dump_flush(dumper_) != 0 || std::ferror(pcap_dump_file(dumper_)) != 0) {
    error_text_ = "write to pcap file failed";
    result = capture_error::write_failed;
  }
  release();
  return result;
}

}  // namespace nudge::capture
