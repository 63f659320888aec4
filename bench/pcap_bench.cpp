// nudge_bench_pcap: how fast nudge-pcap's analyser reads a capture, beside a raw
// libpcap loop over the same file in the same run.
//
// Writes a capture of about 1,000,000 packets in a temporary directory by running
// client-sim's virtual driver with its pcap recorder (2,000 clients, 40 % polling
// every 60 s, 40 % push, 20 % async, Poisson events, pure ACKs, pings; the
// length is rescaled over a few runs until the packet count is within 2 %), then times,
// interleaved, `--runs` times each:
//   raw/pcap_next_ex  pcap_next_ex over every packet, touching each packet's first byte
//   raw/pcap_loop     the same through pcap_loop and a callback (what the analyser uses)
//   raw/1MiB-buffer   pcap_next_ex with the 1 MiB stdio buffer the analyser's reader sets
//                     (libpcap freads each record; the default buffer is one 4 KiB block)
//   analyser          read_capture() + analyser::finish(): the whole analysis
// and prints packets per second (best and median run) and the ratio analyser / raw.
// The file is read once before timing, so every run reads from the page cache.
//
//   cmake --preset release && cmake --build --preset release --target nudge_bench_pcap
//   build/release/bin/nudge_bench_pcap [--packets N] [--clients N] [--runs N] [--file existing.pcap] [--keep]
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "nudge/pcap/analyser.hpp"
#include "nudge/pcap/capture_reader.hpp"
#include "nudge/sim/pcap_capture.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct run_result {
  double seconds = 0;
  std::uint64_t packets = 0;
  std::uint64_t checksum = 0;  // keeps the loops honest
};

run_result raw_next_ex(const std::string& path, bool big_buffer = false) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = nullptr;
  if (big_buffer) {
    std::FILE* fp = std::fopen(path.c_str(), "rb");
    if (fp) std::setvbuf(fp, nullptr, _IOFBF, std::size_t{1} << 20);
    p = fp ? pcap_fopen_offline(fp, err) : nullptr;
  } else {
    p = pcap_open_offline(path.c_str(), err);
  }
  if (!p) {
    std::fprintf(stderr, "pcap_open_offline: %s\n", err);
    std::exit(1);
  }
  run_result r;
  const auto t0 = clock_type::now();
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(p, &h, &data) == 1) {
    ++r.packets;
    if (h->caplen) r.checksum += data[0];
  }
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  pcap_close(p);
  return r;
}

void touch(u_char* user, const pcap_pkthdr* h, const u_char* data) {
  auto* r = reinterpret_cast<run_result*>(user);
  ++r->packets;
  if (h->caplen) r->checksum += data[0];
}

run_result raw_loop(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (!p) std::exit(1);
  run_result r;
  const auto t0 = clock_type::now();
  pcap_loop(p, -1, touch, reinterpret_cast<u_char*>(&r));
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  pcap_close(p);
  return r;
}

run_result analyse(const std::string& path, nudge::pcap_tool::analysis* keep = nullptr) {
  using namespace nudge::pcap_tool;
  run_result r;
  const auto t0 = clock_type::now();
  analyser a;
  const auto st = read_capture(path, a);
  if (!st) {
    std::fprintf(stderr, "%s\n", st.error().message.c_str());
    std::exit(1);
  }
  analysis out = a.finish();
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  r.packets = st->records;
  r.checksum = out.total.traffic.total().packets;
  if (keep) *keep = std::move(out);
  return r;
}

struct series {
  std::vector<double> rates;  // packets per second
  void add(const run_result& r) { rates.push_back(static_cast<double>(r.packets) / r.seconds); }
  double best() const { return *std::max_element(rates.begin(), rates.end()); }
  double median() const {
    std::vector<double> v = rates;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
};

/// The benchmark's mix, run for `length` of virtual time.
nudge::sim::run_plan capture_plan(std::size_t clients, nudge::duration length) {
  using namespace std::chrono_literals;
  nudge::sim::run_plan plan;
  plan.clients = clients;
  plan.mix = nudge::sim::emsmdb_mix(0.4, 0.4, 0.2);
  plan.poll_interval = 60s;
  plan.events_per_client_hour = 6;
  plan.length = length;
  plan.drain = 10s;
  plan.seed = 1;
  return plan;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t packets = 1'000'000;
  std::size_t clients = 2000;
  int runs = 5;
  std::string file;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--packets") packets = std::stoull(next());
    else if (a == "--clients") clients = std::stoull(next());
    else if (a == "--runs") runs = std::max(1, std::stoi(next()));
    else if (a == "--file") file = next();
    else if (a == "--keep") keep = true;
    else {
      std::fprintf(stderr, "usage: %s [--packets N] [--clients N] [--runs N] [--file capture.pcap] [--keep]\n", argv[0]);
      return 2;
    }
  }

