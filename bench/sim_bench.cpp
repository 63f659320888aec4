// Virtual-time speed: the driver's event queue against a raw
// std::priority_queue in the classic "hold" model (prefill W events, then pop
// the earliest and push one at now + U[1, 65535] ticks), and a whole simulated
// day of polling clients, reported as simulated events per second.
//   build/release/bin/nudge_bench_sim --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <queue>

#include "nudge/protocol/random.hpp"
#include "nudge/sim/event_queue.hpp"
#include "nudge/sim/virtual_driver.hpp"

using namespace nudge;
using namespace std::chrono_literals;

namespace {

struct payload {  // the size of a small driver event without its byte buffer
  std::uint32_t client;
  std::uint32_t kind;
};

void hold_event_queue(benchmark::State& st) {
  const auto pending = static_cast<std::size_t>(st.range(0));
  sim::event_queue<payload> q;
  rng r(1);
  for (std::size_t i = 0; i < pending; ++i) q.push(time_point(duration(1 + r.next() % 65535)), {static_cast<std::uint32_t>(i), 0});
  std::uint64_t checksum = 0;
  for (auto _ : st) {
    const time_point now = q.next_time();
    payload p = q.pop();
    checksum += static_cast<std::uint64_t>(now.time_since_epoch().count());
    q.push(now + duration(1 + r.next() % 65535), p);
  }
  benchmark::DoNotOptimize(checksum);
  st.counters["events_per_s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}

// Raw baseline: a priority queue of (time, sequence, payload) with no slab and no lane.
void hold_priority_queue(benchmark::State& st) {
  const auto pending = static_cast<std::size_t>(st.range(0));
  struct entry {
    std::int64_t at;
    std::uint64_t seq;
    payload p;
    bool operator>(const entry& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::priority_queue<entry, std::vector<entry>, std::greater<>> q;
  rng r(1);
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < pending; ++i)
    q.push({static_cast<std::int64_t>(1 + r.next() % 65535), seq++, {static_cast<std::uint32_t>(i), 0}});
  std::uint64_t checksum = 0;
  for (auto _ : st) {
    entry e = q.top();
    q.pop();
    checksum += static_cast<std::uint64_t>(e.at);
    q.push({e.at + static_cast<std::int64_t>(1 + r.next() % 65535), seq++, e.p});
  }
  benchmark::DoNotOptimize(checksum);
  st.counters["events_per_s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}

// A whole business day: N polling clients, one poll a minute, 50 events per 8 hours.
void simulated_day(benchmark::State& st) {
  sim::run_plan p;
  p.clients = static_cast<std::size_t>(st.range(0));
  p.mix = {st.range(1) == 0 ? 1.0 : 0.0, st.range(1) == 1 ? 1.0 : 0.0, 0.0};
  p.poll_interval = 60s;
  p.events_per_client_hour = 50.0 / 8.0;
  p.length = 8h;
  p.drain = 5min;
  p.ramp_up = 60s;
  std::uint64_t events = 0;
  for (auto _ : st) {
    auto r = sim::run_virtual(p);
    events += r.simulated_events;
    if (r.total().counter(protocol::emsmdb::counter::events_fetched) == 0) st.SkipWithError("nothing was fetched");
  }
  st.counters["sim_events_per_s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  st.counters["sim_events"] = static_cast<double>(events) / static_cast<double>(st.iterations());
}

class collecting_reporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> cpu_ns;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) cpu_ns[r.benchmark_name()] = r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  for (long w : {10000L, 1000000L}) {
    benchmark::RegisterBenchmark("queue/event_queue/hold", hold_event_queue)->Arg(w)->Unit(benchmark::kNanosecond);
    benchmark::RegisterBenchmark("queue/priority_queue/hold", hold_priority_queue)->Arg(w)->Unit(benchmark::kNanosecond);
  }
  benchmark::RegisterBenchmark("day/poll", simulated_day)->Args({2000, 0})->Unit(benchmark::kMillisecond)->Iterations(1);
  benchmark::RegisterBenchmark("day/push", simulated_day)->Args({2000, 1})->Unit(benchmark::kMillisecond)->Iterations(1);
  benchmark::Initialize(&argc, argv);
  collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  for (long w : {10000L, 1000000L}) {
    const auto ours = reporter.cpu_ns.find("queue/event_queue/hold/" + std::to_string(w));
    const auto raw = reporter.cpu_ns.find("queue/priority_queue/hold/" + std::to_string(w));
    if (ours != reporter.cpu_ns.end() && raw != reporter.cpu_ns.end())
      std::printf("ratio vs std::priority_queue, %ld pending: %.2f (event_queue time / raw time)\n", w,
                  ours->second / raw->second);
  }
  benchmark::Shutdown();
}
