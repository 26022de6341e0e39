// Tests runtime/store/message_id.cpp: ids sort in issue order, never repeat, and
// continue after the greatest id already in the queue.
#include <doctest/doctest.h>

#include "runtime/store/message_id.hpp"

using namespace postconn;

TEST_CASE("queue ids are 16 hex digits of the time in microseconds") {
  message_id_generator ids;
  CHECK(ids.next(0x5f3a2b1c4d5e6ULL) == "0005f3a2b1c4d5e6");
  CHECK(is_message_id(ids.next()));
  CHECK_FALSE(is_message_id("0005F3A2B1C4D5E6"));
  CHECK_FALSE(is_message_id("0005f3a2b1c4d5e"));
  CHECK_FALSE(is_message_id("../../etc/passwd"));
}

TEST_CASE("queue ids never repeat or go backwards, even when the clock does") {
  message_id_generator ids;
  auto a = ids.next(1000);
  auto b = ids.next(1000);
  auto c = ids.next(10);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(c == "00000000000003ea");
}

TEST_CASE("a generator continues after the greatest id in the queue") {
  message_id_generator ids{"00000000000003e8"};
  CHECK(ids.next(5) == "00000000000003e9");
  message_id_generator from_garbage{"not an id"};
  CHECK(from_garbage.next(5) == "0000000000000005");
}
