// The polling bus (seed 003) in the virtual driver beside EMSMDB clients on
// the same mail: every group through the registry, groups of one mode told
// apart by labels and their own keys, and the bus's bytes per client-hour
// against its closed form (tools/model, bus_model.hpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "nudge/engine/registry.hpp"
#include "nudge/model/bus_model.hpp"
#include "nudge/pollbus/family.hpp"
#include "nudge/protocols/registrations.hpp"
#include "nudge/sim/run_result.hpp"
#include "nudge/sim/scenario.hpp"
#include "nudge/sim/virtual_driver.hpp"

namespace {

using namespace std::chrono_literals;
using nudge::sim::client_group;
using nudge::sim::run_plan;
namespace pollbus = nudge::pollbus;

std::uint64_t counter(const nudge::sim::mode_result& m, pollbus::counter c) { return m.metrics.counter(c); }

run_plan mixed(std::size_t clients) {
  nudge::protocols::register_all();
  run_plan p;
  p.clients = clients;
  client_group json{"pollbus", "fixed", 1, "bus-json-close", {{"pollbus.encoding", "json"}, {"pollbus.keep_alive", "false"}}};
  p.mix = {{"emsmdb", "poll", 1},      {"pollbus", "fixed", 1}, {"pollbus", "activity", 1},
           {"pollbus", "load", 1}, json, {"emsmdb", "async", 1}};
  p.length = 30min;
  p.drain = 1min;
  p.ramp_up = 15s;
  p.poll_interval = 60s;
  p.events_per_client_hour = 12;
  p.seed = 5;
  return p;
}

TEST(pollbus_mixed, bus_groups_run_beside_emsmdb_and_get_every_event) {
  const run_plan p = mixed(120);
  ASSERT_EQ(p.validate(), "");
  const auto r = nudge::sim::run_virtual(p);
  ASSERT_EQ(r.modes.size(), 6u);
  for (std::size_t g : {1u, 2u, 3u, 4u}) {
    const auto& m = r.modes[g];
    SCOPED_TRACE(p.mix[g].name());
    EXPECT_EQ(m.protocol, "pollbus");
    EXPECT_EQ(m.clients, 20u);
    EXPECT_EQ(m.metrics.clients_ready, 20u);
    EXPECT_EQ(counter(m, pollbus::counter::protocol_errors), 0u);
    EXPECT_EQ(counter(m, pollbus::counter::http_errors), 0u);
    EXPECT_GT(m.events_generated, 50u);
    EXPECT_EQ(m.metrics.events_fetched(), m.events_generated);
    EXPECT_LE(m.metrics.latency.quantile(1.0), 16s);
    EXPECT_GT(counter(m, pollbus::counter::wasted_polls), 0u);
  }
  // The activity service polled faster after traffic than the fixed one.
  EXPECT_GT(counter(r.modes[2], pollbus::counter::polls), counter(r.modes[1], pollbus::counter::polls));
  EXPECT_LT(r.modes[2].metrics.latency.quantile(0.5), r.modes[1].metrics.latency.quantile(0.5));
  // The labelled group's own keys: JSON is smaller; without keep-alive a connection per poll.
  const auto& json_close = r.modes[4];
  EXPECT_EQ(counter(json_close, pollbus::counter::connections), counter(json_close, pollbus::counter::polls));
  EXPECT_EQ(counter(r.modes[1], pollbus::counter::connections), 20u);
  const auto kind = static_cast<std::size_t>(pollbus::message_kind::poll);
  EXPECT_LT(json_close.metrics.traffic.cell(kind, nudge::metrics::direction::to_client).payload_bytes,
            r.modes[1].metrics.traffic.cell(kind, nudge::metrics::direction::to_client).payload_bytes);
  // EMSMDB beside it is untouched.
  EXPECT_EQ(r.modes[0].protocol, "emsmdb");
  EXPECT_EQ(r.modes[0].events_missed(), 0u);
  EXPECT_EQ(r.modes[5].events_missed(), 0u);

  const auto j = nudge::sim::to_json(r);
  ASSERT_TRUE(j["modes"].contains("bus-json-close")) << j["modes"].dump();
  EXPECT_EQ(j["modes"]["bus-json-close"]["mode"], "fixed");
  EXPECT_EQ(j["modes"]["bus-json-close"]["protocol"], "pollbus");
  EXPECT_TRUE(j["modes"].contains("activity"));
  EXPECT_EQ(j["plan"]["client_groups"][4]["label"], "bus-json-close");
  EXPECT_EQ(j["plan"]["client_groups"][4]["set"]["pollbus.encoding"], "json");
  EXPECT_FALSE(j["plan"]["client_groups"][0].contains("label"));  // EMSMDB's fields as they were
  EXPECT_EQ(j["vocabulary"]["pollbus"]["modes"][2], "activity");
}

TEST(pollbus_mixed, a_scenario_states_labels_group_keys_and_family_keys) {
  nudge::protocols::register_all();
  const auto loaded = nudge::sim::parse_scenario(R"(
[run]
clients = 40
duration = "10min"
[[clients]]
protocol = "pollbus"
mode = "poll"
share = 1
[[clients]]
protocol = "pollbus"
mode = "poll"
label = "bus-json"
share = 1
set = { "pollbus.encoding" = "json", pollbus = { keep_alive = false } }
[pollbus]
policy = "activity"
interval = "20s"
)");
  ASSERT_TRUE(std::holds_alternative<run_plan>(loaded)) << std::get<nudge::sim::scenario_error>(loaded).what();
  const auto& p = std::get<run_plan>(loaded);
  ASSERT_EQ(p.mix.size(), 2u);
  EXPECT_EQ(p.mix[1].label, "bus-json");
  ASSERT_EQ(p.mix[1].keys.size(), 2u);
  const auto* f = nudge::engine::registry::instance().find("pollbus");
  ASSERT_NE(f, nullptr);
  const auto keys = p.settings_for(*f, 1);
  EXPECT_EQ(keys.text("pollbus.encoding"), "json");
  EXPECT_FALSE(keys.boolean("pollbus.keep_alive"));
  EXPECT_EQ(keys.text("pollbus.policy"), "activity");
  EXPECT_EQ(keys.span("pollbus.interval"), 20s);
  EXPECT_EQ(p.settings_for(*f, 0).text("pollbus.encoding"), "soap");
  // The plan written back reads the same.
  const auto again = nudge::sim::parse_scenario(nudge::sim::to_toml(p), "round trip");
  ASSERT_TRUE(std::holds_alternative<run_plan>(again)) << std::get<nudge::sim::scenario_error>(again).what();
  EXPECT_EQ(std::get<run_plan>(again).mix, p.mix);
  EXPECT_EQ(std::get<run_plan>(again).family_keys, p.family_keys);
  // Wrong types and unknown keys are errors.
  EXPECT_TRUE(std::holds_alternative<nudge::sim::scenario_error>(
      nudge::sim::parse_scenario("[pollbus]\nkeep_alive = \"maybe\"\n")));
  EXPECT_TRUE(std::holds_alternative<nudge::sim::scenario_error>(nudge::sim::parse_scenario(
      "[[clients]]\nprotocol = \"pollbus\"\nmode = \"poll\"\nset = { \"pollbus.nope\" = 1 }\n")));
  // Two groups of one mode need labels.
  run_plan dup = p;
  dup.mix[1].label.clear();
  EXPECT_NE(dup.validate(), "");
}

// The closed form's bytes per client-hour against a virtual run at fixed
// intervals, for each encoding and keep-alive setting.
void expect_closed_form_matches(pollbus::encoding enc, bool keep_alive, bool expect_continue) {
  nudge::protocols::register_all();
  run_plan p;
  p.clients = 10;
  p.mix = {{"pollbus", "fixed", 1}};
  p.length = 2h;
  p.drain = 0s;
  p.ramp_up = 0s;
  p.events_per_client_hour = 6;
  p.seed = 3;
  p.set_family_key("pollbus.encoding", enc == pollbus::encoding::json ? "json" : "soap");
  p.set_family_key("pollbus.keep_alive", keep_alive ? "true" : "false");
  p.set_family_key("pollbus.expect_continue", expect_continue ? "true" : "false");
  p.set_family_key("pollbus.host", "bus.example.com");
  ASSERT_EQ(p.validate(), "");
  const auto r = nudge::sim::run_virtual(p);
  const auto& m = r.modes[0];
  ASSERT_EQ(m.metrics.clients_ready, 10u);
  const double hours = nudge::to_seconds(p.length + p.drain) / 3600.0 * static_cast<double>(m.clients);
  nudge::model::bus_inputs in;
  in.enc = enc;
  in.keep_alive = keep_alive;
  in.expect_continue = expect_continue;
  in.host = "bus.example.com";
  in.path = "/fixed/Bus.asmx";
  in.interval = 15s;
  in.events_per_client_hour = static_cast<double>(m.events_generated) / hours;  // the run's own draw
  in.wire = p.wire;
  const auto model = nudge::model::bus_per_client_hour(in);
  const auto to_server = m.metrics.traffic.total(nudge::metrics::direction::to_server);
  const auto to_client = m.metrics.traffic.total(nudge::metrics::direction::to_client);
  EXPECT_NEAR(static_cast<double>(to_server.wire_bytes) / hours, model.wire_bytes_to_server, model.wire_bytes_to_server / 100);
  EXPECT_NEAR(static_cast<double>(to_client.wire_bytes) / hours, model.wire_bytes_to_client, model.wire_bytes_to_client / 100);
  EXPECT_NEAR(static_cast<double>(to_server.packets + to_client.packets) / hours, model.packets(), model.packets() / 100);
  EXPECT_NEAR(static_cast<double>(counter(m, pollbus::counter::polls)) / hours, model.polls, model.polls / 100);
}

TEST(pollbus_closed_form, soap_keep_alive_matches_the_virtual_run) { expect_closed_form_matches(pollbus::encoding::soap, true, true); }
TEST(pollbus_closed_form, soap_one_connection_per_poll_matches_the_virtual_run) {
  expect_closed_form_matches(pollbus::encoding::soap, false, true);
}
TEST(pollbus_closed_form, json_without_expect_matches_the_virtual_run) {
  expect_closed_form_matches(pollbus::encoding::json, true, false);
}
TEST(pollbus_closed_form, json_one_connection_per_poll_matches_the_virtual_run) {
  expect_closed_form_matches(pollbus::encoding::json, false, false);
}

}  // namespace

