// NAME
//   membership -- the members etcd holds, and how long this node may act on
//   what it read there (its lease's fence).
//
// SYNOPSIS
//   auto key = member_key("b");                       // "/postconn/members/b"
//   auto members = members_of(range);                 // node -> cluster address
//   lease_fence fence;
//   fence.registered(written_at, granted_ttl);        // the member key was put
//   fence.renewed(asked_at, granted_ttl);             // a round went through
//   if (fence.owns_at(now)) ...                       // may deliver
//
// DESCRIPTION
//   Each node holds an etcd lease and the key /postconn/members/<node>
//   (value: its cluster.listen address) on that lease; the live members are
//   the member keys etcd holds. A key whose name is no node name is ignored.
//
//   The fence. A round (a keepalive, or a grant and the member key's put,
//   then a read of the members) that went through proves that etcd holds
//   this node's lease at least until the time read *before* the round was
//   sent plus the TTL (etcd_client.hpp: "Lease time"). The node acts on the
//   members it read only until
//
//     valid_until = asked_at + TTL - margin,      margin = TTL / 5
//
//   and stops delivering then unless a later round went through. Another
//   node sees this node's key vanish only when etcd expires the lease, at
//   least TTL after the last keepalive etcd received, so later than
//   valid_until: the margin covers the clocks' rates and the time the node
//   needs to stop. Every round also reads the members, so a view is never
//   acted on past the valid_until of the round that read it.
//
//   Joining. A node that (re)writes its member key owns nothing until a TTL
//   after the put returned: a node that still owns one of its postoffices
//   read its members before that put, and acts on that view no longer than
//   the valid_until of its round, which is earlier.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/cluster/etcd_client.hpp"

namespace postconn {

/// Where every member key starts.
constexpr std::string_view members_prefix = "/postconn/members/";

/// The member key of `node`.
std::string member_key(const std::string& node);

/// cluster.replicas: where the records of adopted nodes start. The node
/// that adopts the replicas it holds of `node`'s deliveries writes
/// adopted_key(node, itself) first, only while `node` holds no member key;
/// `node` reads adopted_prefix_of(node) once its own member key is written.
/// Of the two, whichever etcd orders first wins: the adoption, or the
/// node's return.
constexpr std::string_view adopted_prefix = "/postconn/adopted/";

/// Where the records of `node`'s adopters start.
std::string adopted_prefix_of(const std::string& node);

/// The record that `by` adopted `node`'s deliveries.
std::string adopted_key(const std::string& node, const std::string& by);

/// The adopters named in a read of adopted_prefix_of(node).
std::vector<std::string> adopters_of(const std::string& node, const etcd_range& range);

/// The members in a read of members_prefix: node -> cluster address. Keys
/// whose node part is no node name ([a-z0-9-]+) are left out.
std::map<std::string, std::string> members_of(const etcd_range& range);

/// How much earlier than its lease's known expiry a node stops delivering.
std::chrono::milliseconds fence_margin(std::chrono::seconds ttl);

/// How often a node renews its lease and reads the members: a third of the
/// TTL, so two rounds may fail before the fence falls.
std::chrono::milliseconds round_interval(std::chrono::seconds ttl);

/// Until when a node may act on its lease and its view of the members.
class lease_fence {
public:
  using clock = std::chrono::steady_clock;

  /// A round asked at `asked_at` (read before it was sent) went through,
  /// and etcd granted `ttl`. Returns the new valid_until.
  clock::time_point renewed(clock::time_point asked_at, std::chrono::seconds ttl);

  /// The member key was (re)written on a lease of `ttl`; the put returned
  /// at `written_at`.
  void registered(clock::time_point written_at, std::chrono::seconds ttl);

  /// etcd says the lease is gone (expired or revoked): nothing is valid
  /// until a new lease is granted and the member key written again.
  void lost();

  /// The lease is known to be held at `now` (less the margin).
  bool valid_at(clock::time_point now) const {
    return now < valid_until_;
  }

  /// This node may own postoffices at `now`: the lease is valid and it
  /// joined long enough ago.
  bool owns_at(clock::time_point now) const {
    return valid_at(now) && now >= owns_from_;
  }

  clock::time_point valid_until() const {
    return valid_until_;
  }
  clock::time_point owns_from() const {
    return owns_from_;
  }

private:
  clock::time_point valid_until_{};
  clock::time_point owns_from_{clock::time_point::max()};
};

/// The nodes the postoffices are shared among as this node sees them at
/// `now`: the members it read once it owns (it is one of them), none
/// before (it waits to join) or when its fence has fallen. With none, the
/// node owns nothing and hands nothing over: its deliveries stay queued.
std::vector<std::string> owning_nodes(const std::map<std::string, std::string>& members,
                                      const std::string& node, const lease_fence& fence,
                                      lease_fence::clock::time_point now);

} // namespace postconn
