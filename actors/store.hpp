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
//   A reserve of disk space (store_options::min_free_space) is kept for
//   what the queue must still write about mail it already holds: before
//   each commit with new mail the store looks at the free space, and below
//   the reserve new mail (accept) fails with store_errc::low_space while
//   ledger changes, DSNs, adoptions and removals go on. It is low until
//   the free space is back above 110 % of the reserve (looked at every
//   space_recheck meanwhile); the listener hears every crossing.
//
//   The listener (the supervisor) also hears of the deliveries every
//   durable write creates -- new mail, adopted handoffs, NDRs, adopted
//   replicas -- before the writer is answered: the one way new deliveries
//   reach the ledger. Deliveries with a replica node (cluster.replicas)
//   are the exception: whoever committed their replica announces them, so
//   none is attempted before its replica exists.
//
//   In the server the store runs detached (its own thread: fsync blocks);
//   tests spawn it on the deterministic scheduler.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages/actors.hpp"
#include "messages/unix_clock.hpp"
#include "runtime/store/message_id.hpp"
#include "runtime/store/queue_db.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace postconn {

struct store_options {
  /// Writes per transaction at most; 1 means one fsync per request.
  std::size_t max_batch = 4096;
  /// Bytes of the queue's disk kept free for the mail already queued; 0:
  /// no reserve.
  std::uint64_t min_free_space = 0;
  /// The bytes free on the queue's disk now; nothing when it cannot tell.
  std::function<std::optional<std::uint64_t>()> free_space;
  /// Unix time when the store starts, for the times it writes of replicas
  /// (tests fix it).
  unix_time_origin origin = unix_time_origin::now();
};

/// A write request waiting for the next commit.
struct pending_write {
  /// Applies the request inside the open transaction; throws on failure.
  std::function<void(queue_db&)> apply;
  /// Answers the requester once the outcome is known: an empty error means
  /// the write is durable.
  std::function<void(const caf::error&)> answer;
  /// New mail: refused while the disk is below its reserve.
  bool new_mail = false;
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
  /// Unix time, from options.origin on the actor clock.
  unix_clock clock;
  store_status counters;
  /// The queue's disk is below its reserve: new mail is refused.
  bool space_low = false;
  /// Hears of new deliveries, and when the disk falls below its reserve
  /// or is back above it.
  store_listener_actor listener;
  /// A space_atom is on its way to look at the free space again.
  bool space_recheck_pending = false;
  /// How often the free space is looked at again while it is low.
  static constexpr std::chrono::seconds space_recheck{5};

  /// Counts one commit in the latency histogram.
  void note_commit_latency(double seconds);

  /// Runs up to options.max_batch pending writes in one transaction and
  /// answers them (new mail at once with store_errc::low_space while the
  /// disk is below its reserve). Returns the number of writes handled.
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
