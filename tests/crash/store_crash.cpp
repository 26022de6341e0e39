// Tests crash consistency of actors/store.cpp and runtime/store/queue_db.cpp: a
// child process commits through the store in a loop and is killed with
// SIGKILL at random moments, many rounds over one database. After every
// kill the database passes PRAGMA integrity_check and holds every message
// whose commit had been acknowledged, byte for byte.
#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "runtime/store/queue_db.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;

namespace {

struct child {
  pid_t pid;
  int out;
};

child start_writer(const std::string& db_file) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  auto pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(POSTCONN_STORE_CRASH_WRITER, POSTCONN_STORE_CRASH_WRITER,
          db_file.c_str(), "8", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

/// Reads what the child wrote until `deadline`, then whatever the pipe still
/// holds after the child is dead.
std::string read_until(int fd, std::chrono::steady_clock::time_point deadline) {
  std::string data;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return data;
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
      continue;
    auto n = read(fd, buf, sizeof buf);
    if (n <= 0)
      return data;
    data.append(buf, static_cast<std::size_t>(n));
  }
}

std::string drain(int fd) {
  std::string data;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
    data.append(buf, static_cast<std::size_t>(n));
  return data;
}

/// Complete "<id> <content>" lines; a torn last line is ignored.
std::map<std::string, std::string> parse_acks(const std::string& output) {
  std::map<std::string, std::string> acks;
  std::istringstream in{output};
  for (std::string line; std::getline(in, line);) {
    if (in.eof())
      break; // no trailing newline: torn
    auto space = line.find(' ');
    if (space == std::string::npos)
      FAIL("malformed acknowledgement line: " << line);
    acks[line.substr(0, space)] = line.substr(space + 1);
  }
  return acks;
}

/// The acknowledged messages that are missing or differ in the queue.
std::size_t count_lost(queue_db& db, const std::map<std::string, std::string>& acks) {
  std::size_t lost = 0;
  for (const auto& [id, content] : acks) {
    auto msg = db.message(id);
    if (!msg || msg->content != content || db.deliveries_of(id).size() != 1)
      ++lost;
  }
  return lost;
}

} // namespace

TEST_CASE("every acknowledged commit survives SIGKILL at random moments") {
  test::temp_dir dir;
  auto db_file = (dir / "queue.db").string();
  std::mt19937 rng{20261128};
  std::uniform_int_distribution<int> lifetime_ms{30, 250};
  std::map<std::string, std::string> acked;
  constexpr int rounds = 25;
  for (int round = 0; round < rounds; ++round) {
    auto writer = start_writer(db_file);
    auto deadline = std::chrono::steady_clock::now()
                    + std::chrono::milliseconds(lifetime_ms(rng));
    auto output = read_until(writer.out, deadline);
    kill(writer.pid, SIGKILL);
    int status = 0;
    waitpid(writer.pid, &status, 0);
    output += drain(writer.out);
    close(writer.out);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "writer exited early, status " << status);
    auto round_acks = parse_acks(output);
    auto db = queue_db::open(db_file);
    REQUIRE(db->integrity_check() == "ok");
    CHECK_MESSAGE(count_lost(*db, round_acks) == 0, "lost in round " << round);
    acked.insert(round_acks.begin(), round_acks.end());
  }
  auto db = queue_db::open(db_file);
  CHECK(count_lost(*db, acked) == 0);
  MESSAGE(acked.size() << " acknowledged commits checked over " << rounds << " kills");
  CHECK(acked.size() > static_cast<std::size_t>(rounds));
}
