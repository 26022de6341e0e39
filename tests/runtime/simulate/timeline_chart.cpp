// Tests runtime/simulate/timeline_chart.cpp: the chart is a well-formed SVG document
// with one panel per run, one shaded window per outage and one mark with a
// tooltip per NDR; text is escaped; time labels fit the duration; odd input
// stays on the chart; long sample series stay small.
#include <doctest/doctest.h>

#include <cctype>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "runtime/simulate/timeline_chart.hpp"

using namespace postconn;

namespace {

constexpr std::int64_t day = 86400;

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
    ++n;
  return n;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The values of every `name="..."` attribute, in document order.
std::vector<std::string> attribute_values(const std::string& xml, const std::string& name) {
  std::vector<std::string> values;
  auto key = " " + name + "=\"";
  for (auto at = xml.find(key); at != std::string::npos; at = xml.find(key, at + 1)) {
    auto start = at + key.size();
    values.push_back(xml.substr(start, xml.find('"', start) - start));
  }
  return values;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '-'
         || c == '.';
}

/// Where the entity reference at `at` ends (after its ';'), or npos when it
/// is not one of XML's five or a character reference.
std::size_t entity_end(const std::string& xml, std::size_t at) {
  auto semicolon = xml.find(';', at);
  if (semicolon == std::string::npos)
    return std::string::npos;
  auto name = xml.substr(at + 1, semicolon - at - 1);
  static const std::set<std::string> known{"amp", "lt", "gt", "quot", "apos"};
  bool character = name.size() > 1 && name[0] == '#';
  return known.count(name) || character ? semicolon + 1 : std::string::npos;
}

/// A small well-formedness check, enough for the chart: an XML declaration,
/// then one root element; tags balance; attribute values are quoted and
/// unique per element; '<' and '&' appear only as markup and entity
/// references. Empty if well-formed, else the first problem.
class xml_checker {
public:
  explicit xml_checker(const std::string& xml) : xml_(xml) {
  }

  std::string problem() {
    if (xml_.rfind("<?xml ", 0) != 0)
      return "no XML declaration";
    at_ = xml_.find("?>") + 2;
    bool root_done = false;
    while (at_ < xml_.size() && error_.empty()) {
      char c = xml_[at_];
      if (c == '<' && root_done)
        fail("a second root element");
      else if (c == '<')
        root_done = tag() && open_.empty();
      else if (open_.empty() && !std::isspace(static_cast<unsigned char>(c)))
        fail("text outside the root element");
      else if (c == '&')
        entity();
      else
        ++at_;
    }
    if (error_.empty() && !open_.empty())
      fail("<" + open_.back() + "> not closed");
    if (error_.empty() && !root_done)
      fail("no root element");
    return error_;
  }

private:
  void fail(const std::string& what) {
    if (error_.empty())
      error_ = what + " at offset " + std::to_string(at_);
  }

  void entity() {
    auto end = entity_end(xml_, at_);
    if (end == std::string::npos)
      return fail("a bare '&'");
    at_ = end;
  }

  std::string name() {
    auto start = at_;
    while (at_ < xml_.size() && is_name_char(xml_[at_]))
      ++at_;
    if (at_ == start)
      fail("a missing name");
    return xml_.substr(start, at_ - start);
  }

  void skip_spaces() {
    while (at_ < xml_.size() && std::isspace(static_cast<unsigned char>(xml_[at_])))
      ++at_;
  }

  void expect(char c) {
    if (at_ >= xml_.size() || xml_[at_] != c)
      return fail(std::string{"expected '"} + c + "'");
    ++at_;
  }

  void attribute_value() {
    char quote = at_ < xml_.size() ? xml_[at_] : '\0';
    if (quote != '"' && quote != '\'')
      return fail("an unquoted attribute value");
    ++at_;
    while (at_ < xml_.size() && xml_[at_] != quote && error_.empty()) {
      if (xml_[at_] == '<')
        return fail("'<' in an attribute value");
      if (xml_[at_] == '&')
        entity();
      else
        ++at_;
    }
    expect(quote);
  }

  /// One start, end or empty-element tag; true if it closed an element.
  bool tag() {
    ++at_;
    if (at_ < xml_.size() && xml_[at_] == '/') {
      ++at_;
      auto closed = name();
      if (open_.empty() || open_.back() != closed)
        fail("</" + closed + "> does not close the open element");
      else
        open_.pop_back();
      skip_spaces();
      expect('>');
      return true;
    }
    auto element = name();
    std::set<std::string> attributes;
    while (error_.empty()) {
      skip_spaces();
      if (xml_.compare(at_, 2, "/>") == 0) {
        at_ += 2;
        return true;
      }
      if (xml_.compare(at_, 1, ">") == 0) {
        ++at_;
        open_.push_back(element);
        return false;
      }
      if (!attributes.insert(name()).second)
        fail("a repeated attribute in <" + element + ">");
      expect('=');
      attribute_value();
    }
    return false;
  }

