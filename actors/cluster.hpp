// NAME
//   cluster -- this node's member of the cluster of postconn nodes.
//
// DESCRIPTION
//   The cluster actor is published on cluster.listen with CAF's middleman;
//   peers reach it there. It joins the seeds (and every member they name)
//   asynchronously, monitors each peer, and tries again about every
//   reconnect_interval to reach a seed or a member it lost, so a node that
//   returns is found again from either side. The retries are spread at
//   random over half to one and a half intervals: two nodes that dial each
//   other at the same moment both close the connection they opened (CAF
//   keeps one direct connection per node pair, and each side keeps the
//   other's), so nodes that started together must not retry in step. A lost peer shows as a down
//   message (connection closed, or no heartbeat within peer_timeout).
//
//   From the live members it computes every postoffice's owner
//   (runtime/cluster/ownership.hpp) and sends the supervisor a lineup of the
//   postoffices this node owns, and of those it hands over. The first
//   lineup waits until every seed has answered or failed once, so a node
//   starting up does not claim every postoffice for a moment.
//
//   Handoff: the supervisor asks it to hand a delivery to its owner; it
//   reads the message from the store and sends message and ledger entry to
//   the owner's cluster actor, which commits them in its own store
//   (detecting a delivery handed over twice by its origin key) and replies
//   only then. The supervisor finishes its copy on that reply.
//
//   With cluster.etcd, membership and ownership come from etcd instead: the
//   lease actor (cluster_lease.hpp) reports each round, the members are the
//   member keys etcd holds, and the peers' CAF connections only carry
//   handoffs (the seeds are not used; the members' addresses are). The
//   fence (runtime/cluster/membership.hpp) decides what this node may do:
//   - owning (lease valid, joined a TTL ago): the postoffices are shared
//     among the members etcd holds;
//   - joining (lease valid, member key written less than a TTL ago): it owns
//     nothing and hands nothing over, but takes mail and handoffs;
//   - fenced (the lease not known to be held): it owns nothing, hands
//     nothing over, refuses handoffs, and the SMTP listener answers RCPT TO
//     with 452 4.3.0. Its deliveries stay queued here.
//   The fence falls by a timer at valid_until, whether or not a round has
//   failed, and handoffs check it when they come.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>

#include "messages/actors.hpp"
#include "runtime/cluster/membership.hpp"
#include "runtime/config/config.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace postconn {

/// A live peer: where its cluster actor listens, and its handle.
struct cluster_peer {
  std::string address;
  cluster_peer_actor actor;
};

/// cluster.etcd: this node's lease and the members etcd holds, as the lease
/// actor reported them.
struct etcd_membership {
  /// Until when this node may act on its lease and its view of the members.
  lease_fence fence;
  /// The members read by the last round that went through: node -> address.
  std::map<std::string, std::string> members;
  /// The nodes the postoffices are shared among now (owning_nodes()).
  std::vector<std::string> live;
  /// The fence has fallen: the lost line is logged, the listener told.
  bool fenced = false;
  /// Why the last round failed; empty after one that went through.
  std::string problem;
  /// When the pending expire_atom is due; max() when none is.
  caf::actor_clock::time_point check_at = caf::actor_clock::time_point::max();
  /// Told when the fence falls or rises.
  smtp_listener_actor listener;
};

/// cluster.replicas: this node's replicas on others, and others' here.
struct replication {
  /// Turns over the live peers: the next replica goes to the next one.
  std::size_t next_holder = 0;
  /// Changes for holders that are not live now, the latest per delivery
  /// key, sent when they are again.
  std::map<std::string, std::map<std::string, ledger_entry>> waiting;
  /// Members etcd no longer holds, since when.
  std::map<std::string, caf::actor_clock::time_point> gone_since;
  /// Nodes whose replicas this node adopts or adopted (this run).
  std::set<std::string> forgotten;
  /// Mail accepted without a replica (cluster.without_replica = "accept").
  std::uint64_t unreplicated = 0;
  /// Writes the adoption records in etcd.
  cluster_lease_actor lease;
  /// The nodes that adopted deliveries of this node while it was gone, as
  /// its registration at start found them: until each has said which (and
  /// the supervisor finished those here), this node lines up nothing.
  std::set<std::string> returning;
  /// Of those, the ones asked now.
  std::set<std::string> asking;
};

struct cluster_state {
  cluster_config options;
  store_actor store;
  supervisor_actor supervisor;
  /// Live peers by node name.
  std::map<std::string, cluster_peer> peers;
  /// Addresses to keep reaching: the seeds and every member learnt of.
  std::set<std::string> addresses;
  /// Addresses with a connection or join under way.
  std::set<std::string> connecting;
  /// The configured postoffices.
  cluster_postoffices postoffices;
  /// Postoffices this node ran by the last lineup.
  std::set<std::string> running;
  /// Every postoffice's owner by the last lineup.
  std::map<std::string, std::string> owners;
  /// Every seed has answered or failed once: lineups may go out.
  bool settled = false;
  /// Spreads the reconnect ticks; seeded by the node's name, so a run on
  /// the test coordinator repeats.
  std::minstd_rand jitter;
  /// Present with cluster.etcd: membership from etcd.
  std::optional<etcd_membership> etcd;
  replication replicas;

  /// This node and its live peers, by name; with cluster.etcd, the nodes
  /// the postoffices are shared among (none while this node owns nothing).
  std::vector<std::string> live_nodes() const;

  static inline const char* name = "cluster";
};

/// The supervisor's lineup for `node` given every postoffice's owner: the
/// postoffices it owns (started unless in `running` and unchanged) and
/// those it hands over, with their retry policies.
postoffice_lineup lineup_for(const cluster_postoffices& postoffices,
                             const std::map<std::string, std::string>& owners,
                             const std::string& node, const std::set<std::string>& running);

cluster_actor::behavior_type cluster(cluster_actor::stateful_pointer<cluster_state> self,
                                     cluster_config options, store_actor store,
                                     supervisor_actor supervisor,
                                     cluster_postoffices postoffices);

struct member_registration;

/// Spawns the cluster actor and publishes it on options.listen; throws
/// std::runtime_error when it cannot listen there. With cluster.etcd,
/// `registration` is this node's (register_member()), and the lease actor
/// starts from it.
cluster_actor start_cluster(caf::actor_system& sys, const cluster_config& options,
                            store_actor store, supervisor_actor supervisor,
                            cluster_postoffices postoffices,
                            const member_registration* registration = nullptr);

} // namespace postconn
