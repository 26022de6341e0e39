// A randomized model test of actors/supervisor.cpp (seeded, simulated time):
// random retry policies, postoffices that go down, hang, fail temporarily or
// refuse a mailbox on random schedules, message arrivals, and restarts of
// the whole server over the same queue, holds and releases of messages, and
// config reloads with new retry policies. After each run: every delivery is
// delivered or bounced, none waited past its limits plus one interval (time
// on hold not counted), and every original recipient was delivered or named
// in exactly one NDR.
// POSTCONN_MODEL_RUNS sets the number of runs (default 150).
#include <doctest/doctest.h>

#include <cstdlib>
#include <functional>
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
  enum { arrival, dead_mode, live_mode, restart, hold, release, reload } what;
  po_mode mode = po_mode::up;
  std::vector<routed_recipients> deliveries;
  /// hold, release: the n-th arrival's message.
  std::size_t message = 0;
  /// reload: the new policy of both postoffices.
  retry_policy policy;
};

struct scenario {
  retry_policy policy;
  std::vector<scripted_event> events;
  std::set<std::string> unknown_mailboxes;
  /// How long any delivery may wait under the most patient policy: limits
  /// plus one interval. Sets how long a run lasts.
  std::int64_t bound = 0;
  /// The policies in force, from when (the first from the start).
  std::vector<std::pair<std::int64_t, retry_policy>> policies;
  /// When each message held (by arrival) was held and released.
  std::map<std::size_t, std::pair<std::int64_t, std::int64_t>> holds;
};

po_mode random_mode(std::mt19937& rng) {
  static const po_mode modes[] = {po_mode::down, po_mode::up, po_mode::up,
                                  po_mode::tempfail, po_mode::hang};
  return modes[std::uniform_int_distribution<int>{0, 4}(rng)];
}

retry_policy random_policy(const std::function<int(int, int)>& pick) {
  retry_policy p;
  p.max_open_retries = pick(0, 5);
  p.open_interval = std::chrono::seconds{pick(60, 600)};
  p.max_transfer_retries = pick(0, 3);
  p.transfer_interval = std::chrono::seconds{pick(30, 300)};
  p.enforce_retry_limits = pick(0, 3) != 0;
  // Without enforcement only a lifetime ends a delivery to a dead postoffice.
  p.max_lifetime = std::chrono::seconds{p.enforce_retry_limits && pick(0, 1) ? 0 : pick(1, 10) * 3600};
  return p;
}

/// How long a delivery may wait under `p`: its limits plus one interval.
std::int64_t bound_of(const retry_policy& p) {
  auto open_wait = (p.max_open_retries + 1) * (p.open_interval.count() + attempt_timeout);
  auto transfer_wait = (p.max_transfer_retries + 1) * (p.transfer_interval.count() + attempt_timeout);
  auto by_counts = open_wait + transfer_wait;
  auto slack = std::max(p.open_interval.count(), p.transfer_interval.count()) + attempt_timeout + 1;
  auto bound = p.enforce_retry_limits ? by_counts : p.max_lifetime.count() + slack;
  if (p.max_lifetime.count() > 0)
    bound = std::min(bound, p.max_lifetime.count() + slack);
  return bound;
}

