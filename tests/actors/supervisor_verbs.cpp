// Tests actors/supervisor_verbs.cpp with the real store on the deterministic
// scheduler, against fake postoffices: the operator's verbs on what a filter
// selects -- hold, release, flush, delete, requeue -- their counts, a filter
// that selects nothing, deliveries with an attempt under way (held after it,
// left alone by delete and requeue and counted), delete of whole messages in
// one store request, and the queue's shape in simulated time.
#include <doctest/doctest.h>

#include <set>

#include "tests/actors/supervisor_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

using test::fake_postoffice_state;
using test::po_mode;
using test::supervisor_fixture;
using test::t0;

template <class... Ts>
verb_tally tally_of(supervisor_fixture& f, Ts... xs) {
  return f.ask<verb_tally>(xs...);
}

delivery_filter of_postoffice(const std::string& postoffice, const std::string& state = "") {
  delivery_filter filter;
  filter.postoffice = postoffice;
  filter.state = state;
  return filter;
}

/// The states of a message's deliveries in the queue, by postoffice.
std::map<std::string, delivery_state> states_of(queue_db& db, const std::string& id) {
  std::map<std::string, delivery_state> states;
  for (const auto& entry : db.deliveries_of(id))
    states[entry.postoffice] = entry.state;
  return states;
}

/// A fixture whose two postoffices are both down: what is queued stays,
/// deferred after one failed open, for the next 600 s.
struct down_fixture : supervisor_fixture {
  explicit down_fixture(const std::filesystem::path& file)
    : supervisor_fixture(file, retry_policy{}) {
    state_of<fake_postoffice_state>(live).mode = po_mode::down;
  }
};

} // namespace

TEST_CASE("hold by filter holds what it selects and says how many, and a filter that selects nothing changes nothing") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  std::vector<std::string> dead_only;
  for (int i = 0; i < 3; ++i)
    dead_only.push_back(f.submit({{"dead", {"bob@dead.example.test"}}}));
  auto both = f.submit({{"dead", {"eve@dead.example.test"}}, {"live", {"eve@live.example.test"}}});
  auto nothing = tally_of(f, hold_atom::value, of_postoffice("nowhere"));
  CHECK(nothing.deliveries == 0);
  CHECK(nothing.in_flight == 0);
  auto held = tally_of(f, hold_atom::value, of_postoffice("dead", "deferred"));
  CHECK(held.deliveries == 4);
  CHECK(held.in_flight == 0);
  for (const auto& id : dead_only)
    CHECK(states_of(*f.db, id)["dead"] == delivery_state::held);
  CHECK(states_of(*f.db, both)
        == std::map<std::string, delivery_state>{{"dead", delivery_state::held},
                                                 {"live", delivery_state::deferred}});
  // Held, they are no longer deferred: the same filter selects none.
  CHECK(tally_of(f, hold_atom::value, of_postoffice("dead", "deferred")).deliveries == 0);
  // Released with an empty filter (ALL): every held one, due at once.
  auto& dead = f.state_of<fake_postoffice_state>(f.dead);
  dead.mode = po_mode::up;
  CHECK(tally_of(f, release_atom::value, delivery_filter{}).deliveries == 4);
  CHECK(dead.delivered.size() == 4);
  CHECK(states_of(*f.db, both)["live"] == delivery_state::deferred);
}

TEST_CASE("a recipient filter holds only the deliveries with such a recipient") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  auto carol = f.submit({{"dead", {"bob@dead.example.test", "Carol@dead.example.test"}}});
  auto bob = f.submit({{"dead", {"bob@dead.example.test"}}});
  delivery_filter filter;
  filter.recipient = "carol@";
  CHECK(tally_of(f, hold_atom::value, filter).deliveries == 1);
  CHECK(states_of(*f.db, carol)["dead"] == delivery_state::held);
  CHECK(states_of(*f.db, bob)["dead"] == delivery_state::deferred);
}

TEST_CASE("deliveries with an attempt under way are held when it ends, and left alone and counted by delete, requeue and flush") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::hang;
  auto in_flight = f.submit({{"dead", {"bob@dead.example.test"}}});
  // The dead postoffice's one attempt is under way: this one waits for it.
  auto waiting = f.submit({{"dead", {"eve@dead.example.test"}}});
  auto elsewhere = f.submit({{"live", {"ann@live.example.test"}}});
  REQUIRE(f.state_of<fake_postoffice_state>(f.dead).hung.size() == 1);

  auto flushed = tally_of(f, flush_atom::value, of_postoffice("dead"));
  CHECK(flushed.deliveries == 0); // the waiting one is due already
  CHECK(flushed.in_flight == 1);

  auto moved = tally_of(f, requeue_atom::value, of_postoffice("dead"), std::string{"live"});
  CHECK(moved.deliveries == 1);
  CHECK(moved.in_flight == 1);
  CHECK(states_of(*f.db, waiting).count("live") == 1);
  CHECK(states_of(*f.db, in_flight).count("dead") == 1);

  // delete ALL: the message in flight stays whole, the others go.
  auto deleted = tally_of(f, delete_atom::value, delivery_filter{}, false);
  CHECK(deleted.messages == 2);
  CHECK(deleted.deliveries == 2);
  CHECK(deleted.in_flight == 1);
  CHECK(f.db->deliveries_of(waiting).empty());
  CHECK(f.db->deliveries_of(elsewhere).empty());
  CHECK(f.db->message(in_flight).has_value());

  auto held = tally_of(f, hold_atom::value, delivery_filter{});
  CHECK(held.deliveries == 1);
  CHECK(held.in_flight == 1);
  CHECK(states_of(*f.db, in_flight)["dead"] == delivery_state::queued); // not yet
  f.advance(30s); // the attempt times out: a failed open
  auto after = f.db->deliveries_of(in_flight);
  REQUIRE(after.size() == 1);
  CHECK(after[0].state == delivery_state::held);
  CHECK(after[0].open_retries == 1); // the attempt counted, then the hold
}

