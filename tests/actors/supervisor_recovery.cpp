// Tests the supervisor's attempts ahead of schedule with the real store on
// the deterministic scheduler, against fake postoffices: a postoffice that
// is up again gets its deferred deliveries at once, recovery_rate a second;
// a flush or a release that fails uses no retry (the delivery keeps its
// counts and its next attempt, and counts the failure apart).
#include <doctest/doctest.h>

#include "tests/actors/supervisor_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

using test::fake_postoffice_state;
using test::po_mode;
using test::supervisor_fixture;
using test::t0;

delivery_filter of_postoffice(const std::string& postoffice) {
  delivery_filter filter;
  filter.postoffice = postoffice;
  return filter;
}

/// The one delivery of a message, as the queue holds it.
ledger_entry stored(supervisor_fixture& f, const std::string& message_id) {
  auto entries = f.db->deliveries_of(message_id);
  REQUIRE(entries.size() == 1);
  return entries.front();
}

/// The attempt log of a message's one delivery, "outcome: text" per line.
std::vector<std::string> attempt_log(supervisor_fixture& f, const std::string& message_id) {
  std::vector<std::string> lines;
  for (const auto& record : f.db->attempts_of(stored(f, message_id).delivery_id))
    lines.push_back(record.outcome + ": " + record.text);
  return lines;
}

} // namespace

TEST_CASE("a flush that fails uses no retry: the counts and the next attempt stay, the failure is counted apart") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", retry_policy{}};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto first = stored(f, id);
  REQUIRE(first.open_retries == 1);
  REQUIRE(first.next_attempt_at == t0 + 600);
  f.advance(100s);
  CHECK(f.ask<verb_tally>(flush_atom::value, of_postoffice("dead")).deliveries == 1);
  f.sched.run();
  auto flushed = stored(f, id);
  CHECK(flushed.attempts == 2);
  CHECK(flushed.open_retries == 1);
  CHECK(flushed.unscheduled_failures == 1);
  CHECK(flushed.next_attempt_at == t0 + 600);
  CHECK(attempt_log(f, id).back()
        == "open_failed: share not mounted (ahead of schedule: no retry used)");
  // The scheduled attempt comes when it was due, and counts.
  f.advance(500s);
  auto scheduled = stored(f, id);
  CHECK(scheduled.attempts == 3);
  CHECK(scheduled.open_retries == 2);
  CHECK(scheduled.unscheduled_failures == 1);
  CHECK(scheduled.next_attempt_at == t0 + 1200);
}

TEST_CASE("a release that fails uses no retry, and one past its schedule is a scheduled attempt") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", retry_policy{}};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto filter = of_postoffice("dead");
  CHECK(f.ask<verb_tally>(hold_atom::value, filter).deliveries == 1);
  f.advance(60s);
  CHECK(f.ask<verb_tally>(release_atom::value, filter).deliveries == 1);
  f.sched.run();
  auto released = stored(f, id);
  CHECK(released.state == delivery_state::deferred);
  CHECK(released.open_retries == 1);
  CHECK(released.unscheduled_failures == 1);
  CHECK(released.next_attempt_at == t0 + 600);
  // Held again past its next attempt: the release is that attempt.
  CHECK(f.ask<verb_tally>(hold_atom::value, filter).deliveries == 1);
  f.advance(1000s);
  CHECK(f.ask<verb_tally>(release_atom::value, filter).deliveries == 1);
  f.sched.run();
  auto late = stored(f, id);
  CHECK(late.open_retries == 2);
  CHECK(late.unscheduled_failures == 1);
}

TEST_CASE("a postoffice up again gets its deferred mail at once, recovery_rate deliveries a second") {
  test::temp_dir dir;
  retry_policy policy;
  policy.recovery_rate = 100;
  supervisor_fixture f{dir / "queue.db", policy};
  for (int i = 0; i < 250; ++i)
    f.submit({{"dead", {"bob" + std::to_string(i) + "@dead.example.test"}}});
  auto& dead = f.state_of<fake_postoffice_state>(f.dead);
  REQUIRE(dead.delivered.empty());
  f.advance(60s);
  dead.mode = po_mode::up;
  caf::anon_send(f.sup, recovered_atom::value, std::string{"dead"});
  f.sched.run();
  CHECK(dead.delivered.size() == 100);
  f.advance(1s);
  CHECK(dead.delivered.size() == 200);
  f.advance(1s);
  CHECK(dead.delivered.size() == 250);
  CHECK(f.db->unfinished_deliveries().empty());
}

TEST_CASE("a recovery that finds the postoffice down again uses no retry") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", retry_policy{}};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(30s);
  caf::anon_send(f.sup, recovered_atom::value, std::string{"dead"});
  f.sched.run();
  auto entry = stored(f, id);
  CHECK(entry.attempts == 2);
  CHECK(entry.open_retries == 1);
  CHECK(entry.unscheduled_failures == 1);
  CHECK(entry.next_attempt_at == t0 + 600);
}

TEST_CASE("with recovery_probe_interval 0 a recovered postoffice's mail keeps its retry times") {
  test::temp_dir dir;
  retry_policy policy;
  policy.recovery_probe_interval = 0s;
  supervisor_fixture f{dir / "queue.db", policy};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto& dead = f.state_of<fake_postoffice_state>(f.dead);
  f.advance(60s);
  dead.mode = po_mode::up;
  caf::anon_send(f.sup, recovered_atom::value, std::string{"dead"});
  f.sched.run();
  CHECK(dead.delivered.empty());
  f.advance(540s);
  CHECK(dead.delivered.size() == 1);
  CHECK(stored(f, id).state == delivery_state::delivered);
}

TEST_CASE("a delivery an attempt opened before a restart is in doubt: its failed opens after it do not bounce it") {
  test::temp_dir dir;
  retry_policy policy;
  policy.max_open_retries = 2;
  policy.max_lifetime = 3600s;
  {
    // The last server: an attempt opened the postoffice (the fetch marked
    // the delivery) and the server stopped before the outcome was recorded.
    auto db = queue_db::open(dir / "queue.db");
    incoming_message msg;
    msg.sender = "ann@live.example.test";
    msg.content = "Subject: x\r\n\r\ny\r\n";
    msg.received_at = t0;
    msg.deliveries = {{"dead", {"bob@dead.example.test"}}};
    db->begin();
    auto entry = db->insert_message("00000000000000a1", msg).at(0);
    entry.open_retries = 2;
    entry.next_attempt_at = t0;
    db->update_delivery(entry);
    db->mark_in_doubt(entry.delivery_id);
    db->commit();
  }
  supervisor_fixture f{dir / "queue.db", policy};
  f.advance(30min, 1min);
  auto entry = stored(f, "00000000000000a1");
  CHECK(entry.state == delivery_state::deferred);
  CHECK(entry.in_doubt);
  CHECK(entry.open_retries == 2);
  CHECK(f.ndrs().empty());
  // Its lifetime still ends it.
  f.advance(31min, 1min);
  CHECK(stored(f, "00000000000000a1").state == delivery_state::bounced);
  CHECK(f.ndrs().size() == 1);
}
