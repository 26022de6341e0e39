// NAME
//   tls_channel -- TLS over bytes the caller moves (OpenSSL on memory
//   BIOs), for STARTTLS on a connection the caller already owns: the server
//   side for SMTP sessions, the client side towards SMTP/LMTP postoffices.
//
// DESCRIPTION
//   tls_server_context holds the certificate chain and private key, loaded
//   once from PEM files and shared by every session. tls_client_context says
//   whether the server's certificate is verified, and against which CAs. A
//   tls_channel is one connection's TLS state: `receive` takes what came
//   from the socket and returns the plaintext it decrypted (nothing while
//   the handshake runs; a client's first `receive` starts the handshake);
//   `send` encrypts; `take_output` hands over what must go to the socket
//   (handshake messages and records). No socket I/O happens here, so the
//   session stays an ordinary non-blocking broker. TLS 1.2 is the minimum.
//   A protocol failure throws tls_error (a certificate that does not verify:
//   "certificate verification failed: <why>"); the session then closes.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

struct ssl_ctx_st;
struct ssl_st;

namespace postconn {

struct tls_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class tls_server_context {
public:
  tls_server_context();
  ~tls_server_context();
  tls_server_context(const tls_server_context&) = delete;
  tls_server_context& operator=(const tls_server_context&) = delete;

  /// Loads the PEM certificate chain; tls_error "FILE: reason" on failure.
  void use_certificate_chain(const std::filesystem::path& file);
  /// Loads the PEM private key and checks it matches the certificate;
  /// tls_error "FILE: reason" on failure.
  void use_private_key(const std::filesystem::path& file);

  ssl_ctx_st* native() const { return ctx_; }

private:
  ssl_ctx_st* ctx_;
};

class tls_client_context {
public:
  /// With `verify`, a server's certificate must chain to a CA of `ca_file`
  /// (PEM; empty: the system's CAs) and name the server; without, any
  /// certificate is taken (opportunistic TLS). tls_error "FILE: reason"
  /// when the CA file cannot be read.
  tls_client_context(bool verify, const std::filesystem::path& ca_file);
  ~tls_client_context();
  tls_client_context(const tls_client_context&) = delete;
  tls_client_context& operator=(const tls_client_context&) = delete;

  ssl_ctx_st* native() const { return ctx_; }
  bool verifies() const { return verify_; }

private:
  ssl_ctx_st* ctx_;
  bool verify_;
};

class tls_channel {
public:
  /// The server side of a connection.
  explicit tls_channel(const tls_server_context& context);
  /// The client side of a connection to `server_name` (a host name, sent
  /// as SNI, or an IP address), checked against the certificate when the
  /// context verifies.
  tls_channel(const tls_client_context& context, const std::string& server_name);
  ~tls_channel();
  tls_channel(const tls_channel&) = delete;
  tls_channel& operator=(const tls_channel&) = delete;

  /// Feeds bytes from the peer; returns the plaintext they completed.
  std::string receive(std::string_view ciphertext);
  /// Encrypts `plaintext` for the peer (after the handshake).
  void send(std::string_view plaintext);
  /// What must be written to the socket now; empty when nothing.
  std::string take_output();

  bool handshake_done() const;
  /// The peer sent close_notify: no more plaintext will come.
  bool closed() const { return closed_; }
  /// e.g. "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384".
  std::string description() const;

private:
  ssl_st* ssl_;
  bool closed_ = false;
};

} // namespace postconn