// Without keep-alive a bus client opens a connection per poll, thousands a day:
// the virtual network reuses closed connections' records, so a run's memory
// follows the clients, not the polls.
TEST(pollbus_mixed, a_connection_per_poll_keeps_the_connection_table_small) {
  nudge::protocols::register_all();
  run_plan p;
  p.clients = 40;
  p.mix = {{"pollbus", "fixed", 1, "bus-close", {{"pollbus.keep_alive", "false"}}}, {"emsmdb", "poll", 1}};
  p.length = 2h;
  p.drain = 1min;
  p.ramp_up = 15s;
  p.poll_interval = 60s;
  p.events_per_client_hour = 12;
  p.seed = 7;
  ASSERT_EQ(p.validate(), "");
  std::size_t records = 0;
  nudge::sim::virtual_options opts;
  opts.connection_records = &records;
  const auto r = nudge::sim::run_virtual(p, opts);
  const std::uint64_t opened = counter(r.modes[0], pollbus::counter::connections);
  EXPECT_GT(opened, 20u * 100u);  // 20 clients, a poll every 15 s for 2 h
  EXPECT_EQ(r.modes[0].metrics.events_fetched(), r.modes[0].events_generated);
  // At most each client's open connection or two (one closing, its successor opening).
  EXPECT_GT(records, 0u);
  EXPECT_LE(records, 2 * p.clients);
}
