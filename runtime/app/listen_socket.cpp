// NAME
//   listen_socket -- binds the server's listening sockets (see listen_socket.hpp).
#include "runtime/app/listen_socket.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace postconn {

listen_socket::listen_socket(const listen_address& address) {
  auto where = address.host + ":" + std::to_string(address.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto port = std::to_string(address.port);
  auto host = address.host.empty() ? nullptr : address.host.c_str();
  if (auto rc = getaddrinfo(host, port.c_str(), &hints, &found); rc != 0)
    throw std::runtime_error(where + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner{found, freeaddrinfo};
  std::string reason = "no usable address";
  for (auto* ai = found; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
      reason = std::strerror(errno);
      continue;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0
        && getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0) {
      fd_ = fd;
      port_ = ntohs(bound.ss_family == AF_INET6
                      ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      return;
    }
    reason = std::strerror(errno);
    close(fd);
  }
  throw std::runtime_error(where + ": " + reason);
}

listen_socket::~listen_socket() {
  if (fd_ >= 0)
    close(fd_);
}

int listen_socket::release() {
  auto fd = fd_;
  fd_ = -1;
  return fd;
}

} // namespace postconn
