// NAME
//   membership -- member keys and the lease's fence (see membership.hpp).
#include "runtime/cluster/membership.hpp"

#include <algorithm>

namespace postconn {

namespace {

bool is_node_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

} // namespace

std::string member_key(const std::string& node) {
  return std::string{members_prefix} + node;
}

std::string adopted_prefix_of(const std::string& node) {
  return std::string{adopted_prefix} + node + "/";
}

std::string adopted_key(const std::string& node, const std::string& by) {
  return adopted_prefix_of(node) + by;
}

std::vector<std::string> adopters_of(const std::string& node, const etcd_range& range) {
  auto prefix = adopted_prefix_of(node);
  std::vector<std::string> adopters;
  for (const auto& kv : range.keys)
    if (kv.key.compare(0, prefix.size(), prefix) == 0 && is_node_name(kv.key.substr(prefix.size())))
      adopters.push_back(kv.key.substr(prefix.size()));
  return adopters;
}

std::map<std::string, std::string> members_of(const etcd_range& range) {
  std::map<std::string, std::string> members;
  for (const auto& kv : range.keys) {
    std::string_view key = kv.key;
    if (key.substr(0, members_prefix.size()) != members_prefix)
      continue;
    key.remove_prefix(members_prefix.size());
    if (is_node_name(key))
      members.emplace(std::string{key}, kv.value);
  }
  return members;
}

std::chrono::milliseconds fence_margin(std::chrono::seconds ttl) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(ttl) / 5;
}

std::chrono::milliseconds round_interval(std::chrono::seconds ttl) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(ttl) / 3;
}

lease_fence::clock::time_point lease_fence::renewed(clock::time_point asked_at,
                                                    std::chrono::seconds ttl) {
  valid_until_ = std::max(valid_until_, asked_at + ttl - fence_margin(ttl));
  return valid_until_;
}

void lease_fence::registered(clock::time_point written_at, std::chrono::seconds ttl) {
  owns_from_ = written_at + ttl;
}

std::vector<std::string> owning_nodes(const std::map<std::string, std::string>& members,
                                      const std::string& node, const lease_fence& fence,
                                      lease_fence::clock::time_point now) {
  std::vector<std::string> nodes;
  if (!fence.owns_at(now) || !members.count(node))
    return nodes;
  for (const auto& [member, address] : members)
    nodes.push_back(member);
  return nodes;
}

void lease_fence::lost() {
  valid_until_ = {};
  owns_from_ = clock::time_point::max();
}

} // namespace postconn
