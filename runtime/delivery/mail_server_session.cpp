// NAME
//   mail_server_session -- one SMTP/LMTP client session over a socket (see
//   mail_server_session.hpp).
#include "runtime/delivery/mail_server_session.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "runtime/config/config.hpp"
#include "runtime/mail/smtp_client.hpp"
#include "runtime/mail/tls_channel.hpp"

namespace postconn {

namespace {

/// Closes the socket when the session ends.
struct socket_guard {
  int fd = -1;
  ~socket_guard() {
    reset();
  }
  void reset() {
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
};

/// Waits until `fd` is ready for `events`; false on timeout.
bool wait_for(int fd, short events, int timeout_ms) {
  pollfd pfd{fd, events, 0};
  for (;;) {
    auto rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0 && errno == EINTR)
      continue;
    return rc > 0;
  }
}

/// A connected non-blocking socket, or the reason there is none.
int connect_to(const listen_address& server, int timeout_ms, std::string& problem) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto port = std::to_string(server.port);
  if (auto rc = getaddrinfo(server.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    problem = gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner{found, freeaddrinfo};
  problem = "no address";
  for (auto* ai = found; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
      problem = std::strerror(errno);
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      return fd;
    if (errno == EINPROGRESS) {
      if (!wait_for(fd, POLLOUT, timeout_ms)) {
        problem = "connect timed out";
        close(fd);
        continue;
      }
      int error = 0;
      socklen_t length = sizeof error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error == 0)
        return fd;
      errno = error;
    }
    problem = std::strerror(errno);
    close(fd);
  }
  return -1;
}

bool send_all(int fd, const std::string& data, int timeout_ms) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    auto n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, timeout_ms))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

/// The client's TLS handshake over `fd`: "" when done, else why not.
std::string handshake(int fd, tls_channel& tls, int timeout_ms) {
  char buffer[16384];
  try {
    tls.receive({}); // the ClientHello
    for (;;) {
      if (!send_all(fd, tls.take_output(), timeout_ms))
        return "connection lost";
      if (tls.handshake_done())
        return "";
      if (!wait_for(fd, POLLIN, timeout_ms))
        return "timeout";
      auto n = recv(fd, buffer, sizeof buffer, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (n <= 0)
        return "connection lost";
      tls.receive(std::string_view{buffer, static_cast<std::size_t>(n)});
    }
  } catch (const tls_error& e) {
    return e.what();
  }
}

/// Starts TLS on the session's connection to `host`: the channel, or
/// nothing and why not in `problem`.
std::unique_ptr<tls_channel> start_tls(const mail_server_job& job, const std::string& host,
                                       int fd, int timeout_ms, std::string& problem) {
  try {
    tls_client_context context{job.tls == tls_policy::verify, job.tls_ca_file};
    auto tls = std::make_unique<tls_channel>(context, host);
    problem = handshake(fd, *tls, timeout_ms);
    if (problem.empty())
      return tls;
  } catch (const tls_error& e) {
    problem = e.what();
  }
  return nullptr;
}

} // namespace

struct mail_server_connection::impl {
  mail_server_job job;
  std::string host;
  int timeout_ms = 0;
  socket_guard socket;
  std::optional<smtp_client_session> session;
  std::unique_ptr<tls_channel> tls; // once STARTTLS succeeded
  std::string problem;
  std::string last_step; // for a probe's problem: it has no outcomes
  std::chrono::steady_clock::time_point opened_at = std::chrono::steady_clock::now();

  /// What goes to the socket: the session's bytes, encrypted once TLS runs.
  std::string take_output() {
    auto output = session->take_output();
    if (!tls)
      return output;
    tls->send(output);
    return tls->take_output();
  }

