#pragma once
// Running outside programs from tests (tshark, mcs, mono, wsdl): one popen
// loop for every test that judges nudge with a third-party tool.
#include <cstdio>
#include <string>
#include <string_view>

namespace nudge::test_support {

/// Runs `command` with /bin/sh and returns its stdout; the caller chooses
/// where stderr goes ("... 2>&1", "... 2>/dev/null"). `status` gets pclose's.
inline std::string run_shell(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) {
    if (status) *status = -1;
    return out;
  }
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  if (status) *status = rc;
  return out;
}

/// Whether `program` is on PATH.
inline bool have_program(std::string_view program) {
  int status = 0;
  run_shell("command -v " + std::string(program) + " >/dev/null 2>&1", &status);
  return status == 0;
}

}  // namespace nudge::test_support
