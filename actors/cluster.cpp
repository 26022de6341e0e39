// NAME
//   cluster -- membership, ownership and handoff between nodes (see
//   cluster.hpp).
#include "actors/cluster.hpp"
#include "messages/unix_clock.hpp"

#include <ctime>
#include <memory>
#include <stdexcept>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/cluster_lease.hpp"
#include "actors/cluster_replicas.hpp"
#include "runtime/cluster/ownership.hpp"

namespace postconn {

namespace {


caf::error cluster_error(std::string text) {
  return caf::make_error(caf::sec::runtime_error, std::move(text));
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names)
    text += (text.empty() ? "" : ", ") + name;
  return text;
}

std::string joined_members(const std::map<std::string, std::string>& members) {
  std::string text;
  for (const auto& [node, address] : members)
    text += (text.empty() ? "" : ", ") + node;
  return text.empty() ? "none" : text;
}

/// Asks the middleman for the cluster actor published at `address` and
/// tells `parent` (a null pointer when there is none). A helper actor of
/// its own, because the middleman has an untyped interface.
void reach_peer(caf::event_based_actor* self, std::string address, cluster_actor parent,
                std::chrono::seconds timeout) {
  auto where = parse_listen_address(address);
  auto report = [=](caf::strong_actor_ptr peer) {
    self->send(parent, connected_atom::value, address, std::move(peer));
  };
  self->request(self->system().middleman().actor_handle(), timeout, caf::connect_atom::value,
                where->host, where->port)
    .then(
      [=](const caf::node_id&, caf::strong_actor_ptr& peer, const std::set<std::string>& ifs) {
        if (peer && !self->system().assignable<cluster_peer_actor>(ifs)) {
          spdlog::error("cluster: {} is no postconn cluster actor of this version", address);
          peer = nullptr;
        }
        report(std::move(peer));
      },
      [=](const caf::error& err) {
        spdlog::debug("cluster: cannot reach {}: {}", address, self->system().render(err));
        report(nullptr);
      });
}

} // namespace

/// Sends the supervisor a new lineup when the owners changed (or always,
/// with `force`: a reload), once the first round of joins is over.
void line_up(cluster_ptr self, bool force) {
  auto& st = self->state;
  if (!st.settled || !st.replicas.returning.empty())
    return;
  auto live = st.live_nodes();
  auto owners = owners_of(st.postoffices.owners, live);
  if (owners == st.owners && !force)
    return;
  auto lineup = lineup_for(st.postoffices, owners, st.options.node, st.running);
  st.owners = std::move(owners);
  st.postoffices.changed.clear();
  st.running.clear();
  for (const auto& def : lineup.postoffices)
    st.running.insert(def.name);
  if (st.etcd)
    spdlog::info("cluster: members {} (etcd); node {} {} {} of {} postoffices",
                 joined_members(st.etcd->members), st.options.node,
                 st.etcd->fenced ? "is fenced: owns" : live.empty() ? "is joining: owns" : "owns",
                 lineup.postoffices.size(), st.owners.size());
  else
    spdlog::info("cluster: members {}; node {} owns {} of {} postoffices", joined(live),
                 st.options.node, lineup.postoffices.size(), st.owners.size());
  lineup.handoff = caf::actor_cast<handoff_actor>(self);
  self->send(st.supervisor, reload_atom::value, std::move(lineup));
}

