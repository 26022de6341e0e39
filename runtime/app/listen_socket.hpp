// NAME
//   listen_socket -- binds the server's listening sockets before start-up.
//
// DESCRIPTION
//   The server binds its ports first, so a port that is taken stops it with
//   a clear message before anything else starts; the bound socket is then
//   handed to the listener that accepts on it. Port 0 binds a free port,
//   which port() names (for the log line that says where the server listens).
#pragma once

#include <cstdint>

#include "runtime/config/config.hpp"

namespace postconn {

/// A listening TCP socket, closed on destruction unless released.
class listen_socket {
public:
  /// Binds and listens on `address`; throws std::runtime_error naming the
  /// address and the reason ("127.0.0.1:2525: Address already in use").
  explicit listen_socket(const listen_address& address);
  ~listen_socket();
  listen_socket(const listen_socket&) = delete;
  listen_socket& operator=(const listen_socket&) = delete;

  /// The port bound (the one the kernel picked when asked for port 0).
  std::uint16_t port() const { return port_; }

  /// Gives up the descriptor to the broker that accepts on it.
  int release();

private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

} // namespace postconn
