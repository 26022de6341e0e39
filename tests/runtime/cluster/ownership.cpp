// Tests runtime/cluster/ownership.cpp: one owner per postoffice among the live
// nodes, the same on every node, explicit owners while they live, and only a
// lost node's postoffices move.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "runtime/cluster/ownership.hpp"

using namespace postconn;

namespace {

std::map<std::string, std::string> postoffices_without_owner(int count) {
  std::map<std::string, std::string> names;
  for (int i = 0; i < count; ++i)
    names["po" + std::to_string(i)] = "";
  return names;
}

} // namespace

TEST_CASE("the rendezvous weight is fixed: every node and build computes the same") {
  CHECK(rendezvous_weight("a", "sales") == rendezvous_weight("a", "sales"));
  CHECK(rendezvous_weight("a", "sales") != rendezvous_weight("b", "sales"));
  CHECK(rendezvous_weight("ab", "c") != rendezvous_weight("a", "bc"));
  // A literal value: a change of the hash would move postoffices between
  // nodes of different versions.
  CHECK(rendezvous_weight("node-a", "sales") == 0x684394614d81f9e3ULL);
}

TEST_CASE("every postoffice has one owner among the live nodes, whatever their order") {
  auto names = postoffices_without_owner(300);
  auto owners = owners_of(names, {"a", "b", "c"});
  auto reordered = owners_of(names, {"c", "a", "b"});
  CHECK(owners == reordered);
  std::map<std::string, int> per_node;
  for (const auto& [po, owner] : owners)
    ++per_node[owner];
  CHECK(per_node.size() == 3);
  for (const auto& [node, count] : per_node) {
    INFO(node << " owns " << count);
    CHECK(count > 60); // 100 expected; a fair hash stays well above this
  }
}

TEST_CASE("a lost node's postoffices move to the survivors, the others stay") {
  auto names = postoffices_without_owner(300);
  auto before = owners_of(names, {"a", "b", "c"});
  auto after = owners_of(names, {"a", "c"});
  for (const auto& [po, owner] : before) {
    INFO(po);
    if (owner == "b")
      CHECK(after.at(po) != "b");
    else
      CHECK(after.at(po) == owner);
  }
  CHECK(owners_of(names, {"a", "b", "c"}) == before); // b returns: all move back
}

TEST_CASE("an explicit owner wins while it is live, hashing decides while it is not") {
  CHECK(owner_of("sales", "b", {"a", "b", "c"}) == "b");
  auto without_b = owner_of("sales", "b", {"a", "c"});
  CHECK(without_b == owner_of("sales", "", {"a", "c"}));
  CHECK(owner_of("sales", "b", {"a"}) == "a");
  CHECK(owner_of("sales", "", {}).empty());
}
