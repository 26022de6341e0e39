// NAME
//   share_pool -- a bounded pool of threads for share I/O (see share_pool.hpp).
#include "actors/share_pool.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/mail_server_session.hpp"
#include "runtime/maildir.hpp"

namespace postconn {

namespace {

using pool_ptr = share_pool_actor::stateful_pointer<share_pool_state>;

struct share_worker_state {
  static inline const char* name = "share_worker";
};

share_worker_actor::behavior_type
share_worker(share_worker_actor::stateful_pointer<share_worker_state> self,
             share_pool_actor pool) {
  return {
    [=](probe_atom, const std::string& root) {
      auto result = probe_maildir(root);
      self->send(pool, done_atom::value, share_worker_actor{self});
      return result.reachable ? std::string{} : result.problem;
    },
    [=](deliver_atom, const maildir_job& job) {
      auto result = deliver_to_maildir(
        job.root, job.create_mailboxes,
        maildir_message{job.delivery_key, job.sender, job.recipient,
                        job.received_header, job.content});
      self->send(pool, done_atom::value, share_worker_actor{self});
      auto kind = result.kind == maildir_result_kind::delivered
                    ? recipient_result::delivered
                    : result.kind == maildir_result_kind::permanent_failure
                        ? recipient_result::permanent_failure
                        : recipient_result::temporary_failure;
      return recipient_outcome{job.recipient, kind, result.status, result.text, false};
    },
    [=](deliver_atom, const mail_server_job& job) {
      auto result = run_mail_server_session(job);
      self->send(pool, done_atom::value, share_worker_actor{self});
      return result;
    },
  };
}

void start_worker(pool_ptr self) {
  auto& st = self->state;
  auto pool = share_pool_actor{self};
  auto worker = st.options.detached ? self->spawn<caf::detached>(share_worker, pool)
                                    : self->spawn(share_worker, pool);
  st.workers.push_back(worker);
  st.idle.push_back(worker);
}

/// Runs `request` on an idle worker now, or queues it.
void dispatch(pool_ptr self, std::function<void(const share_worker_actor&)> request) {
  auto& st = self->state;
  if (st.idle.empty()) {
    st.waiting.push_back(std::move(request));
    return;
  }
  auto worker = st.idle.back();
  st.idle.pop_back();
  request(worker);
}

/// Forwards one request to `worker`, answering `promise` with its reply.
template <class Result, class... Ts>
std::function<void(const share_worker_actor&)>
forward(pool_ptr self, caf::typed_response_promise<Result> promise, Ts... xs) {
  return [=](const share_worker_actor& worker) mutable {
    self->request(worker, self->state.options.hang_limit, xs...)
      .then([=](Result& result) mutable { promise.deliver(std::move(result)); },
            [=](caf::error& err) mutable {
              if (err == caf::sec::request_timeout) {
                auto& st = self->state;
                spdlog::warn("share pool: a worker hung for over {}s ({} of {} started)",
                             st.options.hang_limit.count(), st.workers.size(),
                             st.options.max_workers);
                if (st.workers.size() < st.options.max_workers) {
                  start_worker(self);
                  if (!st.waiting.empty()) {
                    auto next = std::move(st.waiting.front());
                    st.waiting.pop_front();
                    dispatch(self, std::move(next));
                  }
                }
              }
              promise.deliver(std::move(err));
            });
  };
}

} // namespace

share_pool_actor::behavior_type
share_pool(share_pool_actor::stateful_pointer<share_pool_state> self,
           share_pool_options options) {
  self->state.options = options;
  for (std::size_t i = 0; i < options.workers; ++i)
    start_worker(self);
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    for (const auto& worker : self->state.workers)
      self->send_exit(worker, msg.reason);
    self->quit(msg.reason);
  });
  return {
    [=](probe_atom, const std::string& root) {
      auto promise = self->make_response_promise<std::string>();
      dispatch(self, forward(self, promise, probe_atom::value, root));
      return promise;
    },
    [=](deliver_atom, const maildir_job& job) {
      auto promise = self->make_response_promise<recipient_outcome>();
      dispatch(self, forward(self, promise, deliver_atom::value, job));
      return promise;
    },
    [=](deliver_atom, const mail_server_job& job) {
      auto promise = self->make_response_promise<mail_server_result>();
      dispatch(self, forward(self, promise, deliver_atom::value, job));
      return promise;
    },
    [=](done_atom, const share_worker_actor& worker) {
      auto& st = self->state;
      if (st.waiting.empty()) {
        st.idle.push_back(worker);
        return;
      }
      auto next = std::move(st.waiting.front());
      st.waiting.pop_front();
      next(worker);
    },
  };
}

} // namespace postconn
