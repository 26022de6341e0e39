// Tests actors/supervisor.cpp with the real store and NDR generator on the
// deterministic scheduler, against fake postoffices, in simulated time:
// KB 277831 in both enforce_retry_limits modes, transfer retries, permanent
// failures, max_lifetime, a postoffice that comes back, two postoffices with
// one dead, a restart halfway that keeps the counts, the NDR counting the
// attempts the ledger counts, and each recipient's outcome kept.
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

ledger_entry delivery_of(queue_db& db, const std::string& id, const std::string& po) {
  for (const auto& entry : db.deliveries_of(id))
    if (entry.postoffice == po)
      return entry;
  FAIL("no delivery of " << id << " at " << po);
  return {};
}

std::size_t count_outcomes(queue_db& db, std::int64_t delivery_id,
                           const std::string& outcome) {
  auto attempts = db.attempts_of(delivery_id);
  return static_cast<std::size_t>(std::count_if(
    attempts.begin(), attempts.end(),
    [&](const attempt_record& a) { return a.outcome == outcome; }));
}

/// The N of an NDR's "N attempts were made" (0 when it says none was).
int ndr_attempts(const std::string& ndr) {
  for (const char* phrase : {" attempts were made", " attempt was made"}) {
    auto end = ndr.find(phrase);
    if (end == std::string::npos)
      continue;
    auto start = ndr.find_last_of("\n ", end - 1) + 1;
    return std::stoi(ndr.substr(start, end - start));
  }
  return 0;
}

retry_policy defaults() {
  return retry_policy{};
}

} // namespace

TEST_CASE("KB 277831 exactly: attempt k happens at t0 + (k-1) x 600 s and the NDR at attempt 145") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto& dead = f.state_of<fake_postoffice_state>(f.dead);
  for (int k = 2; k <= 145; ++k) {
    f.advance(599s, 599s);
    REQUIRE(dead.attempts == k - 1);
    f.advance(1s);
    REQUIRE(dead.attempts == k);
    if (k < 145)
      REQUIRE(f.ndrs().empty());
  }
  auto entry = delivery_of(*f.db, id, "dead");
  CHECK(entry.state == delivery_state::bounced);
  // 145 attempts: the first and 144 retries, the count at its limit.
  CHECK(entry.open_retries == 144);
  CHECK(entry.attempts == 145);
  CHECK(count_outcomes(*f.db, entry.delivery_id, "open_failed") == 145);
  auto ndrs = f.ndrs();
  REQUIRE(ndrs.size() == 1);
  CHECK(ndr_attempts(ndrs[0]) == entry.attempts);
  CHECK(ndrs[0].find("145 attempts were made over 1d 0h") != std::string::npos);
  CHECK(ndrs[0].find("could not be opened 145 times") != std::string::npos);
  CHECK(ndrs[0].find("Status: 5.4.1") != std::string::npos);
  CHECK(ndrs[0].find("Final-Recipient: rfc822; bob@dead.example.test") != std::string::npos);
  // The NDR went to the sender's postoffice, which is up: it was delivered.
  CHECK(f.state_of<fake_postoffice_state>(f.live).delivered
        == std::vector<std::string>{"ann@live.example.test"});
  // Nothing more happens afterwards.
  f.advance(24h, 600s);
  CHECK(dead.attempts == 145);
}

TEST_CASE("legacy mode (enforce off, no lifetime): after 30 days still no NDR, still queued") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.enforce_retry_limits = false;
  policy.max_lifetime = 0s;
  supervisor_fixture f{dir / "queue.db", policy};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(30 * 24h, 600s);
  auto entry = delivery_of(*f.db, id, "dead");
  CHECK(entry.state == delivery_state::deferred);
  CHECK(entry.open_retries == 0);
  CHECK(f.state_of<fake_postoffice_state>(f.dead).attempts == 30 * 144 + 1);
  CHECK(f.ndrs().empty());
}

