#include "nudge/pcap/capture_reader.hpp"

namespace nudge::pcap_tool {

void read_status::apply_to(analysis& a) const {
  a.format = format;
  a.link_type = link_type;
  a.error = error;
  a.truncated_at = truncated_at;
  a.read_seconds = seconds;
}

namespace {

result<read_status> analyse_all(capture_reader::capture_file& file, analyser& a) {
  const int dlt = file.dlt();
  if (!link_type_supported(dlt)) {
    const std::string name = file.pcap_link_name();
    return fail("unsupported link type " + std::to_string(dlt) + " (" + (name.empty() ? "?" : name) +
                "); supported: EN10MB, NULL, LOOP, LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6");
  }
  read_status st;
  static_cast<capture_reader::read_status&>(st) =
      file.read_all([&](const capture_reader::record& r) { a.on_frame(dlt, r.ts, r.frame, r.wire_length); });
  return st;
}

}  // namespace

result<read_status> read_capture(pcap* handle, analyser& a, std::string format) {
  auto file = capture_reader::capture_file::borrow(handle, std::move(format));
  return analyse_all(file, a);
}

result<read_status> read_capture(const std::filesystem::path& path, analyser& a) {
  auto file = capture_reader::capture_file::open(path);
  if (!file) return file.error();
  return analyse_all(*file, a);
}

}  // namespace nudge::pcap_tool
