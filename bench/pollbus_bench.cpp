// One poll exchange of seed 003's bus through the codec, SOAP against JSON:
// the client encodes a RegisterMessage request (HTTP head + body), the server
// reads it (HTTP reader, route, decode) and answers a PollIntervalMessage and
// a ChatMessage, the client reads the answer. Counters: bytes on the wire per
// exchange, so the cost per byte and the size difference show together.
#include <benchmark/benchmark.h>

#include <vector>

#include "nudge/http/reader.hpp"
#include "nudge/http/writer.hpp"
#include "nudge/pollbus/http_binding.hpp"

namespace {

using namespace nudge;
using namespace nudge::pollbus;

message agent_message(message_type t) {
  message m;
  m.type = t;
  m.agent_id = *parse_guid("3f2504e0-4f89-11d3-9a0c-0305e82c3301");
  m.timestamp_ms = dotnet_ms(2026, 12, 3, 12, 0, 0, 125);
  m.computer_name = "PC1";
  m.user_info = "bob";
  m.text = "folder 7 changed";
  return m;
}

void poll_exchange(benchmark::State& state, encoding e) {
  const message request_message = agent_message(message_type::register_agent);
  const std::vector<message> answer{agent_message(message_type::poll_interval), agent_message(message_type::chat)};
  request_options ro;
  ro.host = "127.0.0.1:18765";
  std::size_t wire_bytes = 0;
  for (auto _ : state) {
    const auto request_bytes = http::serialize(poll_request(request_message, e, ro));
    http::request_reader server;
    server.feed(request_bytes);
    auto q = server.next();
    auto call = read_bus_request(q.value);
    const auto response_bytes = http::serialize(poll_response(answer, call.value.enc));
    http::response_reader client;
    client.feed(response_bytes);
    auto r = client.next();
    auto messages = read_poll_response(r.value);
    benchmark::DoNotOptimize(messages.value.data());
    wire_bytes = request_bytes.size() + response_bytes.size();
    if (!messages.complete() || messages.value.size() != 2) state.SkipWithError("the exchange did not round-trip");
  }
  state.counters["wire_bytes"] = static_cast<double>(wire_bytes);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire_bytes));
}

void BM_PollExchangeSoap(benchmark::State& s) { poll_exchange(s, encoding::soap); }
void BM_PollExchangeJson(benchmark::State& s) { poll_exchange(s, encoding::json); }
BENCHMARK(BM_PollExchangeSoap);
BENCHMARK(BM_PollExchangeJson);

}  // namespace

BENCHMARK_MAIN();
