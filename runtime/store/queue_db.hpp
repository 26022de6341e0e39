// NAME
//   queue_db -- the SQLite queue database: messages, deliveries (retry
//   ledgers), the attempt log, each recipient's outcome, and the replicas
//   of other nodes' deliveries (cluster.replicas).
//
// DESCRIPTION
//   A plain class with no actor code, owned by the store actor. The database
//   runs in WAL mode with synchronous=FULL, so a COMMIT is fsync'd and
//   survives power loss. The schema is versioned with PRAGMA user_version;
//   open() applies every migration the file has not seen yet, in order.
//   Every failure throws queue_db_error carrying SQLite's message.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "messages/vocabulary.hpp"
#include "runtime/store/message_id.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace postconn {

class queue_db_error : public std::runtime_error {
public:
  /// `sqlite_code` is SQLite's primary result code (SQLITE_FULL, ...).
  queue_db_error(const std::string& what, int sqlite_code);

  int sqlite_code() const {
    return sqlite_code_;
  }

  /// True when the request itself was at fault (a constraint such as a
  /// duplicate id, an unknown delivery), so only it fails. Anything else
  /// (full disk, I/O error) dooms the whole transaction.
  bool request_at_fault() const;

private:
  int sqlite_code_;
};

class queue_db {
public:
  /// Opens (creating if needed) and migrates the database file; `vfs`
  /// names a SQLite VFS (fault-injection tests), nullptr the default.
  static std::unique_ptr<queue_db> open(const std::filesystem::path& file,
                                        const char* vfs = nullptr);

  ~queue_db();
  queue_db(const queue_db&) = delete;
  queue_db& operator=(const queue_db&) = delete;

  /// The schema version stored in the file.
  int schema_version();

  // -- transactions ---------------------------------------------------------

  void begin();
  void commit();
  void rollback();
  /// A nested savepoint, so one failed request does not spoil a batch.
  void savepoint();
  void release_savepoint();
  void rollback_to_savepoint();

  // -- writes (inside a transaction) ---------------------------------------

  /// Inserts a message (with its replica node) and one queued delivery per
  /// postoffice; returns the new deliveries' ledger entries.
  std::vector<ledger_entry> insert_message(const std::string& id,
                                           const incoming_message& msg);
  /// Commits a delivery another node handed over: `msg` under the new
  /// queue id `id` with one delivery carrying `entry`'s recipients, counts
  /// and origin, its replica held by `replica_node` (empty: none). Nothing
  /// when a delivery of that origin is already here (handed over twice);
  /// else the new ledger entry.
  std::optional<ledger_entry> adopt_delivery(const std::string& id, const stored_message& msg,
                                             ledger_entry entry,
                                             const std::string& replica_node);
  /// Stores a ledger entry's mutable fields; throws when it does not exist.
  void update_delivery(const ledger_entry& entry);
  /// Marks a delivery in doubt (ledger_entry::in_doubt) until the next
  /// update_delivery says otherwise; nothing when it does not exist.
  void mark_in_doubt(std::int64_t delivery_id);
  void insert_attempt(const attempt_record& attempt);
  /// Keeps what became of the recipients of a delivery: one row per
  /// address, replaced by a later outcome of the same recipient.
  void record_recipients(std::int64_t delivery_id,
                         const std::vector<recipient_record>& records);
  /// Removes a message with its deliveries, their attempts and recipient
  /// outcomes; false when there is no such message.
  bool delete_message(const std::string& id);

  /// Removes finished messages: of at most `limit` messages after the queue
  /// id `after` (all when empty) and received before `finished_before`
  /// (Unix seconds), those whose every delivery is delivered or bounced
  /// with no attempt at or after that time, with their deliveries,
  /// attempts and recipient outcomes. The newest message always stays (see the definition).
  /// Also removes up to `limit` replicas finished or adopted before
  /// `finished_before`; the report says `more` when either limit was met.
  purge_report purge_finished(std::int64_t finished_before, const std::string& after,
                              std::uint32_t limit);

  // -- replicas (cluster.replicas), keyed by node and delivery key ---------
  //
  // `now` is the Unix time of the change; finished and adopted replicas
  // stay until purge_finished's cutoff passes it: a tombstone keeps a late
  // replica dropped, an adopted key tells a returning node what it lost.

