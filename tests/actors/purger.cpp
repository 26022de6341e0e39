// Tests actors/purger.cpp with the store on the deterministic scheduler and
// simulated time: finished messages go once their retention is over, in
// rounds of the store's limit within one pass, recent and unfinished ones
// stay, and a reload changes the retention of the next pass.
#include <doctest/doctest.h>

#include "actors/purger.hpp"
#include "actors/store.hpp"
#include "tests/actor_fixture.hpp"
#include "tests/queue_rows.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;
using test::put_message;

namespace {

constexpr std::int64_t start = 1700000000;

struct purger_fixture : test::actor_fixture {
  test::temp_dir dir;
  std::shared_ptr<queue_db> db = queue_db::open(dir / "queue.db");
  /// Finished two hours before the start, one more than a store round.
  std::vector<std::string> old_ones;
  /// Finished ten minutes before the start.
  std::string recent;
  /// Still queued.
  std::string newest;

  purger_fixture() {
    using s = delivery_state;
    for (std::uint32_t i = 0; i <= store_state::purge_limit; ++i)
      old_ones.push_back(
        put_message(*db, start - 3 * 3600 + i, {{s::delivered, start - 2 * 3600}}));
    recent = put_message(*db, start - 1200, {{s::bounced, start - 600}});
    newest = put_message(*db, start - 60, {{s::queued, 0}});
  }

  std::pair<store_actor, purger_actor> spawn(std::chrono::seconds keep_finished) {
    auto store = spawn_store(sys, db, store_options{}, false);
    auto purging = sys.spawn(purger, store, purger_options{keep_finished, {start, {}}});
    sched.run();
    return {store, purging};
  }

  /// Lets simulated time pass one second at a time, running what is due.
  void wait(std::chrono::seconds duration) {
    for (auto left = duration; left > 0s; left -= 1s) {
      sched.advance_time(1s);
      sched.run();
    }
  }

  std::uint64_t purged(const store_actor& store) {
    std::uint64_t result = 0;
    auto handle = self->request(store, caf::infinite, status_atom::value);
    sched.run();
    handle.receive([&](const store_status& st) { result = st.messages_purged; },
                   [](const caf::error&) { FAIL("status failed"); });
    return result;
  }
};

} // namespace

TEST_CASE("passes are a tenth of the retention apart, within a second and a minute, or 100 times the last pass") {
  CHECK(time_to_next_pass(0s, 0s) == 1s);
  CHECK(time_to_next_pass(5s, 0s) == 1s);
  CHECK(time_to_next_pass(300s, 0s) == 30s);
  CHECK(time_to_next_pass(24h, 0s) == 60s);
  CHECK(time_to_next_pass(24h, 500ms) == 60s);
  CHECK(time_to_next_pass(24h, 2s) == 200s);
  CHECK(time_to_next_pass(0s, 30ms) == 3s);
}

TEST_CASE("rounds of one pass pause four times as long as the round took") {
  CHECK(pause_after_round(0s) == 0s);
  CHECK(pause_after_round(5ms) == 20ms);
}

TEST_CASE_FIXTURE(purger_fixture, "finished messages go when their retention is over, in one pass of several rounds") {
  auto [store, purging] = spawn(1h);
  CHECK(purged(store) == 0); // nothing before the first interval
  wait(60s);
  CHECK(purged(store) == old_ones.size());
  for (const auto& id : old_ones)
    CHECK_FALSE(db->message(id));
  CHECK(db->message(recent));
  CHECK(db->message(newest));
  // The recent one's last attempt was 10 minutes before the start: it goes
  // with the first pass after 50 minutes, passes being a minute apart.
  wait(49min);
  CHECK(db->message(recent));
  wait(2min);
  CHECK_FALSE(db->message(recent));
  CHECK(db->message(newest)); // unfinished
  CHECK(purged(store) == old_ones.size() + 1);
  CHECK(db->integrity_check() == "ok");
}

TEST_CASE_FIXTURE(purger_fixture, "a reload to a shorter retention applies from the next pass") {
  auto [store, purging] = spawn(24h);
  wait(60s);
  CHECK(purged(store) == 0);
  caf::anon_send(purging, reload_atom::value, std::int64_t{0});
  wait(60s); // the pass already waiting still waits its minute
  CHECK(purged(store) == old_ones.size() + 1);
  CHECK(db->message(newest));
}
