// NAME
//   store -- the durable queue actor: the only owner of the queue database.
//
// DESCRIPTION
//   Writes (accept a message, record a ledger change) are group-committed:
//   each write is queued with its response promise, and a commit marker the
//   store sends itself lands behind every request already in its mailbox;
//   if more arrived behind it meanwhile, it goes round again (a few times
//   at most). Then all queued writes run in one transaction, the
//   transaction commits with one fsync, and only then is every requester
//   answered. A write at fault (a constraint) fails alone: the batch is
//   then run again with each write in its own savepoint. If
//   the commit fails (disk full, I/O error) every write of the batch is
//   answered with store_errc::commit_failed and nothing of it is kept.
//
//   In the server the store runs detached (its own thread: fsync blocks);
//   tests spawn it on the deterministic scheduler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "messages/actors.hpp"
#include "runtime/message_id.hpp"
#include "runtime/queue_db.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace postconn {

struct store_options {
  /// Writes per transaction at most; 1 means one fsync per request.
  std::size_t max_batch = 4096;
};

/// A write request waiting for the next commit.
struct pending_write {
  /// Applies the request inside the open transaction; throws on failure.
  std::function<void(queue_db&)> apply;
  /// Answers the requester once the outcome is known: an empty error means
  /// the write is durable.
  std::function<void(const caf::error&)> answer;
};

struct store_state {
  /// The queue database, used only by this actor.
  std::shared_ptr<queue_db> db;
  /// Issues queue ids for accepted messages.
  message_id_generator ids;
  /// Writes received since the last commit, in arrival order.
  std::vector<pending_write> pending;
  /// A commit marker is in the mailbox.
  bool commit_scheduled = false;
  /// Times the marker went round again to collect writes that arrived
  /// behind it; bounded so a steady stream of writes cannot hold back a
  /// commit.
  int marker_passes = 0;
  static constexpr int max_marker_passes = 4;
  /// Messages one purge request looks at, at most: the commit it joins
  /// stays a few milliseconds longer, not seconds.
  static constexpr std::uint32_t purge_limit = 256;
  store_options options;
  store_status counters;

  /// Counts one commit in the latency histogram.
  void note_commit_latency(double seconds);

  /// Runs up to options.max_batch pending writes in one transaction and
  /// answers them. Returns the number of writes handled.
  std::size_t commit_pending();

  /// Applies and commits `batch`. With `isolate`, each write runs in its own
  /// savepoint and a write at fault fails alone (its outcome is set);
  /// without, the first write at fault rolls everything back and the result
  /// is false. Other errors throw.
  bool run_transaction(std::vector<pending_write>& batch,
                       std::vector<caf::error>& outcomes, bool isolate);

  static inline const char* name = "store";
};

store_actor::behavior_type
store(store_actor::stateful_pointer<store_state> self,
      std::shared_ptr<queue_db> db, store_options options);

/// Spawns the store; `detached` gives it a thread of its own (the server),
/// without it the store runs on the scheduler (deterministic tests).
store_actor spawn_store(caf::actor_system& sys, std::shared_ptr<queue_db> db,
                        store_options options, bool detached);

} // namespace postconn
