// NAME
//   share_pool -- a bounded pool of threads for share I/O (see share_pool.hpp).
#include "actors/share_pool.hpp"

#include <map>

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
  /// Calls put off by an injected slow or hung share, by number.
  std::map<std::uint64_t, std::function<void()>> put_off;
  std::uint64_t next_number = 0;

  static inline const char* name = "share_worker";
};

using worker_ptr = share_worker_actor::stateful_pointer<share_worker_state>;

/// Makes `call` under `fault` and answers with its result, then tells the
/// pool the worker is free. A delayed call (slow) or a hung one (which is
/// never made and answers `hung()` instead) holds the worker meanwhile, as
/// a blocked thread would.
template <class Result, class Call, class Hung>
caf::result<Result> answer(worker_ptr self, const share_pool_actor& pool,
                           const io_fault& fault, Call call, Hung hung) {
  auto free_again = [=] { self->send(pool, done_atom::value, share_worker_actor{self}); };
  if (fault.delay_ms <= 0 && !fault.hang) {
    auto result = call();
    free_again();
    return result;
  }
  auto promise = self->make_response_promise<Result>();
  auto number = self->state.next_number++;
  self->state.put_off.emplace(number, [=]() mutable {
    promise.deliver(fault.hang ? hung() : call());
    free_again();
  });
  self->delayed_send(self, std::chrono::milliseconds(fault.delay_ms), tick_atom::value,
                     number);
  return promise;
}

recipient_outcome maildir_outcome(const maildir_job& job) {
  maildir_message msg{job.delivery_key, job.sender, job.recipient, job.received_header,
                      job.content, std::nullopt};
  if (job.fault.drop)
    msg.cut_off_after = job.content.size() / 2;
  auto result = deliver_to_maildir(job.root, job.create_mailboxes, msg);
  auto kind = result.kind == maildir_result_kind::delivered
                ? recipient_result::delivered
                : result.kind == maildir_result_kind::permanent_failure
                    ? recipient_result::permanent_failure
                    : recipient_result::temporary_failure;
  return recipient_outcome{job.recipient, kind, result.status, result.text, false};
}

std::string hung_text(const io_fault& fault) {
  return "share call hung for " + std::to_string(fault.delay_ms / 1000)
         + "s (fault injection: hang)";
}

share_worker_actor::behavior_type
share_worker(worker_ptr self, share_pool_actor pool) {
  return {
    [=](probe_atom, const probe_job& job) {
      return answer<std::string>(
        self, pool, job.fault,
        [=] {
          auto result = probe_maildir(job.root);
          return result.reachable ? std::string{} : result.problem;
        },
        [=] { return hung_text(job.fault); });
    },
    [=](deliver_atom, const maildir_job& job) {
      return answer<recipient_outcome>(
        self, pool, job.fault, [=] { return maildir_outcome(job); },
        [=] {
          return recipient_outcome{job.recipient, recipient_result::temporary_failure,
                                   "4.3.0", hung_text(job.fault), false};
        });
    },
    [=](deliver_atom, const mail_server_job& job) {
      return answer<mail_server_result>(
        self, pool, job.fault, [=] { return run_mail_server_session(job); },
        [=] {
          mail_server_result result;
          result.problem = hung_text(job.fault);
          for (const auto& msg : job.messages)
            result.outcomes.push_back({msg.delivery_id, false, "4.4.1", result.problem, {}});
          return result;
        });
    },
    [=](tick_atom, std::uint64_t number) {
      auto& put_off = self->state.put_off;
      if (auto i = put_off.find(number); i != put_off.end()) {
        auto call = std::move(i->second);
        put_off.erase(i);
        call();
      }
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
    [=](probe_atom, const probe_job& job) {
      auto promise = self->make_response_promise<std::string>();
      dispatch(self, forward(self, promise, probe_atom::value, job));
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