TEST_CASE("a restart halfway keeps the counts: the NDR still comes at the 145th failed open") {
  test::temp_dir dir;
  std::string id;
  {
    supervisor_fixture first{dir / "queue.db", defaults()};
    id = first.submit({{"dead", {"bob@dead.example.test"}}});
    first.advance(71 * 600s, 600s); // 72 failed opens
    CHECK(first.state_of<fake_postoffice_state>(first.dead).attempts == 72);
  }
  // The server comes back 72 x 600 s after the first attempt: the 73rd is due.
  supervisor_fixture second{dir / "queue.db", defaults(), t0 + 72 * 600};
  auto& dead = second.state_of<fake_postoffice_state>(second.dead);
  CHECK(dead.attempts == 1);
  CHECK(delivery_of(*second.db, id, "dead").open_retries == 73);
  second.advance(71 * 600s, 600s);
  CHECK(dead.attempts == 72); // 144 failed opens overall
  CHECK(second.ndrs().empty());
  second.advance(600s, 600s);
  CHECK(delivery_of(*second.db, id, "dead").state == delivery_state::bounced);
  CHECK(second.ndrs().size() == 1);
}

TEST_CASE("a postoffice that comes back before the limit gets the mail, with no NDR") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(100 * 600s, 600s);
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::up;
  f.advance(600s, 600s);
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::delivered);
  CHECK(f.state_of<fake_postoffice_state>(f.dead).delivered
        == std::vector<std::string>{"bob@dead.example.test"});
  CHECK(f.ndrs().empty());
}

TEST_CASE("two postoffices, one dead: the live one delivers, only the dead one's recipients are NDR'd") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.max_open_retries = 3;
  supervisor_fixture f{dir / "queue.db", policy};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}},
                      {"live", {"carol@live.example.test"}}});
  CHECK(delivery_of(*f.db, id, "live").state == delivery_state::delivered);
  f.advance(3 * 600s, 600s);
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::bounced);
  auto ndrs = f.ndrs();
  REQUIRE(ndrs.size() == 1);
  CHECK(ndrs[0].find("bob@dead.example.test") != std::string::npos);
  CHECK(ndrs[0].find("Final-Recipient: rfc822; carol@live.example.test") == std::string::npos);
}

TEST_CASE("temporary transfer failures bounce past max_transfer_retries, 120 s apart") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::tempfail;
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(239s);
  CHECK(delivery_of(*f.db, id, "dead").transfer_retries == 2);
  CHECK(f.ndrs().empty());
  f.advance(1s);
  auto entry = delivery_of(*f.db, id, "dead");
  CHECK(entry.state == delivery_state::bounced);
  CHECK(entry.transfer_retries == 2); // 2/2, the third failure bounced
  CHECK(entry.attempts == 3);
  auto ndrs = f.ndrs();
  REQUIRE(ndrs.size() == 1);
  CHECK(ndr_attempts(ndrs[0]) == 3);
  CHECK(ndrs[0].find("Status: 5.2.1") != std::string::npos);
  CHECK(ndrs[0].find("Diagnostic-Code: smtp; 452 4.2.1 mailbox busy") != std::string::npos);
}

TEST_CASE("a permanent failure bounces at once, with no retries") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto& dead = f.state_of<fake_postoffice_state>(f.dead);
  dead.mode = po_mode::up;
  dead.unknown_mailboxes = {"nobody@dead.example.test"};
  auto id = f.submit({{"dead", {"nobody@dead.example.test", "bob@dead.example.test"}}});
  auto entry = delivery_of(*f.db, id, "dead");
  CHECK(entry.state == delivery_state::delivered);
  CHECK(dead.delivered == std::vector<std::string>{"bob@dead.example.test"});
  auto ndrs = f.ndrs();
  REQUIRE(ndrs.size() == 1);
  CHECK(ndrs[0].find("Status: 5.1.1") != std::string::npos);
  CHECK(dead.attempts == 1);
  CHECK(entry.attempts == 1);
  CHECK(ndr_attempts(ndrs[0]) == 1);
  // Who received it and who was refused stays in the ledger, in the same
  // commit as the bounce.
  auto outcomes = f.db->recipients_of(entry.delivery_id);
  REQUIRE(outcomes.size() == 2);
  CHECK(outcomes[0].address == "bob@dead.example.test");
  CHECK(outcomes[0].state == recipient_state::delivered);
  CHECK(outcomes[0].code == "2.0.0");
  CHECK(outcomes[0].text == "delivered");
  CHECK(outcomes[0].at == t0);
  CHECK(outcomes[1].address == "nobody@dead.example.test");
  CHECK(outcomes[1].state == recipient_state::bounced);
  CHECK(outcomes[1].code == "5.1.1");
  CHECK(outcomes[1].text == "mailbox does not exist");
}

