// Tests runtime/store/queue_db.cpp: schema and migrations, messages and their
// deliveries, ledger updates, the attempt log, recipient outcomes,
// savepoints, a full disk, and replicas of other nodes' deliveries.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include "runtime/store/queue_db.hpp"
#include "runtime/store/queue_schema.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;

namespace {

incoming_message two_postoffice_message() {
  incoming_message msg;
  msg.sender = "ann@example.org";
  // NUL, 8-bit bytes and CRLF must come back byte for byte.
  msg.content = std::string("Subject: hi\r\n\r\nbody \xc3\xa9\0 end\r\n", 28);
  msg.received_at = 1700000000;
  msg.deliveries = {{"sales", {"bob@sales.example.test", "eve@sales.example.test"}},
                    {"support", {"carol@support.example.test"}}};
  return msg;
}

void accept(queue_db& db, const std::string& id, const incoming_message& msg) {
  db.begin();
  db.insert_message(id, msg);
  db.commit();
}

/// The ledger entry a node holding delivery `key` would send with its
/// replica: deferred after three failed opens.
ledger_entry replicated_entry(const std::string& key) {
  ledger_entry entry;
  entry.delivery_id = 7;
  entry.message_id = "00000000000000aa";
  entry.postoffice = "sales";
  entry.recipients = {"bob@sales.example.test", "eve@sales.example.test"};
  entry.state = delivery_state::deferred;
  entry.open_retries = 3;
  entry.transfer_retries = 1;
  entry.attempts = 4;
  entry.unscheduled_failures = 1;
  entry.first_attempt_at = 1700000010;
  entry.next_attempt_at = 1700000600;
  entry.last_error_code = "4.4.1";
  entry.last_error_text = "root missing";
  entry.origin = key;
  return entry;
}

const stored_message replicated_message{"00000000000000aa", "ann@example.org",
                                        std::string("Subject: r\r\n\r\n\0\xc3\xa9\r\n", 19),
                                        1700000000};

/// One replica write or adoption in a transaction of its own.
template <class Write>
auto committed(queue_db& db, Write write) {
  db.begin();
  auto result = write();
  db.commit();
  return result;
}

void put_replica(queue_db& db, const std::string& node, const ledger_entry& entry,
                 std::int64_t now = 1700000100) {
  committed(db, [&] {
    db.insert_replica(node, replicated_message, entry, now);
    return true;
  });
}

void change_replica(queue_db& db, const std::string& node, const ledger_entry& entry,
                    std::int64_t now = 1700000200) {
  committed(db, [&] {
    db.update_replica(node, entry, now);
    return true;
  });
}

std::vector<ledger_entry> adopt(queue_db& db, const std::string& node,
                                std::int64_t now = 1700000300) {
  message_id_generator ids{db.last_message_id()};
  return committed(db, [&] { return db.adopt_replicas(node, ids, now); });
}

std::vector<std::string> origins(const std::vector<ledger_entry>& entries) {
  std::vector<std::string> result;
  for (const auto& entry : entries)
    result.push_back(entry.origin);
  return result;
}

} // namespace

TEST_CASE("a new queue database has the current schema and passes the integrity check") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  CHECK(db->schema_version() == queue_schema_version());
  CHECK(db->integrity_check() == "ok");
  CHECK(db->last_message_id().empty());
  CHECK(db->unfinished_deliveries().empty());
}

TEST_CASE("a message is stored with one queued delivery per postoffice") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  auto msg = two_postoffice_message();
  accept(*db, "0000000000000001", msg);
  auto stored = db->message("0000000000000001");
  REQUIRE(stored);
  CHECK(stored->sender == msg.sender);
  CHECK(stored->content == msg.content);
  CHECK(stored->received_at == msg.received_at);
  auto deliveries = db->deliveries_of("0000000000000001");
  REQUIRE(deliveries.size() == 2);
  CHECK(deliveries[0].postoffice == "sales");
  CHECK(deliveries[0].recipients == msg.deliveries[0].recipients);
  CHECK(deliveries[0].state == delivery_state::queued);
  CHECK(deliveries[0].queued_at == msg.received_at);
  CHECK(deliveries[0].next_attempt_at == msg.received_at);
  CHECK(deliveries[0].open_retries == 0);
  CHECK(deliveries[1].postoffice == "support");
  CHECK(deliveries[1].recipients == msg.deliveries[1].recipients);
  CHECK(db->last_message_id() == "0000000000000001");
  CHECK_FALSE(db->message("0000000000000002"));
}

