// NAME
//   cluster_lease -- this node's etcd lease and member key (see
//   cluster_lease.hpp).
#include "actors/cluster_lease.hpp"

#include <algorithm>
#include <ctime>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/cluster/membership.hpp"

namespace postconn {

namespace {

using lease_ptr = cluster_lease_actor::stateful_pointer<cluster_lease_state>;
using steady = std::chrono::steady_clock;

/// Other nodes adopted this node's deliveries while it was gone: its
/// member key goes, so nobody counts it as a member, and no round renews it.
void give_up_lease(cluster_lease_state& st) {
  st.adopted = true;
  if (auto revoked = st.client->revoke(st.lease); !revoked)
    spdlog::warn("cluster: node {} could not revoke its etcd lease {} ({})", st.options.node,
                 st.lease, revoked.error().message);
  st.lease = 0;
}

/// One round: the keepalive (or, without a lease, a grant and the member
/// key's put), then the members.
membership_round run_round(cluster_lease_state& st) {
  membership_round round;
  round.asked_at = steady::now();
  if (st.adopted) {
    round.problem = "its deliveries were adopted by other nodes";
    return round;
  }
  if (st.lease != 0) {
    auto renewed = st.client->keep_alive(st.lease);
    if (renewed) {
      round.ttl = *renewed;
    } else if (renewed.error().failure == etcd_failure::lease_not_found) {
      round.lease_lost = true;
      st.lease = 0;
    } else {
      round.problem = renewed.error().message;
      return round;
    }
  }
  if (st.lease == 0) {
    auto registration = register_member(*st.client, st.options.node, st.options.listen,
                                        st.options.lease_ttl);
    if (!registration) {
      round.problem = registration.error().message;
      return round;
    }
    st.lease = registration->lease.id;
    if (!registration->adopted_by.empty()) {
      give_up_lease(st);
      round.adopted_by = std::move(registration->adopted_by);
      round.problem = round.adopted_by.front() + " adopted its deliveries";
      return round;
    }
    round.asked_at = registration->asked_at;
    round.ttl = registration->lease.ttl;
    round.registered = true;
    round.registered_at = registration->written_at;
  }
  round.lease = st.lease;
  st.ttl = round.ttl;
  auto members = st.client->get_prefix(std::string{members_prefix});
  if (!members) {
    round.problem = members.error().message;
    return round;
  }
  round.members = members_of(*members);
  round.ok = true;
  return round;
}

} // namespace

etcd_result<member_registration> register_member(const etcd_client& client,
                                                 const std::string& node,
                                                 const std::string& address,
                                                 std::chrono::seconds ttl) {
  member_registration out;
  out.asked_at = steady::now();
  auto lease = client.grant(ttl);
  if (!lease)
    return lease.error();
  out.lease = *lease;
  auto put = client.put(member_key(node), address, out.lease.id);
  if (!put)
    return put.error();
  out.written_at = steady::now();
  // Read after the member key is written: an adopter's record written
  // before it is seen here; after it, the adopter's write fails.
  auto adopters = client.get_prefix(adopted_prefix_of(node));
  if (!adopters)
    return adopters.error();
  out.adopted_by = adopters_of(node, *adopters);
  return out;
}

std::chrono::milliseconds etcd_call_timeout(std::chrono::seconds ttl) {
  using std::chrono::milliseconds;
  return std::clamp(std::chrono::duration_cast<milliseconds>(ttl) / 4, milliseconds{200},
                    milliseconds{2000});
}

cluster_lease_actor::behavior_type
cluster_lease(cluster_lease_actor::stateful_pointer<cluster_lease_state> self,
              std::shared_ptr<const etcd_client> client, cluster_config options,
              member_registration first, cluster_actor cluster) {
  auto& st = self->state;
  st.client = std::move(client);
  st.options = std::move(options);
  st.lease = first.lease.id;
  st.ttl = first.lease.ttl;
  st.cluster = std::move(cluster);
  self->link_to(st.cluster);
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.lease != 0) {
      if (auto revoked = st.client->revoke(st.lease))
        spdlog::info("cluster: node {} left etcd (lease {} revoked)", st.options.node, st.lease);
      else
        spdlog::warn("cluster: node {} could not revoke its etcd lease {} ({}); its member key "
                     "goes when the lease expires",
                     st.options.node, st.lease, revoked.error().message);
    }
    self->quit(msg.reason);
  });
  // The registration at start is the first round's, with the members read now.
  membership_round round;
  round.asked_at = first.asked_at;
  round.ttl = first.lease.ttl;
  round.lease = first.lease.id;
  round.registered = true;
  round.registered_at = first.written_at;
  round.adopted_by = first.adopted_by;
  if (auto members = st.client->get_prefix(std::string{members_prefix})) {
    round.members = members_of(*members);
    round.ok = true;
  } else {
    round.problem = members.error().message;
  }
  self->send(st.cluster, report_atom::value, std::move(round));
  self->delayed_send(self, round_interval(st.options.lease_ttl), tick_atom::value);
  return {
    [=](forget_atom, const std::string& node) -> caf::result<bool> {
      auto& st = self->state;
      auto recorded = st.client->put_unless_exists(
        adopted_key(node, st.options.node), std::to_string(std::time(nullptr)), member_key(node));
      if (!recorded)
        return caf::make_error(caf::sec::runtime_error, "etcd: " + recorded.error().message);
      return *recorded;
    },
    [=](delete_atom, const std::string& by) {
      auto& st = self->state;
      if (auto deleted = st.client->delete_key(adopted_key(st.options.node, by)); !deleted)
        spdlog::warn("cluster: the record that node {} adopted deliveries of node {} stays in "
                     "etcd ({})",
                     by, st.options.node, deleted.error().message);
    },
    [=](tick_atom) {
      auto& st = self->state;
      self->send(st.cluster, report_atom::value, run_round(st));
      self->delayed_send(self, round_interval(st.options.lease_ttl), tick_atom::value);
    },
  };
}

} // namespace postconn