TEST_CASE("max_lifetime bounces with the last failure's status, a hung postoffice counts as failed opens") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.max_lifetime = 2h;
  supervisor_fixture f{dir / "queue.db", policy};
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::hang;
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(30s);
  auto entry = delivery_of(*f.db, id, "dead");
  CHECK(entry.open_retries == 1);
  CHECK(entry.last_error_code == "4.4.1");
  f.advance(2h - 30s, 10s);
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::bounced);
  auto ndrs = f.ndrs();
  REQUIRE(ndrs.size() == 1);
  CHECK(ndrs[0].find("Status: 5.4.1") != std::string::npos);
}

TEST_CASE("a delivery whose postoffice is not configured still ends by its limits") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.max_open_retries = 2;
  supervisor_fixture f{dir / "queue.db", policy};
  auto id = f.submit({{"gone", {"bob@gone.example.test"}}});
  f.advance(2 * 600s, 600s);
  auto entry = delivery_of(*f.db, id, "gone");
  CHECK(entry.state == delivery_state::bounced);
  CHECK(f.ndrs().size() == 1);
}

TEST_CASE("bounces decided at once wait for an NDR generator, at most max_ndr_generators at work") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.max_open_retries = 0;
  supervisor_options options;
  options.max_ndr_generators = 2;
  supervisor_fixture f{dir / "queue.db", policy, t0, options};
  // Five postoffices that are not configured: five bounces in one pass.
  std::vector<routed_recipients> deliveries;
  for (int i = 0; i < 5; ++i) {
    auto po = "gone" + std::to_string(i);
    deliveries.push_back({po, {"bob@" + po + ".example.test"}});
  }
  auto id = std::make_shared<std::string>();
  f.start_submit(deliveries, id);
  const auto& st = f.state_of<supervisor_state>(f.sup);
  std::size_t most_at_work = 0;
  std::size_t most_waiting = 0;
  while (f.sched.try_run_once()) {
    most_at_work = std::max(most_at_work, st.ndrs.at_work());
    most_waiting = std::max(most_waiting, st.ndrs.waiting());
  }
  CHECK(most_at_work == 2);
  CHECK(most_waiting == 3);
  CHECK(st.ledger.empty()); // the five NDRs were delivered to live too
  for (const auto& entry : f.db->deliveries_of(*id))
    CHECK(entry.state == delivery_state::bounced);
  CHECK(f.ndrs().size() == 5);
}

TEST_CASE("mail queued in the wall clock's second is due at once, and a wake-up comes when that second begins") {
  test::temp_dir dir;
  supervisor_options options;
  // The server started 0.9 s into second t0: its seconds turn 0.1 s later.
  options.origin.fraction = 900ms;
  supervisor_fixture f{dir / "queue.db", defaults(), t0, options};
  auto& live = f.state_of<fake_postoffice_state>(f.live);
  f.advance(100ms);
  f.submit({{"live", {"carol@live.example.test"}}}, t0 + 1);
  CHECK(live.delivered.size() == 1);
  // Queued for the next second, 0.1 s into this one: due when it begins,
  // 0.9 s later (not a whole second later).
  f.advance(100ms);
  f.submit({{"live", {"dave@live.example.test"}}}, t0 + 2);
  f.advance(800ms);
  CHECK(live.delivered.size() == 1);
  f.advance(100ms);
  CHECK(live.delivered.size() == 2);
}

TEST_CASE("an NDR for a message with the null sender is dropped as a double bounce") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.max_open_retries = 0;
  supervisor_fixture f{dir / "queue.db", policy};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}}, t0, "");
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::bounced);
  CHECK(f.ndrs().size() == 1); // only the original, itself a null-sender message
}

