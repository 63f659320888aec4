#pragma once
// Helpers for the nudge-report tests: the hand-written result, temporary
// directories, running the command line in-process, finding programs.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nudge/report/cli.hpp"

namespace nudge::report::testing {

namespace fs = std::filesystem;

inline fs::path source_dir() { return fs::path(NUDGE_SOURCE_DIR); }
inline fs::path small_json() { return source_dir() / "tests" / "report" / "data" / "small.json"; }

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

inline nlohmann::json small() { return nlohmann::json::parse(read_file(small_json())); }

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "nudge-report-test-XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

struct cli_run {
  int code = -1;
  std::string out, err;
};

/// nudge-report with these arguments, in-process.
inline cli_run run_cli(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"nudge-report"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  cli_run r;
  r.code = report_main(static_cast<int>(argv.size()), argv.data(), out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

/// A program in PATH (or an absolute path), or "".
inline std::string find_program(std::initializer_list<const char*> names) {
  const char* path = std::getenv("PATH");
  for (const char* name : names) {
    if (fs::path(name).is_absolute()) {
      if (access(name, X_OK) == 0) return name;
      continue;
    }
    std::stringstream dirs(path ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      const fs::path p = fs::path(dir) / name;
      if (!dir.empty() && access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return {};
}

/// Every <testcase ...>...</testcase> element of a JUnit file, as text.
inline std::vector<std::string> junit_testcases(const std::string& xml) {
  std::vector<std::string> out;
  for (std::size_t pos = xml.find("<testcase "); pos != std::string::npos; pos = xml.find("<testcase ", pos + 1)) {
    const auto gt = xml.find('>', pos);
    if (gt != std::string::npos && xml[gt - 1] == '/') {
      out.push_back(xml.substr(pos, gt + 1 - pos));
      continue;
    }
    const auto end = xml.find("</testcase>", pos);
    if (end == std::string::npos) break;
    out.push_back(xml.substr(pos, end + 11 - pos));
  }
  return out;
}

/// The testcase whose name attribute is `escaped_name` (and classname, if given); "" when none.
inline std::string junit_testcase(const std::string& xml, const std::string& escaped_name,
                                  const std::string& classname = "") {
  for (const auto& t : junit_testcases(xml)) {
    const std::string head = t.substr(0, t.find('>'));
    if (head.find(" name=\"" + escaped_name + "\"") != std::string::npos &&
        (classname.empty() || head.find("classname=\"" + classname + "\"") != std::string::npos))
      return t;
  }
  return {};
}

}  // namespace nudge::report::testing
