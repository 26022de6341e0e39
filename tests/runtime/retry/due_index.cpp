// Tests runtime/retry/due_index.cpp: attempts by postoffice and time, limits,
// moving and removing deliveries, and the earliest wake with busy
// postoffices left out.
#include <doctest/doctest.h>

#include "runtime/retry/due_index.hpp"

using namespace postconn;

namespace {

using ids = std::vector<std::int64_t>;
using names = std::vector<std::string>;

constexpr auto never = due_index::never;

auto skip_none = [](const std::string&, std::int64_t) { return false; };

} // namespace

TEST_CASE("due attempts come by postoffice, earliest first, at most max") {
  due_index due;
  due.put(1, "a", 30, never);
  due.put(2, "b", 10, never);
  due.put(3, "a", 20, never);
  due.put(4, "a", 50, never);
  CHECK(due.postoffices_due(5).empty());
  CHECK(due.postoffices_due(20) == names{"b", "a"});
  CHECK(due.attempts_due("a", 40, 10) == ids{3, 1});
  CHECK(due.attempts_due("a", 40, 1) == ids{3});
  CHECK(due.attempts_due("c", 40, 10).empty());
  CHECK(due.earliest(skip_none) == 10);
}

TEST_CASE("put again moves a delivery, remove takes it out") {
  due_index due;
  due.put(1, "a", 10, 100);
  due.put(2, "a", 20, never);
  due.put(1, "b", 60, 200);
  CHECK(due.size() == 2);
  CHECK(due.attempts_due("a", 100, 10) == ids{2});
  CHECK(due.postoffices_due(100) == names{"a", "b"});
  CHECK(due.limits_due(150).empty());
  CHECK(due.limits_due(200) == ids{1});
  due.remove(2);
  due.remove(2);
  CHECK(due.postoffices_due(100) == names{"b"});
  due.remove(1);
  CHECK(due.size() == 0);
  CHECK(due.postoffices_due(1000).empty());
  CHECK(due.earliest(skip_none) == never);
}

TEST_CASE("limits are due by their own time, whatever the attempt time") {
  due_index due;
  due.put(1, "a", 500, 100);
  due.put(2, "a", 5, 300);
  due.put(3, "b", 5, never);
  CHECK(due.limits_due(99).empty());
  CHECK(due.limits_due(300) == ids{1, 2});
  CHECK(due.earliest(skip_none) == 5);
}

TEST_CASE("earliest leaves out the postoffices the caller skips") {
  due_index due;
  due.put(1, "busy", 10, never);
  due.put(2, "busy", 15, never);
  due.put(3, "idle", 40, never);
  due.put(4, "other", 70, 60);
  auto skip_busy = [](const std::string& postoffice, std::int64_t) {
    return postoffice == "busy";
  };
  CHECK(due.earliest(skip_none) == 10);
  CHECK(due.earliest(skip_busy) == 40);
  due.remove(3);
  CHECK(due.earliest(skip_busy) == 60);
  due.clear();
  CHECK(due.earliest(skip_none) == never);
}

TEST_CASE("a postoffice's place follows its earliest attempt as deliveries come and go") {
  due_index due;
  due.put(1, "a", 50, never);
  due.put(2, "b", 40, never);
  CHECK(due.postoffices_due(50) == names{"b", "a"});
  due.put(3, "a", 30, never);
  CHECK(due.postoffices_due(50) == names{"a", "b"});
  CHECK(due.postoffices_due(35) == names{"a"});
  due.remove(3);
  CHECK(due.postoffices_due(45) == names{"b"});
  due.put(1, "a", 30, never);
  CHECK(due.postoffices_due(35) == names{"a"});
}
