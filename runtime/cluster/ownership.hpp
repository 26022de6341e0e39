// NAME
//   ownership -- which live node owns a postoffice.
//
// DESCRIPTION
//   Rendezvous (highest random weight) hashing: every node scores every
//   postoffice with a stable hash of both names, and the live node with the
//   highest score owns it. All nodes compute the same owner from the same
//   membership, without talking to each other; when a node leaves, only its
//   postoffices move (each to the survivor that scored next), and when it
//   returns, exactly those come back. An explicit owner (postoffice.owner)
//   wins while that node is live; while it is not, hashing picks a survivor.
//   The hash is FNV-1a with a 64-bit finalizer, fixed here: it must give the
//   same owner on every node and build, which std::hash does not promise.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace postconn {

/// The score of `node` for `postoffice`: stable across runs and builds.
std::uint64_t rendezvous_weight(std::string_view node, std::string_view postoffice);

/// The owner of `postoffice` among `live_nodes` (not empty): the explicit
/// owner when it is live, else the node with the highest weight (ties go to
/// the smaller name).
std::string owner_of(const std::string& postoffice, const std::string& explicit_owner,
                     const std::vector<std::string>& live_nodes);

/// The owner of every postoffice in `explicit_owners` (name -> explicit
/// owner, "" for none) among `live_nodes`.
std::map<std::string, std::string>
owners_of(const std::map<std::string, std::string>& explicit_owners,
          const std::vector<std::string>& live_nodes);

} // namespace postconn