  /// Keeps the replica of a delivery `node` holds (key: entry.origin).
  /// Nothing when that key is here already: a retry after a lost reply, or
  /// a delivery that finished before its replica came.
  void insert_replica(const std::string& node, const stored_message& msg,
                      const ledger_entry& entry, std::int64_t now);
  /// Brings the replica of `node`'s delivery entry.origin up to date: a
  /// delivered or bounced entry finishes it (its content dropped; a
  /// tombstone when it has not come yet), another updates its state,
  /// counts, times, errors, postoffice and recipients (nothing when it has
  /// not come). An adopted replica stays as it is.
  void update_replica(const std::string& node, const ledger_entry& entry, std::int64_t now);
  /// `node` is gone: each of its live replicas becomes a delivery of this
  /// queue under a new id from `ids` (counts kept, origin = its key, no
  /// replica node), with an "adopted" line in its attempt log, and is
  /// marked adopted. A key already here as an origin is marked adopted
  /// without a second delivery. Returns the new deliveries.
  std::vector<ledger_entry> adopt_replicas(const std::string& node, message_id_generator& ids,
                                           std::int64_t now);

  /// Caps the file at `max_pages` pages (SQLite's max_page_count), so
  /// writes beyond it fail as on a full disk. Fault-injection tests use it.
  void limit_pages(std::uint32_t max_pages);

  // -- reads ----------------------------------------------------------------

  /// Deliveries neither delivered nor bounced, oldest first.
  std::vector<ledger_entry> unfinished_deliveries();
  /// At most `limit` of them with an id above `after`, in id order: a large
  /// queue read page by page.
  std::vector<ledger_entry> unfinished_deliveries_after(std::int64_t after,
                                                        std::int64_t limit);
  std::vector<ledger_entry> deliveries_of(const std::string& message_id);
  std::optional<stored_message> message(const std::string& id);
  std::vector<attempt_record> attempts_of(std::int64_t delivery_id);
  /// The latest outcome of each recipient of a delivery, by address.
  std::vector<recipient_record> recipients_of(std::int64_t delivery_id);
  /// Ids of the messages with unfinished deliveries whose sender contains
  /// `sender_part`, in any case.
  std::vector<std::string> queued_messages_from(const std::string& sender_part);
  /// The keys of `node`'s replicas adopted here, in key order.
  std::vector<std::string> adopted_keys(const std::string& node);
  /// The greatest message id in the queue, or "" when it is empty.
  std::string last_message_id();
  /// PRAGMA integrity_check: "ok" or the first problem found.
  std::string integrity_check();

private:
  explicit queue_db(sqlite3* handle);
  void exec(const char* sql);
  void migrate();
  sqlite3_stmt* prepare(const char* sql);
  /// Runs a delivery query, binding ?1, ?2, ... to `parameters`.
  std::vector<ledger_entry>
  select_deliveries(sqlite3_stmt* stmt, std::initializer_list<std::int64_t> parameters);
  /// First column of the first row of a one-off query, as text.
  std::string single_value(const char* sql);

  sqlite3* handle_;
  /// Prepared statements, finalized in the destructor.
  std::vector<sqlite3_stmt*> statements_;
  sqlite3_stmt* insert_message_ = nullptr;
  sqlite3_stmt* insert_delivery_ = nullptr;
  sqlite3_stmt* update_delivery_ = nullptr;
  sqlite3_stmt* mark_in_doubt_ = nullptr;
  sqlite3_stmt* insert_attempt_ = nullptr;
  sqlite3_stmt* upsert_recipient_ = nullptr;
  sqlite3_stmt* select_recipients_ = nullptr;
  sqlite3_stmt* set_origin_ = nullptr;
  sqlite3_stmt* select_origin_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* savepoint_ = nullptr;
  sqlite3_stmt* release_savepoint_ = nullptr;
  sqlite3_stmt* select_unfinished_ = nullptr;
  sqlite3_stmt* select_unfinished_page_ = nullptr;
  sqlite3_stmt* select_deliveries_of_ = nullptr;
  sqlite3_stmt* select_message_ = nullptr;
  sqlite3_stmt* delete_message_ = nullptr;
  sqlite3_stmt* select_purge_candidates_ = nullptr;
  sqlite3_stmt* delete_finished_ = nullptr;
  sqlite3_stmt* select_attempts_ = nullptr;
  sqlite3_stmt* select_queued_from_ = nullptr;
  sqlite3_stmt* insert_replica_ = nullptr;
  sqlite3_stmt* finish_replica_ = nullptr;
  sqlite3_stmt* update_replica_ = nullptr;
  sqlite3_stmt* select_live_replicas_ = nullptr;
  sqlite3_stmt* mark_replica_adopted_ = nullptr;
  sqlite3_stmt* select_adopted_keys_ = nullptr;
  sqlite3_stmt* delete_done_replicas_ = nullptr;
};

} // namespace postconn