  std::filesystem::path dir;
  if (file.empty()) {
    dir = std::filesystem::temp_directory_path() / ("nudge_bench_pcap_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    file = (dir / "virtual-run.pcap").string();
    const auto t0 = clock_type::now();
    // The length that gives `packets`: start at 10 minutes and rescale by
    // packets / frames written until within 2 % (a few runs; the start-up burst
    // makes the count not quite proportional to the length).
    nudge::duration length = std::chrono::minutes(10);
    auto s = nudge::sim::capture_virtual_run(capture_plan(clients, length), file);
    for (int k = 0; k < 4 && s; ++k) {
      const double ratio = static_cast<double>(packets) / static_cast<double>(std::max<std::uint64_t>(1, s->capture.frames));
      if (std::abs(ratio - 1.0) < 0.02) break;
      length = std::chrono::duration_cast<nudge::duration>(length * ratio);
      s = nudge::sim::capture_virtual_run(capture_plan(clients, length), file);
    }
    if (!s) {
      std::fprintf(stderr, "writing the capture failed: %s\n", s.error().message.c_str());
      return 1;
    }
    std::printf("capture: %s, %llu packets, %zu clients, %.0f s of traffic, %.1f MB, written in %.2f s\n",
                file.c_str(), static_cast<unsigned long long>(s->capture.frames), clients, nudge::to_seconds(length),
                static_cast<double>(std::filesystem::file_size(file)) / 1e6,
                std::chrono::duration<double>(clock_type::now() - t0).count());
  } else {
    std::printf("capture: %s, %.1f MB\n", file.c_str(), static_cast<double>(std::filesystem::file_size(file)) / 1e6);
  }

  // Warm the page cache, and show what the analyser finds (so the mix is visible).
  (void)raw_next_ex(file);
  nudge::pcap_tool::analysis a;
  (void)analyse(file, &a);
  std::printf("mix: %llu packets, %zu clients; polls %llu, fetches %llu, pings %llu, async waits %llu, pure ACKs %llu\n",
              static_cast<unsigned long long>(a.packets), a.clients.size(),
              static_cast<unsigned long long>(a.total.polls), static_cast<unsigned long long>(a.total.fetches),
              static_cast<unsigned long long>(a.total.pings), static_cast<unsigned long long>(a.total.async_waits),
              static_cast<unsigned long long>(
                  a.total.traffic.meter.cell(nudge::protocol::emsmdb::message_kind::tcp_ack, nudge::metrics::direction::to_server)
                      .packets +
                  a.total.traffic.meter.cell(nudge::protocol::emsmdb::message_kind::tcp_ack, nudge::metrics::direction::to_client)
                      .packets));

  series next_ex, loop, big, analyser;
  std::uint64_t n = 0;
  for (int r = 0; r < runs; ++r) {
    const run_result x = raw_next_ex(file);
    const run_result y = raw_loop(file);
    const run_result w = raw_next_ex(file, true);
    const run_result z = analyse(file);
    if (x.packets != y.packets || x.packets != z.packets || x.packets != w.packets || z.checksum != z.packets) {
      std::fprintf(stderr, "runs disagree: %llu / %llu / %llu packets\n", static_cast<unsigned long long>(x.packets),
                   static_cast<unsigned long long>(y.packets), static_cast<unsigned long long>(z.packets));
      return 1;
    }
    n = x.packets;
    next_ex.add(x);
    loop.add(y);
    big.add(w);
    analyser.add(z);
  }

  std::printf("\n%-22s %14s %14s   (%d runs, %llu packets each, one core)\n", "", "best pkt/s", "median pkt/s", runs,
              static_cast<unsigned long long>(n));
  auto row = [](const char* name, const series& s) {
    std::printf("%-22s %14.0f %14.0f   %.1f ns/packet (best)\n", name, s.best(), s.median(), 1e9 / s.best());
  };
  row("raw/pcap_next_ex", next_ex);
  row("raw/pcap_loop", loop);
  row("raw/1MiB-buffer", big);
  row("analyser", analyser);
  std::printf("\nratio analyser / raw pcap_next_ex: %.2f (best), %.2f (median)\n", analyser.best() / next_ex.best(),
              analyser.median() / next_ex.median());
  std::printf("ratio analyser / raw pcap_loop:    %.2f (best), %.2f (median)\n", analyser.best() / loop.best(),
              analyser.median() / loop.median());
  std::printf("ratio analyser / raw 1MiB-buffer:  %.2f (best), %.2f (median)\n", analyser.best() / big.best(),
              analyser.median() / big.median());
  std::printf("analyser: %.2f M packets/s (best) %s the 5 M packets/s target\n", analyser.best() / 1e6,
              analyser.best() >= 5e6 ? "meets" : "MISSES");

  if (!dir.empty()) {
    if (keep) {
      std::printf("kept %s\n", file.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  return 0;
}
