// NAME
//   ownership -- rendezvous hashing of postoffices over live nodes (see
//   ownership.hpp).
#include "runtime/cluster/ownership.hpp"

#include <algorithm>

namespace postconn {

namespace {

void fnv1a(std::uint64_t& hash, std::string_view text) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
}

/// Spreads FNV's weak low bits over the whole word (splitmix64's finalizer).
std::uint64_t finalize(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

} // namespace

std::uint64_t rendezvous_weight(std::string_view node, std::string_view postoffice) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  fnv1a(hash, node);
  // A separator, so ("ab", "c") and ("a", "bc") score differently.
  fnv1a(hash, std::string_view{"\0", 1});
  fnv1a(hash, postoffice);
  return finalize(hash);
}

std::string owner_of(const std::string& postoffice, const std::string& explicit_owner,
                     const std::vector<std::string>& live_nodes) {
  if (!explicit_owner.empty()
      && std::find(live_nodes.begin(), live_nodes.end(), explicit_owner) != live_nodes.end())
    return explicit_owner;
  const std::string* best = nullptr;
  std::uint64_t best_weight = 0;
  for (const auto& node : live_nodes) {
    auto weight = rendezvous_weight(node, postoffice);
    if (!best || weight > best_weight || (weight == best_weight && node < *best)) {
      best = &node;
      best_weight = weight;
    }
  }
  return best ? *best : std::string{};
}

std::map<std::string, std::string>
owners_of(const std::map<std::string, std::string>& explicit_owners,
          const std::vector<std::string>& live_nodes) {
  std::map<std::string, std::string> owners;
  for (const auto& [postoffice, explicit_owner] : explicit_owners)
    owners[postoffice] = owner_of(postoffice, explicit_owner, live_nodes);
  return owners;
}

} // namespace postconn
