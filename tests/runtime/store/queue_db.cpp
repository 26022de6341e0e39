// Tests runtime/store/queue_db.cpp: schema and migrations, messages and their
// deliveries, ledger updates, the attempt log, recipient outcomes,
// savepoints and a full disk.
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
  auto adopted = db->adopt_delivery("0000000000000001", msg, entry);
  auto again = db->adopt_delivery("0000000000000002", msg, entry);
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