TEST_CASE("a postoffice actor that dies is restarted, and its mail still arrives") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto first = f.dead;
  caf::anon_send_exit(first, caf::exit_reason::kill);
  f.sched.run();
  REQUIRE(f.dead != first);
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::up;
  f.advance(600s, 600s);
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::delivered);
  CHECK(f.state_of<fake_postoffice_state>(f.dead).delivered
        == std::vector<std::string>{"bob@dead.example.test"});
}

TEST_CASE("a fault injected at run time is injected again into a restarted postoffice actor") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  fault_config fault;
  fault.mode = fault_mode::flap;
  caf::anon_send(f.sup, fault_atom::value, std::string{"dead"}, fault);
  f.sched.run();
  CHECK(f.state_of<fake_postoffice_state>(f.dead).injected
        == std::vector<fault_mode>{fault_mode::flap});
  auto first = f.dead;
  caf::anon_send_exit(first, caf::exit_reason::kill);
  f.sched.run();
  REQUIRE(f.dead != first);
  CHECK(f.state_of<fake_postoffice_state>(f.dead).injected
        == std::vector<fault_mode>{fault_mode::flap});
  CHECK(f.state_of<fake_postoffice_state>(f.live).injected.empty());
}

TEST_CASE("delay_warning sends one delayed DSN, and the NDR still comes at the limit") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.delay_warning = 4h;
  supervisor_fixture f{dir / "queue.db", policy};
  // The sender's postoffice is down too, so the DSNs stay in the queue.
  f.state_of<fake_postoffice_state>(f.live).mode = po_mode::down;
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(4h - 1s, 600s - 1s);
  CHECK(f.ndrs().empty());
  f.advance(1h, 60s);
  auto dsns = f.ndrs();
  REQUIRE(dsns.size() == 1);
  CHECK(dsns[0].find("Action: delayed") != std::string::npos);
  CHECK(dsns[0].find("Status: 4.4.1") != std::string::npos);
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::deferred);
  CHECK(delivery_of(*f.db, id, "dead").delay_warned);
  f.advance(20h, 600s);
  dsns = f.ndrs();
  REQUIRE(dsns.size() == 2);
  CHECK(dsns[1].find("Action: failed") != std::string::npos);
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::bounced);
}

namespace {

/// Asks the supervisor for a verb: the deliveries it changed.
template <class... Ts>
std::int64_t ask(supervisor_fixture& f, Ts... xs) {
  return f.ask<verb_tally>(xs...).deliveries;
}

delivery_filter postoffice_filter(const std::string& postoffice) {
  delivery_filter filter;
  filter.postoffice = postoffice;
  return filter;
}

} // namespace

TEST_CASE("a held message is not attempted, never expires or bounces, keeps its hold over a restart, and goes at release") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.max_open_retries = 2;
  policy.max_lifetime = 3600s;
  std::string id;
  {
    supervisor_fixture f{dir / "queue.db", policy};
    id = f.submit({{"dead", {"bob@dead.example.test"}}});
    CHECK(f.state_of<fake_postoffice_state>(f.dead).attempts == 1);
    CHECK(ask(f, hold_atom::value, message_filter(id)) == 1);
    CHECK(ask(f, hold_atom::value, message_filter(id)) == 0);
    f.advance(2h, 600s);
    CHECK(f.state_of<fake_postoffice_state>(f.dead).attempts == 1);
    auto entry = delivery_of(*f.db, id, "dead");
    CHECK(entry.state == delivery_state::held);
    CHECK(entry.open_retries == 1);
    CHECK(count_outcomes(*f.db, entry.delivery_id, "held") == 1);
    CHECK(f.ndrs().empty());
  }
  supervisor_fixture again{dir / "queue.db", policy, t0 + 2 * 3600};
  again.advance(1h, 600s);
  CHECK(again.state_of<fake_postoffice_state>(again.dead).attempts == 0);
  // Released past its lifetime, it bounces at once, with the last failure's
  // status in class 5 (DESIGN.md: 5.4.7 only when no attempt failed).
  CHECK(ask(again, release_atom::value, message_filter(id)) == 1);
  CHECK(ask(again, release_atom::value, message_filter(id)) == 0);
  auto entry = delivery_of(*again.db, id, "dead");
  CHECK(entry.state == delivery_state::bounced);
  CHECK(count_outcomes(*again.db, entry.delivery_id, "released") == 1);
  REQUIRE(again.ndrs().size() == 1);
  CHECK(again.ndrs()[0].find("Status: 5.4.1") != std::string::npos);
  CHECK(count_outcomes(*again.db, entry.delivery_id, "expired") == 1);
}

