#include "nudge/capture_reader/capture_file.hpp"

#include <pcap/pcap.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>

#include "nudge/capture_reader/packet.hpp"

namespace nudge::capture_reader {

namespace {

struct loop_state {
  void (*fn)(void*, const record&) = nullptr;
  void* context = nullptr;
  std::uint64_t records = 0;
};

void on_pcap_record(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto* s = reinterpret_cast<loop_state*>(user);
  ++s->records;
  // The handle was opened with nanosecond precision: tv_usec holds nanoseconds.
  // pcapng allows timestamps beyond what int64 nanoseconds hold: saturate.
  std::int64_t ns = 0;
  if (__builtin_mul_overflow(static_cast<std::int64_t>(h->ts.tv_sec), std::int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, static_cast<std::int64_t>(h->ts.tv_usec), &ns))
    ns = h->ts.tv_sec < 0 ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max();
  s->fn(s->context, record{time_point(duration(ns)), bytes_view(bytes, h->caplen), h->len});
}

}  // namespace

std::string sniff_format(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[4] = {};
  if (!in.read(reinterpret_cast<char*>(m), 4)) return "";
  const std::uint32_t le = m[0] | (m[1] << 8) | (m[2] << 16) | (std::uint32_t{m[3]} << 24);
  if (le == 0x0A0D0D0A) return "pcapng";
  if (le == 0xA1B2C3D4 || le == 0xD4C3B2A1 || le == 0xA1B23C4D || le == 0x4D3CB2A1) return "pcap";
  return "";
}

result<capture_file> capture_file::open(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return fail(path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec)) return fail(path.string() + ": is a directory");
  const std::string format = sniff_format(path);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // libpcap reads each record with fread; stdio's default buffer (one 4 KiB block)
  // makes that a read() per 4 KiB. A 1 MiB buffer cuts the system calls 256-fold.
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) return fail(path.string() + ": " + std::strerror(errno));
  std::setvbuf(fp, nullptr, _IOFBF, std::size_t{1} << 20);
  pcap_t* h = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf);  // owns fp when it succeeds
  if (!h) {
    std::fclose(fp);
    const auto size = std::filesystem::file_size(path, ec);
    std::string why = errbuf;
    if (!ec && size == 0) why = "empty file";
    else if (format.empty()) why = "not a pcap or pcapng capture (" + why + ")";
    return fail(path.string() + ": " + why);
  }
  return capture_file(h, true, format.empty() ? "unknown" : format);
}

capture_file capture_file::borrow(pcap* handle, std::string format) { return capture_file(handle, false, std::move(format)); }

capture_file::capture_file(capture_file&& o) noexcept
    : handle_(std::exchange(o.handle_, nullptr)), owned_(o.owned_), format_(std::move(o.format_)) {}

capture_file& capture_file::operator=(capture_file&& o) noexcept {
  if (this != &o) {
    close();
    handle_ = std::exchange(o.handle_, nullptr);
    owned_ = o.owned_;
    format_ = std::move(o.format_);
  }
  return *this;
}

capture_file::~capture_file() { close(); }

void capture_file::close() {
  if (handle_ && owned_) pcap_close(handle_);
  handle_ = nullptr;
}

int capture_file::dlt() const { return pcap_datalink(handle_); }

std::string capture_file::pcap_link_name() const {
  const char* n = pcap_datalink_val_to_name(dlt());
  return n ? n : "";
}

read_status capture_file::read_all_records(record_fn fn, void* context) {
  read_status st;
  st.format = format_;
  st.dlt = dlt();
  st.link_type = std::string(link_type_name(st.dlt));
  loop_state ls{fn, context, 0};
  const auto start = std::chrono::steady_clock::now();
  const int rc = pcap_loop(handle_, -1, on_pcap_record, reinterpret_cast<u_char*>(&ls));
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  st.records = ls.records;
  if (rc == PCAP_ERROR) {
    st.error = pcap_geterr(handle_);
    st.truncated_at = ls.records + 1;
  }
  return st;
}

}  // namespace nudge::capture_reader
