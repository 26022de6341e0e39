// NAME
//   share_pool -- a bounded pool of threads for blocking file-share I/O.
//
// DESCRIPTION
//   File operations on a network share can hang forever (a dead NFS or SMB
//   server). They run on share workers, each a detached actor with a thread
//   of its own, never on the scheduler. The pool hands each call to an idle
//   worker while fewer than `workers` are on quick calls, and queues it
//   otherwise (more threads would not run quick calls sooner on a few
//   CPUs, and idle ones can end). A queued call does not wait
//   long behind stuck workers (on one call for `grow_after`): while calls
//   wait, the pool starts workers (up to `max_workers`) until `workers` of
//   them are not stuck, so a worker stuck on a dead share never delays the
//   calls of other postoffices while the pool can grow, and a burst of quick
//   calls (100,000 postoffices probing as they start) is queued instead of
//   growing the pool to its limit. An idle worker ends after `idle_limit`
//   while more than `workers` are not stuck. A postoffice with `calls_per_postoffice` calls
//   unanswered gets "share busy" at once instead of hanging one more worker,
//   so one dead share holds a bounded number of threads. A call unanswered
//   after `hang_limit` is logged and failed; its worker stays counted until
//   it returns. One timer at a time serves all three rules (no timeout per
//   call: CAF 0.17 keeps a request's timeout in its clock until it is due,
//   answered or not).
//
//   Besides file-share calls, the workers run the SMTP/LMTP sessions with
//   blocking sockets. A session can be opened first and given its messages
//   after: the worker that opened it holds it (and stays busy) until the
//   postoffice's batch comes through the pool, or held_session_limit
//   passes. After its batch a sound connection is kept open for the next
//   batch to the same server (runtime/delivery/mail_server_cache, as
//   Postfix's connection cache), by whichever worker opens one next; the
//   pool's timer closes those kept too long.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/actor_clock.hpp>
#include <caf/error.hpp>

#include "messages/actors.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace postconn {

class mail_server_cache;

struct share_pool_options {
  /// Workers started at once.
  std::size_t workers = 8;
  /// Workers at most, hung ones included.
  std::size_t max_workers = 256;
  /// A worker on one call this long is stuck: while calls wait, workers
  /// are started until `workers` are not.
  std::chrono::milliseconds grow_after{100};
  /// An idle worker ends after this long while more than `workers` are not
  /// stuck.
  std::chrono::seconds idle_limit{60};
  /// Calls of one postoffice unanswered at most (its transfers and a probe).
  std::size_t calls_per_postoffice = 6;
  /// A call unanswered this long is failed and logged.
  std::chrono::seconds hang_limit{300};
  /// Workers get their own thread (the server); tests run them on the
  /// deterministic scheduler.
  bool detached = true;
};

/// A call waiting for a worker; it starts itself on the worker given.
using share_request = std::function<void(const share_worker_actor&)>;

struct share_pool_state {
  /// A worker waiting for a call, and since when.
  struct idle_worker {
    share_worker_actor worker;
    caf::actor_clock::time_point since;
  };
  /// A worker on a call (or holding an opened session).
  struct busy_worker {
    /// The postoffice it serves.
    caf::actor_addr client;
    /// When its call started.
    caf::actor_clock::time_point since;
    /// Numbers the call, so a late answer of a failed one is dropped.
    std::uint64_t call = 0;
    /// Fails the call (hang_limit); empty once it is answered or failed.
    std::function<void(caf::error)> fail;
  };
  /// Workers waiting for a call; the longest idle first.
  std::vector<idle_worker> idle;
  /// Calls waiting for a worker, with the postoffice that made them.
  struct waiting_call {
    caf::actor_addr client;
    share_request request;
  };
  std::deque<waiting_call> waiting;
  /// Every worker started and not ended; told to exit with the pool.
  std::vector<share_worker_actor> workers;
  /// The busy workers, by address.
  std::map<caf::actor_addr, busy_worker> busy;
  /// Calls taken and not yet answered by a worker, per postoffice.
  std::map<caf::actor_addr, std::size_t> calls_by_client;
  /// The worker holding each postoffice's opened SMTP/LMTP session.
  std::map<caf::actor_addr, share_worker_actor> sessions;
  /// SMTP/LMTP connections kept between batches, shared with the workers.
  std::shared_ptr<mail_server_cache> kept_connections;
  /// Numbers the calls.
  std::uint64_t calls = 0;
  /// When the pending tick is due; max() when none is.
  caf::actor_clock::time_point next_tick = caf::actor_clock::time_point::max();
  share_pool_options options;

  static inline const char* name = "share_pool";
};

share_pool_actor::behavior_type
share_pool(share_pool_actor::stateful_pointer<share_pool_state> self,
           share_pool_options options);

} // namespace postconn
