// Tests runtime/simulate/scenario.cpp: the shipped scenarios load, runs override the
// retry settings of every postoffice, and every bad key is one problem line
// naming it.
#include <doctest/doctest.h>

#include <algorithm>

#include "runtime/simulate/scenario.hpp"

#ifndef POSTCONN_SOURCE_DIR
#define POSTCONN_SOURCE_DIR "."
#endif

using namespace postconn;
using namespace std::chrono_literals;

namespace {

const std::string postoffices = R"(
[[postoffice]]
name = "sales"
domains = ["sales.example.test"]
transport = "maildir"
path = "sales"
[postoffice.retry]
max_open_retries = 10

[[postoffice]]
name = "support"
domains = ["support.example.test"]
transport = "maildir"
path = "support"
)";

std::vector<std::string> problems_of(const std::string& text) {
  auto result = parse_scenario(text, "test.toml");
  CHECK_FALSE(result.value);
  return result.problems;
}

bool has_problem(const std::vector<std::string>& problems, const std::string& line) {
  return std::find(problems.begin(), problems.end(), line) != problems.end();
}

std::string all_of(const std::vector<std::string>& problems) {
  std::string text;
  for (const auto& p : problems)
    text += p + "\n";
  return text;
}

} // namespace

TEST_CASE("the shipped scenarios load") {
  for (const auto* name : {"kb277831", "flapping", "slow_under_load"}) {
    auto result = load_scenario_file(std::string{POSTCONN_SOURCE_DIR} + "/conf/scenarios/"
                                     + name + ".toml");
    INFO(name << ":\n" << all_of(result.problems));
    CHECK(result.value);
  }
}

TEST_CASE("a scenario: header, runs over every postoffice's policy, faults and mail") {
  auto result = parse_scenario(R"(
[scenario]
title = "two runs"
duration = "2d"
[[run]]
name = "enforce"
retry = { enforce_retry_limits = true, max_open_retries = 3 }
[[run]]
name = "legacy"
description = "the old way"
retry = { enforce_retry_limits = false }
[[fault]]
postoffice = "sales"
from = "1h"
inject = { mode = "flap", up = "10m", down = "5m" }
[[mail]]
from = "ann@support.example.test"
to = ["bob@sales.example.test", "carl@support.example.test"]
at = "30m"
count = 5
every = "1m"
)" + postoffices,
                               "test.toml");
  INFO(all_of(result.problems));
  REQUIRE(result.value);
  const auto& sc = *result.value;
  CHECK(sc.title == "two runs");
  CHECK(sc.duration == 48h);
  CHECK(sc.sample_interval == std::chrono::seconds{48 * 3600 / 2000});
  REQUIRE(sc.runs.size() == 2);
  CHECK(sc.runs[0].cfg.postoffices.at(0).retry.max_open_retries == 3);
  CHECK(sc.runs[0].cfg.postoffices.at(1).retry.max_open_retries == 3);
  CHECK(sc.runs[0].cfg.retry.enforce_retry_limits);
  CHECK_FALSE(sc.runs[1].cfg.postoffices.at(0).retry.enforce_retry_limits);
  CHECK(sc.runs[1].cfg.postoffices.at(0).retry.max_open_retries == 10);
  CHECK(sc.runs[1].description == "the old way");
  REQUIRE(sc.faults.size() == 1);
  CHECK(sc.faults[0].from == 1h);
  CHECK(sc.faults[0].until == 48h);
  CHECK(sc.faults[0].fault.mode == fault_mode::flap);
  CHECK(sc.faults[0].fault.down == 5min);
  REQUIRE(sc.mail.size() == 1);
  CHECK(sc.mail[0].count == 5);
  CHECK(sc.mail[0].every == 1min);
  CHECK(sc.mail[0].recipients.size() == 2);
}

TEST_CASE("a scenario without runs has one default run") {
  auto result = parse_scenario("[scenario]\nduration = \"1h\"\n" + postoffices, "test.toml");
  REQUIRE(result.value);
  REQUIRE(result.value->runs.size() == 1);
  CHECK(result.value->runs[0].name == "default");
}

TEST_CASE("every rule of a scenario names its key") {
  auto problems = problems_of(R"(
[scenario]
duration = "0"
colour = "red"
[[run]]
description = "no name"
retry = { open_interval = "soon" }
[[run]]
name = "twice"
[[run]]
name = "twice"
[[run]]
name = "../up"
[[fault]]
postoffice = "salse"
from = "2h"
until = "1h"
inject = { mode = "explode" }
[[fault]]
postoffice = "sales"
[[mail]]
from = ""
to = ["bob@nowhere.test"]
count = 0
)" + postoffices);
  INFO(all_of(problems));
  CHECK(has_problem(problems, "scenario.duration: must be longer than 0"));
  CHECK(has_problem(problems, "scenario.colour: unknown key"));
  CHECK(has_problem(problems, "run[0].name: missing (names the run in the output)"));
  CHECK(has_problem(problems, "run[0].retry.open_interval: invalid duration \"soon\" (use a "
                              "number with s, m, h or d, e.g. \"600s\")"));
  CHECK(has_problem(problems, "run[2].name: duplicate run name \"twice\""));
  CHECK(has_problem(problems, "run[3].name: invalid name \"../up\" (use lower-case letters, "
                              "digits, _ and -)"));
  CHECK(has_problem(problems, "fault[0].postoffice: no postoffice \"salse\""));
  CHECK(has_problem(problems, "fault[0].until: must be later than from"));
  CHECK(has_problem(problems, "fault[0].inject.mode: unknown fault \"explode\" (unreachable, "
                              "hang, tempfail, permfail, slow, flap, drop or none)"));
  CHECK(has_problem(problems, "fault[1].inject: missing (the fault, e.g. { mode = "
                              "\"unreachable\" })"));
  CHECK(has_problem(problems, "mail[0].from: must not be empty"));
  CHECK(has_problem(problems, "mail[0].to[0]: no postoffice takes \"bob@nowhere.test\""));
  CHECK(has_problem(problems, "mail[0].count: must be at least 1, got 0"));
}

TEST_CASE("a scenario's config is checked as the server's is, maildir postoffices only") {
  auto problems = problems_of(R"(
[scenario]
duration = "1h"
[retry]
open_interval = "10x"
[[postoffice]]
name = "relay"
domains = ["relay.example.test"]
transport = "smtp"
address = "127.0.0.1:25"
)");
  INFO(all_of(problems));
  CHECK(has_problem(problems, "retry.open_interval: invalid duration \"10x\" (use a number "
                              "with s, m, h or d, e.g. \"600s\")"));
  auto smtp = problems_of(R"(
[scenario]
duration = "1h"
[[postoffice]]
name = "relay"
domains = ["relay.example.test"]
transport = "smtp"
address = "127.0.0.1:25"
)");
  CHECK(has_problem(smtp, "postoffice[0].transport: the simulator runs maildir postoffices only"));
  CHECK(has_problem(problems_of(postoffices), "scenario: missing (a [scenario] table with the "
                                              "duration)"));
  auto syntax = problems_of("[scenario\nduration = 1");
  REQUIRE(syntax.size() == 1);
  CHECK(syntax[0].rfind("test.toml:1:", 0) == 0);
}
