#pragma once
// A pcap or pcapng file read through libpcap, record by record, with
// nanosecond timestamps. <pcap.h> stays out of this header.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "nudge/protocol/byte_io.hpp"
#include "nudge/protocol/clock.hpp"
#include "nudge/protocol/result.hpp"

struct pcap;

namespace nudge::capture_reader {

using protocol::bytes_view;

/// One record: when it was captured, the bytes captured (caplen) and the
/// frame's length on the wire (len).
struct record {
  time_point ts{};
  bytes_view frame;
  std::uint32_t wire_length = 0;
};

/// How a read went. A capture that breaks off midway is not a failure: what
/// was read is kept, and error / truncated_at say where it stopped.
struct read_status {
  std::string format;     // "pcap", "pcapng" or "unknown"
  std::string link_type;  // link_type_name() of the capture's link type
  int dlt = -1;
  std::uint64_t records = 0;  // records read
  std::string error;          // libpcap's reason when reading stopped early, empty otherwise
  std::optional<std::uint64_t> truncated_at;  // 1-based number of the record that could not be read
  double seconds = 0;         // wall time of the read loop
};

/// An open capture. Opened by path it owns (and closes) its libpcap handle;
/// borrowed, it does not.
class capture_file {
 public:
  /// Opens `path`; fails with "<path>: <why>" (no such file, empty, not a capture).
  static result<capture_file> open(const std::filesystem::path& path);
  /// An already opened handle (e.g. pcap_fopen_offline on an fmemopen stream),
  /// left open; `format` is reported as given.
  static capture_file borrow(pcap* handle, std::string format);

  capture_file(capture_file&& o) noexcept;
  capture_file& operator=(capture_file&& o) noexcept;
  capture_file(const capture_file&) = delete;
  capture_file& operator=(const capture_file&) = delete;
  ~capture_file();

  int dlt() const;
  const std::string& format() const { return format_; }
  /// libpcap's name of the link type ("EN10MB", "LINUX_SLL2", ...), empty when it has none.
  std::string pcap_link_name() const;

  /// Calls on_record(const record&) for every record in file order.
  template <class F>
  read_status read_all(F&& on_record) {
    return read_all_records([](void* f, const record& r) { (*static_cast<std::remove_reference_t<F>*>(f))(r); },
                            &on_record);
  }

 private:
  using record_fn = void (*)(void*, const record&);
  capture_file(pcap* handle, bool owned, std::string format) : handle_(handle), owned_(owned), format_(std::move(format)) {}
  read_status read_all_records(record_fn fn, void* context);
  void close();

  pcap* handle_ = nullptr;
  bool owned_ = false;
  std::string format_;
};

/// What a file's first four bytes say it is: "pcap", "pcapng" or "" (neither).
std::string sniff_format(const std::filesystem::path& path);

}  // namespace nudge::capture_reader
