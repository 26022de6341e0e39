// Tests runtime/store/queue_schema.cpp through queue_db::open: a file written by
// an older build is migrated with its rows intact, the migrated schema keeps
// the constraints without the cost the old state check had, deliveries
// queued before attempts were counted get their count from the log, and
// messages queued before replicas have none.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <string>

#include "runtime/store/queue_db.hpp"
#include "runtime/store/queue_schema.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;

namespace {

/// A raw connection, for what queue_db does not offer: writing an old
/// schema, reading a query plan.
struct raw_db {
  sqlite3* handle = nullptr;
  explicit raw_db(const std::filesystem::path& file) {
    REQUIRE(sqlite3_open(file.c_str(), &handle) == SQLITE_OK);
  }
  ~raw_db() {
    sqlite3_close(handle);
  }
  void exec(const std::string& sql) {
    char* error = nullptr;
    auto rc = sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error);
    std::string why = error ? error : "";
    sqlite3_free(error);
    REQUIRE_MESSAGE(rc == SQLITE_OK, sql << ": " << why);
  }
  /// The opcodes of `sql`'s bytecode, one per line.
  std::string opcodes(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(handle, ("EXPLAIN " + sql).c_str(), -1, &stmt, nullptr)
            == SQLITE_OK);
    std::string result;
    while (sqlite3_step(stmt) == SQLITE_ROW)
      result += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)) + std::string{"\n"};
    sqlite3_finalize(stmt);
    return result;
  }
};

/// Writes a queue file as a build with schema `version` left it.
void write_schema(const std::filesystem::path& file, int version) {
  raw_db raw{file};
  raw.exec("PRAGMA journal_mode=WAL");
  for (int i = 0; i < version; ++i)
    raw.exec(queue_migration(i));
  raw.exec("PRAGMA user_version=" + std::to_string(version));
}

} // namespace

TEST_CASE("a version 2 queue keeps its messages, deliveries and attempts through the migration") {
  test::temp_dir dir;
  auto file = dir / "queue.db";
  write_schema(file, 2);
  {
    raw_db raw{file};
    raw.exec("INSERT INTO messages VALUES(1, 'ann@example.org', 1700000000, 5, 'hello')");
    raw.exec("INSERT INTO deliveries(id, message_id, postoffice, recipients, state,"
             " open_retries, queued_at, next_attempt_at, last_error_code, origin)"
             " VALUES(7, 1, 'sales', 'bob@sales.example.test', 'deferred', 3,"
             " 1700000000, 1700000600, '4.4.1', 'node-b/12')");
    raw.exec("INSERT INTO deliveries(id, message_id, postoffice, recipients, state,"
             " queued_at, next_attempt_at)"
             " VALUES(8, 1, 'support', 'carol@support.example.test', 'delivered',"
             " 1700000000, 1700000000)");
    raw.exec("INSERT INTO attempts(delivery_id, at, outcome, code, text)"
             " VALUES(7, 1700000000, 'open_failed', '4.4.1', 'unreachable')");
  }
  auto db = queue_db::open(file);
  CHECK(db->schema_version() == queue_schema_version());
  CHECK(db->integrity_check() == "ok");
  auto deliveries = db->deliveries_of("0000000000000001");
  REQUIRE(deliveries.size() == 2);
  CHECK(deliveries[0].delivery_id == 7);
  CHECK(deliveries[0].state == delivery_state::deferred);
  CHECK(deliveries[0].open_retries == 3);
  CHECK(deliveries[0].next_attempt_at == 1700000600);
  CHECK(deliveries[0].last_error_code == "4.4.1");
  CHECK(deliveries[0].origin == "node-b/12");
  CHECK(deliveries[1].state == delivery_state::delivered);
  auto unfinished = db->unfinished_deliveries();
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].delivery_id == 7);
  REQUIRE(db->attempts_of(7).size() == 1);
  CHECK(db->attempts_of(7)[0].code == "4.4.1");
  // Foreign keys hold again after the migration: the message takes its
  // deliveries and their attempts with it.
  CHECK(db->delete_message("0000000000000001"));
  CHECK(db->deliveries_of("0000000000000001").empty());
  CHECK(db->attempts_of(7).empty());
}

TEST_CASE("the migrated state check rejects an unknown state and builds no temporary table") {
  test::temp_dir dir;
  auto file = dir / "queue.db";
  write_schema(file, 2);
  queue_db::open(file);
  raw_db raw{file};
  raw.exec("INSERT INTO messages(id, sender, received_at, size, content)"
           " VALUES(1, 'ann@example.org', 1700000000, 5, 'hello')");
  raw.exec("INSERT INTO deliveries(message_id, postoffice, recipients, state, queued_at,"
           " next_attempt_at) VALUES(1, 'sales', 'bob@sales.example.test', 'held', 1, 1)");
  CHECK(sqlite3_exec(raw.handle,
                     "INSERT INTO deliveries(message_id, postoffice, recipients, state,"
                     " queued_at, next_attempt_at)"
                     " VALUES(1, 'sales', 'bob@sales.example.test', 'lost', 1, 1)",
                     nullptr, nullptr, nullptr)
        == SQLITE_CONSTRAINT);
  // `state IN (six values)` made SQLite fill a temporary b-tree on every
  // insert and every state change.
  CHECK(raw.opcodes("INSERT INTO deliveries(message_id, postoffice, recipients, state,"
                    " queued_at, next_attempt_at) VALUES(1, 'x', 'y', 'queued', 1, 1)")
          .find("OpenEphemeral")
        == std::string::npos);
  CHECK(raw.opcodes("UPDATE deliveries SET state = 'deferred' WHERE id = 1")
          .find("OpenEphemeral")
        == std::string::npos);
}

