// A randomized model test of actors/supervisor.cpp (seeded, simulated time):
// random retry policies, postoffices that go down, hang, fail temporarily or
// refuse a mailbox on random schedules, message arrivals, and restarts of
// the whole server over the same queue. After each run: every delivery is
// delivered or bounced, none waited past its limits plus one interval, and
// every original recipient was delivered or named in exactly one NDR.
// POSTCONN_MODEL_RUNS sets the number of runs (default 150).
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <regex>

#include "tests/actors/supervisor_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;
using test::fake_postoffice_state;
using test::po_mode;
using test::supervisor_fixture;
using test::t0;

namespace {

constexpr std::int64_t attempt_timeout = 30; // supervisor_fixture's

/// Something the scenario does at a moment of simulated time.
struct scripted_event {
  std::int64_t at;
  enum { arrival, dead_mode, live_mode, restart } what;
  po_mode mode = po_mode::up;
  std::vector<routed_recipients> deliveries;
};

struct scenario {
  retry_policy policy;
  std::vector<scripted_event> events;
  std::set<std::string> unknown_mailboxes;
  /// How long any delivery may wait, limits plus one interval.
  std::int64_t bound = 0;
};

po_mode random_mode(std::mt19937& rng) {
  static const po_mode modes[] = {po_mode::down, po_mode::up, po_mode::up,
                                  po_mode::tempfail, po_mode::hang};
  return modes[std::uniform_int_distribution<int>{0, 4}(rng)];
}

scenario make_scenario(std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>{lo, hi}(rng); };
  scenario s;
  auto& p = s.policy;
  p.max_open_retries = pick(0, 5);
  p.open_interval = std::chrono::seconds{pick(60, 600)};
  p.max_transfer_retries = pick(0, 3);
  p.transfer_interval = std::chrono::seconds{pick(30, 300)};
  p.enforce_retry_limits = pick(0, 3) != 0;
  // Without enforcement only a lifetime ends a delivery to a dead postoffice.
  p.max_lifetime = std::chrono::seconds{p.enforce_retry_limits && pick(0, 1) ? 0 : pick(1, 10) * 3600};
  auto open_wait = (p.max_open_retries + 1) * (p.open_interval.count() + attempt_timeout);
  auto transfer_wait = (p.max_transfer_retries + 1) * (p.transfer_interval.count() + attempt_timeout);
  auto by_counts = open_wait + transfer_wait;
  auto slack = std::max(p.open_interval.count(), p.transfer_interval.count()) + attempt_timeout + 1;
  s.bound = p.enforce_retry_limits ? by_counts : p.max_lifetime.count() + slack;
  if (p.max_lifetime.count() > 0)
    s.bound = std::min(s.bound, p.max_lifetime.count() + slack);
  if (pick(0, 2) == 0)
    s.unknown_mailboxes.insert("nobody@dead.example.test");
  const char* dead_rcpts[] = {"bob@dead.example.test", "eve@dead.example.test",
                              "nobody@dead.example.test"};
  std::int64_t horizon = 12 * 3600;
  for (int i = pick(1, 5); i > 0; --i) {
    scripted_event e{t0 + pick(0, 6 * 3600), scripted_event::arrival, po_mode::up, {}};
    std::vector<std::string> dead;
    for (const auto* rcpt : dead_rcpts)
      if (pick(0, 1))
        dead.push_back(rcpt);
    if (!dead.empty())
      e.deliveries.push_back({"dead", dead});
    if (pick(0, 1) || e.deliveries.empty())
      e.deliveries.push_back({"live", {"carol@live.example.test"}});
    s.events.push_back(e);
  }
  for (int i = pick(0, 6); i > 0; --i)
    s.events.push_back({t0 + pick(0, horizon), scripted_event::dead_mode, random_mode(rng), {}});
  for (int i = pick(0, 3); i > 0; --i)
    s.events.push_back({t0 + pick(0, horizon), scripted_event::live_mode, random_mode(rng), {}});
  for (int i = pick(0, 2); i > 0; --i)
    s.events.push_back({t0 + pick(0, horizon), scripted_event::restart, po_mode::up, {}});
  std::stable_sort(s.events.begin(), s.events.end(),
                   [](const auto& a, const auto& b) { return a.at < b.at; });
  return s;
}

