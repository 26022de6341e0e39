// NAME
//   store -- the durable queue actor (see store.hpp).
#include "actors/store.hpp"

#include <algorithm>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

bool store_state::run_transaction(std::vector<pending_write>& batch,
                                  std::vector<caf::error>& outcomes, bool isolate) {
  db->begin();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (isolate)
      db->savepoint();
    try {
      batch[i].apply(*db);
      if (isolate)
        db->release_savepoint();
    } catch (const queue_db_error& e) {
      if (!e.request_at_fault())
        throw;
      if (!isolate) {
        db->rollback();
        return false;
      }
      db->rollback_to_savepoint();
      outcomes[i] = make_error(store_errc::rejected, e.what());
    }
  }
  db->commit();
  return true;
}

void store_state::note_commit_latency(double seconds) {
  auto& buckets = counters.commit_latency_buckets;
  buckets.resize(std::size(commit_latency_bounds) + 1);
  auto bucket = std::lower_bound(std::begin(commit_latency_bounds),
                                 std::end(commit_latency_bounds), seconds)
                - std::begin(commit_latency_bounds);
  ++buckets[static_cast<std::size_t>(bucket)];
  counters.commit_seconds += seconds;
}

std::size_t store_state::commit_pending() {
  auto count = std::min(pending.size(), std::max<std::size_t>(options.max_batch, 1));
  if (count == 0)
    return 0;
  std::vector<pending_write> batch;
  batch.reserve(count);
  for (auto write = pending.begin(); write != pending.begin() + count; ++write) {
    if (write->new_mail && space_low) {
      ++counters.failed_writes;
      ++counters.messages_refused_low_space;
      write->answer(make_error(store_errc::low_space,
                               "the queue's disk is below server.min_free_space"));
    } else {
      batch.push_back(std::move(*write));
    }
  }
  pending.erase(pending.begin(), pending.begin() + count);
  if (batch.empty())
    return count;
  std::vector<caf::error> outcomes(batch.size());
  try {
    auto started = std::chrono::steady_clock::now();
    // Savepoints cost a third of the throughput, and requests at fault are
    // rare: try the batch without them first.
    if (!run_transaction(batch, outcomes, false))
      run_transaction(batch, outcomes, true);
    ++counters.commits;
    note_commit_latency(std::chrono::duration<double>(std::chrono::steady_clock::now()
                                                      - started)
                          .count());
  } catch (const queue_db_error& e) {
    db->rollback();
    spdlog::error("store: commit of {} writes failed: {}", batch.size(), e.what());
    for (auto& outcome : outcomes)
      outcome = make_error(store_errc::commit_failed, e.what());
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (outcomes[i])
      ++counters.failed_writes;
    else
      ++counters.writes;
    batch[i].answer(outcomes[i]);
  }
  return count;
}