  const std::string& xml_;
  std::size_t at_ = 0;
  std::vector<std::string> open_;
  std::string error_;
};

std::string xml_problem(const std::string& xml) {
  return xml_checker{xml}.problem();
}

/// A run of KB 277831: "sales" down for 30 days; with retry limits enforced
/// the message bounces after a day, in legacy mode it stays queued.
chart_run kb277831_run(bool enforce) {
  chart_run run;
  run.name = enforce ? "enforce" : "legacy";
  run.description = "enforce_retry_limits = " + std::string{enforce ? "true" : "false"};
  run.postoffices = {"sales", "support"};
  run.down = {{"sales", 0, 30 * day}};
  run.queue_depth = {{0, 1}};
  if (enforce) {
    run.queue_depth.push_back({day, 0});
    run.ndrs = {{day, "m1 sales"}};
  }
  return run;
}

std::string kb277831_chart() {
  return timeline_chart_svg("KB 277831", 30 * day, {kb277831_run(true), kb277831_run(false)});
}

chart_run run_with_samples(std::vector<queue_depth_sample> samples) {
  chart_run run;
  run.name = "run";
  run.postoffices = {"sales"};
  run.queue_depth = std::move(samples);
  return run;
}

/// The text of the time-axis tick labels.
std::vector<std::string> tick_labels(const std::string& svg) {
  std::vector<std::string> labels;
  std::string key = "text-anchor=\"middle\" font-size=\"10\">";
  for (auto at = svg.find(key); at != std::string::npos; at = svg.find(key, at + 1)) {
    auto start = at + key.size();
    labels.push_back(svg.substr(start, svg.find('<', start) - start));
  }
  return labels;
}

} // namespace

TEST_CASE("timeline chart: the checker refuses what is not well-formed XML") {
  CHECK(xml_problem("<?xml version=\"1.0\"?>\n<svg a=\"1\"><g/></svg>\n").empty());
  CHECK_FALSE(xml_problem("<svg/>").empty());
  CHECK_FALSE(xml_problem("<?xml version=\"1.0\"?><svg><g></svg>").empty());
  CHECK_FALSE(xml_problem("<?xml version=\"1.0\"?><svg a=1/>").empty());
  CHECK_FALSE(xml_problem("<?xml version=\"1.0\"?><svg a=\"1\" a=\"2\"/>").empty());
  CHECK_FALSE(xml_problem("<?xml version=\"1.0\"?><svg>a & b</svg>").empty());
  CHECK_FALSE(xml_problem("<?xml version=\"1.0\"?><svg/><svg/>").empty());
}

TEST_CASE("timeline chart: a standalone well-formed SVG 1.1 document") {
  auto svg = kb277831_chart();
  CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"",
                  0)
        == 0);
  CHECK(contains(svg, " height=\""));
  CHECK(contains(svg, " viewBox=\"0 0 "));
  REQUIRE(svg.size() >= 7);
  CHECK(svg.compare(svg.size() - 7, 7, "</svg>\n") == 0);
  CHECK(xml_problem(svg) == "");
  CHECK(contains(svg, "<title>KB 277831</title>"));
}

TEST_CASE("timeline chart: one panel per run with its name and description") {
  auto svg = kb277831_chart();
  CHECK(count(svg, "<g class=\"run\">") == 2);
  CHECK(contains(svg, ">enforce</tspan>"));
  CHECK(contains(svg, ">enforce_retry_limits = true</tspan>"));
  CHECK(contains(svg, ">legacy</tspan>"));
  CHECK(contains(svg, ">enforce_retry_limits = false</tspan>"));
  CHECK(svg.find(">enforce</tspan>") < svg.find(">legacy</tspan>"));
  CHECK(count(svg, ">sales</text>") == 2);
  CHECK(count(svg, ">support</text>") == 2);
  // A depth line per panel, the legend once.
  CHECK(count(svg, "class=\"depth\"") == 2);
  CHECK(count(svg, ">queue depth</text>") == 1);
  CHECK(count(svg, ">postoffice down</text>") == 1);
}

TEST_CASE("timeline chart: one shaded rect per down window") {
  chart_run run;
  run.name = "flapping";
  run.postoffices = {"sales", "support", "idle"};
  run.down = {{"sales", 0, 3600}, {"support", 1800, 7200}, {"sales", 10000, 20000}};
  auto svg = timeline_chart_svg("windows", day, {run});
  CHECK(xml_problem(svg) == "");
  CHECK(count(svg, "class=\"down\"") == 3);
  CHECK(count(svg, "<title>sales down from ") == 2);
  CHECK(contains(svg, "<title>support down from 30m to 2h</title>"));
  CHECK(contains(svg, ">idle</text>"));
}

