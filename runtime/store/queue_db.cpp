// NAME
//   queue_db -- SQLite access for the queue (see queue_db.hpp).
#include "runtime/store/queue_db.hpp"

#include "runtime/store/message_id.hpp"
#include "runtime/store/queue_schema.hpp"

#include <sqlite3.h>

#include <sstream>

namespace postconn {

namespace {

/// Recipients are stored one per line: addresses never contain CR or LF.
std::string join_recipients(const std::vector<std::string>& recipients) {
  std::string joined;
  for (const auto& rcpt : recipients) {
    if (!joined.empty())
      joined += '\n';
    joined += rcpt;
  }
  return joined;
}

std::vector<std::string> split_recipients(const std::string& joined) {
  std::vector<std::string> recipients;
  std::istringstream in{joined};
  for (std::string line; std::getline(in, line);)
    recipients.push_back(line);
  return recipients;
}

/// The error of the last failed call on `db`, with its result code.
queue_db_error last_error(sqlite3* db) {
  return queue_db_error(sqlite3_errmsg(db), sqlite3_errcode(db));
}

/// Binds parameters and steps a prepared statement; resets it on scope exit.
class statement {
public:
  statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int index, const std::string& text) {
    check(sqlite3_bind_text(stmt_, index, text.data(),
                            static_cast<int>(text.size()), SQLITE_STATIC));
    return *this;
  }
  statement& bind_blob(int index, const std::string& bytes) {
    check(sqlite3_bind_blob(stmt_, index, bytes.data(),
                            static_cast<int>(bytes.size()), SQLITE_STATIC));
    return *this;
  }
  statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  /// Steps once; true while a row is available.
  bool step() {
    auto rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    throw last_error(db_);
  }
  std::int64_t integer(int column) {
    return sqlite3_column_int64(stmt_, column);
  }
  std::string text(int column) {
    auto data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    auto size = sqlite3_column_bytes(stmt_, column);
    return data ? std::string(data, static_cast<std::size_t>(size))
                : std::string{};
  }

private:
  void check(int rc) {
    if (rc != SQLITE_OK)
      throw last_error(db_);
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

const char* const delivery_columns
  = "id, message_id, postoffice, recipients, state, open_retries,"
    " transfer_retries, queued_at, first_attempt_at, next_attempt_at,"
    " last_error_code, last_error_text, delay_warned, origin, attempts,"
    " unscheduled_failures, in_doubt,"
    " (SELECT replica_node FROM messages m WHERE m.id = deliveries.message_id)";

bool finished(delivery_state state) {
  return state == delivery_state::delivered || state == delivery_state::bounced;
}

/// Binds a replica's node and key (?1, ?2) and what its ledger entry says
/// of it (?3 to ?15), as insert_replica_ and update_replica_ take them.
void bind_replica(statement& stmt, const std::string& node, const ledger_entry& entry,
                  const std::string& recipients, const std::string& state, std::int64_t now) {
  stmt.bind(1, node)
    .bind(2, entry.origin)
    .bind(3, entry.postoffice)
    .bind(4, recipients)
    .bind(5, state)
    .bind(6, std::int64_t{entry.open_retries})
    .bind(7, std::int64_t{entry.transfer_retries})
    .bind(8, std::int64_t{entry.attempts})
    .bind(9, std::int64_t{entry.unscheduled_failures})
    .bind(10, entry.first_attempt_at)
    .bind(11, entry.next_attempt_at)
    .bind(12, entry.last_error_code)
    .bind(13, entry.last_error_text)
    .bind(14, std::int64_t{entry.delay_warned ? 1 : 0})
    .bind(15, now);
}

} // namespace

queue_db_error::queue_db_error(const std::string& what, int sqlite_code)
  : std::runtime_error(what), sqlite_code_(sqlite_code) {
}

bool queue_db_error::request_at_fault() const {
  switch (sqlite_code_ & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_NOTFOUND:
      return true;
    default:
      return false;
  }
}

std::unique_ptr<queue_db> queue_db::open(const std::filesystem::path& file,
                                         const char* vfs) {
  // SQLite's memory statistics take a global mutex on every allocation and
  // nothing here reads them. Set before SQLite initializes (the first open).
  [[maybe_unused]] static const bool statistics_off
    = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  sqlite3* handle = nullptr;
  auto rc = sqlite3_open_v2(file.c_str(), &handle,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                              | SQLITE_OPEN_NOMUTEX,
                            vfs);
  if (rc != SQLITE_OK) {
    std::string why = handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    sqlite3_close(handle);
    throw queue_db_error(file.string() + ": " + why, rc);
  }
  std::unique_ptr<queue_db> db{new queue_db(handle)};
  // Messages are kilobytes: 16 KiB pages pack several per page instead of
  // one per 4 KiB page, halving the bytes each commit writes and syncs.
  // Takes effect only when the file is created.
  db->exec("PRAGMA page_size=4096");
  // WAL + synchronous=FULL: every COMMIT fsyncs the log, so an acknowledged
  // write survives a crash or power loss.
  db->exec("PRAGMA journal_mode=WAL");
  db->exec("PRAGMA synchronous=FULL");
  db->exec("PRAGMA busy_timeout=5000");
  // Foreign keys are enforced from here on, not while migrating: a
  // migration that rebuilds a table drops the old one, which would delete
  // the rows referring to it.
  db->migrate();
  db->exec("PRAGMA foreign_keys=ON");
  db->insert_message_ = db->prepare(
    "INSERT INTO messages(id, sender, received_at, size, content, replica_node)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  db->insert_delivery_ = db->prepare(
    "INSERT INTO deliveries(message_id, postoffice, recipients, state,"
    " queued_at, next_attempt_at) VALUES(?1, ?2, ?3, 'queued', ?4, ?4)");
  db->update_delivery_ = db->prepare(
    "UPDATE deliveries SET recipients = ?2, state = ?3, open_retries = ?4,"
    " transfer_retries = ?5, first_attempt_at = ?6, next_attempt_at = ?7,"
    " last_error_code = ?8, last_error_text = ?9, delay_warned = ?10, postoffice = ?11,"
    " attempts = ?12, unscheduled_failures = ?13, in_doubt = ?14 WHERE id = ?1");
  db->mark_in_doubt_ = db->prepare("UPDATE deliveries SET in_doubt = 1 WHERE id = ?1");
  db->set_origin_ = db->prepare("UPDATE deliveries SET origin = ?2 WHERE id = ?1");
  db->select_origin_ = db->prepare("SELECT id FROM deliveries WHERE origin = ?1");
  db->insert_attempt_ = db->prepare(
    "INSERT INTO attempts(delivery_id, at, outcome, code, text)"
    " VALUES(?1, ?2, ?3, ?4, ?5)");
  db->upsert_recipient_ = db->prepare(
    "INSERT INTO recipient_outcomes(delivery_id, recipient, state, code, text, at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(delivery_id, recipient) DO UPDATE SET"
    " state = excluded.state, code = excluded.code, text = excluded.text, at = excluded.at");
  db->select_recipients_ = db->prepare(
    "SELECT recipient, state, code, text, at FROM recipient_outcomes"
    " WHERE delivery_id = ?1 ORDER BY recipient");
  auto select_deliveries_where = [&](const char* condition) {
    return db->prepare((std::string{"SELECT "} + delivery_columns
                        + " FROM deliveries WHERE " + condition + " ORDER BY id")
                         .c_str());
  };
  db->select_unfinished_
    = select_deliveries_where("state NOT IN ('delivered', 'bounced')");
  db->select_deliveries_of_ = select_deliveries_where("message_id = ?1");
  db->select_unfinished_page_ = db->prepare(
    (std::string{"SELECT "} + delivery_columns
     + " FROM deliveries WHERE state NOT IN ('delivered', 'bounced') AND id > ?1"
       " ORDER BY id LIMIT ?2")
      .c_str());
  db->begin_ = db->prepare("BEGIN IMMEDIATE");
  db->commit_ = db->prepare("COMMIT");
  db->savepoint_ = db->prepare("SAVEPOINT request");
  db->release_savepoint_ = db->prepare("RELEASE request");
  db->select_message_ = db->prepare(
    "SELECT sender, content, received_at FROM messages WHERE id = ?1");
  db->select_queued_from_ = db->prepare(
    "SELECT DISTINCT m.id FROM messages m JOIN deliveries d ON d.message_id = m.id"
    " WHERE d.state NOT IN ('delivered', 'bounced')"
    " AND instr(lower(m.sender), lower(?1)) > 0 ORDER BY m.id");
  db->select_attempts_ = db->prepare(
    "SELECT delivery_id, at, outcome, code, text FROM attempts"
    " WHERE delivery_id = ?1 ORDER BY id");
  // Its deliveries, their attempts and recipient outcomes go with it (ON
  // DELETE CASCADE).
  db->delete_message_ = db->prepare("DELETE FROM messages WHERE id = ?1");
  // Ids are microsecond receive times: a message received before ?2 has an
  // id below ?2 * 1,000,000.
  db->select_purge_candidates_ = db->prepare(
    "SELECT id FROM messages WHERE id > ?1 AND id < ?2 * 1000000"
    " AND id < (SELECT max(id) FROM messages) ORDER BY id LIMIT ?3");
  db->delete_finished_ = db->prepare(
    "DELETE FROM messages WHERE id >= ?1 AND id <= ?2 AND NOT EXISTS("
    "SELECT 1 FROM deliveries d WHERE d.message_id = messages.id"
    " AND (d.state != 'delivered' AND d.state != 'bounced'"
    " OR EXISTS(SELECT 1 FROM attempts a WHERE a.delivery_id = d.id AND a.at >= ?3)))");
  db->insert_replica_ = db->prepare(
    "INSERT INTO replicas(node, key, postoffice, recipients, state, open_retries,"
    " transfer_retries, attempts, unscheduled_failures, first_attempt_at, next_attempt_at,"
    " last_error_code, last_error_text, delay_warned, updated_at, sender, received_at,"
    " content, finished) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19) ON CONFLICT(node, key) DO NOTHING");
  db->update_replica_ = db->prepare(
    "UPDATE replicas SET postoffice = ?3, recipients = ?4, state = ?5, open_retries = ?6,"
    " transfer_retries = ?7, attempts = ?8, unscheduled_failures = ?9,"
    " first_attempt_at = ?10, next_attempt_at = ?11, last_error_code = ?12,"
    " last_error_text = ?13, delay_warned = ?14, updated_at = ?15"
    " WHERE node = ?1 AND key = ?2 AND finished = 0");
  db->finish_replica_ = db->prepare(
    "INSERT INTO replicas(node, key, finished, updated_at) VALUES(?1, ?2, 1, ?3)"
    " ON CONFLICT(node, key) DO UPDATE SET finished = 1, content = x'',"
    " updated_at = excluded.updated_at WHERE finished = 0");
  db->select_live_replicas_ = db->prepare(
    "SELECT key, sender, received_at, content, postoffice, recipients, state, open_retries,"
    " transfer_retries, attempts, unscheduled_failures, first_attempt_at, next_attempt_at,"
    " last_error_code, last_error_text, delay_warned FROM replicas"
    " WHERE node = ?1 AND finished = 0 ORDER BY rowid");
  // Its content is in the queue now, as the adopted message's.
  db->mark_replica_adopted_ = db->prepare(
    "UPDATE replicas SET finished = 2, content = x'', adopted_at = ?3, updated_at = ?3"
    " WHERE node = ?1 AND key = ?2");
  db->select_adopted_keys_ = db->prepare(
    "SELECT key FROM replicas WHERE node = ?1 AND finished = 2 ORDER BY key");
  db->delete_done_replicas_ = db->prepare(
    "DELETE FROM replicas WHERE rowid IN (SELECT rowid FROM replicas"
    " WHERE finished != 0 AND updated_at < ?1 LIMIT ?2)");
  return db;
}

queue_db::queue_db(sqlite3* handle) : handle_(handle) {}

queue_db::~queue_db() {
  for (auto* stmt : statements_)
    sqlite3_finalize(stmt);
  sqlite3_close(handle_);
}

int queue_db::schema_version() {
  return std::stoi(single_value("PRAGMA user_version"));
}

void queue_db::migrate() {
  auto version = schema_version();
  if (version > queue_schema_version())
    throw queue_db_error("queue database has schema version "
                           + std::to_string(version) + ", newer than this build's "
                           + std::to_string(queue_schema_version()),
                         SQLITE_ERROR);
  // Runs before open() prepares its statements, begin_ and commit_ among
  // them: exec() only.
  for (; version < queue_schema_version(); ++version) {
    exec("BEGIN IMMEDIATE");
    try {
      exec(queue_migration(version));
      exec(("PRAGMA user_version=" + std::to_string(version + 1)).c_str());
      exec("COMMIT");
    } catch (...) {
      rollback();
      throw;
    }
  }
}

void queue_db::exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(handle_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string why = error ? error : sqlite3_errmsg(handle_);
    sqlite3_free(error);
    throw queue_db_error(why, sqlite3_errcode(handle_));
  }
}

sqlite3_stmt* queue_db::prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(handle_, sql, -1, &stmt, nullptr) != SQLITE_OK)
    throw last_error(handle_);
  statements_.push_back(stmt);
  return stmt;
}

