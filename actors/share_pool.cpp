// NAME
//   share_pool -- a bounded pool of threads for share I/O (see share_pool.hpp).
#include "actors/share_pool.hpp"

#include <algorithm>
#include <map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/delivery/mail_server_cache.hpp"
#include "runtime/delivery/mail_server_session.hpp"
#include "runtime/delivery/maildir.hpp"

namespace postconn {

namespace {

using pool_ptr = share_pool_actor::stateful_pointer<share_pool_state>;

struct share_worker_state {
  /// Calls put off by an injected slow or hung share, by number.
  std::map<std::uint64_t, std::function<void()>> put_off;
  std::uint64_t next_number = 0;
  /// An opened SMTP/LMTP session waiting for its batch; the worker is not
  /// free while it holds one.
  std::unique_ptr<mail_server_connection> held;
  /// Numbers the held session, so an expiry finds the one it was set for.
  std::uint64_t held_number = 0;
  /// The held session's key in kept_connections.
  std::string held_key;
  std::shared_ptr<mail_server_cache> kept_connections;

  static inline const char* name = "share_worker";
};

using worker_ptr = share_worker_actor::stateful_pointer<share_worker_state>;

/// Makes `call` under `fault` and answers with its result, then tells the
/// pool the worker is free (in that order: the pool drops an answer that
/// comes after the worker's call ended). A delayed call (slow) or a hung
/// one (which is never made and answers `hung()` instead) holds the worker
/// meanwhile, as a blocked thread would.
template <class Result, class Call, class Hung>
caf::result<Result> answer(worker_ptr self, const share_pool_actor& pool,
                           const io_fault& fault, Call call, Hung hung) {
  auto free_again = [=] {
    if (!self->state.held)
      self->send(pool, done_atom::value, share_worker_actor{self});
  };
  auto promise = self->make_response_promise<Result>();
  if (fault.delay_ms <= 0 && !fault.hang) {
    promise.deliver(call());
    free_again();
    return promise;
  }
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

/// Opens a session for a batch to come, or takes a kept one that still
/// answers; an opened one is held, and closed if its batch has not come
/// within held_session_limit.
mail_server_opening open_session(worker_ptr self, const mail_server_job& job) {
  auto& st = self->state;
  auto key = mail_server_cache::key_of(job);
  auto connection = st.kept_connections->take(key, mail_server_cache::clock::now());
  if (!connection || !connection->still_open(job))
    connection = std::make_unique<mail_server_connection>(job);
  mail_server_opening opening{connection->opened(), connection->problem(),
                              connection->refusal_status(), connection->tls()};
  if (!opening.opened)
    return opening;
  st.held = std::move(connection);
  st.held_key = std::move(key);
  auto number = ++st.held_number;
  self->delayed_send(self, held_session_limit, expire_atom::value, number);
  return opening;
}

/// Sends the batch over the held session, then keeps it for the next batch
/// to that server when it is still sound.
mail_server_result send_batch(worker_ptr self, const share_pool_actor& pool,
                              std::vector<outgoing_mail> batch) {
  auto& st = self->state;
  mail_server_result result;
  if (st.held) {
    result = st.held->deliver_and_keep(std::move(batch));
    if (st.held->kept())
      st.kept_connections->park(st.held_key, std::move(st.held),
                                mail_server_cache::clock::now());
    st.held.reset();
  } else {
    result.opened = true;
    for (const auto& msg : batch) {
      delivery_outcome outcome{msg.delivery_id, true, "", "", {}};
      for (const auto& rcpt : msg.recipients)
        outcome.recipients.push_back({rcpt, recipient_result::temporary_failure, "4.4.2",
                                      "session closed before its messages came", false});
      result.outcomes.push_back(std::move(outcome));
    }
  }
  self->send(pool, done_atom::value, share_worker_actor{self});
  return result;
}

std::string hung_text(const io_fault& fault) {
  return "share call hung for " + std::to_string(fault.delay_ms / 1000)
         + "s (fault injection: hang)";
}

share_worker_actor::behavior_type
share_worker(worker_ptr self, share_pool_actor pool,
             std::shared_ptr<mail_server_cache> kept_connections) {
  self->state.kept_connections = std::move(kept_connections);
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
    [=](open_atom, const mail_server_job& job) {
      return answer<mail_server_opening>(
        self, pool, job.fault, [=] { return open_session(self, job); },
        [=] { return mail_server_opening{false, hung_text(job.fault), "4.4.1", ""}; });
    },
    [=](deliver_atom, std::vector<outgoing_mail>& batch) {
      return send_batch(self, pool, std::move(batch));
    },
    [=](expire_atom, std::uint64_t number) {
      auto& st = self->state;
      if (!st.held || st.held_number != number)
        return;
      spdlog::warn("share pool: an SMTP/LMTP session waited {}s for its messages; closed",
                   held_session_limit.count());
      st.held->deliver({});
      st.held.reset();
      self->send(pool, done_atom::value, share_worker_actor{self});
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

/// Starts a worker; it is idle.
share_worker_actor start_worker(pool_ptr self) {
  auto& st = self->state;
  auto pool = share_pool_actor{self};
  auto worker = st.options.detached
                  ? self->spawn<caf::detached>(share_worker, pool, st.kept_connections)
                  : self->spawn(share_worker, pool, st.kept_connections);
  st.workers.push_back(worker);
  return worker;
}

/// Has a tick come at `at` unless one comes sooner.
void tick_at(pool_ptr self, caf::actor_clock::time_point at) {
  auto& st = self->state;
  if (at >= st.next_tick)
    return;
  st.next_tick = at;
  auto now = self->clock().now();
  self->delayed_send(self, at > now ? at - now : caf::timespan{0}, tick_atom::value);
}

/// Runs `request` for `client` on `worker`, which is busy from now on.
void run_on(pool_ptr self, const share_worker_actor& worker, const caf::actor_addr& client,
            share_request& request) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto& busy = st.busy[worker.address()];
  busy = share_pool_state::busy_worker{client, now, ++st.calls, {}};
  request(worker);
  tick_at(self, now + st.options.hang_limit);
}

/// Busy workers not stuck: on their call for less than grow_after.
std::size_t quick_workers(pool_ptr self, caf::actor_clock::time_point now) {
  const auto& st = self->state;
  if (st.busy.size() < st.options.workers)
    return st.busy.size(); // too few to matter: no need to look
  std::size_t quick = 0;
  for (const auto& entry : st.busy)
    if (now - entry.second.since < st.options.grow_after)
      ++quick;
  return quick;
}

/// Runs `request` for `client` on an idle worker now while fewer than
/// `workers` are on quick calls, or queues it; a call that waits behind
/// stuck workers gets a new one (see tick()).
void dispatch(pool_ptr self, const caf::actor_addr& client, share_request request) {
  auto& st = self->state;
  if (st.idle.empty() && st.workers.size() < st.options.workers)
    st.idle.push_back({start_worker(self), self->clock().now()});
  if (st.idle.empty() || quick_workers(self, self->clock().now()) >= st.options.workers) {
    st.waiting.push_back({client, std::move(request)});
    if (st.workers.size() < st.options.max_workers)
      tick_at(self, self->clock().now() + st.options.grow_after);
    return;
  }
  auto worker = st.idle.back().worker;
  st.idle.pop_back();
  run_on(self, worker, client, request);
}

/// The busy record of `worker`'s call `call`, if it is still unanswered.
share_pool_state::busy_worker* unanswered(pool_ptr self, const caf::actor_addr& worker,
                                          std::uint64_t call) {
  auto busy = self->state.busy.find(worker);
  if (busy == self->state.busy.end() || busy->second.call != call || !busy->second.fail)
    return nullptr;
  return &busy->second;
}

/// Sends one request to `worker`, answering `promise` with its reply unless
/// hang_limit failed it first; `on_reply` sees the reply before it goes.
template <class Result, class OnReply, class... Ts>
void request_from(pool_ptr self, const share_worker_actor& worker,
                  caf::typed_response_promise<Result> promise, OnReply on_reply, Ts... xs) {
  auto& busy = self->state.busy[worker.address()];
  auto call = busy.call;
  busy.fail = [promise](caf::error err) mutable { promise.deliver(std::move(err)); };
  auto addr = worker.address();
  self->request(worker, caf::infinite, std::move(xs)...)
    .then(
      [=](Result& result) mutable {
        auto* waiting = unanswered(self, addr, call);
        if (!waiting)
          return; // failed by hang_limit already
        waiting->fail = nullptr;
        on_reply(result);
        promise.deliver(std::move(result));
      },
      [=](caf::error& err) mutable {
        auto* waiting = unanswered(self, addr, call);
        if (!waiting)
          return;
        waiting->fail = nullptr;
        promise.deliver(std::move(err));
      });
}

/// Forwards one request to `worker`, answering `promise` with its reply.
template <class Result, class... Ts>
share_request forward(pool_ptr self, caf::typed_response_promise<Result> promise, Ts... xs) {
  return [=](const share_worker_actor& worker) mutable {
    request_from(self, worker, promise, [](Result&) {}, xs...);
  };
}

/// Forwards an open to `worker`; an opened session stays with it for the
/// client's batch.
share_request forward_open(pool_ptr self, caf::typed_response_promise<mail_server_opening> promise,
                           caf::actor_addr client, mail_server_job job) {
  return [=](const share_worker_actor& worker) mutable {
    request_from(
      self, worker, promise,
      [=](mail_server_opening& opening) {
        if (opening.opened)
          self->state.sessions[client] = worker;
      },
      open_atom::value, job);
  };
}

/// The pool's timer: fails calls unanswered after hang_limit; while calls
/// wait, gives them idle workers, then new ones, until `workers` are on
/// quick calls (on one for less than grow_after); ends workers idle for
/// idle_limit while more than `workers` are not stuck; then sets the next
/// tick.
void tick(pool_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (now < st.next_tick)
    return; // overtaken by a sooner tick
  st.next_tick = caf::actor_clock::time_point::max();
  const auto& opt = st.options;
  auto next = caf::actor_clock::time_point::max();
  for (auto& [addr, busy] : st.busy) {
    if (!busy.fail)
      continue;
    if (now - busy.since < opt.hang_limit) {
      next = std::min(next, busy.since + opt.hang_limit);
      continue;
    }
    spdlog::warn("share pool: a worker hung for over {}s ({} of {} started)",
                 opt.hang_limit.count(), st.workers.size(), opt.max_workers);
    auto fail = std::move(busy.fail);
    busy.fail = nullptr;
    fail(caf::make_error(caf::sec::request_timeout));
  }
  auto quick = quick_workers(self, now);
  auto stuck = st.busy.size() - quick;
  for (; !st.waiting.empty() && quick < opt.workers; ++quick) {
    share_worker_actor worker;
    if (!st.idle.empty()) {
      worker = st.idle.back().worker;
      st.idle.pop_back();
    } else if (st.workers.size() < opt.max_workers) {
      worker = start_worker(self);
    } else {
      break;
    }
    auto call = std::move(st.waiting.front());
    st.waiting.pop_front();
    run_on(self, worker, call.client, call.request);
  }
  if (!st.waiting.empty() && st.workers.size() < opt.max_workers)
    next = std::min(next, now + caf::timespan{opt.grow_after});
  auto spare = st.workers.size() - stuck;
  while (spare > opt.workers && !st.idle.empty()
         && now - st.idle.front().since >= opt.idle_limit) {
    auto worker = st.idle.front().worker;
    st.idle.erase(st.idle.begin());
    st.workers.erase(std::find(st.workers.begin(), st.workers.end(), worker));
    self->send_exit(worker, caf::exit_reason::user_shutdown);
    --spare;
  }
  if (spare > opt.workers && !st.idle.empty())
    next = std::min(next, st.idle.front().since + opt.idle_limit);
  if (auto expiry = st.kept_connections->close_expired(mail_server_cache::clock::now()))
    next = std::min(next, now + (*expiry - mail_server_cache::clock::now()));
  if (next != caf::actor_clock::time_point::max())
    tick_at(self, next);
}

/// Sends a client's batch to the worker holding its session.
caf::result<mail_server_result> send_batch(pool_ptr self, std::vector<outgoing_mail>& batch) {
  auto& st = self->state;
  auto client = caf::actor_cast<caf::actor_addr>(self->current_sender());
  auto held = st.sessions.find(client);
  if (held == st.sessions.end()) {
    mail_server_result none;
    none.problem = "no session open";
    for (const auto& msg : batch)
      none.outcomes.push_back({msg.delivery_id, false, "4.4.1", none.problem, {}});
    return none;
  }
  auto worker = held->second;
  st.sessions.erase(held);
  auto promise = self->make_response_promise<mail_server_result>();
  self->request(worker, st.options.hang_limit, deliver_atom::value, std::move(batch))
    .then(
      [=](mail_server_result& result) mutable {
        // The worker may have kept the connection: the timer closes it when due.
        if (self->state.kept_connections->size() > 0)
          tick_at(self, self->clock().now() + kept_connection_limits{}.idle);
        promise.deliver(std::move(result));
      },
      [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

/// Takes one call from the postoffice that sent it, or answers `busy(text)`
/// when that postoffice has calls_per_postoffice calls unanswered already:
/// its share hangs, and more calls would only hang more workers.
template <class Result, class Busy, class Forward>
caf::result<Result> take_call(pool_ptr self, Busy busy, Forward forward_to) {
  auto& st = self->state;
  auto client = caf::actor_cast<caf::actor_addr>(self->current_sender());
  auto& calls = st.calls_by_client[client];
  if (calls >= st.options.calls_per_postoffice)
    return busy("share busy: " + std::to_string(calls) + " earlier calls have not returned");
  ++calls;
  auto promise = self->make_response_promise<Result>();
  dispatch(self, client, forward_to(promise, client));
  return promise;
}

/// The usual forward: the call as it came.
template <class Result, class... Ts>
auto as_it_came(pool_ptr self, Ts... xs) {
  return [=](caf::typed_response_promise<Result> promise, const caf::actor_addr&) {
    return forward(self, promise, xs...);
  };
}

} // namespace

share_pool_actor::behavior_type
share_pool(share_pool_actor::stateful_pointer<share_pool_state> self,
           share_pool_options options) {
  self->state.options = options;
  self->state.kept_connections = std::make_shared<mail_server_cache>();
  for (std::size_t i = 0; i < options.workers; ++i)
    self->state.idle.push_back({start_worker(self), self->clock().now()});
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    for (const auto& worker : self->state.workers)
      self->send_exit(worker, msg.reason);
    self->quit(msg.reason);
  });
  return {
    [=](probe_atom, const probe_job& job) {
      return take_call<std::string>(
        self, [](std::string text) { return text; },
        as_it_came<std::string>(self, probe_atom::value, job));
    },
    [=](deliver_atom, const maildir_job& job) {
      return take_call<recipient_outcome>(
        self,
        [=](std::string text) {
          return recipient_outcome{job.recipient, recipient_result::temporary_failure, "4.3.0",
                                   std::move(text), false};
        },
        as_it_came<recipient_outcome>(self, deliver_atom::value, job));
    },
    [=](deliver_atom, const mail_server_job& job) {
      return take_call<mail_server_result>(
        self,
        [=](std::string text) {
          mail_server_result result;
          for (const auto& msg : job.messages)
            result.outcomes.push_back({msg.delivery_id, false, "4.4.1", text, {}});
          result.problem = std::move(text);
          return result;
        },
        as_it_came<mail_server_result>(self, deliver_atom::value, job));
    },
    [=](open_atom, const mail_server_job& job) {
      return take_call<mail_server_opening>(
        self, [](std::string text) { return mail_server_opening{false, text, "4.4.1", ""}; },
        [=](caf::typed_response_promise<mail_server_opening> promise,
            const caf::actor_addr& client) { return forward_open(self, promise, client, job); });
    },
    [=](deliver_atom, std::vector<outgoing_mail>& batch) { return send_batch(self, batch); },
    [=](done_atom, const share_worker_actor& worker) {
      auto& st = self->state;
      for (auto held = st.sessions.begin(); held != st.sessions.end();)
        held = held->second == worker ? st.sessions.erase(held) : std::next(held);
      auto served = st.busy.find(worker.address());
      if (served != st.busy.end()) {
        if (--st.calls_by_client[served->second.client] == 0)
          st.calls_by_client.erase(served->second.client);
        st.busy.erase(served);
      }
      if (st.waiting.empty()) {
        auto now = self->clock().now();
        st.idle.push_back({worker, now});
        if (st.workers.size() > st.options.workers)
          tick_at(self, st.idle.front().since + st.options.idle_limit);
        return;
      }
      auto next = std::move(st.waiting.front());
      st.waiting.pop_front();
      run_on(self, worker, next.client, next.request);
    },
    [=](tick_atom) { tick(self); },
  };
}

} // namespace postconn
