// NAME
//   timeline_chart -- the SVG chart of a simulated scenario (see
//   timeline_chart.hpp).
//
// DESCRIPTION
//   Layout, top to bottom: the title, then per run a heading, one band per
//   postoffice (shaded red where it was down), the queue-depth step line
//   with its scale, and NDR marks as dark red triangles on the time axis,
//   each with its label as a tooltip. One legend at the bottom. Times map
//   linearly onto the plot width; the time axis gets 4 to 10 ticks at a
//   round step (seconds, minutes, hours or days).
#include "runtime/timeline_chart.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <sstream>

namespace postconn {

namespace {

constexpr double width = 960;
constexpr double left = 130;
constexpr double right = 30;
constexpr double plot_width = width - left - right;
constexpr double title_height = 40;
constexpr double heading_height = 28;
constexpr double band_height = 18;
constexpr double depth_height = 120;
constexpr double axis_height = 34;
constexpr double panel_gap = 18;
constexpr double legend_height = 34;

std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        out += static_cast<unsigned char>(c) < 0x20 && c != '\t' ? ' ' : c;
    }
  }
  return out;
}

/// A coordinate with at most one decimal.
std::string num(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  std::string out = text;
  if (out.size() > 2 && out.compare(out.size() - 2, 2, ".0") == 0)
    out.resize(out.size() - 2);
  return out;
}