void queue_db::begin() {
  statement{handle_, begin_}.step();
}

void queue_db::commit() {
  statement{handle_, commit_}.step();
}

void queue_db::rollback() {
  // Fails harmlessly when SQLite already rolled back on its own (e.g. on a
  // full disk), which is the state we want anyway.
  sqlite3_exec(handle_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void queue_db::savepoint() {
  statement{handle_, savepoint_}.step();
}

void queue_db::release_savepoint() {
  statement{handle_, release_savepoint_}.step();
}

void queue_db::rollback_to_savepoint() {
  exec("ROLLBACK TO request");
  exec("RELEASE request");
}

std::vector<ledger_entry> queue_db::insert_message(const std::string& id,
                                                   const incoming_message& msg) {
  auto number = parse_message_id(id);
  if (!number)
    throw queue_db_error("malformed queue id " + id, SQLITE_MISMATCH);
  auto row = static_cast<std::int64_t>(*number);
  {
    statement insert{handle_, insert_message_};
    insert.bind(1, row)
      .bind(2, msg.sender)
      .bind(3, msg.received_at)
      .bind(4, static_cast<std::int64_t>(msg.content.size()))
      .bind_blob(5, msg.content)
      .bind(6, msg.replica_node)
      .step();
  }
  std::vector<ledger_entry> created;
  for (const auto& delivery : msg.deliveries) {
    auto recipients = join_recipients(delivery.recipients);
    statement insert{handle_, insert_delivery_};
    insert.bind(1, row)
      .bind(2, delivery.postoffice)
      .bind(3, recipients)
      .bind(4, msg.received_at)
      .step();
    ledger_entry entry;
    entry.delivery_id = sqlite3_last_insert_rowid(handle_);
    entry.message_id = id;
    entry.postoffice = delivery.postoffice;
    entry.recipients = delivery.recipients;
    entry.queued_at = msg.received_at;
    entry.next_attempt_at = msg.received_at;
    entry.replica_node = msg.replica_node;
    created.push_back(std::move(entry));
  }
  return created;
}

std::optional<ledger_entry> queue_db::adopt_delivery(const std::string& id,
                                                    const stored_message& msg,
                                                    ledger_entry entry,
                                                    const std::string& replica_node) {
  {
    statement known{handle_, select_origin_};
    if (known.bind(1, entry.origin).step())
      return std::nullopt;
  }
  incoming_message copy{msg.sender, msg.content, msg.received_at,
                        {{entry.postoffice, entry.recipients}}, replica_node};
  auto created = insert_message(id, copy);
  entry.delivery_id = created.at(0).delivery_id;
  entry.message_id = id;
  entry.queued_at = created.at(0).queued_at;
  entry.replica_node = replica_node;
  if (entry.state == delivery_state::in_flight)
    entry.state = delivery_state::queued;
  update_delivery(entry);
  statement{handle_, set_origin_}.bind(1, entry.delivery_id).bind(2, entry.origin).step();
  return entry;
}

void queue_db::mark_in_doubt(std::int64_t delivery_id) {
  statement{handle_, mark_in_doubt_}.bind(1, delivery_id).step();
}

void queue_db::update_delivery(const ledger_entry& entry) {
  auto recipients = join_recipients(entry.recipients);
  std::string state = to_string(entry.state);
  statement update{handle_, update_delivery_};
  update.bind(1, entry.delivery_id)
    .bind(2, recipients)
    .bind(3, state)
    .bind(4, std::int64_t{entry.open_retries})
    .bind(5, std::int64_t{entry.transfer_retries})
    .bind(6, entry.first_attempt_at)
    .bind(7, entry.next_attempt_at)
    .bind(8, entry.last_error_code)
    .bind(9, entry.last_error_text)
    .bind(10, std::int64_t{entry.delay_warned ? 1 : 0})
    .bind(11, entry.postoffice)
    .bind(12, std::int64_t{entry.attempts})
    .bind(13, std::int64_t{entry.unscheduled_failures})
    .bind(14, std::int64_t{entry.in_doubt ? 1 : 0})
    .step();
  if (sqlite3_changes(handle_) != 1)
    throw queue_db_error("no delivery with id "
                           + std::to_string(entry.delivery_id),
                         SQLITE_NOTFOUND);
}

void queue_db::limit_pages(std::uint32_t max_pages) {
  exec(("PRAGMA max_page_count=" + std::to_string(max_pages)).c_str());
}

void queue_db::insert_attempt(const attempt_record& attempt) {
  statement insert{handle_, insert_attempt_};
  insert.bind(1, attempt.delivery_id)
    .bind(2, attempt.at)
    .bind(3, attempt.outcome)
    .bind(4, attempt.code)
    .bind(5, attempt.text)
    .step();
}

void queue_db::record_recipients(std::int64_t delivery_id,
                                 const std::vector<recipient_record>& records) {
  for (const auto& record : records) {
    std::string state = to_string(record.state);
    statement upsert{handle_, upsert_recipient_};
    upsert.bind(1, delivery_id)
      .bind(2, record.address)
      .bind(3, state)
      .bind(4, record.code)
      .bind(5, record.text)
      .bind(6, record.at)
      .step();
  }
}

std::vector<ledger_entry>
queue_db::select_deliveries(sqlite3_stmt* stmt,
                            std::initializer_list<std::int64_t> parameters) {
  std::vector<ledger_entry> entries;
  statement query{handle_, stmt};
  int index = 0;
  for (auto parameter : parameters)
    query.bind(++index, parameter);
  while (query.step()) {
    ledger_entry entry;
    entry.delivery_id = query.integer(0);
    entry.message_id = format_message_id(static_cast<std::uint64_t>(query.integer(1)));
    entry.postoffice = query.text(2);
    entry.recipients = split_recipients(query.text(3));
    if (!from_string(query.text(4), entry.state))
      throw queue_db_error("delivery " + std::to_string(entry.delivery_id)
                             + " has unknown state " + query.text(4),
                           SQLITE_CORRUPT);
    entry.open_retries = static_cast<std::int32_t>(query.integer(5));
    entry.transfer_retries = static_cast<std::int32_t>(query.integer(6));
    entry.queued_at = query.integer(7);
    entry.first_attempt_at = query.integer(8);
    entry.next_attempt_at = query.integer(9);
    entry.last_error_code = query.text(10);
    entry.last_error_text = query.text(11);
    entry.delay_warned = query.integer(12) != 0;
    entry.origin = query.text(13);
    entry.attempts = static_cast<std::int32_t>(query.integer(14));
    entry.unscheduled_failures = static_cast<std::int32_t>(query.integer(15));
    entry.in_doubt = query.integer(16) != 0;
    entry.replica_node = query.text(17);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::vector<ledger_entry> queue_db::unfinished_deliveries() {
  return select_deliveries(select_unfinished_, {});
}

std::vector<ledger_entry> queue_db::unfinished_deliveries_after(std::int64_t after,
                                                                std::int64_t limit) {
  return select_deliveries(select_unfinished_page_, {after, limit});
}

std::vector<ledger_entry>
queue_db::deliveries_of(const std::string& message_id) {
  auto number = parse_message_id(message_id);
  if (!number)
    return {};
  return select_deliveries(select_deliveries_of_, {static_cast<std::int64_t>(*number)});
}

std::optional<stored_message> queue_db::message(const std::string& id) {
  auto number = parse_message_id(id);
  if (!number)
    return std::nullopt;
  statement query{handle_, select_message_};
  query.bind(1, static_cast<std::int64_t>(*number));
  if (!query.step())
    return std::nullopt;
  return stored_message{id, query.text(0), query.text(1), query.integer(2)};
}

bool queue_db::delete_message(const std::string& id) {
  auto number = parse_message_id(id);
  if (!number)
    return false;
  statement remove{handle_, delete_message_};
  remove.bind(1, static_cast<std::int64_t>(*number)).step();
  return sqlite3_changes(handle_) > 0;
}

// The newest message is never removed: after a restart, queue ids continue
// from the greatest one in the queue, so with it kept a clock set back can
// never issue the id of a removed message again (its maildir file name).
purge_report queue_db::purge_finished(std::int64_t finished_before,
                                      const std::string& after, std::uint32_t limit) {
  std::int64_t after_row = 0;
  if (!after.empty()) {
    auto number = parse_message_id(after);
    if (!number)
      throw queue_db_error("malformed queue id " + after, SQLITE_MISMATCH);
    after_row = static_cast<std::int64_t>(*number);
  }
  purge_report report;
  bool more_replicas = false;
  {
    statement forget{handle_, delete_done_replicas_};
    forget.bind(1, finished_before).bind(2, static_cast<std::int64_t>(limit)).step();
    more_replicas = sqlite3_changes(handle_) == static_cast<int>(limit);
  }
  std::int64_t first = 0;
  std::int64_t last = 0;
  std::uint32_t examined = 0;
  {
    statement candidates{handle_, select_purge_candidates_};
    candidates.bind(1, after_row)
      .bind(2, finished_before)
      .bind(3, static_cast<std::int64_t>(limit));
    for (; candidates.step(); ++examined) {
      last = candidates.integer(0);
      if (examined == 0)
        first = last;
    }
  }
  if (examined == 0) {
    report.more = more_replicas;
    return report;
  }
  statement remove{handle_, delete_finished_};
  remove.bind(1, first).bind(2, last).bind(3, finished_before).step();
  report.last_examined = format_message_id(static_cast<std::uint64_t>(last));
  report.removed = static_cast<std::uint32_t>(sqlite3_changes(handle_));
  report.more = examined == limit || more_replicas;
  return report;
}

void queue_db::insert_replica(const std::string& node, const stored_message& msg,
                              const ledger_entry& entry, std::int64_t now) {
  auto recipients = join_recipients(entry.recipients);
  std::string state = to_string(entry.state);
  statement insert{handle_, insert_replica_};
  bind_replica(insert, node, entry, recipients, state, now);
  insert.bind(16, msg.sender)
    .bind(17, msg.received_at)
    .bind_blob(18, msg.content)
    .bind(19, std::int64_t{finished(entry.state) ? 1 : 0})
    .step();
}

void queue_db::update_replica(const std::string& node, const ledger_entry& entry,
                              std::int64_t now) {
  if (finished(entry.state)) {
    statement{handle_, finish_replica_}.bind(1, node).bind(2, entry.origin).bind(3, now).step();
    return;
  }
  auto recipients = join_recipients(entry.recipients);
  std::string state = to_string(entry.state);
  statement update{handle_, update_replica_};
  bind_replica(update, node, entry, recipients, state, now);
  update.step();
}

std::vector<ledger_entry> queue_db::adopt_replicas(const std::string& node,
                                                   message_id_generator& ids,
                                                   std::int64_t now) {
  // Read first: the adoptions below write to the table the query reads.
  std::vector<std::pair<stored_message, ledger_entry>> live;
  {
    statement query{handle_, select_live_replicas_};
    query.bind(1, node);
    while (query.step()) {
      stored_message msg{"", query.text(1), query.text(3), query.integer(2)};
      ledger_entry entry;
      entry.origin = query.text(0);
      entry.postoffice = query.text(4);
      entry.recipients = split_recipients(query.text(5));
      if (!from_string(query.text(6), entry.state))
        throw queue_db_error("replica " + entry.origin + " of node " + node
                               + " has unknown state " + query.text(6),
                             SQLITE_CORRUPT);
      entry.open_retries = static_cast<std::int32_t>(query.integer(7));
      entry.transfer_retries = static_cast<std::int32_t>(query.integer(8));
      entry.attempts = static_cast<std::int32_t>(query.integer(9));
      entry.unscheduled_failures = static_cast<std::int32_t>(query.integer(10));
      entry.first_attempt_at = query.integer(11);
      entry.next_attempt_at = query.integer(12);
      entry.last_error_code = query.text(13);
      entry.last_error_text = query.text(14);
      entry.delay_warned = query.integer(15) != 0;
      live.emplace_back(std::move(msg), std::move(entry));
    }
  }
  std::vector<ledger_entry> adopted;
  for (auto& [msg, entry] : live) {
    auto key = entry.origin;
    if (auto created = adopt_delivery(ids.next(), msg, std::move(entry), {})) {
      insert_attempt({created->delivery_id, now, "adopted", "",
                      "from node " + node + "'s replica (its delivery key " + key + ")"});
      adopted.push_back(std::move(*created));
    }
    statement{handle_, mark_replica_adopted_}.bind(1, node).bind(2, key).bind(3, now).step();
  }
  return adopted;
}

std::vector<std::string> queue_db::adopted_keys(const std::string& node) {
  std::vector<std::string> keys;
  statement query{handle_, select_adopted_keys_};
  query.bind(1, node);
  while (query.step())
    keys.push_back(query.text(0));
  return keys;
}

std::vector<std::string> queue_db::queued_messages_from(const std::string& sender_part) {
  std::vector<std::string> ids;
  statement query{handle_, select_queued_from_};
  query.bind(1, sender_part);
  while (query.step())
    ids.push_back(format_message_id(static_cast<std::uint64_t>(query.integer(0))));
  return ids;
}

std::vector<attempt_record> queue_db::attempts_of(std::int64_t delivery_id) {
  std::vector<attempt_record> result;
  statement query{handle_, select_attempts_};
  query.bind(1, delivery_id);
  while (query.step())
    result.push_back(attempt_record{query.integer(0), query.integer(1),
                                    query.text(2), query.text(3),
                                    query.text(4)});
  return result;
}

std::vector<recipient_record> queue_db::recipients_of(std::int64_t delivery_id) {
  std::vector<recipient_record> result;
  statement query{handle_, select_recipients_};
  query.bind(1, delivery_id);
  while (query.step()) {
    recipient_record record{query.text(0), recipient_state::deferred, query.text(2),
                            query.text(3), query.integer(4)};
    if (!from_string(query.text(1), record.state))
      throw queue_db_error("delivery " + std::to_string(delivery_id) + " recipient "
                             + record.address + " has unknown state " + query.text(1),
                           SQLITE_CORRUPT);
    result.push_back(std::move(record));
  }
  return result;
}

std::string queue_db::last_message_id() {
  auto last = single_value("SELECT max(id) FROM messages");
  return last.empty() ? last : format_message_id(std::stoull(last));
}

std::string queue_db::integrity_check() {
  return single_value("PRAGMA integrity_check");
}

std::string queue_db::single_value(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(handle_, sql, -1, &stmt, nullptr) != SQLITE_OK)
    throw last_error(handle_);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner{
    stmt, sqlite3_finalize};
  statement query{handle_, stmt};
  return query.step() ? query.text(0) : std::string{};
}

} // namespace postconn
