#include "nudge/report/charts.hpp"
#include "nudge/report/format.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace nudge::report {

namespace fs = std::filesystem;

std::string mode_colour(const std::string& mode) {
  // Okabe-Ito: distinguishable with the common colour-vision deficiencies. A
  // mode's colour is its place among the modes the results name.
  static constexpr const char* palette[] = {"#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"};
  const auto& modes = mode_names();
  const auto at = static_cast<std::size_t>(std::find(modes.begin(), modes.end(), mode) - modes.begin());
  return at < std::size(palette) ? palette[at] : "#777777";
}

namespace {

// A gnuplot double-quoted string.
std::string gp_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string num(double v) { return fmt::format("{:.10g}", v); }

std::string preamble(const chart& c, const std::string& output) {
  std::string s;
  s += "set terminal svg size 960,420 dynamic noenhanced font 'DejaVu Sans,13' background '#ffffff'\n";
  s += "set output " + gp_string(output) + "\n";
  s += "set encoding utf8\n";
  s += "set border 3 lc rgb '#444444'\n";
  s += "set tics nomirror out\n";
  s += "set grid ytics lc rgb '#e4e4e4' lw 1 dt 1\n";
  s += "set key noenhanced\n";
  if (!c.xlabel.empty()) s += "set xlabel " + gp_string(c.xlabel) + "\n";
  if (!c.ylabel.empty()) s += "set ylabel " + gp_string(c.ylabel) + "\n";
  return s;
}

std::string bars_script(const chart& c, const std::string& data, const std::string& output, std::string& text) {
  std::string s = preamble(c, output);
  const std::size_t n = std::max<std::size_t>(c.series.size(), 1);
  const double group = 0.8, width = group / static_cast<double>(n);
  double top = 0;
  for (const auto& b : c.bars) top = std::max(top, b.value);
  if (top <= 0) top = 1;
  s += "set style fill solid 0.9 border lc rgb '#333333'\n";
  s += fmt::format("set xrange [-0.6:{}]\n", num(static_cast<double>(c.clusters.size()) - 0.4));
  if (c.log_y) {
    double lo = top;
    for (const auto& b : c.bars) lo = std::min(lo, b.value);
    s += "set logscale y 10\n";
    s += fmt::format("set yrange [{}:{}]\n", num(std::pow(10.0, std::floor(std::log10(lo)))), num(top * 3));
  } else {
    s += fmt::format("set yrange [0:{}]\n", num(top * 1.18));
  }
  s += "set format y '%.0f'\n";
  s += "set xtics scale 0 (";
  for (std::size_t i = 0; i < c.clusters.size(); ++i)
    s += (i ? ", " : "") + gp_string(c.clusters[i]) + " " + std::to_string(i);
  s += ")\n";
  s += "set key outside right top vertical reverse Left samplen 2 width 1\n";
  std::vector<std::string> plots;
  for (std::size_t j = 0; j < c.series.size(); ++j) {
    text += fmt::format("# series {}\n", c.series[j]);
    for (std::size_t i = 0; i < c.clusters.size(); ++i) {
      for (const auto& b : c.bars) {
        if (b.cluster != c.clusters[i] || b.series != c.series[j]) continue;
        const double x = static_cast<double>(i) - group / 2 + width * (static_cast<double>(j) + 0.5);
        text += fmt::format("{} {} {} {}\n", num(x), num(b.value), num(width * 0.92), gp_string(b.label));
      }
    }
    text += "\n\n";
    const std::string colour = mode_colour(c.series[j]);
    plots.push_back(fmt::format("{} index {} using 1:2:3 with boxes lc rgb '{}' title {}", gp_string(data), j, colour,
                                gp_string(c.series[j])));
    plots.push_back(fmt::format("{} index {} using 1:2:4 with labels offset 0,0.75 font ',11' tc rgb '#222222' notitle",
                                gp_string(data), j));
  }
  s += "plot ";
  for (std::size_t i = 0; i < plots.size(); ++i) s += (i ? ", \\\n     " : "") + plots[i];
  return s + "\n";
}

// Round tick labels for a log axis of seconds.
std::string latency_tics(double lo, double hi) {
  static constexpr std::pair<double, const char*> ticks[] = {
      {1e-6, "1 µs"}, {1e-5, "10 µs"}, {1e-4, "100 µs"}, {1e-3, "1 ms"}, {1e-2, "10 ms"}, {0.1, "100 ms"},
      {1, "1 s"},     {10, "10 s"},    {60, "1 min"},    {600, "10 min"}, {3600, "1 h"}, {36000, "10 h"}};
  std::string s;
  for (const auto& [v, label] : ticks)
    if (v >= lo && v <= hi) s += (s.empty() ? "" : ", ") + gp_string(label) + " " + num(v);
  return s.empty() ? std::string() : "set xtics (" + s + ")\n";
}

std::string cdf_script(const chart& c, const std::string& data, const std::string& output, std::string& text) {
  std::string s = preamble(c, output);
  double lo = INFINITY, hi = 0;
  for (const auto& l : c.lines)
    for (const auto& [x, y] : l.points)
      if (x > 0) lo = std::min(lo, x), hi = std::max(hi, x);
  if (!(lo < INFINITY)) lo = 1e-3, hi = 1;
  lo /= 2;
  hi *= 2;
  s += "set logscale x 10\n";
  s += fmt::format("set xrange [{}:{}]\n", num(lo), num(hi));
  s += latency_tics(lo, hi);
  s += "set yrange [0:1.04]\n";
  s += "set ytics (\"0%%\" 0, \"25%%\" 0.25, \"50%%\" 0.5, \"75%%\" 0.75, \"90%%\" 0.9, \"100%%\" 1)\n";
  s += "set grid xtics ytics lc rgb '#e4e4e4'\n";
  s += "set key outside right top vertical reverse Left samplen 3 width 1\n";
  std::vector<std::string> plots;
  std::size_t index = 0;
  for (const auto& l : c.lines) {
    text += fmt::format("# {} cumulative share\n", l.name);
    for (const auto& [x, y] : l.points) text += fmt::format("{} {}\n", num(std::max(x, lo)), num(y));
    text += "\n\n";
    const std::string colour = mode_colour(l.name);
    // Later curves thinner and dashed, so that identical ones (push and async
    // both at one link round trip) still show each other.
    const std::size_t nth = static_cast<std::size_t>(&l - c.lines.data());
    static constexpr const char* styles[] = {"lw 5", "lw 3 dt (10,4)", "lw 1.8 dt (4,3)"};
    plots.push_back(fmt::format("{} index {} using 1:2 with steps {} lc rgb '{}' title {}", gp_string(data), index++,
                                styles[std::min<std::size_t>(nth, 2)], colour, gp_string(l.name)));
    if (!l.markers.empty()) {
      text += fmt::format("# {} percentiles from the table\n", l.name);
      for (const auto& [x, y] : l.markers) text += fmt::format("{} {}\n", num(std::max(x, lo)), num(y));
      text += "\n\n";
      plots.push_back(fmt::format("{} index {} using 1:2 with points pt 7 ps 0.9 lc rgb '{}' notitle", gp_string(data),
                                  index++, colour));
    }
  }
  plots.push_back("keyentry with points pt 7 ps 0.9 lc rgb '#555555' title 'table percentiles'");
  s += "plot ";
  for (std::size_t i = 0; i < plots.size(); ++i) s += (i ? ", \\\n     " : "") + plots[i];
  return s + "\n";
}

std::string timeline_script(const chart& c, const std::string& data, const std::string& output, std::string& text) {
  std::string s = preamble(c, output);
  double end = 0, top = 0;
  for (const auto& l : c.lines)
    for (const auto& [x, y] : l.points) end = std::max(end, x), top = std::max(top, y);
  if (top <= 0) top = 1;
  s += fmt::format("set xrange [0:{}]\n", num(end));
  s += fmt::format("set yrange [0:{}]\n", num(top * 1.15));
  s += "set format y '%.0f'\n";
  s += "set key top left reverse Left samplen 2 horizontal\n";
  if (c.x_marker) {
    s += fmt::format("set arrow 1 from {0}, graph 0 to {0}, graph 1 nohead dt 2 lw 1.5 lc rgb '#888888'\n",
                     num(*c.x_marker));
    s += fmt::format("set label 1 {} at {}, graph 0.96 right offset -0.6,0 font ',11' tc rgb '#555555'\n",
                     gp_string(c.x_marker_label), num(*c.x_marker));
  }
  std::vector<std::string> plots;
  for (std::size_t i = 0; i < c.lines.size(); ++i) {
    const auto& l = c.lines[i];
    text += fmt::format("# {}\n", l.name);
    for (const auto& [x, y] : l.points) text += fmt::format("{} {}\n", num(x), num(y));
    text += "\n\n";
    plots.push_back(fmt::format("{} index {} using 1:2 with steps lw 2 lc rgb '{}' title {}", gp_string(data), i,
                                mode_colour(l.name), gp_string(l.name)));
  }
  s += "plot ";
  for (std::size_t i = 0; i < plots.size(); ++i) s += (i ? ", \\\n     " : "") + plots[i];
  return s + "\n";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// gnuplot's SVG as an element of a page that holds several: no XML prolog, ids
// unique per chart, the chart's title as the SVG's <title>.
std::string embeddable(std::string svg, const chart& c, std::size_t n) {
  const auto start = svg.find("<svg");
  if (start == std::string::npos) return {};
  svg.erase(0, start);
  std::set<std::string> ids;
  for (const char* q : {"id='", "id=\""}) {
    for (std::size_t pos = svg.find(q); pos != std::string::npos; pos = svg.find(q, pos + 1)) {
      const std::size_t b = pos + 4;
      const std::size_t e = svg.find(q[3], b);
      if (e != std::string::npos) ids.insert(svg.substr(b, e - b));
    }
  }
  const std::string prefix = fmt::format("c{}-", n);
  for (const auto& id : ids) {
    for (const char q : {'\'', '"'}) {
      replace_all(svg, fmt::format("id={0}{1}{0}", q, id), fmt::format("id={0}{1}{2}{0}", q, prefix, id));
      replace_all(svg, fmt::format("{0}#{1}{0}", q, id), fmt::format("{0}#{1}{2}{0}", q, prefix, id));
    }
    replace_all(svg, fmt::format("url(#{})", id), fmt::format("url(#{}{})", prefix, id));
  }
  replace_all(svg, "<title>Gnuplot</title>", "<title>" + xml_escape(c.title) + "</title>");
  const auto desc = svg.find("<desc>");
  if (desc != std::string::npos) {
    const auto end = svg.find("</desc>", desc);
    if (end != std::string::npos) svg.erase(desc, end + 7 - desc);
  }
  // Tag the root so pages and tests can find the chart.
  svg.replace(0, 4, fmt::format("<svg class=\"nudge-chart\" data-chart=\"{}\" role=\"img\"", xml_escape(c.id)));
  return svg;
}

struct spawn_result {
  int status = -1;
  std::string error;  // could not run it at all
};

spawn_result run_gnuplot(const std::string& gnuplot, const fs::path& script, const fs::path& err_file,
                         std::chrono::seconds timeout) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string arg0 = gnuplot, arg1 = script.string();
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, gnuplot.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    if (rc == ENOENT)
      return {-1, fmt::format("gnuplot not found ('{}'; Debian: apt-get install gnuplot-nox, or --gnuplot PATH)", gnuplot)};
    return {-1, fmt::format("cannot run '{}': {}", gnuplot, std::strerror(rc))};
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return {-1, fmt::format("waiting for gnuplot: {}", std::strerror(errno))};
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return {-1, fmt::format("gnuplot took longer than {} s", timeout.count())};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) return {WEXITSTATUS(status), {}};
  return {-1, "gnuplot was killed by a signal"};
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "nudge-report-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error(fmt::format("cannot create a temporary directory: {}", std::strerror(errno)));
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

}  // namespace