TEST_CASE("a ledger update and its attempt survive reopening, finished deliveries are not loaded") {
  test::temp_dir dir;
  {
    auto db = queue_db::open(dir / "queue.db");
    accept(*db, "0000000000000001", two_postoffice_message());
    auto deliveries = db->deliveries_of("0000000000000001");
    auto sales = deliveries[0];
    sales.state = delivery_state::deferred;
    sales.open_retries = 3;
    sales.first_attempt_at = 1700000010;
    sales.next_attempt_at = 1700000610;
    sales.last_error_code = "4.4.1";
    sales.last_error_text = "root missing";
    auto support = deliveries[1];
    support.state = delivery_state::delivered;
    db->begin();
    db->update_delivery(sales);
    db->insert_attempt({sales.delivery_id, 1700000010, "open_failed", "4.4.1",
                        "root missing"});
    db->update_delivery(support);
    db->commit();
  }
  auto db = queue_db::open(dir / "queue.db");
  auto unfinished = db->unfinished_deliveries();
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].postoffice == "sales");
  CHECK(unfinished[0].state == delivery_state::deferred);
  CHECK(unfinished[0].open_retries == 3);
  CHECK(unfinished[0].first_attempt_at == 1700000010);
  CHECK(unfinished[0].next_attempt_at == 1700000610);
  CHECK(unfinished[0].last_error_code == "4.4.1");
  CHECK(unfinished[0].last_error_text == "root missing");
  auto attempts = db->attempts_of(unfinished[0].delivery_id);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].outcome == "open_failed");
  CHECK(attempts[0].text == "root missing");
}

TEST_CASE("updating a delivery that does not exist is the request's fault") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  ledger_entry ghost;
  ghost.delivery_id = 42;
  db->begin();
  try {
    db->update_delivery(ghost);
    FAIL("update of a missing delivery succeeded");
  } catch (const queue_db_error& e) {
    CHECK(e.request_at_fault());
  }
  db->rollback();
}

TEST_CASE("a failed request rolls back to its savepoint and spares the rest of the batch") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  accept(*db, "0000000000000001", two_postoffice_message());
  db->begin();
  db->savepoint();
  try {
    db->insert_message("0000000000000001", two_postoffice_message());
    FAIL("duplicate id accepted");
  } catch (const queue_db_error& e) {
    CHECK(e.request_at_fault());
    db->rollback_to_savepoint();
  }
  db->savepoint();
  db->insert_message("0000000000000002", two_postoffice_message());
  db->release_savepoint();
  db->commit();
  CHECK(db->message("0000000000000002"));
  CHECK(db->deliveries_of("0000000000000001").size() == 2);
  CHECK(db->unfinished_deliveries().size() == 4);
}

TEST_CASE("a full disk fails the transaction, not the request") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  accept(*db, "0000000000000001", two_postoffice_message());
  db->limit_pages(1);
  auto big = two_postoffice_message();
  big.content.assign(256 * 1024, 'x');
  db->begin();
  try {
    db->insert_message("0000000000000002", big);
    db->commit();
    FAIL("insert beyond the page limit succeeded");
  } catch (const queue_db_error& e) {
    CHECK((e.sqlite_code() & 0xff) == SQLITE_FULL);
    CHECK_FALSE(e.request_at_fault());
  }
  db->rollback();
  CHECK_FALSE(db->message("0000000000000002"));
  CHECK(db->integrity_check() == "ok");
}

TEST_CASE("a queue database from a newer build is refused with a clear message") {
  test::temp_dir dir;
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open((dir / "queue.db").c_str(), &raw) == SQLITE_OK);
    auto sql = "PRAGMA user_version=" + std::to_string(queue_schema_version() + 1);
    REQUIRE(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  try {
    queue_db::open(dir / "queue.db");
    FAIL("newer schema accepted");
  } catch (const queue_db_error& e) {
    CHECK(std::string{e.what()}.find("newer than this build") != std::string::npos);
  }
}

