#pragma once
// Reads pcap and pcapng files (the capture layer, tools/capture) and hands
// every record to an analyser. <pcap.h> stays out of this header (pcap_t is forward-declared).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "nudge/capture_reader/capture_file.hpp"
#include "nudge/pcap/analyser.hpp"
#include "nudge/protocol/result.hpp"

struct pcap;

namespace nudge::pcap_tool {

/// How the read went (capture_reader::read_status), and where it goes in the report.
struct read_status : capture_reader::read_status {
  /// Copies the reader's fields into a finished analysis.
  void apply_to(analysis& a) const;
};

/// Opens `path` (pcap or pcapng, nanosecond timestamps) and analyses every record.
/// Fails when the capture cannot be read at all: missing file, not a capture, an
/// unsupported link type. (A capture that breaks off midway does not fail: what
/// was read is analysed and read_status says where it stopped.)
result<read_status> read_capture(const std::filesystem::path& path, analyser& a);

/// Analyses every record of an already opened capture (e.g. pcap_fopen_offline on
/// an fmemopen stream). Does not close `handle`. `format` is reported as given.
result<read_status> read_capture(pcap* handle, analyser& a, std::string format = "unknown");

using capture_reader::sniff_format;

}  // namespace nudge::pcap_tool
