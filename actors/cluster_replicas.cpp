// NAME
//   cluster_replicas -- replicated acceptance (see cluster_replicas.hpp).
#include "actors/cluster_replicas.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

namespace {

caf::error replica_error(std::string text) {
  return caf::make_error(caf::sec::runtime_error, std::move(text));
}

using holder = std::pair<std::string, cluster_peer_actor>;

/// How long a forget waits for each peer's count: within the admin API's
/// wait for the whole. A peer that answers later still adopts.
constexpr std::chrono::seconds forget_answer_timeout{8};

/// The live peer to hold the next replica, taking turns; none when this
/// node is alone (with cluster.etcd, only peers etcd holds as members).
std::optional<holder> next_holder(cluster_state& st) {
  std::vector<holder> live;
  for (const auto& [node, peer] : st.peers)
    if (!st.etcd || st.etcd->members.count(node))
      live.emplace_back(node, peer.actor);
  if (live.empty())
    return std::nullopt;
  return live[st.replicas.next_holder++ % live.size()];
}

/// `entries` keyed by their delivery key here, for their holder.
std::vector<ledger_entry> keyed(const cluster_state& st, std::vector<ledger_entry> entries) {
  for (auto& entry : entries)
    entry.origin = delivery_key(entry, st.options.node);
  return entries;
}

void count_unreplicated(cluster_ptr self, const std::string& what, const std::string& why) {
  auto& st = self->state;
  ++st.replicas.unreplicated;
  spdlog::warn("cluster: {} kept without a replica ({}; cluster.without_replica = \"accept\")",
               what, why);
}

/// Sends the replicas of `entries` (of `message`, committed here with
/// `to` as their replica node) to `to`; once `to` has committed them, gives
/// the entries to the supervisor. When it does not, keeps them anyway
/// (cluster.without_replica = "accept"), or removes the message here again
/// and tells `to` to drop what it may have committed.
void replicate(cluster_ptr self, const holder& to, const stored_message& message,
               std::vector<ledger_entry> entries, std::function<void(caf::error)> done) {
  auto& st = self->state;
  std::vector<handoff> replicas;
  for (const auto& entry : keyed(st, entries))
    replicas.push_back({st.options.node, message, entry});
  auto node = to.first;
  auto shared = std::make_shared<std::vector<ledger_entry>>(std::move(entries));
  self->request(to.second, st.options.peer_timeout, replicate_atom::value, std::move(replicas))
    .then(
      [=](bool) {
        self->send(self->state.supervisor, enqueue_atom::value, *shared);
        done({});
      },
      [=](const caf::error& err) {
        auto& st = self->state;
        auto why = "node " + node + " took no replica: " + self->system().render(err);
        if (st.options.accept_unreplicated) {
          count_unreplicated(self, "msg " + message.id, why);
          self->send(st.supervisor, enqueue_atom::value, *shared);
          return done({});
        }
        auto dropped = keyed(st, *shared);
        for (auto& entry : dropped)
          entry.state = delivery_state::bounced;
        self->send(to.second, replicate_atom::value, st.options.node, std::move(dropped));
        self->request(st.store, store_timeout, delete_atom::value,
                      std::vector<std::string>{message.id})
          .then([](std::uint32_t) {},
                [=](const caf::error& gone) {
                  spdlog::error("cluster: msg {} has no replica and could not be removed "
                                "({}): it stays queued, unreplicated",
                                message.id, self->system().render(gone));
                  self->send(self->state.supervisor, enqueue_atom::value, *shared);
                });
        spdlog::warn("cluster: msg {} refused: {}", message.id, why);
        done(make_error(store_errc::no_replica, why));
      });
}

/// Adopts the replicas held here of `node`'s deliveries once etcd has
/// recorded that this node does; tells `done` how many.
void adopt_then(cluster_ptr self, const std::string& node,
                std::function<void(caf::expected<std::uint32_t>)> done) {
  auto& st = self->state;
  if (node == st.options.node)
    return done(replica_error("node " + node + " is this node"));
  if (!st.etcd || !st.replicas.lease)
    return done(replica_error("adoption needs cluster.etcd"));
  if (st.etcd->members.count(node))
    return done(replica_error("node " + node + " holds its etcd lease: it is a member, stop "
                              "it first"));
  if (!st.etcd->fence.valid_at(self->clock().now()))
    return done(replica_error("node " + st.options.node + " cannot prove it holds its etcd "
                              "lease"));
  st.replicas.forgotten.insert(node);
  st.replicas.waiting.erase(node);
  self->request(st.replicas.lease, caf::infinite, forget_atom::value, node)
    .then(
      [=](bool recorded) {
        auto& st = self->state;
        if (!recorded) {
          st.replicas.forgotten.erase(node);
          return done(replica_error("node " + node + " is a member again"));
        }
        self->request(st.store, store_timeout, forget_atom::value, node)
          .then(
            [=](std::vector<ledger_entry>& adopted) {
              spdlog::warn("cluster: node {} adopted {} deliveries of node {} from the replicas "
                           "it held",
                           self->state.options.node, adopted.size(), node);
              done(static_cast<std::uint32_t>(adopted.size()));
            },
            [=](const caf::error& err) {
              self->state.replicas.forgotten.erase(node);
              done(err);
            });
      },
      [=](const caf::error& err) {
        self->state.replicas.forgotten.erase(node);
        done(err);
      });
}

} // namespace