TEST_CASE("unfinished deliveries read page by page are the same as read at once") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  db->begin();
  for (int i = 0; i < 25; ++i) {
    incoming_message msg;
    msg.sender = "ann@example.org";
    msg.content = "Subject: " + std::to_string(i) + "\r\n\r\nx\r\n";
    msg.received_at = 1'700'000'000 + i;
    msg.deliveries = {{"sales", {"bob@sales.example.test"}}, {"support", {"ann@example.org"}}};
    auto entries = db->insert_message("00000000000001" + std::to_string(10 + i), msg);
    if (i % 3 == 0) {
      entries[0].state = delivery_state::delivered;
      db->update_delivery(entries[0]);
    }
  }
  db->commit();
  auto all = db->unfinished_deliveries();
  REQUIRE(all.size() == 50 - 9);
  std::vector<std::int64_t> paged;
  for (std::int64_t after = 0;;) {
    auto page = db->unfinished_deliveries_after(after, 7);
    CHECK(page.size() <= 7);
    if (page.empty())
      break;
    after = page.back().delivery_id;
    for (const auto& entry : page)
      paged.push_back(entry.delivery_id);
  }
  std::vector<std::int64_t> at_once;
  for (const auto& entry : all)
    at_once.push_back(entry.delivery_id);
  CHECK(paged == at_once);
}

TEST_CASE("a delivery handed over keeps its counts and is committed once per origin") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  stored_message msg{"00000000000000aa", "ann@example.org", "Subject: hi\r\n\r\nhi\r\n",
                     1700000000};
  ledger_entry entry;
  entry.delivery_id = 7;
  entry.message_id = msg.id;
  entry.postoffice = "sales";
  entry.recipients = {"bob@sales.example.test"};
  entry.state = delivery_state::deferred;
  entry.open_retries = 3;
  entry.transfer_retries = 1;
  entry.attempts = 5;
  entry.unscheduled_failures = 2;
  entry.first_attempt_at = 1700000010;
  entry.next_attempt_at = 1700000600;
  entry.last_error_code = "4.4.1";
  entry.last_error_text = "root missing";
  entry.origin = "node-a.00000000000000aa.7";
  db->begin();
  auto adopted = db->adopt_delivery("0000000000000001", msg, entry, "");
  auto again = db->adopt_delivery("0000000000000002", msg, entry, "");
  db->commit();
  REQUIRE(adopted);
  CHECK_FALSE(again);
  auto stored = db->deliveries_of("0000000000000001");
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].delivery_id == adopted->delivery_id);
  CHECK(stored[0].state == delivery_state::deferred);
  CHECK(stored[0].open_retries == 3);
  CHECK(stored[0].transfer_retries == 1);
  CHECK(stored[0].attempts == 5);
  CHECK(stored[0].unscheduled_failures == 2);
  CHECK(stored[0].queued_at == msg.received_at);
  CHECK(stored[0].first_attempt_at == 1700000010);
  CHECK(stored[0].next_attempt_at == 1700000600);
  CHECK(stored[0].last_error_text == "root missing");
  CHECK(stored[0].origin == entry.origin);
  CHECK(delivery_key(stored[0], "node-b") == entry.origin);
  CHECK(db->message("0000000000000001")->content == msg.content);
  CHECK_FALSE(db->message("0000000000000002"));
}

TEST_CASE("each recipient keeps its latest outcome until its message is removed") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  accept(*db, "0000000000000001", two_postoffice_message());
  auto sales = db->deliveries_of("0000000000000001").at(0);
  auto support = db->deliveries_of("0000000000000001").at(1);
  CHECK(db->recipients_of(sales.delivery_id).empty());
  db->begin();
  db->record_recipients(sales.delivery_id,
                        {{"eve@sales.example.test", recipient_state::deferred, "4.2.1",
                          "452 4.2.1 mailbox busy", 1700000100},
                         {"bob@sales.example.test", recipient_state::bounced, "5.1.1",
                          "550 5.1.1 no such user", 1700000100}});
  db->record_recipients(support.delivery_id,
                        {{"carol@support.example.test", recipient_state::delivered, "2.0.0",
                          "delivered to carol/new/x", 1700000100}});
  db->commit();
  db->begin();
  db->record_recipients(sales.delivery_id,
                        {{"eve@sales.example.test", recipient_state::delivered, "2.0.0",
                          "250 2.0.0 ok", 1700000300}});
  sales.attempts = 2;
  db->update_delivery(sales);
  db->commit();
  auto kept = db->recipients_of(sales.delivery_id);
  REQUIRE(kept.size() == 2); // by address; eve's deferral replaced
  CHECK(kept[0].address == "bob@sales.example.test");
  CHECK(kept[0].state == recipient_state::bounced);
  CHECK(kept[0].code == "5.1.1");
  CHECK(kept[0].text == "550 5.1.1 no such user");
  CHECK(kept[0].at == 1700000100);
  CHECK(kept[1].address == "eve@sales.example.test");
  CHECK(kept[1].state == recipient_state::delivered);
  CHECK(kept[1].text == "250 2.0.0 ok");
  CHECK(kept[1].at == 1700000300);
  CHECK(db->deliveries_of("0000000000000001").at(0).attempts == 2);
  CHECK(db->recipients_of(support.delivery_id).size() == 1);
  // An outcome for a delivery that does not exist is the request's fault.
  db->begin();
  try {
    db->record_recipients(999, {{"x@y.test", recipient_state::delivered, "2.0.0", "", 1}});
    FAIL("an outcome without its delivery was stored");
  } catch (const queue_db_error& e) {
    CHECK(e.request_at_fault());
  }
  db->rollback();
  CHECK(db->delete_message("0000000000000001"));
  CHECK(db->recipients_of(sales.delivery_id).empty());
  CHECK(db->recipients_of(support.delivery_id).empty());
}