namespace {

/// The first lineup waits for every seed's first answer (with
/// cluster.etcd, for the lease actor's first round).
void settle_when_answered(cluster_ptr self) {
  auto& st = self->state;
  if (st.settled || !st.connecting.empty() || st.etcd)
    return;
  st.settled = true;
  line_up(self, true);
}

void add_peer(cluster_ptr self, const cluster_member& member, cluster_peer_actor actor) {
  auto& st = self->state;
  auto known = st.peers.find(member.node);
  if (known != st.peers.end() && known->second.actor == actor)
    return;
  self->monitor(actor);
  st.peers[member.node] = {member.address, std::move(actor)};
  st.addresses.insert(member.address);
  spdlog::info("cluster: node {} joined ({})", member.node, member.address);
  send_waiting_changes(self, member.node);
  learn_what_was_adopted(self);
  line_up(self, false);
}

void connect(cluster_ptr self, const std::string& address) {
  auto& st = self->state;
  if (address == st.options.listen || st.connecting.count(address))
    return;
  for (const auto& [node, peer] : st.peers)
    if (peer.address == address)
      return;
  st.connecting.insert(address);
  self->spawn(reach_peer, address, cluster_actor{self}, st.options.peer_timeout);
}

/// Joins the cluster actor found at `address`, then every member it names.
void join(cluster_ptr self, const std::string& address, caf::strong_actor_ptr found) {
  auto& st = self->state;
  if (!found) {
    st.connecting.erase(address);
    return settle_when_answered(self);
  }
  auto peer = caf::actor_cast<cluster_peer_actor>(std::move(found));
  cluster_member me{st.options.node, st.options.listen};
  self->request(peer, st.options.peer_timeout, join_atom::value, me)
    .then(
      [=](std::vector<cluster_member>& members) {
        auto& st = self->state;
        st.connecting.erase(address);
        if (!members.empty()) {
          add_peer(self, members.front(), peer);
          for (const auto& member : members)
            if (member.node != st.options.node && !st.peers.count(member.node)) {
              st.addresses.insert(member.address);
              connect(self, member.address);
            }
        }
        settle_when_answered(self);
      },
      [=](const caf::error& err) {
        spdlog::warn("cluster: joining {} failed: {}", address, self->system().render(err));
        self->state.connecting.erase(address);
        settle_when_answered(self);
      });
}

/// A peer joined: it is a member from now on; the reply names this node
/// first, then the other live members.
caf::result<std::vector<cluster_member>> accept_join(cluster_ptr self,
                                                    const cluster_member& caller) {
  auto& st = self->state;
  if (caller.node == st.options.node)
    return cluster_error("node name " + caller.node + " is taken (" + st.options.listen + ")");
  std::vector<cluster_member> members{{st.options.node, st.options.listen}};
  for (const auto& [node, peer] : st.peers)
    if (node != caller.node)
      members.push_back({node, peer.address});
  add_peer(self, caller, caf::actor_cast<cluster_peer_actor>(self->current_sender()));
  return members;
}

// -- cluster.etcd: the lease's rounds and the fence ---------------------------

std::string seconds_text(caf::actor_clock::duration_type d) {
  return fmt::format("{:.1f}s", std::chrono::duration<double>(d).count());
}

/// Why this node may not hand deliveries over now (with cluster.etcd), or
/// "" when it may.
std::string not_owning(cluster_ptr self) {
  auto& st = self->state;
  if (!st.etcd)
    return {};
  auto now = self->clock().now();
  const auto& fence = st.etcd->fence;
  if (!fence.valid_at(now))
    return "node " + st.options.node + " cannot prove it holds its etcd lease";
  if (!fence.owns_at(now))
    return "node " + st.options.node + " is joining (it owns nothing for "
           + seconds_text(fence.owns_from() - now) + ")";
  if (!st.replicas.returning.empty())
    return "node " + st.options.node + " is learning which of its deliveries were adopted";
  return {};
}

/// Wakes this actor when the fence falls or the join wait ends, whichever
/// comes first, unless a wake-up at least as early is pending.
void check_fence_later(cluster_ptr self, caf::actor_clock::time_point now) {
  auto& etcd = *self->state.etcd;
  auto at = caf::actor_clock::time_point::max();
  if (now < etcd.fence.owns_from() && etcd.fence.owns_from() < etcd.fence.valid_until())
    at = etcd.fence.owns_from();
  else if (now < etcd.fence.valid_until())
    at = etcd.fence.valid_until();
  if (at == caf::actor_clock::time_point::max() || (etcd.check_at > now && etcd.check_at <= at))
    return;
  etcd.check_at = at;
  self->delayed_send(self, at - now, expire_atom::value);
}

/// Acts on the fence as it stands now: logs and tells the listener when it
/// falls or rises, lines up what this node owns, and wakes again when that
/// changes.
void apply_fence(cluster_ptr self, bool first) {
  auto& st = self->state;
  auto& etcd = *st.etcd;
  auto now = self->clock().now();
  auto valid = etcd.fence.valid_at(now);
  if (!valid && !etcd.fenced) {
    etcd.fenced = true;
    spdlog::error("cluster: node {} lost its etcd lease ({}): it delivers for no postoffice and "
                  "takes no mail until it holds one again",
                  st.options.node,
                  etcd.problem.empty() ? "not renewed in time" : etcd.problem);
    if (etcd.listener)
      self->send(etcd.listener, expire_atom::value, true);
  } else if (valid && etcd.fenced) {
    etcd.fenced = false;
    spdlog::warn("cluster: node {} holds an etcd lease again; it owns postoffices again in {}",
                 st.options.node, seconds_text(std::max(etcd.fence.owns_from() - now,
                                                        caf::actor_clock::duration_type::zero())));
    if (etcd.listener)
      self->send(etcd.listener, expire_atom::value, false);
  }
  // The supervisor checks the fence itself before each attempt: after a
  // hang its timers may fire before this actor's lineup reaches it.
  self->send(st.supervisor, expire_atom::value, etcd.fence.valid_until().time_since_epoch());
  etcd.live = owning_nodes(etcd.members, st.options.node, etcd.fence, now);
  line_up(self, first);
  check_fence_later(self, now);
}

/// What the lease actor found in one round.
void take_round(cluster_ptr self, membership_round& round) {
  auto& st = self->state;
  auto& etcd = *st.etcd;
  if (round.lease_lost) {
    etcd.fence.lost();
    etcd.problem = "etcd says it expired";
  }
  if (!round.adopted_by.empty() && !st.settled) {
    st.replicas.returning.insert(round.adopted_by.begin(), round.adopted_by.end());
    spdlog::warn("cluster: node {}'s deliveries were adopted by {} while it was gone: it learns "
                 "which before it lines up any postoffice",
                 st.options.node, joined(round.adopted_by));
  } else if (!round.adopted_by.empty()) {
    etcd.fence.lost();
    etcd.problem = "its deliveries were adopted by other nodes";
    spdlog::error("cluster: node {}'s deliveries were adopted by {} while it could not renew "
                  "its lease: it takes no part in the cluster any more; restart it on an empty "
                  "queue",
                  st.options.node, joined(round.adopted_by));
  }
  if (round.registered) {
    etcd.fence.registered(round.registered_at, round.ttl);
    spdlog::info("cluster: node {} registered in etcd (lease {}, ttl {}s); it owns postoffices "
                 "from a ttl on",
                 st.options.node, round.lease, round.ttl.count());
  }
  auto members_before = etcd.members;
  if (round.ok) {
    etcd.fence.renewed(round.asked_at, round.ttl);
    if (!etcd.problem.empty() && !round.lease_lost)
      spdlog::info("cluster: node {}: etcd answers again", st.options.node);
    etcd.problem.clear();
    if (etcd.members != round.members) {
      etcd.members = std::move(round.members);
      st.addresses.clear();
      for (const auto& [node, address] : etcd.members)
        if (node != st.options.node)
          st.addresses.insert(address);
      for (const auto& address : std::set<std::string>{st.addresses})
        connect(self, address);
    }
  } else {
    if (etcd.problem.empty() || round.lease_lost)
      spdlog::warn("cluster: node {}: etcd round failed: {}; the lease holds here for {} more",
                   st.options.node, round.problem,
                   seconds_text(std::max(etcd.fence.valid_until() - self->clock().now(),
                                         caf::actor_clock::duration_type::zero())));
    etcd.problem = round.problem;
  }
  auto first = !st.settled;
  st.settled = true;
  apply_fence(self, first);
  if (round.ok) {
    adopt_long_gone(self, members_before);
    learn_what_was_adopted(self);
  }
}

/// Hands a delivery to its postoffice's owner: message and ledger entry go
/// to the owner's cluster actor; the reply is the owner's name once it has
/// committed them.
caf::result<std::string> send_to_owner(cluster_ptr self, ledger_entry entry) {
  auto& st = self->state;
  if (auto why = not_owning(self); !why.empty())
    return cluster_error(why + ": the delivery stays queued here");
  auto owner = st.owners.find(entry.postoffice);
  if (owner == st.owners.end() || owner->second == st.options.node)
    return cluster_error("postoffice " + entry.postoffice + " has no other owner");
  auto peer = st.peers.find(owner->second);
  if (peer == st.peers.end())
    return cluster_error("owner " + owner->second + " is not live");
  auto node = owner->second;
  auto target = peer->second.actor;
  entry.origin = delivery_key(entry, st.options.node);
  auto promise = self->make_response_promise<std::string>();
  self->request(st.store, store_timeout, fetch_atom::value, entry.message_id)
    .then(
      [=](stored_message& msg) mutable {
        auto& st = self->state;
        handoff outgoing{st.options.node, std::move(msg), entry};
        self->request(target, st.options.peer_timeout, handoff_atom::value, outgoing)
          .then([=](bool) mutable { promise.deliver(node); },
                [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
      },
      [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

/// Commits a delivery a peer handed over and enqueues it here.
caf::result<bool> adopt(cluster_ptr self, handoff incoming) {
  auto& st = self->state;
  if (st.etcd && !st.etcd->fence.valid_at(self->clock().now())) {
    spdlog::warn("postoffice {}: delivery {} from node {} not taken: node {} cannot prove it "
                 "holds its etcd lease",
                 incoming.delivery.postoffice, incoming.delivery.origin, incoming.from_node,
                 st.options.node);
    return cluster_error("node " + st.options.node
                         + " cannot prove it holds its etcd lease: not taken");
  }
  attempt_record attempt{0, unix_time_origin::now().seconds, "handed_in", "",
                         "from node " + incoming.from_node + " (its msg "
                           + incoming.message.id + ")"};
  return commit_handed_in(self, incoming, attempt);
}

/// Half to one and a half reconnect intervals.
caf::timespan next_tick_in(cluster_state& st) {
  auto interval = caf::timespan{st.options.reconnect_interval};
  std::uniform_int_distribution<caf::timespan::rep> spread{interval.count() / 2,
                                                           interval.count() * 3 / 2};
  return caf::timespan{spread(st.jitter)};
}

cluster_report report(const cluster_state& st, caf::actor_clock::time_point now) {
  cluster_report out;
  out.node = st.options.node;
  out.state = !st.etcd                          ? "member"
              : !st.etcd->fence.valid_at(now)   ? "fenced"
              : !st.etcd->fence.owns_at(now)    ? "joining"
                                                : "owning";
  if (st.etcd) {
    for (const auto& [node, address] : st.etcd->members)
      out.members.push_back({node, address});
  } else {
    out.members.push_back({st.options.node, st.options.listen});
    for (const auto& [node, peer] : st.peers)
      out.members.push_back({node, peer.address});
  }
  out.owners = st.owners;
  out.replicas = st.options.replicas;
  out.unreplicated = st.replicas.unreplicated;
  return out;
}

} // namespace

std::vector<std::string> cluster_state::live_nodes() const {
  if (etcd)
    return etcd->live;
  std::vector<std::string> nodes{options.node};
  for (const auto& [node, peer] : peers)
    nodes.push_back(node);
  return nodes;
}

postoffice_lineup lineup_for(const cluster_postoffices& postoffices,
                             const std::map<std::string, std::string>& owners,
                             const std::string& node, const std::set<std::string>& running) {
  postoffice_lineup lineup;
  lineup.fallback_retry = postoffices.all.fallback_retry;
  lineup.ndr = postoffices.all.ndr;
  for (const auto& def : postoffices.all.postoffices) {
    auto owner = owners.find(def.name);
    if (owner != owners.end() && owner->second != node) {
      lineup.elsewhere.emplace(def.name, def.retry);
      continue;
    }
    postoffice_definition here{def.name, def.retry, {}};
    if (!running.count(def.name) || postoffices.changed.count(def.name))
      here.start = def.start;
    lineup.postoffices.push_back(std::move(here));
  }
  return lineup;
}

cluster_actor::behavior_type cluster(cluster_actor::stateful_pointer<cluster_state> self,
                                     cluster_config options, store_actor store,
                                     supervisor_actor supervisor,
                                     cluster_postoffices postoffices) {
  auto& st = self->state;
  st.options = std::move(options);
  st.store = std::move(store);
  st.supervisor = std::move(supervisor);
  st.postoffices = std::move(postoffices);
  st.jitter.seed(std::hash<std::string>{}(st.options.node));
  if (!st.options.etcd.empty())
    st.etcd.emplace();
  else
    for (const auto& seed : st.options.seeds)
      if (seed != st.options.listen)
        st.addresses.insert(seed);
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto& st = self->state;
    for (auto peer = st.peers.begin(); peer != st.peers.end(); ++peer) {
      if (peer->second.actor.address() != msg.source)
        continue;
      spdlog::warn("cluster: node {} lost ({})", peer->first, self->system().render(msg.reason));
      st.peers.erase(peer);
      line_up(self, false);
      return;
    }
  });
  self->send(self, tick_atom::value);
  return {
    [=](join_atom, const cluster_member& caller) { return accept_join(self, caller); },
    [=](handoff_atom, handoff& incoming) { return adopt(self, std::move(incoming)); },
    [=](handoff_atom, ledger_entry& entry) { return send_to_owner(self, std::move(entry)); },
    [=](accept_atom, incoming_message& msg) { return accept_replicated(self, msg); },
    [=](replicate_atom, std::vector<handoff>& replicas) { return hold_replicas(self, replicas); },
    [=](replicate_atom, const std::string& node, std::vector<ledger_entry>& changes) {
      self->send(self->state.store, replicate_atom::value, node, std::move(changes));
    },
    [=](replicate_atom, std::vector<ledger_entry>& changes) { tell_holders(self, changes); },
    [=](forget_atom, const std::string& node) { return adopt_replicas_of(self, node); },
    [=](forget_atom, const std::string& node, bool everywhere) {
      return everywhere ? forget_everywhere(self, node) : adopt_replicas_of(self, node);
    },
    [=](load_atom, forget_atom, const std::string& node) {
      return self->delegate(self->state.store, load_atom::value, forget_atom::value, node);
    },
    [=](watch_atom, cluster_lease_actor& lease) { self->state.replicas.lease = std::move(lease); },
    [=](reload_atom, cluster_postoffices& postoffices) {
      self->state.postoffices = std::move(postoffices);
      line_up(self, true);
    },
    [=](status_atom) { return report(self->state, self->clock().now()); },
    [=](report_atom, membership_round& round) {
      if (self->state.etcd)
        take_round(self, round);
    },
    [=](watch_atom, smtp_listener_actor& listener) {
      auto& st = self->state;
      if (!st.etcd)
        return;
      st.etcd->listener = std::move(listener);
      self->send(st.etcd->listener, expire_atom::value, st.etcd->fenced);
    },
    [=](expire_atom) {
      auto& st = self->state;
      if (!st.etcd)
        return;
      if (st.etcd->check_at <= self->clock().now())
        st.etcd->check_at = caf::actor_clock::time_point::max();
      apply_fence(self, false);
    },
    [=](connected_atom, const std::string& address, caf::strong_actor_ptr& found) {
      join(self, address, std::move(found));
    },
    [=](tick_atom) {
      auto& st = self->state;
      for (const auto& address : std::set<std::string>{st.addresses})
        connect(self, address);
      settle_when_answered(self);
      self->delayed_send(self, next_tick_in(st), tick_atom::value);
    },
  };
}

cluster_actor start_cluster(caf::actor_system& sys, const cluster_config& options,
                            store_actor store, supervisor_actor supervisor,
                            cluster_postoffices postoffices,
                            const member_registration* registration) {
  auto where = parse_listen_address(options.listen);
  auto actor = sys.spawn(cluster, options, std::move(store), std::move(supervisor),
                         std::move(postoffices));
  auto port = sys.middleman().publish(caf::actor_cast<cluster_peer_actor>(actor), where->port,
                                      where->host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    throw std::runtime_error(options.listen + ": " + sys.render(port.error()));
  }
  if (!options.etcd.empty() && registration) {
    std::vector<std::string> endpoints;
    for (const auto& endpoint : options.etcd)
      endpoints.push_back(etcd_url(endpoint));
    auto client = std::make_shared<const etcd_client>(std::move(endpoints),
                                                      etcd_call_timeout(options.lease_ttl));
    auto lease = sys.spawn<caf::detached>(cluster_lease, std::move(client), options,
                                          *registration, actor);
    caf::anon_send(actor, watch_atom::value, std::move(lease));
  }
  return actor;
}

} // namespace postconn
