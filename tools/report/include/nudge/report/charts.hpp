#pragma once
// Charts by gnuplot (Debian: gnuplot-nox), run as a subprocess on data files
// written to a temporary directory; its SVG output is made embeddable (ids
// prefixed per chart, XML prolog dropped) and kept in chart::svg.
#include <chrono>
#include <string>
#include <vector>

#include "nudge/report/report.hpp"

namespace nudge::report {

struct chart_options {
  std::string gnuplot = "gnuplot";  // a name looked up in PATH, or a path
  std::chrono::seconds timeout{60};  // per chart
};

/// Draws every chart (each gets svg, or error). Returns "" when all were drawn,
/// else a message for the first problem (e.g. gnuplot is not installed).
std::string draw_charts(std::vector<chart>& charts, const chart_options& opts = {});

/// The gnuplot script for one chart; `data` is the path of its data file,
/// `output` where the SVG goes. Writes the data file's text into `data_text`.
std::string gnuplot_script(const chart& c, const std::string& data, const std::string& output, std::string& data_text);

/// Colour of a mode in every chart.
std::string mode_colour(const std::string& mode);

}  // namespace nudge::report