TEST_CASE("delivery keys: message and delivery id alone, with the node in a cluster") {
  ledger_entry entry;
  entry.delivery_id = 7;
  entry.message_id = "00000000000000aa";
  CHECK(delivery_key(entry, "") == "00000000000000aa.7");
  CHECK(delivery_key(entry, "node-a") == "node-a.00000000000000aa.7");
}

TEST_CASE("a message's replica node is kept and read back with its deliveries") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  auto replicated = two_postoffice_message();
  replicated.replica_node = "node-b";
  db->begin();
  auto created = db->insert_message("0000000000000001", replicated);
  db->insert_message("0000000000000002", two_postoffice_message());
  auto handed = db->adopt_delivery("0000000000000003", replicated_message,
                                   replicated_entry("node-c.00000000000000aa.7"), "node-d");
  db->commit();
  REQUIRE(created.size() == 2);
  CHECK(created[0].replica_node == "node-b");
  CHECK(created[1].replica_node == "node-b");
  REQUIRE(handed);
  CHECK(handed->replica_node == "node-d");
  auto loaded = db->unfinished_deliveries();
  REQUIRE(loaded.size() == 5);
  CHECK(loaded[0].replica_node == "node-b");
  CHECK(loaded[1].replica_node == "node-b");
  CHECK(loaded[2].replica_node.empty());
  CHECK(loaded[3].replica_node.empty());
  CHECK(loaded[4].replica_node == "node-d");
  CHECK(db->deliveries_of("0000000000000003").at(0).replica_node == "node-d");
}

TEST_CASE("a replica is kept once: a retried insert changes nothing, updates change it") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  auto entry = replicated_entry("node-a.00000000000000aa.7");
  put_replica(*db, "node-a", entry);
  auto retried = entry;
  retried.open_retries = 9;
  retried.postoffice = "elsewhere";
  put_replica(*db, "node-a", retried);
  auto changed = entry;
  changed.state = delivery_state::held;
  changed.recipients = {"eve@sales.example.test"};
  changed.open_retries = 5;
  changed.transfer_retries = 2;
  changed.attempts = 7;
  changed.next_attempt_at = 1700001200;
  changed.last_error_text = "still missing";
  changed.delay_warned = true;
  change_replica(*db, "node-a", changed);
  auto adopted = adopt(*db, "node-a");
  REQUIRE(adopted.size() == 1);
  const auto& kept = adopted[0];
  CHECK(kept.postoffice == "sales");
  CHECK(kept.state == delivery_state::held);
  CHECK(kept.recipients == std::vector<std::string>{"eve@sales.example.test"});
  CHECK(kept.open_retries == 5);
  CHECK(kept.transfer_retries == 2);
  CHECK(kept.attempts == 7);
  CHECK(kept.unscheduled_failures == 1);
  CHECK(kept.first_attempt_at == 1700000010);
  CHECK(kept.next_attempt_at == 1700001200);
  CHECK(kept.last_error_code == "4.4.1");
  CHECK(kept.last_error_text == "still missing");
  CHECK(kept.delay_warned);
}

