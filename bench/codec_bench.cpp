// nudge_bench_codec: what one poll, one fetch and one ping cost in CPU.
//
// Codec benchmarks run the whole PDU through the dcerpc, emsmdb and rop layers,
// each beside a memcpy of the same number of bytes measured in the same run;
// after the run, one "ratio vs memcpy" line per pair gives codec time / memcpy
// time (CPU time per operation, best of the repetitions):
//   poll request   EcDoRpcExt2 request PDU, empty ROP list (84 bytes)
//   poll response  EcDoRpcExt2 response PDU, empty ROP list (100 bytes)
//   newmail10      EcDoRpcExt2 response PDU carrying 10 RopNotify NewMail
//   push datagram  push_context::matches on a 16-byte ping; the 28-byte cookie decode
// Session benchmarks (no sockets, no clock) give "sessions per second": how many
// sessions one core could serve at one poll per session per second.
//   notifier_poll/N     notifier_core: 84 bytes in -> 100-byte response out, N sessions round robin
//   client_poll         client_session: poll timer -> 84-byte poll out; 100-byte response in
//   poll_round_trip     both cores wired back to back: one client poll cycle end to end
//
//   build/release/bin/nudge_bench_codec --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "nudge/client/client_session.hpp"
#include "nudge/notifier/notifier_core.hpp"
#include "nudge/protocol/dcerpc.hpp"
#include "nudge/protocol/emsmdb.hpp"
#include "nudge/protocol/push_datagram.hpp"
#include "nudge/protocol/rop.hpp"

