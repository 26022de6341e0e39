// NAME
//   timeline_chart -- the SVG chart of a simulated scenario (see timeline_chart.hpp).
#include "runtime/simulate/timeline_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

namespace postconn {

namespace {

/// Page geometry, in SVG user units (pixels).
constexpr double chart_width = 960;
/// The time axis runs from plot_left to plot_right; postoffice names and
/// the depth scale sit left of it, right-aligned at label_right.
constexpr double plot_left = 170;
constexpr double plot_right = chart_width - 30;
constexpr double label_right = plot_left - 8;
/// Title and legend, above the first panel.
constexpr double title_height = 72;
/// Per panel: run heading, queue-depth plot, postoffice bands, tick labels.
constexpr double heading_height = 32;
constexpr double depth_height = 90;
constexpr double band_height = 18;
constexpr double band_gap = 4;
constexpr double axis_height = 40;
/// Below the last panel, or in place of the panels when there are no runs.
constexpr double bottom_margin = 10;
constexpr double no_runs_height = 30;

constexpr const char* depth_colour = "#1f5fa8";
constexpr const char* up_colour = "#e3f1e5";
constexpr const char* down_colour = "#d62728";
constexpr const char* ndr_colour = "#8b0000";
constexpr const char* grid_colour = "#dddddd";
constexpr const char* axis_colour = "#888888";
constexpr const char* note_colour = "#555555";

constexpr std::int64_t minute = 60;
constexpr std::int64_t hour = 60 * minute;
constexpr std::int64_t day = 24 * hour;

/// Tick spacings a reader counts in, smallest first; past the last one the
/// spacing doubles.
constexpr std::int64_t tick_steps[] = {
  1, 2, 5, 10, 15, 30,
  minute, 2 * minute, 5 * minute, 10 * minute, 15 * minute, 30 * minute,
  hour, 2 * hour, 3 * hour, 6 * hour, 12 * hour,
  day, 2 * day, 5 * day, 7 * day, 14 * day, 30 * day, 90 * day, 180 * day, 365 * day};
/// At most this many intervals between ticks on the time axis.
constexpr std::int64_t max_tick_intervals = 8;

struct time_unit {
  std::int64_t seconds;
  char suffix;
};
constexpr time_unit time_units[] = {{day, 'd'}, {hour, 'h'}, {minute, 'm'}, {1, 's'}};

/// `text` as XML character data or attribute value. Control characters,
/// which XML 1.0 does not allow, become '?'.
std::string xml_text(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '"': escaped += "&quot;"; break;
      case '\'': escaped += "&apos;"; break;
      default:
        bool control = static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n'
                       && c != '\r';
        escaped += control ? '?' : c;
    }
  }
  return escaped;
}

/// A coordinate with at most one decimal ("12", "12.5"), the same in every
/// locale.
std::string number(double value) {
  auto tenths = std::llround(value * 10);
  std::string text = tenths < 0 ? "-" : "";
  tenths = std::llabs(tenths);
  text += std::to_string(tenths / 10);
  if (tenths % 10 != 0)
    text += "." + std::to_string(tenths % 10);
  return text;
}

/// A time since the start, largest units first, zero units left out:
/// "0", "45s", "6h", "1d12h".
std::string time_label(std::int64_t seconds) {
  if (seconds <= 0)
    return "0";
  std::string label;
  for (const auto& unit : time_units) {
    if (seconds < unit.seconds)
      continue;
    label += std::to_string(seconds / unit.seconds) + unit.suffix;
    seconds %= unit.seconds;
  }
  return label;
}

/// The spacing of the time ticks: the smallest nice step that needs at most
/// max_tick_intervals intervals.
std::int64_t tick_step(std::int64_t duration) {
  std::int64_t step = 1;
  for (auto listed : tick_steps) {
    step = listed;
    if (duration / step <= max_tick_intervals)
      return step;
  }
  while (duration / step > max_tick_intervals)
    step *= 2;
  return step;
}

/// The time axis all panels share: seconds since the start to x, clamped to
/// the chart.
struct time_axis {
  std::int64_t duration = 1;

  std::int64_t clamped(std::int64_t at) const {
    return std::clamp<std::int64_t>(at, 0, duration);
  }

  double x_of(std::int64_t at) const {
    return plot_left
           + (plot_right - plot_left) * static_cast<double>(clamped(at))
               / static_cast<double>(duration);
  }
};

/// Where the parts of one run's panel go, top to bottom.
struct panel_layout {
  double top = 0;
  double depth_top = 0;
  double depth_bottom = 0;
  double bands_top = 0;
  /// The time axis line, under the last band.
  double bottom = 0;
  /// Where the next panel starts.
  double next_top = 0;
};

