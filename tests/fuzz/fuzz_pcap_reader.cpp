// fuzz_pcap_reader: arbitrary bytes as a capture file. They are handed to libpcap
// from memory (fmemopen + pcap_fopen_offline, pcap or pcapng), every record
// libpcap accepts goes through nudge-pcap's analyser, and the report is built
// and rendered. Whatever the bytes, nothing crashes, every packet is counted
// exactly once (in a kind of one flow, or in a skip count), and a capture that
// breaks off says where.
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>

#include "fuzz_common.hpp"
#include "nudge/pcap/analyser.hpp"
#include "nudge/pcap/capture_reader.hpp"
#include "pcap_fuzz_checks.hpp"

using namespace nudge::pcap_tool;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data), size, "rb");
  if (!f) return 0;
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
  if (!p) {
    std::fclose(f);
    return 0;
  }
  analyser an;
  const auto read = read_capture(p, an, "memory");
  const bool opened = read.ok();  // not: an unsupported link type, refused before any record
  const read_status st = opened ? *read : read_status{};
  pcap_close(p);  // closes f
  analysis a = an.finish();
  st.apply_to(a);
  if (!opened) {
    NUDGE_FUZZ_CHECK(a.packets == 0, "records read from a refused capture");
    return 0;
  }
  NUDGE_FUZZ_CHECK(a.packets == st.records, "records read differ from packets analysed");
  NUDGE_FUZZ_CHECK(st.error.empty() == !st.truncated_at.has_value(), "an error without its position or the reverse");
  if (st.truncated_at) NUDGE_FUZZ_CHECK(*st.truncated_at == st.records + 1, "truncated_at is not the next record");
  nudge::fuzz::check_analysis(a, size % 4 == 0);
  return 0;
}
