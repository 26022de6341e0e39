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
#pragma once

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "messages/actors.hpp"
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

  /// This node and its live peers, by name.
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

/// Spawns the cluster actor and publishes it on options.listen; throws
/// std::runtime_error when it cannot listen there.
cluster_actor start_cluster(caf::actor_system& sys, const cluster_config& options,
                            store_actor store, supervisor_actor supervisor,
                            cluster_postoffices postoffices);

} // namespace postconn