  /// Drives the session until it is finished or, with `until_ready`, open
  /// and waiting for its batch.
  void run(bool until_ready) {
    char buffer[16384];
    try {
      while (!session->finished() && !(until_ready && session->ready_for_batch())) {
        if (session->tls_wanted()) {
          std::string why;
          tls = start_tls(job, host, socket.fd, timeout_ms, why);
          if (!tls) {
            session->tls_failed(why);
            problem = "TLS handshake failed: " + why;
            break;
          }
          session->tls_started();
        }
        last_step = session->waiting_for();
        auto output = take_output();
        if (job.fault.drop && last_step == "end-of-data reply" && !output.empty()) {
          // Fault injection: half the data, then the connection is gone.
          send_all(socket.fd, output.substr(0, output.size() / 2), timeout_ms);
          shutdown(socket.fd, SHUT_RDWR);
          session->connection_lost();
          problem = "connection cut during the data (fault injection: drop)";
          break;
        }
        if (!send_all(socket.fd, output, timeout_ms)) {
          session->connection_lost();
          problem = "connection lost while waiting for the " + last_step;
          break;
        }
        if (session->finished() || (until_ready && session->ready_for_batch()))
          break;
        if (!wait_for(socket.fd, POLLIN, timeout_ms)) {
          session->timed_out();
          problem = "timeout waiting for the " + last_step;
          break;
        }
        auto n = recv(socket.fd, buffer, sizeof buffer, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
          continue;
        if (n <= 0) {
          session->connection_lost();
          problem = "connection lost while waiting for the " + last_step;
          break;
        }
        std::string_view received{buffer, static_cast<std::size_t>(n)};
        session->feed(tls ? tls->receive(received) : std::string{received});
      }
    } catch (const tls_error& e) {
      session->connection_lost();
      tls.reset(); // broken: nothing more goes through it
      problem = "TLS error while waiting for the " + last_step + ": " + e.what();
    }
  }
};

mail_server_connection::mail_server_connection(const mail_server_job& job)
  : impl_(std::make_unique<impl>()) {
  impl_->job = job;
  impl_->job.messages.clear();
  auto server = parse_listen_address(job.server);
  if (!server) {
    impl_->problem = "bad server address " + job.server;
    return;
  }
  impl_->host = server->host;
  impl_->timeout_ms = static_cast<int>(job.step_timeout_seconds * 1000);
  impl_->socket.fd = connect_to(*server, impl_->timeout_ms, impl_->problem);
  if (impl_->socket.fd < 0) {
    impl_->problem = "connect to " + job.server + " failed: " + impl_->problem;
    return;
  }
  impl_->session.emplace(job.lmtp ? mail_protocol::lmtp : mail_protocol::smtp, job.helo_name,
                         job.tls);
  impl_->run(true);
  if (!impl_->session->opened()) {
    // Why the open failed: the refusing reply, else the broken step.
    if (!impl_->session->ended_early().text.empty())
      impl_->problem = impl_->session->ended_early().text;
    if (impl_->problem.empty())
      impl_->problem = "refused at the " + impl_->last_step;
    finish();
  }
}

mail_server_connection::~mail_server_connection() = default;

bool mail_server_connection::opened() const {
  return impl_->session && impl_->session->opened();
}

const std::string& mail_server_connection::problem() const {
  return impl_->problem;
}

std::string mail_server_connection::refusal_status() const {
  if (impl_->session && !impl_->session->ended_early().status.empty())
    return impl_->session->ended_early().status;
  return "4.4.1";
}

std::string mail_server_connection::tls() const {
  return impl_->tls ? impl_->tls->description() : std::string{};
}

mail_server_result mail_server_connection::deliver(std::vector<outgoing_mail> messages) {
  return send(std::move(messages), false);
}

mail_server_result mail_server_connection::deliver_and_keep(std::vector<outgoing_mail> messages) {
  return send(std::move(messages), true);
}

std::chrono::steady_clock::time_point mail_server_connection::opened_at() const {
  return impl_->opened_at;
}

bool mail_server_connection::kept() const {
  return impl_->socket.fd >= 0 && impl_->session && impl_->session->ready_for_batch();
}

bool mail_server_connection::still_open(const mail_server_job& job) {
  if (!kept())
    return false;
  impl_->job.fault = job.fault;
  impl_->timeout_ms = static_cast<int>(job.step_timeout_seconds * 1000);
  impl_->session->check_alive();
  impl_->run(true);
  if (kept())
    return true;
  impl_->socket.reset();
  return false;
}

mail_server_result mail_server_connection::send(std::vector<outgoing_mail> messages, bool keep) {
  mail_server_result result;
  if (!opened()) {
    result.problem = impl_->problem;
    result.tls = tls();
    for (const auto& msg : messages)
      result.outcomes.push_back({msg.delivery_id, false, refusal_status(), result.problem, {}});
    return result;
  }
  using after_batch = smtp_client_session::after_batch;
  impl_->session->send_batch(std::move(messages),
                             keep ? after_batch::stay_open : after_batch::quit);
  impl_->run(keep);
  if (!kept())
    finish();
  result.opened = true;
  result.outcomes = impl_->session->outcomes();
  result.tls = tls();
  return result;
}

void mail_server_connection::finish() {
  // A QUIT the session still wants to send is sent if it can be, unwaited.
  if (impl_->session && impl_->socket.fd >= 0)
    send_all(impl_->socket.fd, impl_->take_output(), 0);
  impl_->socket.reset();
}

mail_server_result run_mail_server_session(const mail_server_job& job) {
  mail_server_connection connection{job};
  return connection.deliver(job.messages);
}

} // namespace postconn
