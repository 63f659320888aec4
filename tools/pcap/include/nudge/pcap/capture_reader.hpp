#pragma once
// Reads pcap and pcapng files through libpcap and hands every record to an
// analyser. <pcap.h> stays out of this header (pcap_t is forward-declared).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "nudge/pcap/analyser.hpp"

struct pcap;

namespace nudge::pcap_tool {

/// The capture could not be read at all: missing file, not a capture, an
/// unsupported link type. (A capture that breaks off midway is not an error:
/// what was read is kept and read_status says where it stopped.)
class capture_open_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct read_status {
  std::string format;     // "pcap", "pcapng" or "unknown"
  std::string link_type;  // link_type_name() of the capture's link type
  int dlt = -1;
  std::uint64_t records = 0;  // records read and analysed
  std::string error;          // libpcap's reason when reading stopped early, empty otherwise
  std::optional<std::uint64_t> truncated_at;  // 1-based number of the record that could not be read
  double seconds = 0;         // wall time of the read loop
  /// Copies the reader's fields into a finished analysis.
  void apply_to(analysis& a) const;
};

/// Opens `path` (pcap or pcapng, nanosecond timestamps) and analyses every record.
read_status read_capture(const std::filesystem::path& path, analyser& a);

/// Analyses every record of an already opened capture (e.g. pcap_fopen_offline on
/// an fmemopen stream). Does not close `handle`. `format` is reported as given.
read_status read_capture(pcap* handle, analyser& a, std::string format = "unknown");

/// What a file's first four bytes say it is: "pcap", "pcapng" or "" (neither).
std::string sniff_format(const std::filesystem::path& path);

}  // namespace nudge::pcap_tool