TEST_CASE("delete by filter removes whole messages in one store request, and leaves the rest") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  auto both = f.submit({{"dead", {"bob@dead.example.test"}}, {"live", {"bob@live.example.test"}}});
  auto dead_only = f.submit({{"dead", {"eve@dead.example.test"}}});
  auto live_only = f.submit({{"live", {"ann@live.example.test"}}});
  auto& counters = f.state_of<store_state>(f.store).counters;
  auto writes = counters.writes;
  auto deleted = tally_of(f, delete_atom::value, of_postoffice("dead"), false);
  CHECK(deleted.messages == 2);
  CHECK(deleted.deliveries == 3); // both of the first message's
  CHECK(deleted.in_flight == 0);
  CHECK(counters.writes == writes + 1);
  CHECK_FALSE(f.db->message(both).has_value());
  CHECK_FALSE(f.db->message(dead_only).has_value());
  CHECK(f.db->message(live_only).has_value());
  auto ledger = f.ask<std::vector<ledger_entry>>(ledger_atom::value);
  REQUIRE(ledger.size() == 1);
  CHECK(ledger[0].message_id == live_only);
  // Nothing selected: nothing asked of the store.
  auto none = tally_of(f, delete_atom::value, of_postoffice("dead"), false);
  CHECK((none.messages == 0 && none.deliveries == 0));
  CHECK(counters.writes == writes + 1);
}

TEST_CASE("delete by filter with NDRs bounces the whole messages' deliveries") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  auto both = f.submit({{"dead", {"bob@dead.example.test"}}, {"live", {"bob@live.example.test"}}});
  auto live_only = f.submit({{"live", {"ann@live.example.test"}}});
  auto bounced = tally_of(f, delete_atom::value, of_postoffice("dead"), true);
  CHECK(bounced.messages == 1);
  CHECK(bounced.deliveries == 2);
  CHECK(states_of(*f.db, both)
        == std::map<std::string, delivery_state>{{"dead", delivery_state::bounced},
                                                 {"live", delivery_state::bounced}});
  CHECK(states_of(*f.db, live_only)["live"] == delivery_state::deferred);
  CHECK(f.ndrs().size() == 2);
}

TEST_CASE("requeue to a postoffice that is not running changes nothing and says why") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto refused = tally_of(f, requeue_atom::value, delivery_filter{}, std::string{"nowhere"});
  CHECK(refused.refused == "postoffice nowhere is not running yet");
  CHECK(refused.deliveries == 0);
  CHECK(states_of(*f.db, id).count("dead") == 1);
}

TEST_CASE("flush by filter makes only the selected deferred deliveries due") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  f.submit({{"dead", {"bob@dead.example.test"}}});
  f.submit({{"dead", {"eve@dead.example.test"}}});
  auto& dead = f.state_of<fake_postoffice_state>(f.dead);
  dead.mode = po_mode::up;
  delivery_filter filter;
  filter.recipient = "EVE";
  CHECK(tally_of(f, flush_atom::value, filter).deliveries == 1);
  CHECK(dead.delivered == std::vector<std::string>{"eve@dead.example.test"});
}

TEST_CASE("the queue's shape counts each postoffice's deliveries by age on the supervisor's ledger") {
  test::temp_dir dir;
  down_fixture f{dir / "queue.db"};
  f.submit({{"dead", {"bob@dead.example.test"}}}, t0 - 1000);
  f.submit({{"dead", {"eve@dead.example.test"}}}, t0 - 100);
  f.submit({{"live", {"ann@live.example.test"}}}, t0 - 90000);
  auto shapes = f.ask<std::vector<queue_shape>>(shape_atom::value, delivery_filter{}, t0);
  REQUIRE(shapes.size() == 2);
  CHECK(shapes[0].postoffice == "dead");
  CHECK(shapes[0].ages == std::vector<std::uint64_t>{1, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  CHECK(shapes[0].oldest_queued_at == t0 - 1000);
  CHECK(shapes[1].postoffice == "live");
  CHECK(shapes[1].ages.back() == 1);
  CHECK(f.ask<std::vector<queue_shape>>(shape_atom::value, of_postoffice("dead", "held"), t0)
          .empty());
}

TEST_CASE("a hold asked for while an attempt is under way is forgotten when that attempt ends the delivery") {
  test::temp_dir dir;
  retry_policy policy;
  policy.max_open_retries = 0; // the first failed open bounces
  supervisor_fixture f{dir / "queue.db", policy};
  f.state_of<fake_postoffice_state>(f.dead).mode = po_mode::hang;
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  CHECK(tally_of(f, hold_atom::value, of_postoffice("dead")).in_flight == 1);
  auto& sup = f.state_of<supervisor_state>(f.sup);
  CHECK(sup.hold_requested.size() == 1);
  f.advance(30s); // the attempt times out: a failed open, and the bounce
  CHECK(states_of(*f.db, id)["dead"] == delivery_state::bounced);
  CHECK(sup.hold_requested.empty());
}
