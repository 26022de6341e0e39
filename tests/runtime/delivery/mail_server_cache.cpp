// Tests for runtime/delivery/mail_server_cache.cpp: kept SMTP connections,
// against a small SMTP server on a thread.
#include "runtime/delivery/mail_server_cache.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

using namespace postconn;
using namespace std::chrono_literals;

namespace {

/// Accepts connections on a loopback port and answers every command 250
/// (354 to DATA), a thread per connection; counts connections and keeps
/// the commands. With close_after_batch, it closes each connection once a
/// message is taken, as a server closing idle connections would.
class small_server {
public:
  explicit small_server(bool close_after_batch = false) : close_after_batch_{close_after_batch} {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    listen(listener_, 16);
    thread_ = std::thread{[this] { serve(); }};
  }

  ~small_server() {
    stopping_ = true;
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    thread_.join(); // no more clients_ nor talkers_ from here on
    for (auto fd : clients_)
      shutdown(fd, SHUT_RDWR);
    for (auto& talker : talkers_)
      talker.join();
    for (auto fd : clients_)
      close(fd);
  }

  mail_server_job job() const {
    mail_server_job job;
    job.server = "127.0.0.1:" + std::to_string(port_);
    job.helo_name = "client.test";
    job.step_timeout_seconds = 5;
    return job;
  }

  int connections() const {
    return connections_;
  }

  std::vector<std::string> commands() const {
    std::lock_guard lock{mutex_};
    return commands_;
  }

private:
  void serve() {
    while (!stopping_) {
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0)
        return;
      ++connections_;
      std::lock_guard lock{mutex_};
      clients_.push_back(fd);
      talkers_.emplace_back([this, fd] {
        talk(fd);
        shutdown(fd, SHUT_RDWR);
      });
    }
  }

  /// Until the client says QUIT or goes away.
  void talk(int fd) {
    say(fd, "220 small ESMTP");
    std::string input;
    bool in_data = false;
    char buffer[4096];
    for (;;) {
      auto n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0)
        return;
      input.append(buffer, static_cast<std::size_t>(n));
      for (auto end = input.find("\r\n"); end != input.npos; end = input.find("\r\n")) {
        auto line = input.substr(0, end);
        input.erase(0, end + 2);
        if (in_data) {
          if (line != ".")
            continue;
          in_data = false;
          say(fd, "250 2.0.0 taken");
          if (close_after_batch_)
            return;
          continue;
        }
        {
          std::lock_guard lock{mutex_};
          commands_.push_back(line.substr(0, 4));
        }
        if (line.rfind("DATA", 0) == 0) {
          in_data = true;
          say(fd, "354 go on");
        } else if (line.rfind("QUIT", 0) == 0) {
          say(fd, "221 bye");
          return;
        } else {
          say(fd, "250 ok");
        }
      }
    }
  }

  static void say(int fd, const std::string& line) {
    auto text = line + "\r\n";
    send(fd, text.data(), text.size(), MSG_NOSIGNAL);
  }

  bool close_after_batch_;
  int listener_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> commands_;
  std::vector<int> clients_;
  std::vector<std::thread> talkers_;
  std::thread thread_;
};

std::vector<outgoing_mail> one_message(std::int64_t id) {
  return {{id, "a@client.test", {"b@mx.test"}, "Subject: x\r\n\r\nhi\r\n"}};
}

bool delivered(const mail_server_result& result) {
  return result.outcomes.size() == 1 && result.outcomes[0].recipients.size() == 1
         && result.outcomes[0].recipients[0].result == recipient_result::delivered;
}

} // namespace

TEST_CASE("a kept connection carries the next batch after RSET, and one connection serves both") {
  small_server server;
  mail_server_cache cache;
  auto job = server.job();
  auto key = mail_server_cache::key_of(job);
  auto now = mail_server_cache::clock::now();
  {
    auto first = std::make_unique<mail_server_connection>(job);
    REQUIRE(first->opened());
    CHECK(delivered(first->deliver_and_keep(one_message(1))));
    REQUIRE(first->kept());
    cache.park(key, std::move(first), now);
  }
  CHECK(cache.size() == 1);
  CHECK_FALSE(cache.take(key + "x", now));
  auto again = cache.take(key, now + 1s);
  REQUIRE(again);
  CHECK(cache.size() == 0);
  REQUIRE(again->still_open(job));
  CHECK(delivered(again->deliver(one_message(2))));
  CHECK_FALSE(again->kept());
  CHECK(server.connections() == 1);
  CHECK(server.commands()
        == std::vector<std::string>{"EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT",
                                    "DATA", "QUIT"});
}

TEST_CASE("a kept connection the server has closed is not still open, and a new one is made") {
  small_server server{true};
  mail_server_cache cache;
  auto job = server.job();
  auto connection = std::make_unique<mail_server_connection>(job);
  CHECK(delivered(connection->deliver_and_keep(one_message(1))));
  REQUIRE(connection->kept());
  CHECK_FALSE(connection->still_open(job));
  CHECK_FALSE(connection->kept());
  mail_server_connection fresh{job};
  CHECK(delivered(fresh.deliver(one_message(2))));
  CHECK(server.connections() == 2);
}

TEST_CASE("kept connections expire after the idle limit or the age limit, and a key keeps at most per_key") {
  small_server server;
  kept_connection_limits limits;
  limits.per_key = 2;
  mail_server_cache cache{limits};
  auto job = server.job();
  auto key = mail_server_cache::key_of(job);
  auto kept_connection = [&] {
    auto connection = std::make_unique<mail_server_connection>(job);
    connection->deliver_and_keep(one_message(1));
    REQUIRE(connection->kept());
    return connection;
  };
  auto now = mail_server_cache::clock::now();
  cache.park(key, kept_connection(), now);
  cache.park(key, kept_connection(), now + 1s);
  cache.park(key, kept_connection(), now + 1s);
  CHECK(cache.size() == 2); // the oldest said QUIT
  auto next = cache.close_expired(now + 2s);
  REQUIRE(next);
  CHECK(*next == now + 3s);
  CHECK(cache.size() == 2);
  CHECK_FALSE(cache.take(key, now + 3s)); // both idle too long: closed
  CHECK(cache.size() == 0);
  CHECK_FALSE(cache.close_expired(now + 3s));

  auto old = kept_connection();
  auto opened = old->opened_at();
  cache.park(key, std::move(old), opened + 300s); // reused for 300s: not kept
  CHECK(cache.size() == 0);
  auto young = kept_connection();
  opened = young->opened_at();
  cache.park(key, std::move(young), opened + 299s);
  CHECK(cache.close_expired(opened + 299s) == opened + 300s); // not opened + 301s
  CHECK_FALSE(cache.close_expired(opened + 300s));
  CHECK(cache.size() == 0);
  CHECK(server.connections() == 5);
}