std::string gnuplot_script(const chart& c, const std::string& data, const std::string& output, std::string& data_text) {
  switch (c.k) {
    case chart::kind::bars: return bars_script(c, data, output, data_text);
    case chart::kind::cdf: return cdf_script(c, data, output, data_text);
    case chart::kind::timeline: return timeline_script(c, data, output, data_text);
  }
  return {};
}

std::string draw_charts(std::vector<chart>& charts, const chart_options& opts) {
  if (charts.empty()) return {};
  std::string first_problem;
  auto problem = [&](chart& c, std::string message) {
    c.error = message;
    if (first_problem.empty()) first_problem = fmt::format("chart {}: {}", c.id, message);
  };
  std::optional<temp_dir> dir;
  try {
    dir.emplace();
  } catch (const std::exception& e) {
    for (auto& c : charts) problem(c, e.what());
    return first_problem;
  }
  for (std::size_t i = 0; i < charts.size(); ++i) {
    chart& c = charts[i];
    if (c.bars.empty() && c.lines.empty()) {
      problem(c, "no data");
      continue;
    }
    const fs::path data = dir->path / fmt::format("chart-{}.dat", i);
    const fs::path script = dir->path / fmt::format("chart-{}.gp", i);
    const fs::path svg = dir->path / fmt::format("chart-{}.svg", i);
    const fs::path err = dir->path / fmt::format("chart-{}.err", i);
    std::string data_text;
    const std::string text = gnuplot_script(c, data.string(), svg.string(), data_text);
    {
      std::ofstream d(data, std::ios::binary), s(script, std::ios::binary);
      d << data_text;
      s << text;
      if (!d || !s) {
        problem(c, "cannot write the chart's data to " + dir->path.string());
        continue;
      }
    }
    const auto r = run_gnuplot(opts.gnuplot, script, err, opts.timeout);
    if (!r.error.empty()) {
      // Not installed: every chart fails the same way; say it once.
      for (std::size_t j = i; j < charts.size(); ++j) problem(charts[j], r.error);
      break;
    }
    std::string messages = read_file(err);
    while (!messages.empty() && (messages.back() == '\n' || messages.back() == ' ')) messages.pop_back();
    if (r.status != 0) {
      problem(c, fmt::format("gnuplot exited with {}: {}", r.status, messages));
      continue;
    }
    std::string out = embeddable(read_file(svg), c, i);
    if (out.empty()) {
      problem(c, "gnuplot wrote no SVG" + (messages.empty() ? std::string() : ": " + messages));
      continue;
    }
    c.svg = std::move(out);
  }
  return first_problem;
}

}  // namespace nudge::report