/// Runs a scenario to its end; returns the problems found (empty: fine).
std::vector<std::string> run(const scenario& s, const std::filesystem::path& db_file) {
  std::vector<std::string> problems;
  std::int64_t now = t0;
  po_mode dead_mode = po_mode::down;
  po_mode live_mode = po_mode::up;
  std::map<std::string, int> delivered; // "<queue id> <recipient>" -> copies
  std::vector<std::pair<std::string, std::vector<routed_recipients>>> originals;
  auto start = [&]() {
    auto f = std::make_unique<supervisor_fixture>(db_file, s.policy, now);
    f->state_of<fake_postoffice_state>(f->dead).mode = dead_mode;
    f->state_of<fake_postoffice_state>(f->dead).unknown_mailboxes = s.unknown_mailboxes;
    f->state_of<fake_postoffice_state>(f->live).mode = live_mode;
    return f;
  };
  auto harvest = [&](supervisor_fixture& f) {
    for (auto* po : {&f.dead, &f.live})
      for (const auto& copy : f.state_of<fake_postoffice_state>(*po).delivered_copies)
        ++delivered[copy];
  };
  auto f = start();
  std::int64_t last_arrival = t0;
  for (const auto& e : s.events)
    if (e.what == scripted_event::arrival)
      last_arrival = std::max(last_arrival, e.at);
  // An NDR is queued up to one bound after its original and needs one more.
  auto end = last_arrival + 2 * s.bound + 3600;
  std::size_t next_event = 0;
  while (now < end) {
    auto& clock = f->sched.clock();
    auto next = end;
    if (!clock.schedule().empty()) {
      auto due = std::chrono::duration_cast<std::chrono::seconds>(
        clock.schedule().begin()->first - clock.current_time).count();
      next = std::min(next, now + std::max<std::int64_t>(due, 1));
    }
    if (next_event < s.events.size())
      next = std::min(next, std::max(s.events[next_event].at, now));
    f->sched.advance_time(std::chrono::seconds(next - now));
    f->sched.run();
    now = next;
    while (next_event < s.events.size() && s.events[next_event].at <= now) {
      const auto& e = s.events[next_event++];
      switch (e.what) {
        case scripted_event::arrival:
          originals.emplace_back(f->submit(e.deliveries, now), e.deliveries);
          break;
        case scripted_event::dead_mode:
          dead_mode = e.mode;
          f->state_of<fake_postoffice_state>(f->dead).mode = e.mode;
          break;
        case scripted_event::live_mode:
          live_mode = e.mode;
          f->state_of<fake_postoffice_state>(f->live).mode = e.mode;
          break;
        case scripted_event::restart:
          harvest(*f);
          f.reset();
          f = start();
          break;
      }
      f->sched.run();
    }
  }
  harvest(*f);
  auto& db = *f->db;
  for (const auto& entry : db.unfinished_deliveries())
    problems.push_back("delivery " + std::to_string(entry.delivery_id) + " of "
                       + entry.message_id + " still " + to_string(entry.state));
  for (const auto& [id, routed] : originals) {
    for (const auto& entry : db.deliveries_of(id)) {
      auto attempts = db.attempts_of(entry.delivery_id);
      auto finished = attempts.empty() ? entry.queued_at : attempts.back().at;
      if (finished - entry.queued_at > s.bound)
        problems.push_back("delivery " + std::to_string(entry.delivery_id) + " took "
                           + std::to_string(finished - entry.queued_at) + "s, bound "
                           + std::to_string(s.bound) + "s");
    }
  }
  // Every original recipient was delivered once or reported in one NDR.
  std::map<std::string, int> reported; // "<queue id> <recipient>" -> NDRs
  const std::regex queue_id{"X-Postconn-Queue-Id: ([0-9a-f]{16})"};
  const std::regex final_rcpt{"Final-Recipient: rfc822; ([^\r\n]+)"};
  for (const auto& ndr : f->ndrs()) {
    std::smatch id;
    if (!std::regex_search(ndr, id, queue_id))
      continue; // not an NDR
    for (std::sregex_iterator it{ndr.begin(), ndr.end(), final_rcpt}, last; it != last; ++it)
      ++reported[id[1].str() + " " + (*it)[1].str()];
  }
  for (const auto& [id, routed] : originals)
    for (const auto& delivery : routed)
      for (const auto& rcpt : delivery.recipients) {
        auto key = id + " " + rcpt;
        auto outcomes = delivered[key] + reported[key];
        if (outcomes != 1)
          problems.push_back(key + ": " + std::to_string(delivered[key]) + " copies, "
                             + std::to_string(reported[key]) + " NDRs");
      }
  return problems;
}

} // namespace

TEST_CASE("random outages, hangs, refusals and restarts: every delivery ends, in time, with one NDR at most") {
  auto base = std::filesystem::exists("/dev/shm") ? std::filesystem::path{"/dev/shm"}
                                                  : std::filesystem::temp_directory_path();
  int runs = std::getenv("POSTCONN_MODEL_RUNS") ? std::atoi(std::getenv("POSTCONN_MODEL_RUNS")) : 150;
  for (int seed = 1; seed <= runs; ++seed) {
    std::mt19937 rng{static_cast<unsigned>(seed)};
    auto s = make_scenario(rng);
    test::temp_dir dir{base};
    auto problems = run(s, dir / "queue.db");
    CAPTURE(seed);
    CHECK_MESSAGE(problems.empty(), (problems.empty() ? "" : problems.front()));
  }
}
