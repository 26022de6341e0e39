// Tests that an NDR and its bounce commit together (actors/ndr_generator.cpp,
// actors/store.cpp): a server that bounces every message at once is killed
// with SIGKILL at random moments, many rounds over one queue, then drains
// what is left. Every original is bounced and has exactly one NDR, never
// zero or two.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include <sqlite3.h>

#include "runtime/store/queue_db.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;

namespace {

pid_t start_server(const std::string& db_file, const char* mode) {
  auto pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl(POSTCONN_NDR_CRASH_SERVER, POSTCONN_NDR_CRASH_SERVER, db_file.c_str(), mode,
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

/// Original queue id -> how many NDRs name it; and every original's id.
struct queue_census {
  std::map<std::string, int> ndrs;
  std::vector<std::string> originals;
};

queue_census take_census(const std::string& db_file) {
  queue_census census;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT printf('%016x', id), sender, content FROM messages", -1,
                     &stmt, nullptr);
  const std::regex queue_id{"X-Postconn-Queue-Id: ([0-9a-f]{16})"};
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string id = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    std::string sender = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    std::string content(static_cast<const char*>(sqlite3_column_blob(stmt, 2)),
                        static_cast<std::size_t>(sqlite3_column_bytes(stmt, 2)));
    std::smatch match;
    if (!sender.empty())
      census.originals.push_back(id);
    else if (std::regex_search(content, match, queue_id))
      ++census.ndrs[match[1]];
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return census;
}

} // namespace

TEST_CASE("after SIGKILL at random moments around NDR generation, every bounce has exactly one NDR") {
  test::temp_dir dir;
  auto db_file = (dir / "queue.db").string();
  std::mt19937 rng{20261128};
  std::uniform_int_distribution<int> lifetime_ms{50, 300};
  constexpr int rounds = 15;
  for (int round = 0; round < rounds; ++round) {
    auto pid = start_server(db_file, "load");
    std::this_thread::sleep_for(std::chrono::milliseconds(lifetime_ms(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "server exited early, status " << status);
  }
  auto pid = start_server(db_file, "drain");
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto db = queue_db::open(db_file);
  CHECK(db->integrity_check() == "ok");
  auto census = take_census(db_file);
  MESSAGE(census.originals.size() << " originals bounced over " << rounds << " kills");
  CHECK(census.originals.size() > static_cast<std::size_t>(rounds));
  std::size_t wrong = 0;
  for (const auto& id : census.originals) {
    auto deliveries = db->deliveries_of(id);
    bool bounced = deliveries.size() == 1
                   && deliveries[0].state == delivery_state::bounced;
    if (!bounced || census.ndrs[id] != 1) {
      if (wrong++ < 5)
        MESSAGE("original " << id << ": " << census.ndrs[id] << " NDRs, bounced "
                            << bounced);
    }
  }
  CHECK(wrong == 0);
}
