// NAME
//   cluster_replicas -- replicated acceptance: the cluster actor's part
//   (cluster.replicas = 2).
//
// DESCRIPTION
//   Accepted mail: the message is committed here with the name of a live
//   peer that will hold its replica, but its deliveries are not attempted
//   yet; each delivery goes to that peer as a replica (a handoff keyed by
//   its delivery key), and once the peer has committed it the deliveries
//   are given to the supervisor and the 250 goes out. When no peer takes
//   it, the message is removed again and the client gets 451 4.3.0, or with
//   cluster.without_replica = "accept" it is kept, logged and counted.
//   A delivery handed in from another node is replicated the same way
//   before the handoff is answered.
//
//   Every committed change of a delivery with a replica goes to its holder
//   (the supervisor tells this actor), which drops the replica when the
//   delivery finishes. Changes for a holder that is not live wait, the
//   latest per delivery, until it is.
//
//   Adoption: a node etcd has not held as a member for cluster.adopt_after
//   (or one an operator forgets) has its deliveries adopted by the nodes
//   holding their replicas. Each adopter first records in etcd that it
//   adopts, only while the node holds no member key. A node that starts
//   and finds such records (its registration reads them) first asks each
//   adopter which of its deliveries it adopted and finishes those here
//   unattempted; it lines up no postoffice before. A node that registers
//   again while running, and finds them, takes no part any more until it
//   is restarted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/cluster.hpp"

namespace postconn {

using cluster_ptr = cluster_actor::stateful_pointer<cluster_state>;

/// Sends the supervisor a new lineup when the owners changed (or always,
/// with `force`), once the first round is in and no adopter is waited for
/// (cluster.cpp).
void line_up(cluster_ptr self, bool force);

/// SMTP's commit of a message with cluster.replicas = 2: replies once the
/// message is durable here and its replica on a peer.
caf::result<accept_receipt> accept_replicated(cluster_ptr self, incoming_message& msg);

/// Commits a handed-in delivery (with cluster.replicas = 2, and its
/// replica on a peer), then gives it to the supervisor; replies true once
/// it is durable (also when it was handed in before).
caf::result<bool> commit_handed_in(cluster_ptr self, handoff& incoming,
                                   const attempt_record& attempt);

/// A peer's replicas: committed here; replies once they are durable.
caf::result<bool> hold_replicas(cluster_ptr self, std::vector<handoff>& replicas);

/// The supervisor committed changes of deliveries with replicas: each goes
/// to its holder (or waits for it).
void tell_holders(cluster_ptr self, std::vector<ledger_entry>& changes);

/// A peer rejoined: the changes waiting for it go now.
void send_waiting_changes(cluster_ptr self, const std::string& node);

/// Adopts the replicas held here of `node`'s deliveries, once etcd has
/// recorded it (only while `node` is no member); replies with how many.
caf::result<std::uint32_t> adopt_replicas_of(cluster_ptr self, const std::string& node);

/// An operator forgets `node`: every live node (this one too) adopts the
/// replicas it holds; replies with how many in all.
caf::result<std::uint32_t> forget_everywhere(cluster_ptr self, const std::string& node);

/// At start, after adoptions of this node's deliveries: asks each adopter
/// that is live which keys it adopted, has the supervisor finish those,
/// clears the record in etcd, and lines up once all have answered.
void learn_what_was_adopted(cluster_ptr self);

/// After each round with etcd: notes members that went or came back, and
/// adopts the replicas of those gone for cluster.adopt_after.
void adopt_long_gone(cluster_ptr self, const std::map<std::string, std::string>& before);

} // namespace postconn
