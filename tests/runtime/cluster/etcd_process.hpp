// NAME
//   etcd_process -- a real etcd for a test: free loopback ports, its data in
//   a temporary directory, killed at the end.
//
// DESCRIPTION
//   Runs `etcd` from PATH (Debian: apt-get install etcd-server) as a
//   one-member cluster on 127.0.0.1, client and peer ports chosen by
//   binding port 0. start() returns once etcd's /health says true; an etcd
//   that exits first (a port taken between choosing and binding) is
//   started again on new ports. kill() is SIGKILL; restart() runs etcd
//   again on the same ports and data directory. etcd's output goes to a
//   log file, shown when it does not come up.
//
//   Heartbeat 10 ms and election timeout 100 ms: a single member elects
//   itself within 100 ms, and etcd's minimum lease TTL (1.5 election
//   timeouts, rounded up to seconds) is 1 s instead of 2 s, so lease tests
//   wait half as long.
//
//   etcd dies with the test process (PR_SET_PDEATHSIG), so a test that
//   crashes leaves no etcd behind.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "tests/temp_dir.hpp"

namespace postconn::test {

/// A loopback port that was free a moment ago.
inline int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0)
      ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

class etcd_process {
public:
  etcd_process() {
    start();
  }
  ~etcd_process() {
    kill();
  }
  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;

  /// "http://127.0.0.1:PORT", for etcd_client.
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(client_port_);
  }

  /// SIGKILL, and wait until it is gone.
  void kill() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  /// etcd again on the same ports and data directory.
  void restart() {
    kill();
    if (!run())
      throw std::runtime_error("etcd did not come back on port " + std::to_string(client_port_)
                               + ":\n" + log());
  }

private:
  void start() {
    constexpr int attempts = 5;
    for (int attempt = 0; attempt < attempts; ++attempt) {
      client_port_ = free_loopback_port();
      peer_port_ = free_loopback_port();
      std::filesystem::remove_all(data_dir());
      if (run())
        return;
    }
    throw std::runtime_error("etcd did not start:\n" + log());
  }

  std::filesystem::path data_dir() const {
    return dir_ / "data";
  }

  std::string log() const {
    std::ifstream file{dir_ / "etcd.log"};
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

  /// Starts etcd and waits for its health; false when it exited first.
  bool run() {
    auto client_url = endpoint();
    auto peer_url = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {"etcd",
                                     "--name=default",
                                     "--data-dir=" + data_dir().string(),
                                     "--listen-client-urls=" + client_url,
                                     "--advertise-client-urls=" + client_url,
                                     "--listen-peer-urls=" + peer_url,
                                     "--initial-advertise-peer-urls=" + peer_url,
                                     "--initial-cluster=default=" + peer_url,
                                     "--heartbeat-interval=10",
                                     "--election-timeout=100",
                                     "--logger=zap",
                                     "--log-outputs=stderr"};
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    auto log_file = (dir_ / "etcd.log").string();
    auto parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(1);
      int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      ::execvp("etcd", argv.data());
      static const char missing[] = "cannot run etcd: apt-get install etcd-server\n";
      [[maybe_unused]] auto written = ::write(STDERR_FILENO, missing, sizeof missing - 1);
      ::_exit(127);
    }
    return healthy();
  }

  /// Polls /health until it says true (20 ms apart, at most 20 s); false
  /// when etcd exits first.
  bool healthy() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    httplib::Client client{"127.0.0.1", client_port_};
    client.set_connection_timeout(std::chrono::milliseconds(200));
    client.set_read_timeout(std::chrono::milliseconds(500));
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      auto reply = client.Get("/health");
      if (reply && reply->status == 200 && reply->body.find("\"true\"") != std::string::npos)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill();
    return false;
  }

  temp_dir dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
};

} // namespace postconn::test