TEST_CASE("a released message is attempted at once and delivered, its counts kept") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  CHECK(ask(f, hold_atom::value, message_filter(id)) == 1);
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::up;
  f.advance(1h, 600s);
  CHECK(f.state_of<fake_postoffice_state>(f.dead).delivered.empty());
  CHECK(ask(f, release_atom::value, message_filter(id)) == 1);
  CHECK(f.state_of<fake_postoffice_state>(f.dead).delivered
        == std::vector<std::string>{"bob@dead.example.test"});
  auto entry = delivery_of(*f.db, id, "dead");
  CHECK(entry.state == delivery_state::delivered);
  CHECK(entry.open_retries == 1);
}

TEST_CASE("flush makes deferred deliveries due now without counting anything") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto first = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto second = f.submit({{"dead", {"eve@dead.example.test"}}});
  auto& dead = f.state_of<fake_postoffice_state>(f.dead);
  CHECK(dead.attempts == 2);
  dead.mode = po_mode::up;
  f.advance(60s, 60s);
  CHECK(dead.delivered.empty());
  CHECK(ask(f, flush_atom::value, postoffice_filter("live")) == 0);
  CHECK(ask(f, flush_atom::value, message_filter(first)) == 1);
  CHECK(dead.delivered == std::vector<std::string>{"bob@dead.example.test"});
  CHECK(ask(f, flush_atom::value, postoffice_filter("dead")) == 1);
  CHECK(dead.delivered.size() == 2);
  CHECK(delivery_of(*f.db, second, "dead").open_retries == 1);
}

TEST_CASE("a reload with lower limits bounces by the new limits, counts kept") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(2 * 600s, 600s); // 3 failed opens
  auto lower = defaults();
  lower.max_open_retries = 4;
  caf::anon_send(f.sup, reload_atom::value,
                 postoffice_lineup{{{"dead", lower, {}}, {"live", defaults(), {}}}, lower, nullptr});
  f.sched.run();
  f.advance(600s, 600s); // the 4th: still within the limit
  CHECK(f.ndrs().empty());
  f.advance(600s, 600s); // the 5th exceeds it
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::bounced);
  CHECK(f.ndrs().size() == 1);
}

namespace {

/// The fixture's two postoffices as a reload lists them, unchanged.
std::vector<postoffice_definition> both_unchanged(const retry_policy& retry) {
  return {{"dead", retry, {}}, {"live", retry, {}}};
}

/// Starts a fake postoffice that delivers, and remembers it in `started`.
postoffice_factory up_fake(supervisor_fixture& f, postoffice_actor& started) {
  return [&f, &started] {
    started = f.sys.spawn(test::fake_postoffice);
    f.sched.run();
    f.state_of<fake_postoffice_state>(started).mode = po_mode::up;
    return started;
  };
}

} // namespace

TEST_CASE("a postoffice added by a reload takes its waiting deliveries, counts kept") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto id = f.submit({{"new", {"ann@new.example.test"}}});
  CHECK(delivery_of(*f.db, id, "new").open_retries == 1); // not configured yet
  postoffice_actor added;
  auto lineup = both_unchanged(defaults());
  lineup.push_back({"new", defaults(), up_fake(f, added)});
  caf::anon_send(f.sup, reload_atom::value, postoffice_lineup{lineup, defaults(), nullptr});
  f.sched.run();
  REQUIRE(added);
  f.advance(600s, 600s);
  auto entry = delivery_of(*f.db, id, "new");
  CHECK(entry.state == delivery_state::delivered);
  CHECK(entry.open_retries == 1);
  CHECK(f.state_of<fake_postoffice_state>(added).delivered
        == std::vector<std::string>{"ann@new.example.test"});
}

