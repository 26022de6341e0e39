// NAME
//   share_pool -- a bounded pool of threads for blocking file-share I/O.
//
// DESCRIPTION
//   File operations on a network share can hang forever (a dead NFS or SMB
//   server). They run on share workers, each a detached actor with a thread
//   of its own, never on the scheduler. The pool hands each request to an
//   idle worker and queues it while all are busy. A request that a worker
//   has not answered within `hang_limit` is failed, and the worker counts as
//   lost: while fewer than `max_workers` exist, a replacement is started, so
//   one dead share cannot starve the other postoffices. A lost worker that
//   finishes after all is idle again.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

#include "messages/actors.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace postconn {

struct share_pool_options {
  /// Workers started at once.
  std::size_t workers = 8;
  /// Workers at most, replacements of hung ones included.
  std::size_t max_workers = 64;
  /// A request unanswered this long fails and its worker counts as lost.
  std::chrono::seconds hang_limit{300};
  /// Workers get their own thread (the server); tests run them on the
  /// deterministic scheduler.
  bool detached = true;
};

struct share_pool_state {
  /// Workers waiting for a request.
  std::vector<share_worker_actor> idle;
  /// Requests waiting for a worker; each starts itself on the worker given.
  std::deque<std::function<void(const share_worker_actor&)>> waiting;
  /// Every worker started, lost ones included; told to exit with the pool.
  std::vector<share_worker_actor> workers;
  share_pool_options options;

  static inline const char* name = "share_pool";
};

share_pool_actor::behavior_type
share_pool(share_pool_actor::stateful_pointer<share_pool_state> self,
           share_pool_options options);

} // namespace postconn
