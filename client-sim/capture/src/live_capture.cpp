#include <poll.h>
#include <pcap/pcap.h>

#include <cstdio>

#include "nudge/sim/pcap_capture.hpp"

namespace nudge::sim {

live_capture::~live_capture() { (void)stop(duration::zero()); }

std::string live_capture::start(const live_capture_options& o) {
  if (running()) return "a capture is already running";
  last_ = {};
  written_ = 0;
  stop_ = false;
  char err[PCAP_ERRBUF_SIZE] = {};
  auto fail = [&](std::string why) {
    if (dumper_) pcap_dump_close(dumper_);
    if (handle_) pcap_close(handle_);
    dumper_ = nullptr;
    handle_ = nullptr;
    return why;
  };
  handle_ = pcap_create(o.interface.c_str(), err);
  if (!handle_) return fail("cannot capture on " + o.interface + ": " + err);
  pcap_set_snaplen(handle_, o.snaplen);
  pcap_set_promisc(handle_, 0);
  pcap_set_immediate_mode(handle_, 1);  // deliver each packet at once: no batching delay at stop
  pcap_set_buffer_size(handle_, o.buffer_bytes);
  pcap_set_timeout(handle_, 50);
  const int rc = pcap_activate(handle_);
  if (rc < 0) {
    std::string why = "cannot capture on " + o.interface + ": " + pcap_statustostr(rc);
    const std::string detail = pcap_geterr(handle_);
    if (!detail.empty()) why += " (" + detail + ")";
    if (rc == PCAP_ERROR_PERM_DENIED)
      why += "; capturing needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities";
    return fail(why);
  }
  if (!o.filter.empty()) {
    bpf_program prog{};
    if (pcap_compile(handle_, &prog, o.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
      return fail("capture filter '" + o.filter + "': " + pcap_geterr(handle_));
    const int set = pcap_setfilter(handle_, &prog);
    pcap_freecode(&prog);
    if (set != 0) return fail("capture filter '" + o.filter + "': " + pcap_geterr(handle_));
  }
  if (pcap_setnonblock(handle_, 1, err) != 0) return fail(std::string("pcap_setnonblock: ") + err);
  dumper_ = pcap_dump_open(handle_, o.path.c_str());
  if (!dumper_) return fail("cannot create " + o.path.string() + ": " + pcap_geterr(handle_));
  thread_ = std::thread([this] { loop(); });
  return {};
}

void live_capture::loop() {
  const int fd = pcap_get_selectable_fd(handle_);
  for (;;) {
    const bool stopping = stop_.load(std::memory_order_acquire);
    const int n = pcap_dispatch(handle_, -1, pcap_dump, reinterpret_cast<u_char*>(dumper_));
    if (n > 0) {
      written_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      continue;  // drain everything available before looking at the flag again
    }
    if (n < 0) {
      if (n == PCAP_ERROR_BREAK) break;
      last_.error = std::string("capture stopped: ") + pcap_geterr(handle_);
      break;
    }
    if (stopping) break;  // nothing left after the stop was asked
    if (fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 50);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

live_capture_stats live_capture::stop(duration settle) {
  if (!thread_.joinable()) return last_;
  if (settle > duration::zero()) std::this_thread::sleep_for(settle);
  stop_.store(true, std::memory_order_release);
  thread_.join();
  last_.written = written_.load();
  pcap_stat ps{};
  if (pcap_stats(handle_, &ps) == 0) {
    last_.have_pcap_stats = true;
    last_.received = ps.ps_recv;
    last_.dropped = ps.ps_drop;
    last_.if_dropped = ps.ps_ifdrop;
  }
  if (pcap_dump_flush(dumper_) != 0 || std::ferror(pcap_dump_file(dumper_)) != 0)
    if (last_.error.empty()) last_.error = "write to the pcap file failed";
  pcap_dump_close(dumper_);
  pcap_close(handle_);
  dumper_ = nullptr;
  handle_ = nullptr;
  return last_;
}

}  // namespace nudge::sim