namespace {

using namespace nudge;
using namespace nudge::protocol;

// ---- the PDUs under test ---------------------------------------------------------------

emsmdb::context_handle sample_handle() {
  emsmdb::context_handle h;
  for (std::size_t i = 0; i < h.uuid.bytes.size(); ++i) h.uuid.bytes[i] = static_cast<std::uint8_t>(0x30 + i);
  return h;
}

/// Scratch buffers are reused across iterations (cleared, capacity kept), as a driver would.
struct codec_scratch {
  byte_buffer rop;
  byte_buffer pdu;
};

void encode_poll_request(codec_scratch& s, const emsmdb::context_handle& cxh, std::uint32_t call_id) {
  s.rop.clear();
  rop::encode_empty_request(s.rop);
  emsmdb::rpc_ext2_request req;
  req.cxh = cxh;
  req.rgb_in = s.rop;
  s.pdu.clear();
  dcerpc::encode_request(s.pdu, call_id, 0, opnum::do_rpc_ext2, [&](byte_writer& w) { emsmdb::encode(w, req); });
}

void encode_ext2_response(codec_scratch& s, const emsmdb::context_handle& cxh, std::uint32_t call_id,
                          std::size_t mails) {
  s.rop.clear();
  rop::response_builder b(s.rop);
  for (std::size_t i = 0; i < mails; ++i) {
    rop::new_mail_notification n;
    n.notification_handle = 1;
    n.folder_id = 0x0100000000000001ull;
    n.event = {i + 1, time_point(std::chrono::microseconds(1000000 + i))};
    b.add(n);
  }
  b.finish();
  emsmdb::rpc_ext2_response rsp;
  rsp.cxh = cxh;
  rsp.rgb_out = s.rop;
  s.pdu.clear();
  dcerpc::encode_response(s.pdu, call_id, 0, [&](byte_writer& w) { emsmdb::encode(w, rsp); });
}

/// Request PDU -> stub -> RPC_HEADER_EXT/ROP list, as the notifier does. Returns a value
/// that depends on every layer, so nothing is optimised away.
std::size_t decode_poll_request(bytes_view pdu) {
  auto d = dcerpc::decode_pdu(pdu);
  if (!d.complete()) return 0;
  const auto* r = std::get_if<dcerpc::request_pdu>(&d.value);
  if (r == nullptr) return 0;
  auto e = emsmdb::decode_rpc_ext2_request(r->stub);
  if (!e.complete()) return 0;
  auto rops = rop::decode_request(e.value.rgb_in);
  if (!rops.complete()) return 0;
  return rops.value.size() + e.value.max_out + r->call_id;
}

struct summing_visitor final : rop::rop_visitor {
  std::uint64_t sum = 0;
  void on_new_mail(const rop::new_mail_notification& n) override { sum += n.event.id; }
  void on_pending(std::uint16_t session_index) override { sum += session_index; }
};

/// Response PDU -> stub -> ROP walk with a visitor, as the client does.
std::uint64_t decode_ext2_response(bytes_view pdu) {
  auto d = dcerpc::decode_pdu(pdu);
  if (!d.complete()) return 0;
  const auto* r = std::get_if<dcerpc::response_pdu>(&d.value);
  if (r == nullptr) return 0;
  auto e = emsmdb::decode_rpc_ext2_response(r->stub);
  if (!e.complete()) return 0;
  summing_visitor v;
  auto rops = rop::decode_response(e.value.rgb_out, v);
  if (!rops.complete()) return 0;
  return v.sum + rops.value + e.value.return_code;
}

byte_buffer poll_request_bytes() {
  codec_scratch s;
  encode_poll_request(s, sample_handle(), 7);
  return s.pdu;
}
byte_buffer ext2_response_bytes(std::size_t mails) {
  codec_scratch s;
  encode_ext2_response(s, sample_handle(), 7, mails);
  return s.pdu;
}
const byte_buffer push_blob = {0xC0, 0xFF, 0xEE, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
byte_buffer cookie_bytes() {
  byte_buffer b;
  b.reserve(64);  // also keeps GCC 12's -Wstringop-overflow false positive (vector::insert at -O3) quiet
  encode_reachability_cookie(b, 0x01000000, push_blob);
  return b;
}

void set_throughput(benchmark::State& st, std::size_t bytes) {
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(bytes));
  st.SetItemsProcessed(st.iterations());
  st.counters["bytes"] = static_cast<double>(bytes);
}

// ---- codec benchmarks ---------------------------------------------------------------------

void poll_request_encode(benchmark::State& st) {
  codec_scratch s;
  const auto cxh = sample_handle();
  std::uint32_t call_id = 1;
  for (auto _ : st) {
    encode_poll_request(s, cxh, call_id++);
    benchmark::DoNotOptimize(s.pdu.data());
    benchmark::ClobberMemory();
  }
  set_throughput(st, s.pdu.size());
}

void poll_request_decode(benchmark::State& st) {
  const byte_buffer pdu = poll_request_bytes();
  for (auto _ : st) {
    benchmark::DoNotOptimize(pdu.data());
    benchmark::DoNotOptimize(decode_poll_request(pdu));
  }
  set_throughput(st, pdu.size());
}

void ext2_response_encode(benchmark::State& st, std::size_t mails) {
  codec_scratch s;
  const auto cxh = sample_handle();
  std::uint32_t call_id = 1;
  for (auto _ : st) {
    encode_ext2_response(s, cxh, call_id++, mails);
    benchmark::DoNotOptimize(s.pdu.data());
    benchmark::ClobberMemory();
  }
  set_throughput(st, s.pdu.size());
}

void ext2_response_decode(benchmark::State& st, std::size_t mails) {
  const byte_buffer pdu = ext2_response_bytes(mails);
  for (auto _ : st) {
    benchmark::DoNotOptimize(pdu.data());
    benchmark::DoNotOptimize(decode_ext2_response(pdu));
  }
  set_throughput(st, pdu.size());
}

void push_datagram_match(benchmark::State& st) {
  push_context ctx;
  ctx.assign(push_blob);
  const byte_buffer datagram = push_blob;
  for (auto _ : st) {
    benchmark::DoNotOptimize(datagram.data());
    bool m = ctx.matches(datagram);
    benchmark::DoNotOptimize(m);
  }
  set_throughput(st, datagram.size());
}

void push_cookie_decode(benchmark::State& st) {
  const byte_buffer cookie = cookie_bytes();
  for (auto _ : st) {
    benchmark::DoNotOptimize(cookie.data());
    auto d = decode_reachability_cookie(cookie);
    benchmark::DoNotOptimize(d.value.notification_handle);
    benchmark::DoNotOptimize(d.value.context.size());
  }
  set_throughput(st, cookie.size());
}

/// The baseline: copying the same number of bytes.
void memcpy_baseline(benchmark::State& st, std::size_t bytes) {
  std::vector<std::uint8_t> src(bytes, 0x5A), dst(bytes, 0);
  for (auto _ : st) {
    benchmark::DoNotOptimize(src.data());
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_throughput(st, bytes);
}

// ---- session benchmarks ---------------------------------------------------------------------

const time_point t0 = time_point(std::chrono::seconds(1));

void set_sessions_rate(benchmark::State& st) {
  st.SetItemsProcessed(st.iterations());
  st.counters["sessions_per_s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}

struct served_session {
  notifier::connection_id conn = 0;
  byte_buffer poll;
};

/// Binds and connects `n` sessions on their own connections by feeding the core real
/// PDUs; returns each session's connection and ready-made poll PDU.
std::vector<served_session> connect_sessions(notifier::notifier_core& core, std::size_t n) {
  std::vector<served_session> out;
  out.reserve(n);
  dcerpc::bind_pdu bind;
  bind.call_id = 1;
  dcerpc::presentation_context pc;
  pc.abstract_syntax = emsmdb_syntax();
  pc.transfer_syntaxes.push_back(ndr_syntax());
  bind.contexts.push_back(pc);
  byte_buffer bind_bytes;
  dcerpc::encode(bind_bytes, bind);
  for (std::size_t i = 0; i < n; ++i) {
    served_session s;
    s.conn = core.open_connection(t0, ip_endpoint::v4(127, 0, 0, 1, static_cast<std::uint16_t>(1024 + i % 60000)));
    core.receive(t0, s.conn, bind_bytes);
    const std::string dn = "/o=nudge/ou=bench/cn=user" + std::to_string(i);
    emsmdb::connect_ex_request req;
    req.user_dn = dn;
    byte_buffer connect;
    dcerpc::encode_request(connect, 2, 0, opnum::do_connect_ex, [&](byte_writer& w) { emsmdb::encode(w, req); });
    core.receive(t0, s.conn, connect);
    emsmdb::context_handle cxh;
    for (auto& o : core.outputs()) {
      const auto* t = std::get_if<notifier::tcp_send>(&o);
      if (t == nullptr) continue;
      auto d = dcerpc::decode_pdu(t->bytes);
      const auto* r = d.complete() ? std::get_if<dcerpc::response_pdu>(&d.value) : nullptr;
      if (r == nullptr) continue;
      auto c = emsmdb::decode_connect_ex_response(r->stub);
      if (c.complete()) cxh = c.value.cxh;
    }
    core.outputs().clear();
    codec_scratch scratch;
    encode_poll_request(scratch, cxh, 3);
    s.poll = scratch.pdu;
    out.push_back(std::move(s));
  }
  return out;
}

void notifier_poll(benchmark::State& st) {
  const auto n = static_cast<std::size_t>(st.range(0));
  notifier::notifier_core core(notifier::notifier_config{});
  const auto sessions = connect_sessions(core, n);
  std::size_t i = 0, responses = 0;
  for (auto _ : st) {
    const served_session& s = sessions[i];
    core.receive(t0, s.conn, s.poll);
    responses += core.outputs().size();
    core.outputs().clear();
    if (++i == n) i = 0;
  }
  if (responses != static_cast<std::size_t>(st.iterations())) st.SkipWithError("a poll did not get exactly one response");
  set_sessions_rate(st);
  st.counters["bytes_in"] = static_cast<double>(sessions.front().poll.size());
}

/// Shuttles TCP bytes between one client (main channel) and the core until both are quiet.
void pump(notifier::notifier_core& core, notifier::connection_id conn, client::client_session& cl, time_point now) {
  for (bool progress = true; progress;) {
    progress = false;
    for (auto& o : cl.outputs())
      if (auto* t = std::get_if<client::tcp_send>(&o)) {
        core.receive(now, conn, t->bytes);
        progress = true;
      }
    cl.outputs().clear();
    for (auto& o : core.outputs())
      if (auto* t = std::get_if<notifier::tcp_send>(&o)) {
        cl.receive(now, client::channel::main, t->bytes);
        progress = true;
      }
    core.outputs().clear();
  }
}

client::client_config poll_client_config() {
  client::client_config cfg;
  cfg.mode = client::client_mode::poll;
  cfg.user_dn = "/o=nudge/ou=bench/cn=user0";
  cfg.poll_interval = std::chrono::seconds(1);
  return cfg;
}

void client_poll(benchmark::State& st) {
  // Connect the client through a real core, then answer its polls with the core's own
  // 100-byte response, re-stamped with each poll's call id (bytes 12..15 of the PDU).
  notifier::notifier_core core(notifier::notifier_config{});
  client::client_metrics metrics;
  client::client_session cl(poll_client_config(), metrics);
  const auto conn = core.open_connection(t0, ip_endpoint::v4(127, 0, 0, 1, 50000));
  cl.start(t0);
  pump(core, conn, cl, t0);
  time_point now = t0 + std::chrono::seconds(1);
  cl.on_timer(now);
  byte_buffer response;
  for (auto& o : cl.outputs())
    if (auto* t = std::get_if<client::tcp_send>(&o)) core.receive(now, conn, t->bytes);
  cl.outputs().clear();
  for (auto& o : core.outputs())
    if (auto* t = std::get_if<notifier::tcp_send>(&o)) response = t->bytes;
  core.outputs().clear();
  cl.receive(now, client::channel::main, response);
  if (!cl.ready() || response.size() < dcerpc::common_header_size) {
    st.SkipWithError("the client did not get ready");
    return;
  }
  for (auto _ : st) {
    now += std::chrono::seconds(1);
    cl.on_timer(now);  // sends the poll
    const auto& poll = std::get<client::tcp_send>(cl.outputs().front()).bytes;
    std::memcpy(response.data() + 12, poll.data() + 12, 4);  // call_id
    cl.outputs().clear();
    cl.receive(now, client::channel::main, response);
  }
  if (cl.failed() || metrics.counter(protocol::emsmdb::counter::wasted_polls) < static_cast<std::uint64_t>(st.iterations()))
    st.SkipWithError("the client did not process every poll response");
  set_sessions_rate(st);
}

void poll_round_trip(benchmark::State& st) {
  notifier::notifier_core core(notifier::notifier_config{});
  client::client_metrics metrics;
  client::client_session cl(poll_client_config(), metrics);
  const auto conn = core.open_connection(t0, ip_endpoint::v4(127, 0, 0, 1, 50000));
  cl.start(t0);
  pump(core, conn, cl, t0);
  if (!cl.ready()) {
    st.SkipWithError("the client did not get ready");
    return;
  }
  time_point now = t0;
  for (auto _ : st) {
    now += std::chrono::seconds(1);
    cl.on_timer(now);
    pump(core, conn, cl, now);
  }
  if (cl.failed() || metrics.counter(protocol::emsmdb::counter::polls) < static_cast<std::uint64_t>(st.iterations()))
    st.SkipWithError("a poll cycle did not complete");
  set_sessions_rate(st);
}

// ---- registration, reporting ------------------------------------------------------------------

struct pair_spec {
  std::string label;
  std::string codec;
  std::string baseline;
};

std::string memcpy_name(std::size_t bytes) { return "memcpy/" + std::to_string(bytes) + "B"; }

/// Keeps every iteration run's CPU time (ns per op), then prints normally.
class collecting_reporter : public benchmark::ConsoleReporter {
 public:
  explicit collecting_reporter(OutputOptions options) : ConsoleReporter(options) {}
  std::map<std::string, double> cpu_ns;  // best over repetitions

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      const double ns = r.GetAdjustedCPUTime() * unit_to_ns(r.time_unit);
      auto [it, fresh] = cpu_ns.emplace(r.benchmark_name(), ns);
      if (!fresh) it->second = std::min(it->second, ns);
    }
    ConsoleReporter::ReportRuns(runs);
  }

 private:
  static double unit_to_ns(benchmark::TimeUnit u) {
    switch (u) {
      case benchmark::kSecond: return 1e9;
      case benchmark::kMillisecond: return 1e6;
      case benchmark::kMicrosecond: return 1e3;
      case benchmark::kNanosecond: return 1.0;
    }
    return 1.0;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::size_t poll_req = poll_request_bytes().size();
  const std::size_t poll_rsp = ext2_response_bytes(0).size();
  const std::size_t nm10 = ext2_response_bytes(10).size();
  const std::size_t ping = push_blob.size();
  const std::size_t cookie = cookie_bytes().size();
  if (poll_req != 84 || poll_rsp != 100)
    std::fprintf(stderr, "note: poll request is %zu bytes and response %zu (expected 84 and 100)\n", poll_req, poll_rsp);

  const std::vector<pair_spec> pairs = {
      {"poll request encode", "codec/poll_request/encode", memcpy_name(poll_req)},
      {"poll request decode", "codec/poll_request/decode", memcpy_name(poll_req)},
      {"poll response encode", "codec/poll_response/encode", memcpy_name(poll_rsp)},
      {"poll response decode", "codec/poll_response/decode", memcpy_name(poll_rsp)},
      {"10 NewMail response encode", "codec/newmail10_response/encode", memcpy_name(nm10)},
      {"10 NewMail response decode", "codec/newmail10_response/decode", memcpy_name(nm10)},
      {"push datagram match", "codec/push_datagram/match", memcpy_name(ping)},
      {"push cookie decode", "codec/push_cookie/decode", memcpy_name(cookie)},
  };

  using benchmark::RegisterBenchmark;
  const auto ns = benchmark::kNanosecond;
  RegisterBenchmark("codec/poll_request/encode", poll_request_encode)->Unit(ns);
  RegisterBenchmark("codec/poll_request/decode", poll_request_decode)->Unit(ns);
  RegisterBenchmark("codec/poll_response/encode", [](benchmark::State& st) { ext2_response_encode(st, 0); })->Unit(ns);
  RegisterBenchmark("codec/poll_response/decode", [](benchmark::State& st) { ext2_response_decode(st, 0); })->Unit(ns);
  RegisterBenchmark("codec/newmail10_response/encode", [](benchmark::State& st) { ext2_response_encode(st, 10); })
      ->Unit(ns);
  RegisterBenchmark("codec/newmail10_response/decode", [](benchmark::State& st) { ext2_response_decode(st, 10); })
      ->Unit(ns);
  RegisterBenchmark("codec/push_datagram/match", push_datagram_match)->Unit(ns);
  RegisterBenchmark("codec/push_cookie/decode", push_cookie_decode)->Unit(ns);
  std::vector<std::size_t> sizes = {poll_req, poll_rsp, nm10, ping, cookie};
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  for (std::size_t n : sizes)
    RegisterBenchmark(memcpy_name(n).c_str(), [n](benchmark::State& st) { memcpy_baseline(st, n); })->Unit(ns);
  RegisterBenchmark("session/notifier_poll/sessions", notifier_poll)->Arg(1)->Arg(10000)->Unit(ns);
  RegisterBenchmark("session/client_poll", client_poll)->Unit(ns);
  RegisterBenchmark("session/poll_round_trip", poll_round_trip)->Unit(ns);

  // This reporter replaces the library's own display reporter, so it applies
  // --benchmark_color itself: colour only on a terminal, unless turned off.
  bool color = isatty(fileno(stdout)) != 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--benchmark_color=false" || a == "--benchmark_color=no" || a == "--benchmark_color=0") color = false;
    if (a == "--benchmark_color=true" || a == "--benchmark_color=yes" || a == "--benchmark_color=1") color = true;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  collecting_reporter reporter(color ? benchmark::ConsoleReporter::OO_ColorTabular
                                     : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);

  const auto& r = reporter.cpu_ns;
  std::printf("\nratio vs memcpy (CPU time per operation, codec / memcpy of the same byte count):\n");
  for (const auto& p : pairs) {
    auto c = r.find(p.codec);
    auto b = r.find(p.baseline);
    if (c == r.end() || b == r.end() || b->second <= 0) continue;
    std::printf("ratio vs memcpy: %-28s %9.1f ns vs %6.1f ns (%s) = %7.1fx\n", p.label.c_str(), c->second, b->second,
                p.baseline.c_str(), c->second / b->second);
  }
  std::printf("\nsessions per second (one poll per session per second, one core, no I/O):\n");
  for (const auto& [name, label] :
       std::vector<std::pair<std::string, std::string>>{{"session/notifier_poll/sessions/1", "notifier_core, 1 session"},
                                                        {"session/notifier_poll/sessions/10000",
                                                         "notifier_core, 10000 sessions"},
                                                        {"session/client_poll", "client_session"},
                                                        {"session/poll_round_trip", "client + notifier round trip"}}) {
    auto it = r.find(name);
    if (it == r.end() || it->second <= 0) continue;
    std::printf("sessions/s: %-32s %12.0f  (%.0f ns per poll)\n", label.c_str(), 1e9 / it->second, it->second);
  }
  benchmark::Shutdown();
  return 0;
}