TEST_CASE("a replica whose delivery finished before or after it came stays dropped") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  auto finished_first = replicated_entry("node-a.00000000000000aa.1");
  auto finished_later = replicated_entry("node-a.00000000000000aa.2");
  auto changed_first = replicated_entry("node-a.00000000000000aa.3");
  auto live = replicated_entry("node-a.00000000000000aa.4");
  // The delivery finished before its replica arrived: a tombstone.
  auto delivered = finished_first;
  delivered.state = delivery_state::delivered;
  change_replica(*db, "node-a", delivered);
  put_replica(*db, "node-a", finished_first);
  // Bounced after its replica arrived.
  put_replica(*db, "node-a", finished_later);
  auto bounced = finished_later;
  bounced.state = delivery_state::bounced;
  change_replica(*db, "node-a", bounced);
  // An unfinished change before the replica is not kept: the replica
  // arrives with its own counts.
  auto early = changed_first;
  early.open_retries = 40;
  change_replica(*db, "node-a", early);
  put_replica(*db, "node-a", changed_first);
  put_replica(*db, "node-a", live);
  auto adopted = adopt(*db, "node-a");
  CHECK(origins(adopted)
        == std::vector<std::string>{"node-a.00000000000000aa.3", "node-a.00000000000000aa.4"});
  CHECK(adopted.at(0).open_retries == 3);
  CHECK(db->adopted_keys("node-a")
        == std::vector<std::string>{"node-a.00000000000000aa.3", "node-a.00000000000000aa.4"});
}

TEST_CASE("adopted replicas become deliveries with their counts, once per key") {
  test::temp_dir dir;
  auto db = queue_db::open(dir / "queue.db");
  accept(*db, "0000000000000001", two_postoffice_message());
  auto in_flight = replicated_entry("node-a.00000000000000aa.7");
  in_flight.state = delivery_state::in_flight;
  auto handed_over = replicated_entry("node-a.00000000000000aa.8");
  put_replica(*db, "node-a", in_flight);
  put_replica(*db, "node-a", handed_over);
  put_replica(*db, "node-b", replicated_entry("node-b.00000000000000bb.1"));
  // Handed over here before node-a was lost: already a delivery.
  committed(*db, [&] {
    return db->adopt_delivery("0000000000000002", replicated_message, handed_over, "");
  });

  auto adopted = adopt(*db, "node-a", 1700000300);

  REQUIRE(adopted.size() == 1);
  const auto& entry = adopted[0];
  CHECK(entry.origin == "node-a.00000000000000aa.7");
  CHECK(entry.message_id > "0000000000000002");
  CHECK(entry.state == delivery_state::queued);
  CHECK(entry.open_retries == 3);
  CHECK(entry.transfer_retries == 1);
  CHECK(entry.attempts == 4);
  CHECK(entry.queued_at == replicated_message.received_at);
  CHECK(entry.replica_node.empty());
  CHECK(delivery_key(entry, "node-b") == "node-a.00000000000000aa.7");
  auto stored = db->message(entry.message_id);
  REQUIRE(stored);
  CHECK(stored->content == replicated_message.content);
  CHECK(stored->sender == replicated_message.sender);
  auto loaded = db->deliveries_of(entry.message_id);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].delivery_id == entry.delivery_id);
  CHECK(loaded[0].open_retries == 3);
  CHECK(loaded[0].recipients == in_flight.recipients);
  auto log = db->attempts_of(entry.delivery_id);
  REQUIRE(log.size() == 1);
  CHECK(log[0].outcome == "adopted");
  CHECK(log[0].at == 1700000300);
  CHECK(log[0].text == "from node node-a's replica (its delivery key node-a.00000000000000aa.7)");
  // The delivery handed over before was not queued twice.
  CHECK(db->unfinished_deliveries().size() == 2 + 1 + 1);
  CHECK(db->adopted_keys("node-a")
        == std::vector<std::string>{"node-a.00000000000000aa.7", "node-a.00000000000000aa.8"});
  CHECK(db->adopted_keys("node-b").empty());
  // Adopted once: a second round adopts nothing, and a late change to an
  // adopted replica leaves it adopted.
  CHECK(adopt(*db, "node-a").empty());
  auto delivered = in_flight;
  delivered.state = delivery_state::delivered;
  change_replica(*db, "node-a", delivered);
  CHECK(db->adopted_keys("node-a").size() == 2);
  // Another node's replicas are its own.
  CHECK(origins(adopt(*db, "node-b")) == std::vector<std::string>{"node-b.00000000000000bb.1"});
}

TEST_CASE("a replica survives reopening the database") {
  test::temp_dir dir;
  put_replica(*queue_db::open(dir / "queue.db"), "node-a",
              replicated_entry("node-a.00000000000000aa.7"));
  auto db = queue_db::open(dir / "queue.db");
  auto adopted = adopt(*db, "node-a");
  REQUIRE(adopted.size() == 1);
  CHECK(adopted[0].origin == "node-a.00000000000000aa.7");
  CHECK(adopted[0].last_error_text == "root missing");
  CHECK(db->message(adopted[0].message_id)->content == replicated_message.content);
}