TEST_CASE("timeline chart: a window of a postoffice not listed gets a band of its own") {
  chart_run run;
  run.postoffices = {"sales"};
  run.down = {{"hr", 0, 60}};
  auto svg = timeline_chart_svg("unlisted", 3600, {run});
  CHECK(contains(svg, ">sales</text>"));
  CHECK(contains(svg, ">hr</text>"));
  CHECK(count(svg, "class=\"down\"") == 1);
}

TEST_CASE("timeline chart: one NDR mark per NDR with its label as tooltip") {
  auto svg = kb277831_chart();
  CHECK(count(svg, "<g class=\"ndr\">") == 1);
  CHECK(count(svg, "<title>NDR at 1d: m1 sales</title>") == 1);
  CHECK(count(svg, "m1 sales") == 1);
  auto run = kb277831_run(true);
  run.ndrs.push_back({2 * day + 90, "m2 sales"});
  auto two = timeline_chart_svg("two NDRs", 30 * day, {run});
  CHECK(count(two, "<g class=\"ndr\"><title>") == 2);
  CHECK(contains(two, "<title>NDR at 2d1m30s: m2 sales</title>"));
}

TEST_CASE("timeline chart: every piece of text is escaped") {
  chart_run run;
  run.name = "run <&>\"'";
  run.description = "a < b";
  run.postoffices = {"sales & marketing"};
  run.down = {{"sales & marketing", 0, 10}};
  run.ndrs = {{10, "m1 <&>\"' <script>"}};
  auto svg = timeline_chart_svg("title <&>\"'", 60, {run});
  CHECK(xml_problem(svg) == "");
  CHECK(contains(svg, "<title>title &lt;&amp;&gt;&quot;&apos;</title>"));
  CHECK(contains(svg, ">run &lt;&amp;&gt;&quot;&apos;</tspan>"));
  CHECK(contains(svg, ">a &lt; b</tspan>"));
  CHECK(contains(svg, ">sales &amp; marketing</text>"));
  CHECK(contains(svg, "m1 &lt;&amp;&gt;&quot;&apos; &lt;script&gt;</title>"));
  CHECK_FALSE(contains(svg, "<script>"));
}

TEST_CASE("timeline chart: control characters do not break the XML") {
  chart_run run;
  run.name = std::string{"bad\x01name"};
  auto svg = timeline_chart_svg("t", 60, {run});
  CHECK(xml_problem(svg) == "");
  CHECK(contains(svg, ">bad?name</tspan>"));
}

TEST_CASE("timeline chart: time labels in days for a month") {
  auto labels = tick_labels(kb277831_chart());
  // Both panels carry the same labels.
  REQUIRE(labels.size() % 2 == 0);
  std::vector<std::string> panel(labels.begin(), labels.begin() + labels.size() / 2);
  CHECK(panel == std::vector<std::string>(labels.begin() + labels.size() / 2, labels.end()));
  REQUIRE(panel.size() >= 5);
  CHECK(panel.size() <= 10);
  CHECK(panel.front() == "0");
  CHECK(panel.back() == "30d");
  for (std::size_t i = 1; i < panel.size(); ++i)
    CHECK(panel[i].back() == 'd');
}

TEST_CASE("timeline chart: time labels in seconds for a minute and a half") {
  auto labels = tick_labels(timeline_chart_svg("short", 90, {run_with_samples({})}));
  REQUIRE(labels.size() >= 5);
  CHECK(labels.size() <= 10);
  CHECK(labels.front() == "0");
  CHECK(labels[1].back() == 's');
  CHECK(labels.back() == "1m30s");
}

TEST_CASE("timeline chart: time labels in hours for a day") {
  auto labels = tick_labels(timeline_chart_svg("day", day, {run_with_samples({})}));
  CHECK(labels == std::vector<std::string>{"0", "3h", "6h", "9h", "12h", "15h", "18h", "21h",
                                           "1d"});
}

TEST_CASE("timeline chart: no runs gives a chart with a note") {
  auto svg = timeline_chart_svg("empty", 3600, {});
  CHECK(xml_problem(svg) == "");
  CHECK(count(svg, "<g class=\"run\">") == 0);
  CHECK(contains(svg, ">no runs</text>"));
}

