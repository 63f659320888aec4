#include "nudge/pcap/capture_reader.hpp"

#include <pcap/pcap.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

namespace nudge::pcap_tool {

namespace {

struct loop_state {
  analyser* a = nullptr;
  int dlt = 0;
  std::uint64_t records = 0;
};

void on_record(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto* s = reinterpret_cast<loop_state*>(user);
  ++s->records;
  // The handle was opened with nanosecond precision: tv_usec holds nanoseconds.
  // pcapng allows timestamps beyond what int64 nanoseconds hold: saturate.
  std::int64_t ns = 0;
  if (__builtin_mul_overflow(static_cast<std::int64_t>(h->ts.tv_sec), std::int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, static_cast<std::int64_t>(h->ts.tv_usec), &ns))
    ns = h->ts.tv_sec < 0 ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max();
  s->a->on_frame(s->dlt, time_point(duration(ns)), bytes_view(bytes, h->caplen), h->len);
}

}  // namespace

void read_status::apply_to(analysis& a) const {
  a.format = format;
  a.link_type = link_type;
  a.error = error;
  a.truncated_at = truncated_at;
  a.read_seconds = seconds;
}

std::string sniff_format(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[4] = {};
  if (!in.read(reinterpret_cast<char*>(m), 4)) return "";
  const std::uint32_t le = m[0] | (m[1] << 8) | (m[2] << 16) | (std::uint32_t{m[3]} << 24);
  if (le == 0x0A0D0D0A) return "pcapng";
  if (le == 0xA1B2C3D4 || le == 0xD4C3B2A1 || le == 0xA1B23C4D || le == 0x4D3CB2A1) return "pcap";
  return "";
}

read_status read_capture(pcap* handle, analyser& a, std::string format) {
  read_status st;
  st.format = std::move(format);
  st.dlt = pcap_datalink(handle);
  st.link_type = std::string(link_type_name(st.dlt));
  if (!link_type_supported(st.dlt)) {
    const char* name = pcap_datalink_val_to_name(st.dlt);
    throw capture_open_error("unsupported link type " + std::to_string(st.dlt) + " (" + (name ? name : "?") +
                             "); supported: EN10MB, NULL, LOOP, LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6");
  }
  loop_state ls{&a, st.dlt, 0};
  const auto start = std::chrono::steady_clock::now();
  const int rc = pcap_loop(handle, -1, on_record, reinterpret_cast<u_char*>(&ls));
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  st.records = ls.records;
  if (rc == PCAP_ERROR) {
    st.error = pcap_geterr(handle);
    st.truncated_at = ls.records + 1;
  }
  return st;
}

read_status read_capture(const std::filesystem::path& path, analyser& a) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw capture_open_error(path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec)) throw capture_open_error(path.string() + ": is a directory");
  const std::string format = sniff_format(path);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // libpcap reads each record with fread; stdio's default buffer (one 4 KiB block)
  // makes that a read() per 4 KiB. A 1 MiB buffer cuts the system calls 256-fold.
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) throw capture_open_error(path.string() + ": " + std::strerror(errno));
  std::setvbuf(fp, nullptr, _IOFBF, std::size_t{1} << 20);
  pcap_t* h = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf);  // owns fp when it succeeds
  if (!h) {
    std::fclose(fp);
    const auto size = std::filesystem::file_size(path, ec);
    std::string why = errbuf;
    if (!ec && size == 0) why = "empty file";
    else if (format.empty()) why = "not a pcap or pcapng capture (" + why + ")";
    throw capture_open_error(path.string() + ": " + why);
  }
  struct closer {
    pcap_t* h;
    ~closer() { pcap_close(h); }
  } guard{h};
  return read_capture(h, a, format.empty() ? "unknown" : format);
}

}  // namespace nudge::pcap_tool