caf::result<accept_receipt> accept_replicated(cluster_ptr self, incoming_message& msg) {
  auto& st = self->state;
  auto to = next_holder(st);
  if (!to) {
    if (!st.options.accept_unreplicated)
      return make_error(store_errc::no_replica, "no other live node to hold a replica");
    count_unreplicated(self, "a message from <" + msg.sender + ">", "no other live node");
    return self->delegate(st.store, accept_atom::value, std::move(msg));
  }
  msg.replica_node = to->first;
  auto sent = std::make_shared<const incoming_message>(msg);
  auto promise = self->make_response_promise<accept_receipt>();
  self->request(st.store, store_timeout, accept_atom::value, std::move(msg))
    .then(
      [=](accept_receipt& accepted) mutable {
        auto receipt = std::make_shared<accept_receipt>(std::move(accepted));
        stored_message message{receipt->id, sent->sender, sent->content, sent->received_at};
        replicate(self, *to, message, receipt->deliveries, [=](caf::error err) mutable {
          if (err)
            promise.deliver(std::move(err));
          else
            promise.deliver(std::move(*receipt));
        });
      },
      [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

caf::result<bool> commit_handed_in(cluster_ptr self, handoff& incoming,
                                   const attempt_record& attempt) {
  auto& st = self->state;
  auto replicated = st.options.replicas > 1;
  auto to = replicated ? next_holder(st) : std::nullopt;
  if (replicated && !to && !st.options.accept_unreplicated)
    return make_error(store_errc::no_replica, "node " + st.options.node
                                                + " has no live peer to hold a replica");
  auto origin = incoming.delivery.origin;
  auto from = incoming.from_node;
  auto message = incoming.message;
  auto promise = self->make_response_promise<bool>();
  self->request(st.store, store_timeout, adopt_atom::value, std::move(incoming), attempt,
                to ? to->first : std::string{})
    .then(
      [=](std::vector<ledger_entry>& adopted) mutable {
        if (adopted.empty()) {
          spdlog::info("cluster: delivery {} handed over again: committed before", origin);
          promise.deliver(true);
          return;
        }
        const auto& entry = adopted.front();
        spdlog::info("postoffice {}: delivery {} handed over from node {}, queued as msg {} "
                     "delivery {} open_retries={} transfer_retries={} replica={}",
                     entry.postoffice, origin, from, entry.message_id, entry.delivery_id,
                     entry.open_retries, entry.transfer_retries, to ? to->first : "none");
        if (!to) { // announced by the store
          if (replicated)
            count_unreplicated(self, "delivery " + origin, "no other live node");
          promise.deliver(true);
          return;
        }
        message.id = entry.message_id;
        replicate(self, *to, message, std::move(adopted), [=](caf::error err) mutable {
          if (err)
            promise.deliver(std::move(err));
          else
            promise.deliver(true);
        });
      },
      [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

caf::result<bool> hold_replicas(cluster_ptr self, std::vector<handoff>& replicas) {
  return self->delegate(self->state.store, replicate_atom::value, std::move(replicas));
}

void tell_holders(cluster_ptr self, std::vector<ledger_entry>& changes) {
  auto& st = self->state;
  std::map<std::string, std::vector<ledger_entry>> by_holder;
  for (auto& entry : changes) {
    auto holder = entry.replica_node;
    entry.origin = delivery_key(entry, st.options.node);
    if (st.replicas.forgotten.count(holder))
      continue;
    if (st.peers.count(holder))
      by_holder[holder].push_back(std::move(entry));
    else
      st.replicas.waiting[holder][entry.origin] = std::move(entry);
  }
  for (auto& [holder, entries] : by_holder)
    self->send(st.peers.at(holder).actor, replicate_atom::value, st.options.node,
               std::move(entries));
}

void send_waiting_changes(cluster_ptr self, const std::string& node) {
  auto& st = self->state;
  auto waiting = st.replicas.waiting.find(node);
  auto peer = st.peers.find(node);
  if (waiting == st.replicas.waiting.end() || peer == st.peers.end())
    return;
  std::vector<ledger_entry> entries;
  for (auto& [key, entry] : waiting->second)
    entries.push_back(std::move(entry));
  st.replicas.waiting.erase(waiting);
  spdlog::info("cluster: {} delivery changes that waited for node {} sent", entries.size(),
               node);
  self->send(peer->second.actor, replicate_atom::value, st.options.node, std::move(entries));
}

caf::result<std::uint32_t> adopt_replicas_of(cluster_ptr self, const std::string& node) {
  auto promise = self->make_response_promise<std::uint32_t>();
  adopt_then(self, node, [=](caf::expected<std::uint32_t> adopted) mutable {
    if (adopted)
      promise.deliver(*adopted);
    else
      promise.deliver(adopted.error());
  });
  return promise;
}

caf::result<std::uint32_t> forget_everywhere(cluster_ptr self, const std::string& node) {
  auto promise = self->make_response_promise<std::uint32_t>();
  adopt_then(self, node, [=](caf::expected<std::uint32_t> here) mutable {
    if (!here) {
      promise.deliver(here.error());
      return;
    }
    auto& st = self->state;
    auto total = std::make_shared<std::uint32_t>(*here);
    auto asked = st.peers;
    asked.erase(node); // alive but no member: it adopts nothing of its own
    auto unanswered = std::make_shared<std::size_t>(asked.size());
    if (*unanswered == 0) {
      promise.deliver(*total);
      return;
    }
    auto answered = [=]() mutable {
      if (--*unanswered == 0)
        promise.deliver(*total);
    };
    for (const auto& [peer_node, peer] : asked)
      self->request(peer.actor, forget_answer_timeout, forget_atom::value, node)
        .then(
          [=](std::uint32_t adopted) mutable {
            *total += adopted;
            answered();
          },
          [=, peer_node = peer_node](const caf::error& err) mutable {
            spdlog::warn("cluster: node {} did not adopt node {}'s replicas: {}", peer_node,
                         node, self->system().render(err));
            answered();
          });
  });
  return promise;
}

void learn_what_was_adopted(cluster_ptr self) {
  auto& st = self->state;
  for (const auto& by : st.replicas.returning) {
    auto peer = st.peers.find(by);
    if (peer == st.peers.end() || st.replicas.asking.count(by))
      continue;
    st.replicas.asking.insert(by);
    auto forget_failed = [=](const caf::error& err) {
      self->state.replicas.asking.erase(by);
      spdlog::warn("cluster: node {} waits for node {} to say which of its deliveries it "
                   "adopted: {}",
                   self->state.options.node, by, self->system().render(err));
    };
    self->request(peer->second.actor, st.options.peer_timeout, load_atom::value,
                  forget_atom::value, st.options.node)
      .then(
        [=](std::vector<std::string>& keys) {
          auto& st = self->state;
          auto adopted = keys.size();
          self->request(st.supervisor, store_timeout, forget_atom::value, std::move(keys), by)
            .then(
              [=](std::uint32_t finished) {
                auto& st = self->state;
                spdlog::warn("cluster: node {} adopted {} deliveries of node {} while it was "
                             "gone; {} of them were still queued here and are finished, not "
                             "delivered again",
                             by, adopted, st.options.node, finished);
                st.replicas.asking.erase(by);
                st.replicas.returning.erase(by);
                if (st.replicas.lease)
                  self->send(st.replicas.lease, delete_atom::value, by);
                if (st.replicas.returning.empty())
                  line_up(self, true);
              },
              forget_failed);
        },
        forget_failed);
  }
}

void adopt_long_gone(cluster_ptr self, const std::map<std::string, std::string>& before) {
  auto& st = self->state;
  auto& members = st.etcd->members;
  auto now = self->clock().now();
  for (const auto& [node, address] : before)
    if (!members.count(node) && node != st.options.node)
      st.replicas.gone_since.emplace(node, now);
  for (const auto& [node, address] : members) {
    st.replicas.gone_since.erase(node);
    st.replicas.forgotten.erase(node);
  }
  if (st.options.replicas < 2 || !st.etcd->fence.owns_at(now))
    return;
  for (const auto& [node, since] : st.replicas.gone_since) {
    if (now - since < st.options.adopt_after || st.replicas.forgotten.count(node))
      continue;
    spdlog::warn("cluster: node {} gone from etcd for {}s (cluster.adopt_after): adopting the "
                 "replicas of its deliveries held here",
                 node, std::chrono::duration_cast<std::chrono::seconds>(now - since).count());
    adopt_then(self, node, [=, node = node](caf::expected<std::uint32_t> adopted) {
      if (!adopted)
        spdlog::warn("cluster: node {}'s replicas not adopted: {}", node,
                     self->system().render(adopted.error()));
    });
  }
}

} // namespace postconn