panel_layout panel_layout_at(double top, std::size_t band_count) {
  panel_layout panel;
  panel.top = top;
  panel.depth_top = top + heading_height;
  panel.depth_bottom = panel.depth_top + depth_height;
  panel.bands_top = panel.depth_bottom + 2 * band_gap;
  panel.bottom = panel.bands_top + static_cast<double>(band_count) * (band_height + band_gap);
  panel.next_top = panel.bottom + axis_height;
  return panel;
}

double band_top(const panel_layout& panel, std::size_t band) {
  return panel.bands_top + static_cast<double>(band) * (band_height + band_gap);
}

/// The run's postoffices in config order, then any postoffice that only its
/// down windows name.
std::vector<std::string> band_names(const chart_run& run) {
  auto names = run.postoffices;
  std::set<std::string> known{names.begin(), names.end()};
  for (const auto& window : run.down)
    if (known.insert(window.postoffice).second)
      names.push_back(window.postoffice);
  return names;
}

/// The queue-depth scale of a run: its deepest sample, at least 1.
std::size_t depth_scale(const chart_run& run) {
  std::size_t deepest = 1;
  for (const auto& sample : run.queue_depth)
    deepest = std::max(deepest, sample.deliveries);
  return deepest;
}

/// The samples that change the depth: a repeated depth adds nothing to a
/// step line.
std::vector<queue_depth_sample> depth_changes(const std::vector<queue_depth_sample>& samples) {
  std::vector<queue_depth_sample> changes;
  for (const auto& sample : samples)
    if (changes.empty() || changes.back().deliveries != sample.deliveries)
      changes.push_back(sample);
  return changes;
}

/// The depths the step line passes through in one pixel column.
struct depth_column {
  long x = 0;
  /// The depth coming in from the left.
  std::size_t entering = 0;
  std::size_t lowest = 0;
  std::size_t highest = 0;
  /// The depth going on to the right.
  std::size_t leaving = 0;
};

/// The step line gathered per pixel column, so that thousands of samples
/// cost no more than the chart has columns.
std::vector<depth_column> depth_columns(const std::vector<queue_depth_sample>& samples,
                                        const time_axis& axis) {
  std::vector<depth_column> columns;
  for (const auto& sample : depth_changes(samples)) {
    auto x = std::lround(axis.x_of(sample.at));
    auto depth = sample.deliveries;
    if (!columns.empty() && columns.back().x == x) {
      auto& column = columns.back();
      column.lowest = std::min(column.lowest, depth);
      column.highest = std::max(column.highest, depth);
      column.leaving = depth;
      continue;
    }
    auto entering = columns.empty() ? depth : columns.back().leaving;
    columns.push_back({x, entering, std::min(entering, depth), std::max(entering, depth), depth});
  }
  return columns;
}

/// Path data of the step line: across at the held depth, up or down in
/// each column (covering every depth the column saw), and the last depth
/// held to the end of the axis.
std::string depth_path(const std::vector<depth_column>& columns, const panel_layout& panel,
                       std::size_t scale) {
  auto y_of = [&](std::size_t depth) {
    return panel.depth_bottom
           - depth_height * static_cast<double>(depth) / static_cast<double>(scale);
  };
  std::string path;
  for (const auto& column : columns) {
    auto x = std::to_string(column.x);
    path += path.empty() ? "M" + x + " " + number(y_of(column.entering)) : "H" + x;
    bool falling = column.leaving <= column.entering;
    auto first = falling ? column.highest : column.lowest;
    auto second = falling ? column.lowest : column.highest;
    auto at = column.entering;
    for (auto depth : {first, second, column.leaving}) {
      if (depth == at)
        continue;
      path += "V" + number(y_of(depth));
      at = depth;
    }
  }
  return path + "H" + number(plot_right);
}

void write_document_start(std::string& svg, const std::string& title, double height) {
  svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\""
         + number(chart_width) + "\" height=\"" + number(height) + "\" viewBox=\"0 0 "
         + number(chart_width) + " " + number(height)
         + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg += "<title>" + xml_text(title) + "</title>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  svg += "<text x=\"12\" y=\"26\" font-size=\"16\" font-weight=\"bold\">" + xml_text(title)
         + "</text>\n";
}

/// The NDR mark's triangle, its tip at (x, y).
std::string ndr_triangle(double x, double y) {
  return "<path d=\"M" + number(x - 4) + " " + number(y - 7) + "h8l-4 7z\" fill=\""
         + ndr_colour + "\"/>";
}

