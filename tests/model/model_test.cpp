// The closed-form model: the seed article's arithmetic, the Poisson expectation, the command.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nudge/model/bus_model.hpp"
#include "nudge/model/seed_model.hpp"

using namespace nudge::model;

namespace {
int run(std::vector<const char*> args, std::string& out, std::string& err) {
  args.insert(args.begin(), "nudge-model");
  std::ostringstream o, e;
  const int rc = model_main(static_cast<int>(args.size()), args.data(), o, e);
  out = o.str();
  err = e.str();
  return rc;
}
}  // namespace

TEST(seed_model, article_arithmetic) {
  const auto e = estimate({});  // the article's inputs are the defaults
  EXPECT_DOUBLE_EQ(e.events_per_client_hour, 6.25);
  EXPECT_DOUBLE_EQ(e.article.polls_per_client_hour, 60);
  // 50 events in 480 polls: 1 - 50/480 empty (the article rounds to "90%").
  EXPECT_NEAR(e.article.empty_fraction, 1 - 50.0 / 480.0, 1e-12);
  EXPECT_NEAR(e.article.empty_polls_per_client_hour, 53.75, 1e-9);
  EXPECT_NEAR(e.article.bytes_per_client_hour, 10750, 1e-6);
  EXPECT_NEAR(e.article.tsdus_per_client_hour, 107.5, 1e-9);
  EXPECT_NEAR(e.article.bytes_per_hour, 107.5e6, 1e-3);
  EXPECT_NEAR(e.article.tsdus_per_hour, 1.075e6, 1e-6);
}

TEST(seed_model, poisson_expectation) {
  const auto e = estimate({});
  const double empty = std::exp(-6.25 / 60.0);
  EXPECT_NEAR(e.poisson.empty_fraction, empty, 1e-15);
  EXPECT_NEAR(e.poisson.bytes_per_client_hour, 60 * empty * 200, 1e-9);  // ~10,813
  EXPECT_NEAR(e.poisson.tsdus_per_client_hour, 60 * empty * 2, 1e-12);   // ~108.1
  EXPECT_NEAR(e.poisson.tsdus_per_hour, 60 * empty * 2 * 10000, 1e-6);   // ~1.08 million
  // Two events can share an interval, so Poisson finds more empty polls than the article.
  EXPECT_GT(e.poisson.empty_fraction, e.article.empty_fraction);
}

// The article's printed figures redone with the model's arithmetic: its rounded
// 90 % of the model's 60 polls an hour, at the inputs' 100 + 100 bytes and 1 + 1
// TSDUs, for its 10,000 users. The bytes add up; the TSDU total does not.
TEST(seed_model, the_article_slip) {
  const article_as_printed a;
  const seed_inputs in;  // the article's inputs
  const auto e = estimate(in);
  const double empty_polls = a.empty_fraction * e.article.polls_per_client_hour;  // 54
  EXPECT_NEAR(empty_polls * (in.request_bytes + in.response_bytes), a.bytes_per_client_hour, 1e-6);  // 10,800
  EXPECT_NEAR(empty_polls * (in.request_tsdus + in.response_tsdus), a.tsdus_per_client_hour, 1e-9);  // 108
  EXPECT_NEAR(a.bytes_per_client_hour * in.users, a.bytes_per_hour, 1e-3);                          // 108 MB
  EXPECT_NEAR(a.tsdus_per_client_hour * in.users, a.tsdus_per_hour_own_numbers(), 1e-6);            // 1.08 million
  EXPECT_GT(a.tsdus_per_hour_said - a.tsdus_per_hour_own_numbers(), 0.5e6);                         // not 1.8
  // The statement is formatted from those numbers.
  EXPECT_EQ(slip_statement(), "the article says 1.8 million TSDUs per hour; its own numbers give 1.08 million");
}

TEST(seed_model, jitter_and_edge_cases) {
  seed_inputs in;
  in.jitter = true;  // U[60 s, 120 s]: 40 polls an hour
  const auto e = estimate(in);
  EXPECT_NEAR(e.poisson.polls_per_client_hour, 40, 1e-12);
  const double x = 6.25 / 60.0;
  EXPECT_NEAR(e.poisson.empty_fraction, (std::exp(-x) - std::exp(-2 * x)) / x, 1e-15);
  in = {};
  in.events_per_day = 0;
  EXPECT_DOUBLE_EQ(estimate(in).article.empty_fraction, 1.0);
  EXPECT_DOUBLE_EQ(estimate(in).poisson.empty_fraction, 1.0);
  in.events_per_day = 10000;  // more events than polls: none empty by the article
  EXPECT_DOUBLE_EQ(estimate(in).article.empty_fraction, 0.0);
  in = {};
  in.day_hours = 0;
  EXPECT_NE(in.validate(), "");
}

