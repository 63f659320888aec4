// report.html as a browser shows it: rendered by headless Chromium, every chart
// present and drawn with data; the bar labels are the table's numbers; nothing
// is fetched from outside. Skipped when chromium or gnuplot is absent, failed
// then under NUDGE_REQUIRE_TOOLS=1 (scripts/install-deps.sh installs both).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <regex>

#include "report_test_support.hpp"
#include "support/require.hpp"

namespace nudge::report {
namespace {

using namespace testing;

std::string chromium() {
  if (const char* env = std::getenv("NUDGE_CHROMIUM")) return env;
  return find_program({"chromium", "chromium-browser", "google-chrome"});
}

// Runs a shell command, returns its stdout.
std::string capture(const std::string& command, int& status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  std::array<char, 65536> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  status = pclose(p);
  return out;
}

std::string chromium_command(const std::string& browser, const fs::path& profile, const std::string& what,
                             const fs::path& page) {
  return "timeout 120 '" + browser +
         "' --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
         "--disable-component-update --disable-sync --disable-extensions --hide-scrollbars --user-data-dir='" +
         profile.string() + "' " + what + " 'file://" + page.string() + "' 2>/dev/null";
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

// The most line segments in one <path> of `svg`: a curve through data has many.
std::size_t longest_path(const std::string& svg) {
  std::size_t best = 0;
  for (std::size_t pos = svg.find(" d=\""); pos != std::string::npos; pos = svg.find(" d=\"", pos + 1)) {
    const auto end = svg.find('"', pos + 4);
    best = std::max(best, count(svg.substr(pos, end - pos), "L"));
  }
  return best;
}

// The <figure> of a chart in the page, "" when absent.
std::string figure(const std::string& dom, const std::string& id) {
  const auto start = dom.find("data-chart=\"" + id + "\"");
  if (start == std::string::npos) return {};
  const auto open = dom.rfind("<figure", start);
  const auto close = dom.find("</figure>", start);
  if (open == std::string::npos || close == std::string::npos) return {};
  return dom.substr(open, close - open);
}

class HtmlReport : public ::testing::Test {
 protected:
  void SetUp() override {
    browser_ = chromium();
    NUDGE_REQUIRE(!browser_.empty(), "chromium (scripts/install-deps.sh installs it)");
    NUDGE_REQUIRE(!find_program({"gnuplot"}).empty(), "gnuplot (Debian: gnuplot-nox)");
  }
  std::string browser_;
};

TEST_F(HtmlReport, ChromiumRendersEveryChartWithData) {
  temp_dir dir;
  const fs::path out = dir.path / "report";
  const auto r = run_cli({small_json().string(), "--out", out.string(), "--no-scenario-thresholds", "-t",
                          "push.missed == 0", "-t", "poll.missed == 0"});
  ASSERT_EQ(r.code, 3) << r.err;  // one threshold fails on purpose: charts are drawn all the same
  EXPECT_NE(r.out.find("(4 of 4 charts)"), std::string::npos) << r.out << r.err;
  const fs::path page = out / "report.html";
  const std::string html = read_file(page);

  // Self-contained: no scripts, no stylesheets or images from elsewhere.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find("url(http"), std::string::npos);
  std::string without_namespaces = std::regex_replace(html, std::regex(R"(xmlns(:xlink)?="http://www\.w3\.org/[^"]*")"), "");
  EXPECT_EQ(without_namespaces.find("http://"), std::string::npos);
  EXPECT_EQ(without_namespaces.find("https://"), std::string::npos);

  int status = 0;
  const std::string dom = capture(chromium_command(browser_, dir.path / "profile", "--dump-dom", page), status);
  ASSERT_EQ(status, 0) << "chromium --dump-dom failed";
  ASSERT_NE(dom.find("nudge report: polling vs push"), std::string::npos) << dom.substr(0, 2000);

  const char* charts[] = {"bytes-by-mode", "bytes-by-nat-small", "latency-cdf-small", "timeline-small"};
  for (const char* id : charts) {
    SCOPED_TRACE(id);
    const std::string f = figure(dom, id);
    ASSERT_FALSE(f.empty()) << "no figure for chart " << id;
    EXPECT_EQ(count(f, "<svg"), 1u);
    EXPECT_EQ(f.find("chart-error"), std::string::npos);
    // gnuplot puts each plotted data set in a group of its own, drawn as paths.
    const std::size_t plots = count(f, "gnuplot_plot_");
    EXPECT_GE(plots, 1u);
    std::size_t drawn = 0;
    for (std::size_t pos = f.find("gnuplot_plot_"); pos != std::string::npos;) {
      const auto next = f.find("gnuplot_plot_", pos + 1);
      const std::string group = f.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
      if (group.find("<path") != std::string::npos && group.find(" d=\"M") != std::string::npos) ++drawn;
      pos = next;
    }
    EXPECT_GE(drawn, 1u) << "no data drawn";
    EXPECT_GE(count(f, "<path"), 5u);
  }
  // Bars are filled polygons (3 modes, 2 NAT groups, plus legend swatches); curves are long paths.
  EXPECT_GE(count(figure(dom, "bytes-by-mode"), "<polygon"), 3u + 3u);
  EXPECT_GE(count(figure(dom, "bytes-by-nat-small"), "<polygon"), 2u + 1u);
  EXPECT_GE(longest_path(figure(dom, "latency-cdf-small")), 8u);  // poll: 5 buckets as steps
  EXPECT_GE(longest_path(figure(dom, "timeline-small")), 6u);     // 4 intervals as steps
  // The bars carry the table's own text: the overview's wire bytes per client-hour.
  const std::string bars = figure(dom, "bytes-by-mode");
  for (const char* label : {">18,200.0<", ">3,000.0<", ">5,000.0<"}) EXPECT_NE(bars.find(label), std::string::npos) << label;
  const std::string nat = figure(dom, "bytes-by-nat-small");
  for (const char* label : {">2,000.0<", ">4,000.0<", ">none<", ">symmetric<"})
    EXPECT_NE(nat.find(label), std::string::npos) << label;
  // Axis titles with units, and a legend naming the modes.
  EXPECT_NE(bars.find("wire bytes per client-hour"), std::string::npos);
  const std::string cdf = figure(dom, "latency-cdf-small");
  for (const char* s : {">poll<", ">push<", ">async<", "log scale", ">1 s<", ">100%<"})
    EXPECT_NE(cdf.find(s), std::string::npos) << s;
  const std::string timeline = figure(dom, "timeline-small");
  EXPECT_NE(timeline.find("minutes since the start of the run"), std::string::npos);
  EXPECT_NE(timeline.find("end of the run; drain follows"), std::string::npos);

  // A screenshot: the page with charts has much more ink than without.
  const fs::path with = dir.path / "with-charts.png", without = dir.path / "without-charts.png";
  capture(chromium_command(browser_, dir.path / "profile", "--window-size=1100,4200 --screenshot=" + with.string(), page),
          status);
  ASSERT_EQ(status, 0);
  const fs::path plain = dir.path / "plain";
  run_cli({small_json().string(), "--out", plain.string(), "--no-charts", "--no-scenario-thresholds"});
  capture(chromium_command(browser_, dir.path / "profile",
                           "--window-size=1100,4200 --screenshot=" + without.string(), plain / "report.html"),
          status);
  ASSERT_TRUE(fs::exists(with));
  ASSERT_TRUE(fs::exists(without));
  const std::string png = read_file(with);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  EXPECT_GT(fs::file_size(with), fs::file_size(without) + 40000) << "the charts add little to the picture";
  if (const char* keep = std::getenv("NUDGE_REPORT_SCREENSHOT")) fs::copy_file(with, keep, fs::copy_options::overwrite_existing);
}

}  // namespace
}  // namespace nudge::report