/// One legend row under the title: what the line, the shading and the
/// marks mean.
void write_legend(std::string& svg) {
  constexpr double y = 50;
  constexpr double entry_width = 150;
  auto x = plot_left;
  auto label = [&](const char* text) {
    svg += "<text x=\"" + number(x + 26) + "\" y=\"" + number(y + 4) + "\">" + text
           + "</text>\n";
    x += entry_width;
  };
  svg += "<g class=\"legend\">\n";
  svg += "<path d=\"M" + number(x) + " " + number(y + 2) + "h10v-8h10\" fill=\"none\" stroke=\""
         + depth_colour + "\" stroke-width=\"2\"/>\n";
  label("queue depth");
  for (bool down : {false, true}) {
    svg += "<rect x=\"" + number(x) + "\" y=\"" + number(y - 5) + "\" width=\"20\" height=\"10\""
           + " fill=\"" + up_colour + "\"/>\n";
    if (down)
      svg += "<rect x=\"" + number(x) + "\" y=\"" + number(y - 5)
             + "\" width=\"20\" height=\"10\" fill=\"" + down_colour
             + "\" fill-opacity=\"0.55\"/>\n";
    label(down ? "postoffice down" : "postoffice up");
  }
  svg += "<line x1=\"" + number(x + 10) + "\" y1=\"" + number(y - 4) + "\" x2=\""
         + number(x + 10) + "\" y2=\"" + number(y + 7) + "\" stroke=\"" + ndr_colour
         + "\" stroke-width=\"1.5\"/>" + ndr_triangle(x + 10, y - 2) + "\n";
  label("NDR (hover for the message)");
  svg += "</g>\n";
}

void write_heading(std::string& svg, const chart_run& run, const panel_layout& panel) {
  svg += "<text x=\"12\" y=\"" + number(panel.top + 18) + "\" font-size=\"13\">";
  svg += "<tspan font-weight=\"bold\">" + xml_text(run.name) + "</tspan>";
  if (!run.description.empty())
    svg += "<tspan dx=\"10\" fill=\"" + std::string{note_colour} + "\">"
           + xml_text(run.description) + "</tspan>";
  svg += "</text>\n";
}

/// A vertical grid line and a label under the axis at each tick.
void write_time_ticks(std::string& svg, const panel_layout& panel, const time_axis& axis) {
  auto step = tick_step(axis.duration);
  for (std::int64_t at = 0; at <= axis.duration; at += step) {
    auto x = number(axis.x_of(at));
    svg += "<line x1=\"" + x + "\" y1=\"" + number(panel.depth_top) + "\" x2=\"" + x
           + "\" y2=\"" + number(panel.bottom + 4) + "\" stroke=\"" + grid_colour + "\"/>";
    svg += "<text x=\"" + x + "\" y=\"" + number(panel.bottom + 16)
           + "\" text-anchor=\"middle\" font-size=\"10\">" + time_label(at) + "</text>\n";
    if (at > axis.duration - step)
      break;
  }
  svg += "<line x1=\"" + number(plot_left) + "\" y1=\"" + number(panel.bottom) + "\" x2=\""
         + number(plot_right) + "\" y2=\"" + number(panel.bottom) + "\" stroke=\"" + axis_colour
         + "\"/>\n";
}

/// The depth scale at the left: 0 at the bottom, the deepest sample at the
/// top, with a dashed line at that depth.
void write_depth_scale(std::string& svg, const panel_layout& panel, std::size_t scale) {
  auto label = [&](double y, const std::string& text) {
    svg += "<text x=\"" + number(label_right) + "\" y=\"" + number(y + 4)
           + "\" text-anchor=\"end\">" + text + "</text>\n";
  };
  label(panel.depth_top, std::to_string(scale));
  label((panel.depth_top + panel.depth_bottom) / 2, "queue");
  label(panel.depth_bottom, "0");
  svg += "<line x1=\"" + number(plot_left) + "\" y1=\"" + number(panel.depth_top) + "\" x2=\""
         + number(plot_right) + "\" y2=\"" + number(panel.depth_top) + "\" stroke=\""
         + grid_colour + "\" stroke-dasharray=\"4 3\"/>\n";
  svg += "<path d=\"M" + number(plot_left) + " " + number(panel.depth_top) + "V"
         + number(panel.depth_bottom) + "H" + number(plot_right) + "\" fill=\"none\" stroke=\""
         + axis_colour + "\"/>\n";
}