namespace {

constexpr std::uint64_t mebibyte = 1024 * 1024;

/// The disk fell below the reserve (low) or is back above 110 % of it.
void note_space_crossing(store_actor::stateful_pointer<store_state> self, bool low,
                         std::uint64_t free) {
  auto& st = self->state;
  st.space_low = low;
  if (st.options.min_free_space == 0)
    spdlog::warn("queue: no reserve on the queue's disk (server.min_free_space 0): "
                 "new mail is accepted again");
  else
    spdlog::warn("queue: {} MiB free on the queue's disk, {} server.min_free_space {} MiB: "
                 "new mail {}",
                 free / mebibyte, low ? "below" : "back above 110 % of",
                 st.options.min_free_space / mebibyte,
                 low ? "gets 452 4.3.1" : "is accepted again");
  if (st.listener)
    self->send(st.listener, space_atom::value, low);
}

/// Looks at the free space on the queue's disk: notes a crossing of the
/// reserve, and while below it looks again every space_recheck.
void check_space(store_actor::stateful_pointer<store_state> self) {
  auto& st = self->state;
  if (!st.options.free_space)
    return;
  auto reserve = st.options.min_free_space;
  auto free = st.options.free_space();
  if (free)
    st.counters.free_bytes = *free;
  auto low = st.space_low; // when the disk cannot tell, as before
  if (reserve == 0)
    low = false;
  else if (free)
    low = st.space_low ? *free < reserve + reserve / 10 : *free < reserve;
  if (low != st.space_low)
    note_space_crossing(self, low, st.counters.free_bytes);
  if (st.space_low && !st.space_recheck_pending) {
    st.space_recheck_pending = true;
    self->delayed_send(self, store_state::space_recheck, space_atom::value);
  }
}

/// Queues a write and makes sure a commit marker follows it.
void enqueue_write(store_actor::stateful_pointer<store_state> self,
                   pending_write write) {
  auto& st = self->state;
  st.pending.push_back(std::move(write));
  if (!st.commit_scheduled) {
    st.commit_scheduled = true;
    self->send(self, commit_atom::value);
  }
}

using store_ptr = store_actor::stateful_pointer<store_state>;

/// Tells the listener of the deliveries a durable write created: the one
/// place the supervisor learns of new deliveries.
void announce(store_ptr self, const std::vector<ledger_entry>& created) {
  if (self->state.listener && !created.empty())
    self->send(self->state.listener, enqueue_atom::value, created);
}

/// Once the write is durable, announces what it created (unless a replica
/// node holds it: see store.hpp), then answers with it (or with the
/// write's error).
std::function<void(const caf::error&)>
announce_and_answer(store_ptr self, caf::typed_response_promise<std::vector<ledger_entry>> promise,
                    std::shared_ptr<std::vector<ledger_entry>> created, bool replicated) {
  return [self, promise, created, replicated](const caf::error& err) mutable {
    if (err) {
      promise.deliver(err);
      return;
    }
    if (!replicated)
      announce(self, *created);
    promise.deliver(std::move(*created));
  };
}

std::int64_t unix_now(store_ptr self) {
  return self->state.clock.at(self->clock().now());
}

/// A read of the queue; a failed one answers store_errc::read_failed.
template <class Read>
auto read(store_ptr self, Read read_db) -> caf::result<decltype(read_db(*self->state.db))> {
  try {
    return read_db(*self->state.db);
  } catch (const queue_db_error& e) {
    return make_error(store_errc::read_failed, e.what());
  }
}

caf::result<accept_receipt> accept(store_ptr self, incoming_message& msg) {
  auto promise = self->make_response_promise<accept_receipt>();
  auto receipt = std::make_shared<accept_receipt>();
  receipt->id = self->state.ids.next();
  bool replicated = !msg.replica_node.empty();
  auto shared_msg = std::make_shared<incoming_message>(std::move(msg));
  enqueue_write(self, pending_write{
    [receipt, shared_msg](queue_db& db) {
      receipt->deliveries = db.insert_message(receipt->id, *shared_msg);
    },
    [self, receipt, promise, replicated](const caf::error& err) mutable {
      if (err) {
        promise.deliver(err);
        return;
      }
      ++self->state.counters.messages_accepted;
      if (!replicated)
        announce(self, receipt->deliveries);
      promise.deliver(std::move(*receipt));
    },
    true});
  return promise;
}

/// Writes a ledger change: the entry, its line in the attempt log and its
/// recipients' outcomes.
void write_change(queue_db& db, const ledger_change& change) {
  db.update_delivery(change.entry);
  db.insert_attempt(change.attempt);
  db.record_recipients(change.entry.delivery_id, change.recipients);
}

caf::result<std::vector<ledger_entry>> report(store_ptr self, ledger_change& change,
                                              incoming_message& ndr) {
  auto promise = self->make_response_promise<std::vector<ledger_entry>>();
  auto created = std::make_shared<std::vector<ledger_entry>>();
  auto ndr_id = ndr.deliveries.empty() ? std::string{} : self->state.ids.next();
  enqueue_write(self, pending_write{
    [created, ndr_id, change = std::move(change), ndr = std::move(ndr)](queue_db& db) {
      if (!ndr_id.empty())
        *created = db.insert_message(ndr_id, ndr);
      write_change(db, change);
    },
    announce_and_answer(self, promise, created, false)});
  return promise;
}

caf::result<std::vector<std::string>> record(store_ptr self,
                                              std::vector<ledger_change>& changes) {
  if (changes.empty())
    return std::vector<std::string>{};
  auto promise = self->make_response_promise<std::vector<std::string>>();
  auto results = std::make_shared<std::vector<std::string>>(changes.size());
  auto unanswered = std::make_shared<std::size_t>(changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i)
    enqueue_write(self, pending_write{
      [change = std::move(changes[i])](queue_db& db) { write_change(db, change); },
      [self, promise, results, unanswered, i](const caf::error& err) mutable {
        if (err)
          (*results)[i] = self->system().render(err);
        if (--*unanswered == 0)
          promise.deliver(std::move(*results));
      }});
  return promise;
}

caf::result<std::vector<ledger_entry>> adopt(store_ptr self, handoff& incoming,
                                             attempt_record& attempt, std::string& replica_node) {
  auto promise = self->make_response_promise<std::vector<ledger_entry>>();
  auto adopted = std::make_shared<std::vector<ledger_entry>>();
  bool replicated = !replica_node.empty();
  enqueue_write(self, pending_write{
    [adopted, id = self->state.ids.next(), incoming = std::move(incoming),
     attempt = std::move(attempt), replica_node = std::move(replica_node)](queue_db& db) mutable {
      adopted->clear(); // the batch may run twice (see store.hpp)
      auto entry = db.adopt_delivery(id, incoming.message, incoming.delivery, replica_node);
      if (!entry)
        return;
      attempt.delivery_id = entry->delivery_id;
      db.insert_attempt(attempt);
      adopted->push_back(std::move(*entry));
    },
    announce_and_answer(self, promise, adopted, replicated)});
  return promise;
}

/// Commits replicas of other nodes' deliveries; answers true once they are
/// durable.
caf::result<bool> replicate(store_ptr self, std::vector<handoff>& replicas) {
  auto promise = self->make_response_promise<bool>();
  enqueue_write(self, pending_write{
    [replicas = std::move(replicas), now = unix_now(self)](queue_db& db) {
      for (const auto& replica : replicas)
        db.insert_replica(replica.from_node, replica.message, replica.delivery, now);
    },
    [promise](const caf::error& err) mutable {
      if (err)
        promise.deliver(err);
      else
        promise.deliver(true);
    }});
  return promise;
}

/// Brings the replicas of `node`'s deliveries up to date in the next
/// commit. Nobody waits for it: a failure is only logged, and the
/// replicas keep their older counts.
void update_replicas(store_ptr self, std::string& node, std::vector<ledger_entry>& changed) {
  auto count = changed.size();
  enqueue_write(self, pending_write{
    [node, changed = std::move(changed), now = unix_now(self)](queue_db& db) {
      for (const auto& entry : changed)
        db.update_replica(node, entry, now);
    },
    [self, node, count](const caf::error& err) {
      if (err)
        spdlog::warn("store: {} changes to the replicas of node {} not kept: {}", count, node,
                     self->system().render(err));
    }});
}

/// `node` is gone: its live replicas become deliveries here, announced.
caf::result<std::vector<ledger_entry>> adopt_replicas(store_ptr self, std::string& node) {
  auto promise = self->make_response_promise<std::vector<ledger_entry>>();
  auto adopted = std::make_shared<std::vector<ledger_entry>>();
  enqueue_write(self, pending_write{
    [self, adopted, node = std::move(node), now = unix_now(self)](queue_db& db) {
      *adopted = db.adopt_replicas(node, self->state.ids, now);
    },
    announce_and_answer(self, promise, adopted, false)});
  return promise;
}

/// Marks an attempt's deliveries in doubt in the next group commit, and
/// once that is durable reads its messages.
caf::result<std::vector<stored_message>> fetch_for_attempt(store_ptr self,
                                                           std::vector<std::string> message_ids,
                                                           std::vector<std::int64_t> delivery_ids) {
  auto promise = self->make_response_promise<std::vector<stored_message>>();
  enqueue_write(self, pending_write{
    [delivery_ids = std::move(delivery_ids)](queue_db& db) {
      for (auto id : delivery_ids)
        db.mark_in_doubt(id);
    },
    [self, promise, message_ids = std::move(message_ids)](const caf::error& err) mutable {
      if (err) {
        promise.deliver(err);
        return;
      }
      try {
        std::vector<stored_message> found;
        for (const auto& id : message_ids)
          if (auto msg = self->state.db->message(id))
            found.push_back(std::move(*msg));
        promise.deliver(std::move(found));
      } catch (const queue_db_error& e) {
        promise.deliver(make_error(store_errc::read_failed, e.what()));
      }
    }});
  return promise;
}

caf::result<std::uint32_t> remove(store_ptr self, std::vector<std::string>& ids) {
  auto promise = self->make_response_promise<std::uint32_t>();
  auto found = std::make_shared<std::uint32_t>(0);
  enqueue_write(self, pending_write{
    [ids = std::move(ids), found](queue_db& db) {
      *found = 0; // the batch may run twice (see store.hpp)
      for (const auto& id : ids)
        *found += db.delete_message(id) ? 1 : 0;
    },
    [promise, found](const caf::error& err) mutable {
      if (err)
        promise.deliver(err);
      else
        promise.deliver(*found);
    }});
  return promise;
}

caf::result<purge_report> purge(store_ptr self, std::int64_t finished_before,
                                std::string& after) {
  auto promise = self->make_response_promise<purge_report>();
  auto report = std::make_shared<purge_report>();
  enqueue_write(self, pending_write{
    [report, finished_before, after = std::move(after)](queue_db& db) {
      *report = db.purge_finished(finished_before, after, store_state::purge_limit);
    },
    [self, report, promise](const caf::error& err) mutable {
      if (err) {
        promise.deliver(err);
        return;
      }
      self->state.counters.messages_purged += report->removed;
      promise.deliver(std::move(*report));
    }});
  return promise;
}

/// The commit marker came round: commits what is pending, unless writes
/// wait behind it.
void on_commit_marker(store_ptr self) {
  auto& st = self->state;
  // Writes that arrived while the marker waited are behind it in the
  // mailbox: take them into this commit (another pass of the marker)
  // instead of leaving them for the next commit and its fsync.
  if (!self->mailbox().empty() && st.pending.size() < st.options.max_batch
      && st.marker_passes < store_state::max_marker_passes) {
    ++st.marker_passes;
    self->send(self, commit_atom::value);
    return;
  }
  st.marker_passes = 0;
  // Space goes to new mail: look before committing any.
  auto new_mail = std::any_of(st.pending.begin(), st.pending.end(),
                              [](const pending_write& w) { return w.new_mail; });
  if (new_mail)
    check_space(self);
  st.commit_pending();
  // Writes beyond max_batch wait for the next marker, behind newer mail.
  if (st.pending.empty())
    st.commit_scheduled = false;
  else
    self->send(self, commit_atom::value);
}

} // namespace

