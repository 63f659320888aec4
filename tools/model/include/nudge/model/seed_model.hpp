#pragma once
// The closed-form model of polling waste, after the seed article (paragraphs
// 13-19): U users receive E events in a business day of H hours and poll every
// T seconds; a poll that finds nothing costs a request and a response. What
// does that cost per client-hour and for everyone?
//
//   (a) the article's own arithmetic: the share of empty polls is
//       1 - events/polls (50 events in 480 one-minute polls: "90%");
//   (b) the Poisson expectation: with events arriving at random at rate
//       lambda = E/H, a poll interval T is empty with probability exp(-lambda T)
//       (slightly more empty polls: two events may share an interval).
//
// With jitter (Outlook's U[T, 2T] wait), polls come every 1.5 T on average and
// an interval is empty with probability (exp(-lambda T) - exp(-2 lambda T)) / (lambda T).
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace nudge::model {

struct seed_inputs {
  double users = 10000;
  double events_per_day = 50;
  double day_hours = 8;
  double poll_interval_s = 60;
  bool jitter = false;  // wait U[T, 2T] between polls
  double request_bytes = 100;
  double response_bytes = 100;
  double request_tsdus = 1;
  double response_tsdus = 1;

  double events_per_client_hour() const { return events_per_day / day_hours; }
  /// Empty when the inputs make sense, else what is wrong.
  std::string validate() const;
};

/// The waste one way of counting finds.
struct poll_waste {
  double empty_fraction = 0;  // share of polls that find nothing
  double polls_per_client_hour = 0;
  double empty_polls_per_client_hour = 0;
  double bytes_per_client_hour = 0;  // unnecessary bytes: request + response of empty polls
  double tsdus_per_client_hour = 0;
  double bytes_per_hour = 0;  // all users
  double tsdus_per_hour = 0;
};

struct seed_estimate {
  seed_inputs in;
  double events_per_client_hour = 0;
  double events_per_poll = 0;  // mean events in one poll interval
  poll_waste article;          // (a) empty fraction = 1 - events/polls
  poll_waste poisson;          // (b) empty fraction = P(no event in an interval)
};

seed_estimate estimate(const seed_inputs& in);

/// What the article printed (paragraphs 17-18), for the record.
struct article_as_printed {
  double empty_fraction = 0.90;
  double bytes_per_client_hour = 10800;
  double tsdus_per_client_hour = 108;
  double users = 10000;
  double bytes_per_hour = 108e6;
  double tsdus_per_hour_said = 1.8e6;  // the slip
  double tsdus_per_hour_own_numbers() const { return tsdus_per_client_hour * users; }  // 1.08 million
};

/// "the article says 1.8 million TSDUs per hour; its own numbers give 1.08 million"
std::string slip_statement();

/// 1234567.8 -> "1,234,568" (thousands separators, `decimals` places kept).
std::string grouped(double v, int decimals = 0);

nlohmann::json to_json(const seed_estimate& e);
void print(std::ostream& out, const seed_estimate& e);

/// The `nudge-model` command (argv[0] is the program name); returns the exit
/// code (0 ok, 2 usage). Help and errors go to `err`, results to `out`.
int model_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace nudge::model
