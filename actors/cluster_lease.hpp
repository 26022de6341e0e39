// NAME
//   cluster_lease -- this node's lease and member key in etcd, kept from a
//   thread of its own.
//
// SYNOPSIS
//   auto first = register_member(client, "a", "10.0.0.1:4200", 10s); // at start
//   auto lease = sys.spawn<caf::detached>(cluster_lease, client, options, *first, cluster);
//
// DESCRIPTION
//   A detached actor: every etcd call blocks its own thread (each bounded,
//   etcd_client.hpp), never one of CAF's scheduler threads. Every
//   round_interval (a third of cluster.lease_ttl) it renews the lease with
//   one keepalive and reads the members under members_prefix, and tells
//   the cluster actor what it found (membership_round), with the time it
//   read before the keepalive went out: the cluster actor's fence counts
//   from there (runtime/cluster/membership.hpp). When etcd says the lease
//   is gone (it expired while the node hung or was cut off), the same round
//   grants a new one and writes the member key again, and says so: the
//   node owns nothing until it has waited a TTL after that put. A round
//   that fails is tried again at the next tick; nothing else changes here.
//
//   It is linked to the cluster actor and ends with it; it revokes its
//   lease as it ends, so after a planned stop the others take over at once
//   instead of after a TTL.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "messages/actors.hpp"
#include "runtime/cluster/etcd_client.hpp"
#include "runtime/config/config.hpp"

namespace postconn {

/// This node's registration: its lease and when its member key was written.
struct member_registration {
  etcd_lease lease;
  /// Read before the grant was sent.
  std::chrono::steady_clock::time_point asked_at;
  /// When the put of the member key returned.
  std::chrono::steady_clock::time_point written_at;
  /// cluster.replicas: the nodes that adopted this node's deliveries while
  /// it was gone, read once its member key was written.
  std::vector<std::string> adopted_by = {};
};

/// Grants a lease of `ttl` and writes the member key of `node` (value
/// `address`) on it.
etcd_result<member_registration> register_member(const etcd_client& client,
                                                 const std::string& node,
                                                 const std::string& address,
                                                 std::chrono::seconds ttl);

/// How long one etcd call may wait for an endpoint: a quarter of the TTL,
/// from 200 ms to 2 s.
std::chrono::milliseconds etcd_call_timeout(std::chrono::seconds ttl);

struct cluster_lease_state {
  std::shared_ptr<const etcd_client> client;
  cluster_config options;
  /// The lease held; 0 when none (a grant failed after the old one was lost).
  std::int64_t lease = 0;
  std::chrono::seconds ttl{0};
  cluster_actor cluster;
  /// Other nodes adopted this node's deliveries: it holds no lease from
  /// then on (cluster_actor refuses to take part).
  bool adopted = false;

  static inline const char* name = "cluster_lease";
};

cluster_lease_actor::behavior_type
cluster_lease(cluster_lease_actor::stateful_pointer<cluster_lease_state> self,
              std::shared_ptr<const etcd_client> client, cluster_config options,
              member_registration first, cluster_actor cluster);

} // namespace postconn