TEST(seed_model, command_prints_the_table_and_the_slip) {
  std::string out, err;
  ASSERT_EQ(run({}, out, err), 0) << err;
  EXPECT_NE(out.find("article arithmetic"), std::string::npos);
  EXPECT_NE(out.find("Poisson"), std::string::npos);
  EXPECT_NE(out.find("10,750"), std::string::npos) << out;
  EXPECT_NE(out.find("10,813"), std::string::npos) << out;
  EXPECT_NE(out.find("the article says 1.8 million TSDUs per hour; its own numbers give 1.08 million"), std::string::npos);
}

TEST(seed_model, command_json_and_options) {
  std::string out, err;
  ASSERT_EQ(run({"--json", "--users", "2000", "--poll-interval", "30", "--request-bytes", "124", "--response-bytes",
                 "140"},
                out, err),
            0)
      << err;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["schema"], "nudge.model/1");
  EXPECT_EQ(j["inputs"]["users"], 2000.0);
  const double empty = std::exp(-6.25 / 120.0);
  EXPECT_NEAR(j["poisson"]["per_client_hour"]["unnecessary_bytes"].get<double>(), 120 * empty * 264, 1e-6);
  EXPECT_NEAR(j["poisson"]["all_users_per_hour"]["unnecessary_tsdus"].get<double>(), 120 * empty * 2 * 2000, 1e-6);
  EXPECT_EQ(j["slip"], slip_statement());
  EXPECT_EQ(j["article_as_printed"]["tsdus_per_hour_own_numbers"], 1.08e6);
}

TEST(seed_model, command_usage_errors) {
  std::string out, err;
  EXPECT_EQ(run({"--poll-interval", "0"}, out, err), 2);
  EXPECT_EQ(run({"--bogus"}, out, err), 2);
  EXPECT_EQ(run({"--day-hours", "25"}, out, err), 2);
  EXPECT_EQ(run({"--help"}, out, err), 0);
  EXPECT_NE(out.find("--events-per-day"), std::string::npos);
}

// The polling bus's closed form (docs/pollbus.md): per-poll sizes from the encoders.
TEST(bus_model, a_poll_costs_its_encoded_bytes_and_the_transport_around_them) {
  bus_inputs soap;
  const auto s = bus_poll_on_the_wire(soap);
  const nudge::metrics::wire_model w;
  // Head and body are separate segments with Expect; the answer and 100 Continue one each.
  EXPECT_EQ(s.to_server.packets, 3u);  // head, body, the pure ACK of the answer
  EXPECT_EQ(s.to_client.packets, 2u);  // 100 Continue, the answer
  EXPECT_EQ(s.to_server.wire_bytes, s.request_head + s.request_body + 3u * w.tcp_packet_overhead());
  EXPECT_GT(s.event_extra, 0u);
  bus_inputs close = soap;
  close.keep_alive = false;
  const auto c = bus_poll_on_the_wire(close);
  EXPECT_EQ(c.to_server.packets, 2u + 2u + 2u);  // + SYN, ACK; FIN, last ACK (no separate pure ACK)
  EXPECT_EQ(c.to_client.packets, 2u + 1u + 1u);  // + SYN-ACK; FIN
  bus_inputs json = soap;
  json.enc = nudge::pollbus::encoding::json;
  EXPECT_LT(bus_poll_on_the_wire(json).response, s.response);
  const auto h = bus_per_client_hour(soap);
  EXPECT_DOUBLE_EQ(h.polls, 240.0);
  EXPECT_DOUBLE_EQ(h.wire_bytes(), 240.0 * static_cast<double>(s.to_server.wire_bytes + s.to_client.wire_bytes));
}

TEST(bus_model, the_cli_prints_the_bus_per_client_hour) {
  std::string out, err;
  ASSERT_EQ(run({"--bus", "--bus-json", "--poll-interval", "30", "--json"}, out, err), 0) << err;
  const auto j = nlohmann::json::parse(out);
  bus_inputs in;
  in.enc = nudge::pollbus::encoding::json;
  in.interval = std::chrono::seconds(30);
  in.events_per_client_hour = seed_inputs{}.events_per_day / seed_inputs{}.day_hours;  // the defaults
  EXPECT_EQ(j["schema"], "nudge.model.bus/1");
  EXPECT_DOUBLE_EQ(j["wire_bytes_per_client_hour"].get<double>(), bus_per_client_hour(in).wire_bytes());
  EXPECT_DOUBLE_EQ(j["polls_per_client_hour"].get<double>(), 120.0);
}
