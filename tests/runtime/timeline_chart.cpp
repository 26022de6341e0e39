// Tests runtime/timeline_chart.cpp: the chart's structure (one panel per
// run, a shaded window per outage, a mark with a tooltip per NDR, the queue
// line), escaping, and time-axis labels that fit the duration.
#include <doctest/doctest.h>

#include <string>

#include "runtime/timeline_chart.hpp"

using namespace postconn;

namespace {

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
    ++n;
  return n;
}

chart_run kb_run(const std::string& name, bool bounced) {
  chart_run run;
  run.name = name;
  run.description = "enforce_retry_limits = " + std::string{bounced ? "true" : "false"};
  run.postoffices = {"sales", "support"};
  run.down = {{"sales", 0, 30 * 86400}};
  run.queue_depth = {{0, 1}};
  if (bounced) {
    run.queue_depth.push_back({86400, 0});
    run.ndrs = {{86400, "m1 sales"}};
  }
  return run;
}

} // namespace

TEST_CASE("the chart has a panel per run, a window per outage and a mark per NDR") {
  auto svg = timeline_chart_svg("KB 277831", 30 * 86400,
                                {kb_run("enforce", true), kb_run("legacy", false)});
  CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("</svg>\n") == svg.size() - 7);
  CHECK(svg.find(">enforce: enforce_retry_limits = true</text>") != std::string::npos);
  CHECK(svg.find(">legacy: enforce_retry_limits = false</text>") != std::string::npos);
  CHECK(count(svg, "class=\"down\"") == 2);
  CHECK(count(svg, "class=\"ndr\"") == 1);
  CHECK(svg.find("<title>NDR m1 sales at 1d</title>") != std::string::npos);
  CHECK(count(svg, "class=\"depth\"") == 2);
  // Day ticks for a month.
  CHECK(svg.find(">5d</text>") != std::string::npos);
  CHECK(svg.find(">30d</text>") != std::string::npos);
}

TEST_CASE("text in the chart is escaped") {
  chart_run run;
  run.name = "a<b>&\"c'";
  run.postoffices = {"sales"};
  run.ndrs = {{10, "<script>"}};
  auto svg = timeline_chart_svg("x & y", 60, {run});
  CHECK(svg.find("a&lt;b&gt;&amp;&quot;c&apos;") != std::string::npos);
  CHECK(svg.find("x &amp; y") != std::string::npos);
  CHECK(svg.find("<script>") == std::string::npos);
  CHECK(svg.find("&lt;script&gt;") != std::string::npos);
}

TEST_CASE("time ticks fit the duration, and odd input stays inside the plot") {
  chart_run plain;
  plain.postoffices = {"sales"};
  auto short_svg = timeline_chart_svg("short", 90, {plain});
  CHECK(short_svg.find(">30s</text>") != std::string::npos);
  CHECK(short_svg.find(">1m</text>") != std::string::npos);
  auto hours = timeline_chart_svg("hours", 8 * 3600, {plain});
  CHECK(hours.find(">1h</text>") != std::string::npos);
  CHECK(hours.find(">8h</text>") != std::string::npos);
  chart_run odd;
  odd.postoffices = {"sales"};
  odd.down = {{"sales", -50, 500}};
  odd.ndrs = {{1000, "late"}};
  auto svg = timeline_chart_svg("odd", 0, {odd});
  CHECK(svg.find("x=\"-") == std::string::npos);
  CHECK(svg.find("<title>NDR late at ") != std::string::npos);
}

TEST_CASE("equal queue depths collapse, so long runs stay small") {
  chart_run run;
  run.postoffices = {"sales"};
  for (std::int64_t at = 0; at < 10000; ++at)
    run.queue_depth.push_back({at, static_cast<std::size_t>(at / 5000)});
  auto flat = timeline_chart_svg("flat", 10000, {run});
  auto points = flat.substr(flat.find("class=\"depth\" points=\""));
  CHECK(count(points.substr(0, points.find("\" fill")), ",") == 4);
  chart_run busy;
  busy.postoffices = {"sales"};
  for (std::int64_t at = 0; at < 10000; ++at)
    busy.queue_depth.push_back({at, static_cast<std::size_t>(at % 2)});
  CHECK(timeline_chart_svg("busy", 10000, {busy}).size() < 400 * 1024);
}