TEST_CASE("a version 3 queue gets each delivery's attempts counted from its log, since its last requeue") {
  test::temp_dir dir;
  auto file = dir / "queue.db";
  write_schema(file, 3);
  {
    raw_db raw{file};
    raw.exec("INSERT INTO messages VALUES(1, 'ann@example.org', 1700000000, 5, 'hello')");
    raw.exec("INSERT INTO deliveries(id, message_id, postoffice, recipients, state,"
             " open_retries, queued_at, next_attempt_at)"
             " VALUES(7, 1, 'sales', 'bob@sales.example.test', 'deferred', 2, 1, 1),"
             " (8, 1, 'support', 'carol@support.example.test', 'queued', 0, 1, 1)");
    // Delivery 7: two failed opens and a hold (no attempt); delivery 8:
    // three attempts at another postoffice, then a requeue, then one.
    raw.exec("INSERT INTO attempts(delivery_id, at, outcome, code, text) VALUES"
             " (7, 10, 'open_failed', '', ''), (7, 20, 'held', '', ''),"
             " (7, 30, 'open_failed', '', ''),"
             " (8, 10, 'open_failed', '', ''), (8, 20, 'transfer_failed', '', ''),"
             " (8, 30, 'open_failed', '', ''), (8, 40, 'requeued', '', ''),"
             " (8, 50, 'transfer_failed', '', ''), (8, 60, 'delay_warned', '', '')");
  }
  auto db = queue_db::open(file);
  CHECK(db->schema_version() == queue_schema_version());
  CHECK(db->integrity_check() == "ok");
  auto deliveries = db->deliveries_of("0000000000000001");
  REQUIRE(deliveries.size() == 2);
  CHECK(deliveries[0].attempts == 2);
  CHECK(deliveries[0].open_retries == 2);
  CHECK(deliveries[1].attempts == 1);
  // The recipient outcomes table is there, checked, and goes with its delivery.
  raw_db raw{file};
  raw.exec("INSERT INTO recipient_outcomes VALUES(7, 'bob@sales.example.test', 'deferred',"
           " '4.2.1', 'busy', 40)");
  CHECK(sqlite3_exec(raw.handle,
                     "INSERT INTO recipient_outcomes VALUES(8, 'c@x.test', 'lost', '', '', 1)",
                     nullptr, nullptr, nullptr)
        == SQLITE_CONSTRAINT);
  REQUIRE(db->recipients_of(7).size() == 1);
  CHECK(db->recipients_of(7)[0].text == "busy");
  CHECK(db->delete_message("0000000000000001"));
  CHECK(db->recipients_of(7).empty());
}

TEST_CASE("a version 7 queue keeps its messages through the replica migration, with no replica node") {
  test::temp_dir dir;
  auto file = dir / "queue.db";
  write_schema(file, 7);
  {
    raw_db raw{file};
    raw.exec("INSERT INTO messages VALUES(1, 'ann@example.org', 1700000000, 5, 'hello')");
    raw.exec("INSERT INTO deliveries(id, message_id, postoffice, recipients, state,"
             " open_retries, queued_at, next_attempt_at, in_doubt)"
             " VALUES(7, 1, 'sales', 'bob@sales.example.test', 'deferred', 2,"
             " 1700000000, 1700000600, 1)");
  }
  auto db = queue_db::open(file);
  CHECK(db->schema_version() == queue_schema_version());
  CHECK(db->integrity_check() == "ok");
  CHECK(db->message("0000000000000001")->content == "hello");
  auto unfinished = db->unfinished_deliveries();
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].delivery_id == 7);
  CHECK(unfinished[0].open_retries == 2);
  CHECK(unfinished[0].in_doubt);
  CHECK(unfinished[0].replica_node.empty());
  // The replicas table is there and takes a replica.
  ledger_entry entry = unfinished[0];
  entry.origin = "node-a.0000000000000001.7";
  db->begin();
  db->insert_replica("node-a", *db->message("0000000000000001"), entry, 1700000100);
  db->commit();
  raw_db raw{file};
  raw.exec("DELETE FROM replicas WHERE node = 'node-a' AND key = 'node-a.0000000000000001.7'"
           " AND open_retries = 2 AND finished = 0 AND content = CAST('hello' AS BLOB)");
  CHECK(sqlite3_changes(raw.handle) == 1);
}