/// A tick label: "0", "45s", "30m", "6h", "2d", "1d12h".
std::string tick_label(std::int64_t seconds) {
  if (seconds == 0)
    return "0";
  if (seconds % 86400 == 0)
    return std::to_string(seconds / 86400) + "d";
  if (seconds >= 86400)
    return std::to_string(seconds / 86400) + "d" + std::to_string(seconds % 86400 / 3600) + "h";
  if (seconds % 3600 == 0)
    return std::to_string(seconds / 3600) + "h";
  if (seconds % 60 == 0)
    return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

/// The round tick step that gives 4 to 10 ticks over `duration`.
std::int64_t tick_step(std::int64_t duration) {
  static const std::int64_t steps[] = {
    1,    2,    5,     10,    15,    30,    60,    120,    300,    600,    900,
    1800, 3600, 7200,  10800, 21600, 43200, 86400, 172800, 432000, 604800, 1209600,
    2592000};
  for (auto step : steps)
    if (duration / step <= 10)
      return step;
  return duration / 10;
}

class chart_writer {
public:
  explicit chart_writer(std::int64_t duration) : duration_(std::max<std::int64_t>(duration, 1)) {}

  double x_of(std::int64_t at) const {
    auto clamped = std::clamp<std::int64_t>(at, 0, duration_);
    return left + plot_width * static_cast<double>(clamped) / static_cast<double>(duration_);
  }

  /// One run's panel from `top`; returns its height.
  double panel(std::ostringstream& out, const chart_run& run, double top) const {
    auto heading = run.name + (run.description.empty() ? "" : ": " + run.description);
    out << "<text x=\"" << num(left) << "\" y=\"" << num(top + 18)
        << "\" font-size=\"14\" font-weight=\"bold\">" << escaped(heading) << "</text>\n";
    auto y = top + heading_height;
    for (const auto& postoffice : run.postoffices) {
      out << "<text x=\"" << num(left - 8) << "\" y=\"" << num(y + 13)
          << "\" font-size=\"12\" text-anchor=\"end\">" << escaped(postoffice) << "</text>\n"
          << "<rect x=\"" << num(left) << "\" y=\"" << num(y) << "\" width=\""
          << num(plot_width) << "\" height=\"" << num(band_height - 4)
          << "\" fill=\"#e3f1e3\"/>\n";
      for (const auto& window : run.down)
        if (window.postoffice == postoffice)
          out << "<rect class=\"down\" x=\"" << num(x_of(window.from)) << "\" y=\"" << num(y)
              << "\" width=\"" << num(std::max(1.0, x_of(window.until) - x_of(window.from)))
              << "\" height=\"" << num(band_height - 4) << "\" fill=\"#d9534f\" "
              << "fill-opacity=\"0.75\"><title>" << escaped(postoffice) << " down "
              << tick_label(window.from) << " to " << tick_label(window.until)
              << "</title></rect>\n";
      y += band_height;
    }
    depth_line(out, run, y + 8);
    y += 8 + depth_height;
    axis(out, y);
    for (const auto& mark : run.ndrs) {
      auto x = x_of(mark.at);
      out << "<g class=\"ndr\"><title>NDR " << escaped(mark.label) << " at "
          << tick_label(mark.at) << "</title><line x1=\"" << num(x) << "\" y1=\""
          << num(top + heading_height) << "\" x2=\"" << num(x) << "\" y2=\"" << num(y)
          << "\" stroke=\"#8b0000\" stroke-width=\"1\" stroke-opacity=\"0.5\"/>"
          << "<path d=\"M" << num(x) << " " << num(y) << " l-5 9 h10 z\" fill=\"#8b0000\"/>"
          << "</g>\n";
    }
    return y + axis_height - top;
  }

  void depth_line(std::ostringstream& out, const chart_run& run, double top) const {
    std::size_t most = 1;
    for (const auto& sample : run.queue_depth)
      most = std::max(most, sample.deliveries);
    auto y_of = [&](std::size_t depth) {
      return top + depth_height - depth_height * static_cast<double>(depth) / most;
    };
    out << "<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\""
        << num(plot_width) << "\" height=\"" << num(depth_height)
        << "\" fill=\"none\" stroke=\"#cccccc\"/>\n"
        << "<text x=\"" << num(left - 8) << "\" y=\"" << num(top + 10)
        << "\" font-size=\"11\" text-anchor=\"end\">" << most << "</text>\n"
        << "<text x=\"" << num(left - 8) << "\" y=\"" << num(top + depth_height)
        << "\" font-size=\"11\" text-anchor=\"end\">0</text>\n"
        << "<text x=\"" << num(left - 8) << "\" y=\"" << num(top + depth_height / 2 + 4)
        << "\" font-size=\"11\" text-anchor=\"end\">queue</text>\n";
    if (run.queue_depth.empty())
      return;
    std::string points;
    auto add = [&](double x, double y) { points += num(x) + "," + num(y) + " "; };
    std::optional<std::size_t> last;
    for (const auto& sample : run.queue_depth) {
      if (last == sample.deliveries)
        continue;
      auto x = x_of(sample.at);
      if (last)
        add(x, y_of(*last));
      add(x, y_of(sample.deliveries));
      last = sample.deliveries;
    }
    add(x_of(duration_), y_of(*last));
    out << "<polyline class=\"depth\" points=\"" << points
        << "\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"1.5\"/>\n";
  }

  void axis(std::ostringstream& out, double y) const {
    out << "<line x1=\"" << num(left) << "\" y1=\"" << num(y) << "\" x2=\""
        << num(left + plot_width) << "\" y2=\"" << num(y) << "\" stroke=\"#333333\"/>\n";
    auto step = tick_step(duration_);
    for (std::int64_t at = 0; at <= duration_; at += step)
      out << "<line x1=\"" << num(x_of(at)) << "\" y1=\"" << num(y) << "\" x2=\""
          << num(x_of(at)) << "\" y2=\"" << num(y + 4) << "\" stroke=\"#333333\"/>"
          << "<text class=\"tick\" x=\"" << num(x_of(at)) << "\" y=\"" << num(y + 24)
          << "\" font-size=\"11\" text-anchor=\"middle\">" << tick_label(at) << "</text>\n";
  }

private:
  std::int64_t duration_;
};

void legend(std::ostringstream& out, double y) {
  out << "<g font-size=\"12\">"
      << "<line x1=\"" << num(left) << "\" y1=\"" << num(y) << "\" x2=\"" << num(left + 24)
      << "\" y2=\"" << num(y) << "\" stroke=\"#1f5fa8\" stroke-width=\"1.5\"/>"
      << "<text x=\"" << num(left + 30) << "\" y=\"" << num(y + 4)
      << "\">queue depth (unfinished deliveries)</text>"
      << "<rect x=\"" << num(left + 280) << "\" y=\"" << num(y - 6)
      << "\" width=\"24\" height=\"12\" fill=\"#d9534f\" fill-opacity=\"0.75\"/>"
      << "<text x=\"" << num(left + 310) << "\" y=\"" << num(y + 4) << "\">postoffice down</text>"
      << "<path d=\"M" << num(left + 450) << " " << num(y - 5) << " l-5 9 h10 z\" fill=\"#8b0000\"/>"
      << "<text x=\"" << num(left + 462) << "\" y=\"" << num(y + 4) << "\">NDR</text>"
      << "</g>\n";
}

} // namespace

std::string timeline_chart_svg(const std::string& title, std::int64_t duration,
                               const std::vector<chart_run>& runs) {
  chart_writer writer{duration};
  std::ostringstream panels;
  auto y = title_height;
  for (const auto& run : runs)
    y += writer.panel(panels, run, y) + panel_gap;
  legend(panels, y + 10);
  auto height = y + legend_height;
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << num(width)
      << "\" height=\"" << num(height) << "\" viewBox=\"0 0 " << num(width) << " "
      << num(height) << "\" font-family=\"sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << num(left) << "\" y=\"26\" font-size=\"16\" font-weight=\"bold\">"
      << escaped(title) << "</text>\n"
      << panels.str() << "</svg>\n";
  return out.str();
}

} // namespace postconn
