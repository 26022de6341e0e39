// NAME
//   share_pool -- a bounded pool of threads for blocking file-share I/O.
//
// DESCRIPTION
//   File operations on a network share can hang forever (a dead NFS or SMB
//   server). They run on share workers, each a detached actor with a thread
//   of its own, never on the scheduler. The pool hands each call to an idle
//   worker, starts a new one when none is idle (up to `max_workers`), and
//   queues the call only when all exist and are busy: a worker stuck on a
//   dead share never delays the calls of other postoffices while the pool
//   can grow. A postoffice with `calls_per_postoffice` calls unanswered gets
//   "share busy" at once instead of hanging one more worker, so one dead
//   share holds a bounded number of threads. A call unanswered after
//   `hang_limit` is logged and failed; its worker stays counted until it
//   returns.
//
//   Besides file-share calls, the workers run the SMTP/LMTP sessions with
//   blocking sockets. A session can be opened first and given its messages
//   after: the worker that opened it holds it (and stays busy) until the
//   postoffice's batch comes through the pool, or held_session_limit
//   passes.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include <caf/actor_addr.hpp>

#include "messages/actors.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace postconn {

struct share_pool_options {
  /// Workers started at once.
  std::size_t workers = 8;
  /// Workers at most, hung ones included.
  std::size_t max_workers = 256;
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
  /// Workers waiting for a call.
  std::vector<share_worker_actor> idle;
  /// Calls waiting for a worker, with the postoffice that made them.
  struct waiting_call {
    caf::actor_addr client;
    share_request request;
  };
  std::deque<waiting_call> waiting;
  /// Every worker started; told to exit with the pool.
  std::vector<share_worker_actor> workers;
  /// The postoffice each busy worker serves.
  std::map<caf::actor_addr, caf::actor_addr> client_of;
  /// Calls taken and not yet answered by a worker, per postoffice.
  std::map<caf::actor_addr, std::size_t> calls_by_client;
  /// The worker holding each postoffice's opened SMTP/LMTP session.
  std::map<caf::actor_addr, share_worker_actor> sessions;
  share_pool_options options;

  static inline const char* name = "share_pool";
};

share_pool_actor::behavior_type
share_pool(share_pool_actor::stateful_pointer<share_pool_state> self,
           share_pool_options options);

} // namespace postconn