scenario make_scenario(std::mt19937& rng) {
  std::function<int(int, int)> pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(rng);
  };
  scenario s;
  s.policy = random_policy(pick);
  s.bound = bound_of(s.policy);
  s.policies.emplace_back(t0, s.policy);
  if (pick(0, 2) == 0)
    s.unknown_mailboxes.insert("nobody@dead.example.test");
  const char* dead_rcpts[] = {"bob@dead.example.test", "eve@dead.example.test",
                              "nobody@dead.example.test"};
  std::int64_t horizon = 12 * 3600;
  for (int i = pick(1, 5); i > 0; --i) {
    scripted_event e{t0 + pick(0, 6 * 3600), scripted_event::arrival, po_mode::up, {}, 0, {}};
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
    s.events.push_back({t0 + pick(0, horizon), scripted_event::dead_mode, random_mode(rng), {}, 0, {}});
  for (int i = pick(0, 3); i > 0; --i)
    s.events.push_back({t0 + pick(0, horizon), scripted_event::live_mode, random_mode(rng), {}, 0, {}});
  for (int i = pick(0, 2); i > 0; --i)
    s.events.push_back({t0 + pick(0, horizon), scripted_event::restart, po_mode::up, {}, 0, {}});
  std::vector<std::int64_t> arrivals;
  for (const auto& e : s.events)
    if (e.what == scripted_event::arrival)
      arrivals.push_back(e.at);
  std::sort(arrivals.begin(), arrivals.end());
  for (int i = pick(0, 2); i > 0; --i) {
    auto message = static_cast<std::size_t>(pick(0, static_cast<int>(arrivals.size()) - 1));
    if (s.holds.count(message))
      continue;
    auto hold_at = arrivals[message] + pick(0, 3600);
    auto held = pick(60, 3 * 3600);
    s.holds[message] = {hold_at, hold_at + held};
    s.events.push_back({hold_at, scripted_event::hold, po_mode::up, {}, message, {}});
    s.events.push_back({hold_at + held, scripted_event::release, po_mode::up, {}, message, {}});
  }
  for (int i = pick(0, 2); i > 0; --i) {
    auto policy = random_policy(pick);
    s.bound = std::max(s.bound, bound_of(policy));
    auto at = t0 + pick(0, horizon);
    s.events.push_back({at, scripted_event::reload, po_mode::up, {}, 0, policy});
    s.policies.emplace_back(at, policy);
  }
  std::stable_sort(s.events.begin(), s.events.end(),
                   [](const auto& a, const auto& b) { return a.at < b.at; });
  return s;
}

/// Runs a scenario to its end; returns the problems found (empty: fine).
std::vector<std::string> run(const scenario& s, const std::filesystem::path& db_file) {
  std::vector<std::string> problems;
  std::int64_t now = t0;
  auto policy = s.policy;
  po_mode dead_mode = po_mode::down;
  po_mode live_mode = po_mode::up;
  std::map<std::string, int> delivered; // "<queue id> <recipient>" -> copies
  std::vector<std::pair<std::string, std::vector<routed_recipients>>> originals;
  auto start = [&]() {
    auto f = std::make_unique<supervisor_fixture>(db_file, policy, now);
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
    if (e.what == scripted_event::arrival || e.what == scripted_event::release)
      last_arrival = std::max(last_arrival, e.at);
  // An NDR is queued up to one bound after its original (or its release)
  // and needs one more.
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
        case scripted_event::hold:
          caf::anon_send(f->sup, hold_atom::value, message_filter(originals.at(e.message).first));
          break;
        case scripted_event::release:
          caf::anon_send(f->sup, release_atom::value,
                         message_filter(originals.at(e.message).first));
          break;
        case scripted_event::reload:
          policy = e.policy;
          caf::anon_send(f->sup, reload_atom::value,
                         postoffice_lineup{{{"dead", policy, {}}, {"live", policy, {}}},
                                           policy, nullptr});
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
  for (std::size_t n = 0; n < originals.size(); ++n) {
    const auto& id = originals[n].first;
    auto hold = s.holds.count(n) ? s.holds.at(n) : std::pair<std::int64_t, std::int64_t>{};
    auto held = hold.second - hold.first;
    for (const auto& entry : db.deliveries_of(id)) {
      auto attempts = db.attempts_of(entry.delivery_id);
      // On hold (an attempt under way may end first), nothing is tried.
      for (const auto& attempt : attempts)
        if (attempt.at > hold.first + attempt_timeout && attempt.at < hold.second
            && attempt.outcome != "held")
          problems.push_back("delivery " + std::to_string(entry.delivery_id) + ": "
                             + attempt.outcome + " while on hold");
      auto finished = attempts.empty() ? entry.queued_at : attempts.back().at;
      // Each policy in force before the end bounds the wait from when it
      // took over: counts carry over, so a reload never adds to its budget.
      std::int64_t deadline = 0;
      for (const auto& [since, policy] : s.policies)
        if (since <= finished)
          deadline = std::max(deadline, std::max(entry.queued_at, since) + bound_of(policy));
      if (finished - held > deadline)
        problems.push_back("delivery " + std::to_string(entry.delivery_id) + " took "
                           + std::to_string(finished - entry.queued_at) + "s, "
                           + std::to_string(held) + "s of them on hold, "
                           + std::to_string(finished - held - deadline)
                           + "s past its deadline");
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

TEST_CASE("random outages, hangs, refusals, restarts, holds and reloads: every delivery ends, in time, with one NDR at most") {
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