/// One band per postoffice, its name at the left, shaded where it was down.
void write_bands(std::string& svg, const chart_run& run, const std::vector<std::string>& names,
                 const panel_layout& panel, const time_axis& axis) {
  std::map<std::string, std::size_t> band_of;
  for (std::size_t band = 0; band < names.size(); ++band) {
    band_of.emplace(names[band], band);
    auto top = band_top(panel, band);
    svg += "<text x=\"" + number(label_right) + "\" y=\"" + number(top + band_height / 2 + 4)
           + "\" text-anchor=\"end\">" + xml_text(names[band]) + "</text>";
    svg += "<rect x=\"" + number(plot_left) + "\" y=\"" + number(top) + "\" width=\""
           + number(plot_right - plot_left) + "\" height=\"" + number(band_height) + "\" fill=\""
           + up_colour + "\" fill-opacity=\"0.8\"/>\n";
  }
  for (const auto& window : run.down) {
    if (window.until < window.from || window.until < 0 || window.from > axis.duration)
      continue;
    auto left = axis.x_of(window.from);
    auto width = std::max(axis.x_of(window.until) - left, 1.0);
    svg += "<rect class=\"down\" x=\"" + number(left) + "\" y=\""
           + number(band_top(panel, band_of.at(window.postoffice))) + "\" width=\""
           + number(width) + "\" height=\"" + number(band_height) + "\" fill=\"" + down_colour
           + "\" fill-opacity=\"0.55\"><title>" + xml_text(window.postoffice) + " down from "
           + time_label(axis.clamped(window.from)) + " to "
           + time_label(axis.clamped(window.until)) + "</title></rect>\n";
  }
}

/// The queue depth as a step line over a light area.
void write_depth(std::string& svg, const chart_run& run, const panel_layout& panel,
                 const time_axis& axis) {
  auto columns = depth_columns(run.queue_depth, axis);
  if (columns.empty()) {
    svg += "<text x=\"" + number((plot_left + plot_right) / 2) + "\" y=\""
           + number((panel.depth_top + panel.depth_bottom) / 2)
           + "\" text-anchor=\"middle\" fill=\"" + note_colour
           + "\">no queue-depth samples</text>\n";
    return;
  }
  auto path = depth_path(columns, panel, depth_scale(run));
  svg += "<path d=\"" + path + "V" + number(panel.depth_bottom) + "H"
         + std::to_string(columns[0].x) + "Z\" fill=\"" + depth_colour
         + "\" fill-opacity=\"0.12\"/>\n";
  svg += "<path class=\"depth\" d=\"" + path + "\" fill=\"none\" stroke=\"" + depth_colour
         + "\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n";
}

/// At each NDR a line through the panel and a triangle above the depth
/// plot; the label shows as a tooltip.
void write_ndrs(std::string& svg, const chart_run& run, const panel_layout& panel,
                const time_axis& axis) {
  for (const auto& ndr : run.ndrs) {
    auto x = axis.x_of(ndr.at);
    svg += "<g class=\"ndr\"><title>NDR at " + time_label(axis.clamped(ndr.at)) + ": "
           + xml_text(ndr.label) + "</title>";
    svg += "<line x1=\"" + number(x) + "\" y1=\"" + number(panel.depth_top) + "\" x2=\""
           + number(x) + "\" y2=\"" + number(panel.bottom) + "\" stroke=\"" + ndr_colour
           + "\" stroke-width=\"1.5\"/>";
    svg += ndr_triangle(x, panel.depth_top) + "</g>\n";
  }
}

/// One run's panel from `top`; returns where the next panel starts.
double write_panel(std::string& svg, const chart_run& run, double top, const time_axis& axis) {
  auto names = band_names(run);
  auto panel = panel_layout_at(top, names.size());
  svg += "<g class=\"run\">\n";
  write_heading(svg, run, panel);
  write_time_ticks(svg, panel, axis);
  write_depth_scale(svg, panel, depth_scale(run));
  write_bands(svg, run, names, panel, axis);
  write_depth(svg, run, panel, axis);
  write_ndrs(svg, run, panel, axis);
  svg += "</g>\n";
  return panel.next_top;
}

} // namespace

std::string timeline_chart_svg(const std::string& title, std::int64_t duration,
                               const std::vector<chart_run>& runs) {
  time_axis axis{std::max<std::int64_t>(duration, 1)};
  std::string panels;
  auto top = title_height;
  for (const auto& run : runs)
    top = write_panel(panels, run, top, axis);
  if (runs.empty()) {
    panels += "<text x=\"12\" y=\"" + number(top + 16) + "\" fill=\"" + note_colour
              + "\">no runs</text>\n";
    top += no_runs_height;
  }
  std::string svg;
  write_document_start(svg, title, top + bottom_margin);
  write_legend(svg);
  return svg + panels + "</svg>\n";
}

} // namespace postconn
