#include "nudge/report/inputs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "nudge/report/format.hpp"
#include "nudge/report/metrics.hpp"

namespace nudge::report {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> run::modes() const {
  std::vector<std::string> out;
  const auto it = result.find("modes");
  if (it == result.end() || !it->is_object()) return out;
  for (const auto& m : mode_names())
    if (const auto b = it->find(m); b != it->end() && b->is_object()) out.push_back(m);
  return out;
}

const json* run::mode(std::string_view mode_name) const {
  if (mode_name == "total" || mode_name == "all") {
    const auto t = result.find("total");
    return t != result.end() && t->is_object() ? &*t : nullptr;
  }
  const auto it = result.find("modes");
  if (it == result.end() || !it->is_object()) return nullptr;
  const auto m = it->find(std::string(mode_name));
  return m != it->end() && m->is_object() ? &*m : nullptr;
}

const json* run::group(std::string_view mode_name, std::string_view nat) const {
  const auto it = result.find("groups");
  if (it == result.end() || !it->is_array()) return nullptr;
  for (const auto& g : *it)
    if (g.is_object() && g.value("mode", "") == mode_name && g.value("nat", "") == nat) return &g;
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> run::groups() const {
  std::vector<std::pair<std::string, std::string>> out;
  const auto it = result.find("groups");
  if (it == result.end() || !it->is_array()) return out;
  for (const auto& g : *it)
    if (g.is_object()) out.emplace_back(g.value("mode", ""), g.value("nat", ""));
  return out;
}

std::vector<std::string> run::declared_thresholds() const {
  std::vector<std::string> out;
  const json* t = nullptr;
  if (auto p = result.find("plan"); p != result.end() && p->is_object())
    if (auto r = p->find("report"); r != p->end() && r->is_object())
      if (auto th = r->find("thresholds"); th != r->end()) t = &*th;
  if (!t || !t->is_array()) return out;
  for (const auto& s : *t)
    if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

std::string run::clock() const { return result.value("clock", std::string("?")); }

std::string run::summary() const {
  const json plan = result.value("plan", json::object());
  std::string s = fmt::format("{} clock", clock());
  if (plan.contains("clients") && plan["clients"].is_number())
    s += fmt::format(", {} clients", format_count(plan["clients"].get<double>()));
  if (result.contains("measured_s") && result["measured_s"].is_number())
    s += fmt::format(", {} measured", format_span(result["measured_s"].get<double>()));
  if (plan.contains("drain_s") && plan["drain_s"].is_number() && plan["drain_s"].get<double>() > 0)
    s += fmt::format(" + {} drain", format_span(plan["drain_s"].get<double>()));
  if (plan.contains("poll_interval_s") && plan["poll_interval_s"].is_number())
    s += fmt::format(", poll every {}", format_span(plan["poll_interval_s"].get<double>()));
  if (plan.contains("events_per_client_hour") && plan["events_per_client_hour"].is_number())
    s += fmt::format(", {} events per client-hour", format_fixed(plan["events_per_client_hour"].get<double>(), 2));
  if (plan.contains("server") && plan["server"].is_object() && plan["server"].contains("policy"))
    s += fmt::format(", {} policy", plan["server"].value("policy", std::string("?")));
  if (plan.contains("seed") && plan["seed"].is_number()) s += fmt::format(", seed {}", plan["seed"].dump());
  if (has_measured_wire(result.value("total", json::object())))
    s += fmt::format("; wire bytes and packets measured ({})", result["total"]["measured"].value("source", std::string("?")));
  return s;
}

const run* input_set::find(std::string_view name) const {
  for (const auto& r : runs)
    if (r.name == name) return &r;
  return nullptr;
}

std::vector<std::string> input_set::names() const {
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r.name);
  return out;
}

namespace {

struct loaded {
  std::string name;
  std::string path;
  json doc;
};

result<json> read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail(fmt::format("{}: cannot open the file", p.string()));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(fmt::format("{}: cannot read the file", p.string()));
  try {  // nlohmann's parse error carries the position: caught here, it becomes a value
    return json::parse(text.str());
  } catch (const json::parse_error& e) {
    return fail(fmt::format("{}: not JSON ({})", p.string(), e.what()));
  }
}

// Why a document is not usable as a result, or "".
std::string result_problem(const json& doc) {
  if (!doc.is_object()) return "not a JSON object";
  const auto schema = doc.value("schema", std::string());
  if (schema != "nudge.result/1")
    return schema.empty() ? "no \"schema\" (expected nudge.result/1, client-sim --json)"
                          : fmt::format("schema \"{}\", expected nudge.result/1 (client-sim --json)", schema);
  if (!doc.contains("modes") || !doc["modes"].is_object()) return "no \"modes\" object";
  if (!doc.contains("total") || !doc["total"].is_object()) return "no \"total\" object";
  return {};
}

// Adds the runs of one file; `explicit_file`: named on the command line (problems are errors).
result<void> add_file(const fs::path& p, bool explicit_file, std::vector<loaded>& out,
                      std::vector<std::string>& notes) {
  auto read = read_json(p);
  if (!read) {
    if (explicit_file) return read.error();
    notes.push_back(fmt::format("skipped {}", read.error().message));
    return {};
  }
  json doc = std::move(read).value();
  if (doc.is_object() && doc.value("schema", std::string()) == "nudge.report/1") {
    // A previous report: its inputs again, under their names.
    if (!explicit_file) {
      notes.push_back(fmt::format("skipped {}: a report (nudge.report/1); name it to use its inputs", p.string()));
      return {};
    }
    const auto inputs = doc.find("inputs");
    if (inputs == doc.end() || !inputs->is_array() || inputs->empty())
      return fail(fmt::format("{}: a report without inputs", p.string()));
    for (const auto& in : *inputs) {
      if (!in.is_object() || !in.contains("result"))
        return fail(fmt::format("{}: an input without \"result\"", p.string()));
      if (auto problem = result_problem(in["result"]); !problem.empty())
        return fail(fmt::format("{}: input {}: {}", p.string(), in.value("name", std::string("?")), problem));
      learn_names(in["result"]);
      out.push_back({in.value("name", p.stem().string()), in.value("path", p.string()), in["result"]});
    }
    return {};
  }
  if (auto problem = result_problem(doc); !problem.empty()) {
    if (explicit_file) return fail(fmt::format("{}: {}", p.string(), problem));
    notes.push_back(fmt::format("skipped {}: {}", p.string(), problem));
    return {};
  }
  if (doc.is_object() && !doc.contains("vocabulary")) {
    // An older result: its names are its keys, in the order the file lists them.
    std::ifstream in(p, std::ios::binary);
    const auto ordered = nlohmann::ordered_json::parse(in, nullptr, false);
    if (ordered.is_object()) learn_names_in_file_order(ordered);
  }
  learn_names(doc);
  out.push_back({p.stem().string(), p.string(), std::move(doc)});
  return {};
}

}  // namespace

result<input_set> load_inputs(const std::vector<std::string>& paths) {
  if (paths.empty()) return fail("no input given");
  std::vector<loaded> files;
  input_set set;
  for (const auto& given : paths) {
    const fs::path p(given);
    std::error_code ec;
    const auto status = fs::status(p, ec);
    if (ec || !fs::exists(status)) return fail(fmt::format("{}: no such file or directory", given));
    if (fs::is_directory(status)) {
      std::vector<fs::path> entries;
      for (const auto& e : fs::directory_iterator(p, ec))
        if (e.path().extension() == ".json" && e.is_regular_file()) entries.push_back(e.path());
      if (ec) return fail(fmt::format("{}: cannot list the directory ({})", given, ec.message()));
      std::sort(entries.begin(), entries.end());
      const std::size_t before = files.size();
      for (const auto& e : entries)
        if (auto added = add_file(e, false, files, set.notes); !added) return added.error();
      if (files.size() == before) return fail(fmt::format("{}: no nudge.result/1 files in the directory", given));
    } else {
      if (auto added = add_file(p, true, files, set.notes); !added) return added.error();
    }
  }
  // Unique names: the stem, else parent/stem, else a counter.
  std::map<std::string, int> seen;
  for (const auto& f : files) ++seen[f.name];
  std::map<std::string, int> used;
  for (auto& f : files) {
    std::string name = f.name;
    if (seen[name] > 1) {
      const auto parent = fs::path(f.path).parent_path().filename().string();
      if (!parent.empty()) name = parent + "/" + name;
    }
    if (used[name]++) name += fmt::format("#{}", used[name]);
    set.runs.push_back({std::move(name), f.path, std::move(f.doc)});
  }
  return set;
}

const run* baseline_for(const run& r, const input_set& now, const input_set& baseline) {
  if (const run* same = baseline.find(r.name)) return same;
  if (now.runs.size() == 1 && baseline.runs.size() == 1) return &baseline.runs.front();
  return nullptr;
}

}  // namespace nudge::report