TEST_CASE("a postoffice removed by a reload stops, its deliveries fail to open and end by their limits") {
  test::temp_dir dir;
  auto policy = defaults();
  policy.max_open_retries = 2;
  supervisor_fixture f{dir / "queue.db", policy};
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::up;
  caf::anon_send(f.sup, reload_atom::value,
                 postoffice_lineup{{{"live", policy, {}}}, policy, nullptr});
  f.sched.run();
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(2 * 600s, 600s);
  CHECK(f.state_of<fake_postoffice_state>(f.dead).attempts == 0);
  auto entry = delivery_of(*f.db, id, "dead");
  CHECK(entry.state == delivery_state::bounced);
  CHECK(entry.last_error_text == "postoffice dead is not configured");
  CHECK(f.ndrs().size() == 1);
}

TEST_CASE("a postoffice changed by a reload gets a new actor, the attempt under way ends as it would have") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto old_actor = f.dead;
  f.state_of<fake_postoffice_state>(old_actor).mode = po_mode::hang;
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  REQUIRE(f.state_of<fake_postoffice_state>(old_actor).attempts == 1);
  postoffice_actor replacement;
  auto lineup = both_unchanged(defaults());
  lineup[0].start = up_fake(f, replacement);
  caf::anon_send(f.sup, reload_atom::value, postoffice_lineup{lineup, defaults(), nullptr});
  f.sched.run();
  REQUIRE(replacement);
  f.advance(30s, 30s); // the hung attempt times out: a failed open
  CHECK(delivery_of(*f.db, id, "dead").open_retries == 1);
  f.advance(600s, 600s);
  CHECK(delivery_of(*f.db, id, "dead").state == delivery_state::delivered);
  CHECK(f.state_of<fake_postoffice_state>(replacement).delivered
        == std::vector<std::string>{"bob@dead.example.test"});
  CHECK(f.state_of<fake_postoffice_state>(old_actor).attempts == 1);
}

namespace {

struct backlog_recorder_state {
  std::vector<bool> heard;
  static inline const char* name = "backlog_recorder";
};

backlog_listener_actor::behavior_type
backlog_recorder(backlog_listener_actor::stateful_pointer<backlog_recorder_state> self) {
  return {[=](backlog_atom, bool backlogged) { self->state.heard.push_back(backlogged); }};
}

} // namespace

TEST_CASE("the backlog listener hears of the high-water mark when crossed, not again until under 90 percent") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto listener = f.sys.spawn(backlog_recorder);
  caf::anon_send(f.sup, watch_atom::value, listener, std::uint64_t{10});
  f.sched.run();
  auto& heard = f.state_of<backlog_recorder_state>(listener).heard;
  CHECK(heard == std::vector<bool>{false});
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i)
    ids.push_back(f.submit({{"dead", {"bob@dead.example.test"}}}));
  CHECK(heard == std::vector<bool>{false, true});
  // 12 -> 10 -> 9: still at or over 90 % of 10.
  for (int i = 0; i < 3; ++i) {
    caf::anon_send(f.sup, delete_atom::value, message_filter(ids[i]), false);
    f.sched.run();
  }
  CHECK(heard == std::vector<bool>{false, true});
  caf::anon_send(f.sup, delete_atom::value, message_filter(ids[3]), false);
  f.sched.run();
  CHECK(heard == std::vector<bool>{false, true, false});
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
}

TEST_CASE("a disk below its reserve refuses new mail until it is back, whatever the queue's size") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto listener = f.sys.spawn(backlog_recorder);
  caf::anon_send(f.sup, watch_atom::value, listener, std::uint64_t{2});
  f.sched.run();
  auto& heard = f.state_of<backlog_recorder_state>(listener).heard;
  caf::anon_send(f.sup, space_atom::value, true);
  f.sched.run();
  CHECK(heard == std::vector<bool>{false, true});
  // The queue reaches its mark and falls back under it meanwhile: no word.
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i)
    ids.push_back(f.submit({{"dead", {"bob@dead.example.test"}}}));
  for (const auto& id : ids) {
    caf::anon_send(f.sup, delete_atom::value, message_filter(id), false);
    f.sched.run();
  }
  CHECK(heard == std::vector<bool>{false, true});
  caf::anon_send(f.sup, space_atom::value, false);
  f.sched.run();
  CHECK(heard == std::vector<bool>{false, true, false});
  // A full queue keeps refusing after the disk is back.
  for (int i = 0; i < 2; ++i)
    ids.push_back(f.submit({{"dead", {"bob@dead.example.test"}}}));
  caf::anon_send(f.sup, space_atom::value, true);
  f.sched.run();
  caf::anon_send(f.sup, space_atom::value, false);
  f.sched.run();
  CHECK(heard == std::vector<bool>{false, true, false, true});
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
}