store_actor::behavior_type
store(store_actor::stateful_pointer<store_state> self,
      std::shared_ptr<queue_db> db, store_options options) {
  self->state.ids = message_id_generator{db->last_message_id()};
  self->state.db = std::move(db);
  self->state.options = options;
  self->state.clock = unix_clock{options.origin, self->clock().now()};
  return {
    [=](accept_atom, incoming_message& msg) { return accept(self, msg); },
    [=](report_atom, ledger_change& change, incoming_message& ndr) {
      return report(self, change, ndr);
    },
    [=](record_atom, std::vector<ledger_change>& changes) { return record(self, changes); },
    [=](adopt_atom, handoff& incoming, attempt_record& attempt, std::string& replica_node) {
      return adopt(self, incoming, attempt, replica_node);
    },
    [=](replicate_atom, std::vector<handoff>& replicas) { return replicate(self, replicas); },
    [=](replicate_atom, std::string& node, std::vector<ledger_entry>& changed) {
      update_replicas(self, node, changed);
    },
    [=](forget_atom, std::string& node) { return adopt_replicas(self, node); },
    [=](load_atom, forget_atom, const std::string& node) {
      return read(self, [&](queue_db& db) { return db.adopted_keys(node); });
    },
    [=](delete_atom, std::vector<std::string>& ids) { return remove(self, ids); },
    [=](purge_atom, std::int64_t finished_before, std::string& after) {
      return purge(self, finished_before, after);
    },
    [=](load_atom) { return read(self, [](queue_db& db) { return db.unfinished_deliveries(); }); },
    [=](fetch_atom, const std::string& id) -> caf::result<stored_message> {
      try {
        if (auto msg = self->state.db->message(id))
          return std::move(*msg);
        return make_error(store_errc::not_found, "no message " + id);
      } catch (const queue_db_error& e) {
        return make_error(store_errc::read_failed, e.what());
      }
    },
    [=](fetch_atom, std::vector<std::string>& message_ids,
        std::vector<std::int64_t>& delivery_ids) {
      return fetch_for_attempt(self, std::move(message_ids), std::move(delivery_ids));
    },
    [=](load_atom, const std::string& id) {
      return read(self, [&](queue_db& db) { return db.deliveries_of(id); });
    },
    [=](load_atom, sender_atom, const std::string& sender_part) {
      return read(self, [&](queue_db& db) { return db.queued_messages_from(sender_part); });
    },
    [=](load_atom, std::int64_t delivery_id) {
      return read(self, [&](queue_db& db) { return db.attempts_of(delivery_id); });
    },
    [=](load_atom, outcomes_atom, std::int64_t delivery_id) {
      return read(self, [&](queue_db& db) { return db.recipients_of(delivery_id); });
    },
    [=](status_atom) { return self->state.counters; },
    [=](watch_atom, store_listener_actor& listener) {
      auto& st = self->state;
      check_space(self);
      st.listener = std::move(listener);
      self->send(st.listener, space_atom::value, st.space_low);
    },
    [=](reload_atom, std::uint64_t min_free_space) {
      self->state.options.min_free_space = min_free_space;
      check_space(self);
    },
    [=](space_atom) {
      self->state.space_recheck_pending = false;
      if (self->state.space_low)
        check_space(self);
    },
    [=](commit_atom) { on_commit_marker(self); },
  };
}

store_actor spawn_store(caf::actor_system& sys, std::shared_ptr<queue_db> db,
                        store_options options, bool detached) {
  if (detached)
    return sys.spawn<caf::detached>(store, std::move(db), options);
  return sys.spawn(store, std::move(db), options);
}

} // namespace postconn
