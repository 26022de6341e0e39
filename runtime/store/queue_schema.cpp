// NAME
//   queue_schema -- the queue database's schema migrations (see queue_schema.hpp).
#include "runtime/store/queue_schema.hpp"

#include <iterator>

namespace postconn {

namespace {

/// Schema migrations; entry i takes the file from version i to i + 1.
/// Never edit a released entry: append a new one.
const char* const migrations[] = {
  // 1: messages, deliveries (the retry ledger) and the attempt log. A queue
  // id is stored as the integer its hex digits spell: it is the rowid.
  R"sql(
  CREATE TABLE messages(
    id          INTEGER PRIMARY KEY,
    sender      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    content     BLOB NOT NULL);
  CREATE TABLE deliveries(
    id               INTEGER PRIMARY KEY,
    message_id       INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    postoffice       TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK(state IN ('queued', 'in_flight',
                       'deferred', 'delivered', 'bounced', 'held')),
    open_retries     INTEGER NOT NULL DEFAULT 0,
    transfer_retries INTEGER NOT NULL DEFAULT 0,
    queued_at        INTEGER NOT NULL,
    first_attempt_at INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error_code  TEXT NOT NULL DEFAULT '',
    last_error_text  TEXT NOT NULL DEFAULT '',
    delay_warned     INTEGER NOT NULL DEFAULT 0);
  CREATE INDEX deliveries_by_message ON deliveries(message_id);
  CREATE INDEX deliveries_unfinished ON deliveries(state)
    WHERE state NOT IN ('delivered', 'bounced');
  CREATE TABLE attempts(
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    code        TEXT NOT NULL,
    text        TEXT NOT NULL);
  CREATE INDEX attempts_by_delivery ON attempts(delivery_id);
  )sql",
  // 2: the delivery key a delivery handed over by another node had there,
  // unique, so a delivery handed over twice is committed once.
  R"sql(
  ALTER TABLE deliveries ADD COLUMN origin TEXT NOT NULL DEFAULT '';
  CREATE UNIQUE INDEX deliveries_by_origin ON deliveries(origin) WHERE origin != '';
  )sql",
  // 3: the state check as comparisons. SQLite evaluates `state IN (six
  // values)` by building a temporary b-tree of the six on every insert and
  // every state change: a third of the CPU an accepted message cost. A
  // CHECK cannot be altered, so the table is rebuilt (foreign keys are off
  // while migrating, so dropping the old table leaves the attempts alone).
  R"sql(
  CREATE TABLE deliveries_v3(
    id               INTEGER PRIMARY KEY,
    message_id       INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    postoffice       TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK(state = 'queued' OR state = 'in_flight'
                       OR state = 'deferred' OR state = 'delivered'
                       OR state = 'bounced' OR state = 'held'),
    open_retries     INTEGER NOT NULL DEFAULT 0,
    transfer_retries INTEGER NOT NULL DEFAULT 0,
    queued_at        INTEGER NOT NULL,
    first_attempt_at INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error_code  TEXT NOT NULL DEFAULT '',
    last_error_text  TEXT NOT NULL DEFAULT '',
    delay_warned     INTEGER NOT NULL DEFAULT 0,
    origin           TEXT NOT NULL DEFAULT '');
  INSERT INTO deliveries_v3 SELECT id, message_id, postoffice, recipients, state,
    open_retries, transfer_retries, queued_at, first_attempt_at, next_attempt_at,
    last_error_code, last_error_text, delay_warned, origin FROM deliveries;
  DROP TABLE deliveries;
  ALTER TABLE deliveries_v3 RENAME TO deliveries;
  CREATE INDEX deliveries_by_message ON deliveries(message_id);
  CREATE INDEX deliveries_unfinished ON deliveries(state)
    WHERE state NOT IN ('delivered', 'bounced');
  CREATE UNIQUE INDEX deliveries_by_origin ON deliveries(origin) WHERE origin != '';
  )sql",
  // 4: the attempts a delivery has made (opens tried), so the NDR, the
  // ledger and the log count the same. Counted from the attempt log for
  // the deliveries already queued: the lines of attempts since the last
  // requeue, which starts the count again.
  R"sql(
  ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
  UPDATE deliveries SET attempts = (SELECT count(*) FROM attempts a
    WHERE a.delivery_id = deliveries.id
    AND a.outcome IN ('open_failed', 'transfer_failed', 'delivered', 'rejected')
    AND a.id > coalesce((SELECT max(r.id) FROM attempts r
                         WHERE r.delivery_id = deliveries.id AND r.outcome = 'requeued'), 0));
  )sql",
  // 5: what became of each recipient of a delivery (delivered, deferred,
  // bounced, with the code and reply), one row per recipient holding its
  // latest outcome; removed with the delivery.
  R"sql(
  CREATE TABLE recipient_outcomes(
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    recipient   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK(state = 'delivered' OR state = 'deferred'
                  OR state = 'bounced'),
    code        TEXT NOT NULL,
    text        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY(delivery_id, recipient)) WITHOUT ROWID;
  )sql",
  // 6: attempts made ahead of schedule (a flush, a release, the postoffice's
  // recovery) that failed, which use no retry and are counted apart.
  R"sql(
  ALTER TABLE deliveries ADD COLUMN unscheduled_failures INTEGER NOT NULL DEFAULT 0;
  )sql",
  // 7: deliveries an attempt opened and may have delivered, whose outcome
  // is not recorded yet (set as the attempt reads its messages).
  R"sql(
  ALTER TABLE deliveries ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
  )sql",
  // 8: cluster.replicas. Each message names the node holding the replica
  // of its deliveries; `replicas` holds the replicas of other nodes'
  // deliveries, by node and delivery key. finished: 0 live, 1 its delivery
  // finished at its node (a tombstone when the replica never came, so a
  // late one stays dropped), 2 adopted here. A rowid table, not WITHOUT
  // ROWID: its rows carry whole messages, which SQLite keeps better out
  // of the key's b-tree.
  R"sql(
  ALTER TABLE messages ADD COLUMN replica_node TEXT NOT NULL DEFAULT '';
  CREATE TABLE replicas(
    node                 TEXT NOT NULL,
    key                  TEXT NOT NULL,
    sender               TEXT NOT NULL DEFAULT '',
    received_at          INTEGER NOT NULL DEFAULT 0,
    content              BLOB NOT NULL DEFAULT x'',
    postoffice           TEXT NOT NULL DEFAULT '',
    recipients           TEXT NOT NULL DEFAULT '',
    state                TEXT NOT NULL DEFAULT 'queued',
    open_retries         INTEGER NOT NULL DEFAULT 0,
    transfer_retries     INTEGER NOT NULL DEFAULT 0,
    attempts             INTEGER NOT NULL DEFAULT 0,
    unscheduled_failures INTEGER NOT NULL DEFAULT 0,
    first_attempt_at     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER NOT NULL DEFAULT 0,
    last_error_code      TEXT NOT NULL DEFAULT '',
    last_error_text      TEXT NOT NULL DEFAULT '',
    delay_warned         INTEGER NOT NULL DEFAULT 0,
    finished             INTEGER NOT NULL DEFAULT 0
                           CHECK(finished = 0 OR finished = 1 OR finished = 2),
    adopted_at           INTEGER NOT NULL DEFAULT 0,
    updated_at           INTEGER NOT NULL,
    UNIQUE(node, key));
  CREATE INDEX replicas_live ON replicas(node) WHERE finished = 0;
  CREATE INDEX replicas_done ON replicas(updated_at) WHERE finished != 0;
  )sql",
};

} // namespace

int queue_schema_version() {
  return static_cast<int>(std::size(migrations));
}

const char* queue_migration(int version) {
  return migrations[version];
}

} // namespace postconn