TEST_CASE("the supervisor lists the unfinished deliveries of one message without the rest of the ledger") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  f.submit({{"dead", {"bob@dead.example.test"}}});
  auto second = f.submit({{"dead", {"carol@dead.example.test"}},
                          {"live", {"dave@live.example.test"}}});
  std::vector<ledger_entry> entries;
  auto handle = f.self->request(f.sup, caf::infinite, ledger_atom::value, second);
  f.sched.run();
  handle.receive([&](std::vector<ledger_entry>& listed) { entries = std::move(listed); },
                 [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  // The delivery to live is finished: only the one to dead is left.
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].message_id == second);
  CHECK(entries[0].postoffice == "dead");
  CHECK(entries[0].recipients == std::vector<std::string>{"carol@dead.example.test"});
  CHECK(entries[0].open_retries == 1);
}

TEST_CASE("the queue's depth counts a delivery with an attempt under way as in_flight") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::hang;
  f.submit({{"dead", {"bob@dead.example.test"}}});
  std::vector<queue_depth> depths;
  auto handle = f.self->request(f.sup, caf::infinite, depth_atom::value);
  f.sched.run();
  handle.receive([&](std::vector<queue_depth>& counted) { depths = std::move(counted); },
                 [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  REQUIRE(depths.size() == 1);
  CHECK(depths[0].postoffice == "dead");
  CHECK(depths[0].state == delivery_state::in_flight);
  CHECK(depths[0].count == 1);
}

TEST_CASE("the ledger changes of one attempt are written together, and one the store refuses fails alone") {
  test::temp_dir dir;
  supervisor_options options;
  options.attempt_timeout = 30s;
  supervisor_fixture f{dir / "queue.db", defaults(), test::t0, options};
  auto& live = f.state_of<fake_postoffice_state>(f.live);
  live.mode = po_mode::hang;
  auto kept_id = std::make_shared<std::string>();
  auto vanished_id = std::make_shared<std::string>();
  f.start_submit({{"live", {"carol@live.example.test"}}}, kept_id);
  f.start_submit({{"live", {"dave@live.example.test"}}}, vanished_id);
  f.sched.run();
  REQUIRE(live.hung.size() == 1); // one attempt with both deliveries
  auto kept = delivery_of(*f.db, *kept_id, "live");
  auto vanished = delivery_of(*f.db, *vanished_id, "live");
  // The store no longer has the second delivery when the attempt ends.
  REQUIRE(f.db->delete_message(*vanished_id));
  f.advance(30s, 30s); // the hung attempt times out: a failed open for both
  auto stored = delivery_of(*f.db, *kept_id, "live");
  CHECK(stored.state == delivery_state::deferred);
  CHECK(stored.open_retries == 1);
  CHECK(f.db->attempts_of(kept.delivery_id).size() == 1);
  auto& sup = f.state_of<supervisor_state>(f.sup);
  CHECK(sup.ledger.at(kept.delivery_id).open_retries == 1);
  // Not persisted: its counts as they were, idle, tried again after store_retry.
  REQUIRE(sup.ledger.count(vanished.delivery_id) == 1);
  CHECK(sup.ledger.at(vanished.delivery_id).open_retries == 0);
  CHECK(sup.ledger.at(vanished.delivery_id).next_attempt_at
        == test::t0 + 30 + options.store_retry.count());
  CHECK(sup.busy.count(vanished.delivery_id) == 0);
  CHECK(sup.busy.count(kept.delivery_id) == 0);
  CHECK(sup.records_waiting.empty());
}

TEST_CASE("a drain starts no attempt and answers once the attempt under way is recorded") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto& live = f.state_of<fake_postoffice_state>(f.live);
  live.mode = po_mode::hang;
  auto in_flight = f.submit({{"live", {"carol@live.example.test"}}});
  REQUIRE(live.hung.size() == 1);
  auto drained = f.self->request(f.sup, caf::infinite, drain_atom::value);
  f.sched.run();
  auto waiting = f.submit({{"live", {"dave@live.example.test"}}});
  f.advance(29s, 1s); // the attempt times out after 30 s
  REQUIRE(f.self->mailbox().empty()); // no answer while the attempt is under way
  f.advance(1s);
  bool answered = false;
  drained.receive([&](bool done) { answered = done; },
                  [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  CHECK(answered);
  CHECK(delivery_of(*f.db, in_flight, "live").open_retries == 1); // recorded
  live.mode = po_mode::up;
  f.advance(1h, 1min);
  CHECK(live.attempts == 1); // the mail that came in meanwhile waits for the restart
  CHECK(delivery_of(*f.db, waiting, "live").state == delivery_state::queued);
}

TEST_CASE("past the lease's fence no attempt starts, until the fence is renewed") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto& live = f.state_of<fake_postoffice_state>(f.live);
  auto fence_in = [&](caf::timespan from_now) {
    caf::anon_send(f.sup, expire_atom::value,
                   (f.sched.clock().now() + from_now).time_since_epoch());
    f.sched.run();
  };
  fence_in(5s);
  f.submit({{"live", {"carol@live.example.test"}}});
  CHECK(live.delivered == std::vector<std::string>{"carol@live.example.test"});
  // A hang: the fence falls while the node sleeps, and on waking the mail
  // is due before any lineup says this node owns nothing.
  f.advance(10s);
  auto waiting = f.submit({{"live", {"dave@live.example.test"}}});
  f.advance(1h, 1min);
  CHECK(live.attempts == 1);
  CHECK(delivery_of(*f.db, waiting, "live").state == delivery_state::queued);
  fence_in(30s);
  CHECK(live.delivered.size() == 2);
}

TEST_CASE("a drain with nothing under way answers at once") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto drained = f.self->request(f.sup, caf::infinite, drain_atom::value);
  f.sched.run();
  bool answered = false;
  drained.receive([&](bool done) { answered = done; },
                  [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  CHECK(answered);
}

TEST_CASE("the postoffice report carries each actor's state and the oldest delivery of each") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  f.submit({{"dead", {"bob@dead.example.test"}}}, t0 - 3600);
  f.submit({{"dead", {"carol@dead.example.test"}}}, t0 - 60);
  auto reports = f.ask<std::vector<postoffice_report>>(postoffice_atom::value);
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].name == "dead");
  CHECK(reports[0].state == reachability::down);
  CHECK(reports[0].problem == "share not mounted");
  CHECK(reports[0].queued == 2);
  CHECK(reports[0].oldest_queued_at == t0 - 3600);
  CHECK(reports[1].name == "live");
  CHECK(reports[1].state == reachability::up);
  CHECK(reports[1].oldest_queued_at == 0);
}

TEST_CASE("the recent bounces are the last 20 recipients bounced, newest first") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", defaults()};
  auto& live = f.state_of<fake_postoffice_state>(f.live);
  std::vector<std::string> ids;
  for (int i = 0; i < 24; ++i) {
    auto rcpt = "nobody" + std::to_string(i) + "@live.example.test";
    live.unknown_mailboxes.insert(rcpt);
    ids.push_back(f.submit({{"live", {rcpt, "bob@live.example.test"}}}));
  }
  auto bounces = f.ask<std::vector<bounce_report>>(bounced_atom::value);
  REQUIRE(bounces.size() == 20);
  CHECK(bounces.front().recipient == "nobody23@live.example.test");
  CHECK(bounces.front().message_id == ids.back());
  CHECK(bounces.back().recipient == "nobody4@live.example.test");
  for (const auto& bounce : bounces) {
    CHECK(bounce.postoffice == "live");
    CHECK(bounce.status == "5.1.1");
    CHECK(bounce.diagnostic.find("mailbox does not exist") != std::string::npos);
    CHECK(bounce.at >= t0);
  }
}
