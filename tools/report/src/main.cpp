// nudge-report: tables, charts, threshold verdicts and JUnit from client-sim results (docs/report.md).
#include <exception>
#include <iostream>

#include "nudge/report/cli.hpp"

int main(int argc, char** argv) {
  try {
    return nudge::report::report_main(argc, argv, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "nudge-report: " << e.what() << "\n";
    return nudge::report::exit_code::runtime_error;
  }
}
