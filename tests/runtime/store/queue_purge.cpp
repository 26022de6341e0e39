// Tests queue_db::purge_finished: which finished messages go (every
// delivery delivered or bounced, last attempt before the cutoff), which
// stay (unfinished, finished since, received since, the newest), that their
// deliveries, attempts and recipient outcomes go with them, and rounds
// bounded by a limit that
// continue where the last one stopped; finished and adopted replicas go
// the same way.
#include <doctest/doctest.h>

#include <vector>

#include "runtime/store/queue_db.hpp"
#include "tests/queue_rows.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using test::put_message;

namespace {

constexpr std::int64_t t0 = 1700000000;

purge_report purge(queue_db& db, std::int64_t finished_before, const std::string& after,
                   std::uint32_t limit) {
  db.begin();
  auto report = db.purge_finished(finished_before, after, limit);
  db.commit();
  return report;
}

bool gone(queue_db& db, const std::string& id) {
  return !db.message(id) && db.deliveries_of(id).empty();
}

} // namespace

TEST_CASE("finished messages whose last attempt is before the cutoff go, all others stay") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  using s = delivery_state;
  auto delivered_long_ago = put_message(*db, t0, {{s::delivered, t0 + 10}});
  auto bounced_since = put_message(*db, t0 + 1, {{s::bounced, t0 + 150}});
  auto deferred = put_message(*db, t0 + 2, {{s::deferred, t0 + 20}});
  auto half_finished = put_message(*db, t0 + 3, {{s::delivered, t0 + 30}, {s::held, 0}});
  auto all_finished = put_message(*db, t0 + 4, {{s::delivered, t0 + 40}, {s::bounced, t0 + 50}});
  auto retried_since = put_message(*db, t0 + 5, {{s::delivered, t0 + 60}});
  db->insert_attempt({db->deliveries_of(retried_since).at(0).delivery_id, t0 + 120,
                      "delivered", "", ""});
  auto received_since = put_message(*db, t0 + 200, {{s::delivered, 0}});
  auto newest = put_message(*db, t0 + 300, {{s::queued, 0}});
  auto attempts_before = db->attempts_of(db->deliveries_of(all_finished).at(1).delivery_id);
  REQUIRE(attempts_before.size() == 1);
  auto outcome_of = [&](const std::string& id) {
    auto delivery_id = db->deliveries_of(id).at(0).delivery_id;
    db->begin();
    db->record_recipients(delivery_id, {{"bob@x.test", recipient_state::delivered, "2.0.0",
                                         "250 ok", t0 + 10}});
    db->commit();
    return delivery_id;
  };
  auto purged_outcome = outcome_of(delivered_long_ago);
  auto kept_outcome = outcome_of(retried_since);

  auto report = purge(*db, t0 + 100, "", 100);

  CHECK(report.removed == 2);
  CHECK_FALSE(report.more);
  CHECK(report.last_examined == retried_since); // received since: not looked at
  CHECK(gone(*db, delivered_long_ago));
  CHECK(gone(*db, all_finished));
  CHECK(db->attempts_of(attempts_before.at(0).delivery_id).empty());
  CHECK(db->recipients_of(purged_outcome).empty());
  CHECK(db->recipients_of(kept_outcome).size() == 1);
  for (const auto& id : {bounced_since, deferred, half_finished, retried_since,
                         received_since, newest}) {
    CAPTURE(id);
    CHECK(db->message(id));
    CHECK_FALSE(db->deliveries_of(id).empty());
  }
  CHECK(db->unfinished_deliveries().size() == 3);
  CHECK(db->integrity_check() == "ok");
}

TEST_CASE("purge rounds look at no more than their limit and go on after the last one") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  using s = delivery_state;
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(put_message(*db, t0 + i, {{i == 1 ? s::deferred : s::delivered, t0 + 10 + i}}));

  auto first = purge(*db, t0 + 100, "", 2);
  CHECK(first.removed == 1); // the deferred one is looked at, and stays
  CHECK(first.more);
  CHECK(first.last_examined == ids[1]);
  auto second = purge(*db, t0 + 100, first.last_examined, 2);
  CHECK(second.removed == 2);
  CHECK(second.more);
  CHECK(second.last_examined == ids[3]);
  auto third = purge(*db, t0 + 100, second.last_examined, 2);
  CHECK(third.removed == 1);
  CHECK_FALSE(third.more);
  CHECK(third.last_examined == ids[4]);
  auto nothing_left = purge(*db, t0 + 100, third.last_examined, 2);
  CHECK(nothing_left.removed == 0);
  CHECK_FALSE(nothing_left.more);
  CHECK(nothing_left.last_examined.empty());

  for (int i : {0, 2, 3, 4})
    CHECK(gone(*db, ids[i]));
  CHECK(db->message(ids[1])); // unfinished
  CHECK(db->message(ids[5])); // finished long ago, but the newest
  CHECK(db->last_message_id() == ids[5]);
}

TEST_CASE("a purge round after a malformed queue id is refused") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  db->begin();
  CHECK_THROWS_AS(db->purge_finished(t0, "not-an-id", 10), queue_db_error);
  db->rollback();
}

TEST_CASE("finished and adopted replicas go once the cutoff passes them, live ones stay") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  stored_message msg{"00000000000000aa", "ann@example.org", "Subject: r\r\n\r\nr\r\n", t0};
  auto replica = [](const std::string& key, delivery_state state) {
    ledger_entry entry;
    entry.postoffice = "sales";
    entry.recipients = {"bob@sales.example.test"};
    entry.state = state;
    entry.origin = key;
    return entry;
  };
  using s = delivery_state;
  db->begin();
  db->insert_replica("node-a", msg, replica("live", s::deferred), t0);
  db->update_replica("node-a", replica("finished-long-ago", s::delivered), t0 + 10);
  db->update_replica("node-a", replica("finished-since", s::bounced), t0 + 150);
  db->insert_replica("node-b", msg, replica("adopted-long-ago", s::queued), t0);
  message_id_generator ids;
  REQUIRE(db->adopt_replicas("node-b", ids, t0 + 20).size() == 1);
  db->commit();

  auto report = purge(*db, t0 + 100, "", 2);

  CHECK(report.removed == 0);
  CHECK(report.more); // two replicas removed: as many as the limit
  CHECK(db->adopted_keys("node-b").empty());
  // A tombstone gone, a replica of that key is taken again; one still
  // there keeps it dropped.
  db->begin();
  db->insert_replica("node-a", msg, replica("finished-long-ago", s::queued), t0 + 100);
  db->insert_replica("node-a", msg, replica("finished-since", s::queued), t0 + 100);
  auto adopted = db->adopt_replicas("node-a", ids, t0 + 100);
  db->commit();
  REQUIRE(adopted.size() == 2);
  CHECK(adopted[0].origin == "live");
  CHECK(adopted[1].origin == "finished-long-ago");
  auto last = purge(*db, t0 + 100, "", 2);
  CHECK_FALSE(last.more);
}