TEST_CASE("timeline chart: a run without samples or postoffices still has its panel") {
  chart_run run;
  run.name = "bare";
  auto svg = timeline_chart_svg("bare", 3600, {run});
  CHECK(xml_problem(svg) == "");
  CHECK(count(svg, "<g class=\"run\">") == 1);
  CHECK(count(svg, "class=\"depth\"") == 0);
  CHECK(contains(svg, ">no queue-depth samples</text>"));
}

TEST_CASE("timeline chart: a duration of 0 or less is drawn as 1 second") {
  auto run = kb277831_run(true);
  auto one = timeline_chart_svg("t", 1, {run});
  CHECK(xml_problem(one) == "");
  CHECK(timeline_chart_svg("t", 0, {run}) == one);
  CHECK(timeline_chart_svg("t", -5, {run}) == one);
}

TEST_CASE("timeline chart: windows samples and marks outside the duration stay on the axis") {
  auto inside = run_with_samples({{0, 2}, {50, 1}});
  inside.down = {{"sales", 0, 100}};
  inside.ndrs = {{100, "late"}};
  auto outside = run_with_samples({{-20, 2}, {50, 1}});
  outside.down = {{"sales", -50, 500}, {"sales", 200, 300}, {"sales", 60, 10}};
  outside.ndrs = {{1000, "late"}};
  auto svg = timeline_chart_svg("odd", 100, {outside});
  CHECK(xml_problem(svg) == "");
  // Clamped, the odd input draws what the same input within [0, 100] does;
  // the window after the end and the one ending before it starts are left out.
  CHECK(svg == timeline_chart_svg("odd", 100, {inside}));
  CHECK(count(svg, "class=\"down\"") == 1);
  CHECK(contains(svg, "<title>NDR at 1m40s: late</title>"));
}

TEST_CASE("timeline chart: the y scale shows 0 and the deepest sample") {
  auto svg = timeline_chart_svg("depth", 600, {run_with_samples({{0, 3}, {60, 7}, {120, 2}})});
  CHECK(contains(svg, "text-anchor=\"end\">7</text>"));
  CHECK(contains(svg, "text-anchor=\"end\">0</text>"));
}

TEST_CASE("timeline chart: the last depth holds to the end of the axis") {
  auto svg = timeline_chart_svg("hold", 600, {run_with_samples({{0, 1}, {60, 3}})});
  auto path = attribute_values(svg.substr(svg.find("class=\"depth\"")), "d").front();
  auto end_of_axis = attribute_values(svg, "x2").front();
  for (const auto& x2 : attribute_values(svg, "x2"))
    if (std::stod(x2) > std::stod(end_of_axis))
      end_of_axis = x2;
  CHECK(path.rfind("M", 0) == 0);
  CHECK(path.substr(path.rfind('H')) == "H" + end_of_axis);
  // One step up: across, up, across to the end.
  CHECK(count(path, "V") == 1);
  CHECK(count(path, "H") == 2);
}

TEST_CASE("timeline chart: equal consecutive samples collapse into one step") {
  std::vector<queue_depth_sample> samples;
  for (std::int64_t at = 0; at < 1000; ++at)
    samples.push_back({at * 60, 3});
  auto many = timeline_chart_svg("flat", day, {run_with_samples(samples)});
  CHECK(many == timeline_chart_svg("flat", day, {run_with_samples({{0, 3}})}));
}

TEST_CASE("timeline chart: 10000 alternating samples keep the chart small") {
  std::vector<queue_depth_sample> samples;
  for (std::int64_t at = 0; at < 10000; ++at)
    samples.push_back({at * 10, static_cast<std::size_t>(at % 2)});
  auto svg = timeline_chart_svg("busy", 100000, {run_with_samples(samples)});
  CHECK(xml_problem(svg) == "");
  CHECK(svg.size() < 64 * 1024);
  CHECK(svg == timeline_chart_svg("busy", 100000, {run_with_samples(samples)}));
}

TEST_CASE("timeline chart: numbers have at most one decimal") {
  auto svg = timeline_chart_svg("precision", 7 * 3600 + 13,
                                {run_with_samples({{0, 3}, {1001, 7}, {9999, 1}})});
  for (const auto& name : {"x", "y", "x1", "x2", "y1", "y2", "width", "height"})
    for (const auto& value : attribute_values(svg, name)) {
      auto point = value.find('.');
      CHECK_MESSAGE((point == std::string::npos || value.size() - point == 2), name, "=", value);
    }
}

TEST_CASE("timeline chart: a very long duration still gets a handful of ticks") {
  for (auto duration : {10 * 365 * day, std::numeric_limits<std::int64_t>::max()}) {
    auto labels = tick_labels(timeline_chart_svg("long", duration, {run_with_samples({{0, 1}})}));
    CHECK(labels.size() >= 4);
    CHECK(labels.size() <= 10);
    CHECK(labels.back().back() == 'd');
  }
}
