// Tests for runtime/delivery/fault_injector.cpp: which operations each injected fault hits.
#include "runtime/delivery/fault_injector.hpp"

#include <doctest/doctest.h>

using namespace postconn;
using namespace std::chrono_literals;

namespace {

using clock_type = fault_injector::clock;

fault_config with_mode(fault_mode mode) {
  fault_config cfg;
  cfg.mode = mode;
  return cfg;
}

/// How many of `n` opens the injector refuses.
int refused_opens(fault_injector& faults, int n) {
  int refused = 0;
  for (int i = 0; i < n; ++i)
    refused += faults.refused_open(clock_type::time_point{}).empty() ? 0 : 1;
  return refused;
}

} // namespace

TEST_CASE("fault: mode names round-trip and unknown names are refused") {
  for (auto mode : {fault_mode::none, fault_mode::unreachable, fault_mode::hang,
                    fault_mode::tempfail, fault_mode::permfail, fault_mode::slow,
                    fault_mode::flap, fault_mode::drop})
    CHECK(parse_fault_mode(to_string(mode)) == mode);
  CHECK_FALSE(parse_fault_mode("Unreachable"));
  CHECK_FALSE(parse_fault_mode(""));
  CHECK(fault_mode_names() == "unreachable, hang, tempfail, permfail, slow, flap, drop");
}

TEST_CASE("fault: no fault hits nothing") {
  fault_injector faults;
  CHECK(refused_opens(faults, 10) == 0);
  auto open = faults.open_call();
  CHECK(open.delay_ms == 0);
  CHECK_FALSE(open.hang);
  CHECK_FALSE(open.drop);
  CHECK_FALSE(faults.fails_transfer());
  CHECK_FALSE(faults.refuses("bob@example.test"));
}

TEST_CASE("fault: unreachable refuses every open and touches nothing else") {
  fault_injector faults{with_mode(fault_mode::unreachable), {}};
  CHECK(refused_opens(faults, 50) == 50);
  CHECK(faults.refused_open({}) == "unreachable (fault injection)");
  CHECK_FALSE(faults.open_call().hang);
  CHECK_FALSE(faults.fails_transfer());
}

TEST_CASE("fault: hang holds the open call for its latency, an hour by default") {
  fault_injector faults{with_mode(fault_mode::hang), {}};
  CHECK(refused_opens(faults, 5) == 0);
  auto open = faults.open_call();
  CHECK(open.hang);
  CHECK(open.delay_ms == 3600 * 1000);
  CHECK_FALSE(faults.transfer_call().hang);
  auto cfg = with_mode(fault_mode::hang);
  cfg.latency = 90s;
  CHECK(fault_injector{cfg, {}}.open_call().delay_ms == 90 * 1000);
}

TEST_CASE("fault: slow delays opens and transfers alike") {
  auto cfg = with_mode(fault_mode::slow);
  cfg.latency = 3s;
  fault_injector faults{cfg, {}};
  CHECK(faults.open_call().delay_ms == 3000);
  CHECK(faults.transfer_call().delay_ms == 3000);
  CHECK_FALSE(faults.transfer_call().hang);
}

TEST_CASE("fault: tempfail fails transfers, not opens") {
  fault_injector faults{with_mode(fault_mode::tempfail), {}};
  CHECK(refused_opens(faults, 5) == 0);
  CHECK(faults.fails_transfer());
  CHECK_FALSE(faults.refuses("bob@example.test"));
}

TEST_CASE("fault: permfail refuses the chosen recipients only, every one when none is chosen") {
  auto cfg = with_mode(fault_mode::permfail);
  cfg.recipients = {"bob@example.test"};
  fault_injector chosen{cfg, {}};
  CHECK(chosen.refuses("bob@example.test"));
  CHECK_FALSE(chosen.refuses("ann@example.test"));
  CHECK_FALSE(chosen.fails_transfer());
  fault_injector everyone{with_mode(fault_mode::permfail), {}};
  CHECK(everyone.refuses("ann@example.test"));
}

TEST_CASE("fault: drop cuts transfers and sessions") {
  fault_injector faults{with_mode(fault_mode::drop), {}};
  CHECK(faults.transfer_call().drop);
  CHECK(faults.open_call().drop);
  CHECK(refused_opens(faults, 5) == 0);
}

TEST_CASE("fault: flap is up, then down, on its schedule from when it was set") {
  auto cfg = with_mode(fault_mode::flap);
  cfg.up = 10min;
  cfg.down = 5min;
  auto since = clock_type::time_point{} + 1000h;
  fault_injector faults{cfg, since};
  CHECK(faults.refused_open(since).empty());
  CHECK(faults.refused_open(since + 9min + 59s).empty());
  CHECK(faults.refused_open(since + 10min) == "in a down window (fault injection: flap)");
  CHECK_FALSE(faults.refused_open(since + 14min + 59s).empty());
  CHECK(faults.refused_open(since + 15min).empty());
  CHECK_FALSE(faults.refused_open(since + 25min).empty());
}

TEST_CASE("fault: a probability hits about that share of operations, the same ones for the same seed") {
  auto cfg = with_mode(fault_mode::unreachable);
  cfg.probability = 0.25;
  cfg.seed = 7;
  fault_injector first{cfg, {}};
  fault_injector again{cfg, {}};
  std::string first_pattern;
  std::string again_pattern;
  for (int i = 0; i < 4000; ++i) {
    first_pattern += first.refused_open({}).empty() ? '.' : 'x';
    again_pattern += again.refused_open({}).empty() ? '.' : 'x';
  }
  CHECK(first_pattern == again_pattern);
  auto hits = std::count(first_pattern.begin(), first_pattern.end(), 'x');
  CHECK(hits > 900);
  CHECK(hits < 1100);
  cfg.seed = 8;
  fault_injector other{cfg, {}};
  std::string other_pattern;
  for (int i = 0; i < 4000; ++i)
    other_pattern += other.refused_open({}).empty() ? '.' : 'x';
  CHECK(other_pattern != first_pattern);
  cfg.probability = 0;
  fault_injector never{cfg, {}};
  CHECK(refused_opens(never, 100) == 0);
}
