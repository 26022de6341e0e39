// NAME
//   tls_channel -- TLS on memory BIOs (see tls_channel.hpp).
#include "runtime/mail/tls_channel.hpp"

#include <arpa/inet.h>

#include <memory>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace postconn {

namespace {

/// The oldest error on OpenSSL's queue, which is then emptied.
std::string openssl_reason() {
  auto code = ERR_get_error();
  ERR_clear_error();
  if (code == 0)
    return "unknown TLS error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

} // namespace

tls_server_context::tls_server_context() : ctx_(SSL_CTX_new(TLS_server_method())) {
  if (!ctx_)
    throw tls_error("cannot create a TLS context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
}

tls_server_context::~tls_server_context() {
  SSL_CTX_free(ctx_);
}

void tls_server_context::use_certificate_chain(const std::filesystem::path& file) {
  if (SSL_CTX_use_certificate_chain_file(ctx_, file.c_str()) != 1)
    throw tls_error(file.string() + ": " + openssl_reason());
}

void tls_server_context::use_private_key(const std::filesystem::path& file) {
  std::unique_ptr<BIO, decltype(&BIO_free)> in{BIO_new_file(file.c_str(), "r"), BIO_free};
  if (!in)
    throw tls_error(file.string() + ": " + openssl_reason());
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
    PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr), EVP_PKEY_free};
  if (!key)
    throw tls_error(file.string() + ": no PEM private key (" + openssl_reason() + ")");
  auto* certificate = SSL_CTX_get0_certificate(ctx_);
  if (certificate && X509_check_private_key(certificate, key.get()) != 1) {
    ERR_clear_error();
    throw tls_error(file.string() + ": the key does not match the certificate");
  }
  if (SSL_CTX_use_PrivateKey(ctx_, key.get()) != 1)
    throw tls_error(file.string() + ": " + openssl_reason());
}

tls_client_context::tls_client_context(bool verify, const std::filesystem::path& ca_file)
  : ctx_(SSL_CTX_new(TLS_client_method())), verify_(verify) {
  if (!ctx_)
    throw tls_error("cannot create a TLS context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (!verify)
    return;
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  auto loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_)
                                : SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
  if (loaded != 1) {
    auto reason = openssl_reason();
    SSL_CTX_free(ctx_);
    throw tls_error((ca_file.empty() ? std::string{"the system's CAs"} : ca_file.string())
                    + ": " + reason);
  }
}

tls_client_context::~tls_client_context() {
  SSL_CTX_free(ctx_);
}

tls_channel::tls_channel(const tls_client_context& context, const std::string& server_name)
  : ssl_(SSL_new(context.native())) {
  if (!ssl_)
    throw tls_error("cannot start TLS: " + openssl_reason());
  SSL_set_bio(ssl_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_connect_state(ssl_);
  in6_addr address;
  bool is_ip = inet_pton(AF_INET, server_name.c_str(), &address) == 1
               || inet_pton(AF_INET6, server_name.c_str(), &address) == 1;
  if (!is_ip)
    SSL_set_tlsext_host_name(ssl_, server_name.c_str());
  if (context.verifies()) {
    auto* param = SSL_get0_param(ssl_);
    auto named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str())
                       : X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0);
    if (named != 1) {
      SSL_free(ssl_);
      throw tls_error("cannot check the certificate's name " + server_name);
    }
  }
}

tls_channel::tls_channel(const tls_server_context& context)
  : ssl_(SSL_new(context.native())) {
  if (!ssl_)
    throw tls_error("cannot start TLS: " + openssl_reason());
  // The SSL object owns both BIOs from here on.
  SSL_set_bio(ssl_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_accept_state(ssl_);
}

tls_channel::~tls_channel() {
  SSL_free(ssl_);
}

std::string tls_channel::receive(std::string_view ciphertext) {
  auto* in = SSL_get_rbio(ssl_);
  if (!ciphertext.empty()
      && BIO_write(in, ciphertext.data(), static_cast<int>(ciphertext.size()))
           != static_cast<int>(ciphertext.size()))
    throw tls_error("cannot buffer TLS input");
  std::string plaintext;
  char buffer[16384];
  for (;;) {
    auto n = SSL_read(ssl_, buffer, sizeof buffer);
    if (n > 0) {
      plaintext.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    switch (SSL_get_error(ssl_, n)) {
      case SSL_ERROR_WANT_READ:
        return plaintext;
      case SSL_ERROR_ZERO_RETURN:
        closed_ = true;
        return plaintext;
      default:
        if (auto verified = SSL_get_verify_result(ssl_); verified != X509_V_OK) {
          ERR_clear_error();
          throw tls_error(std::string{"certificate verification failed: "}
                          + X509_verify_cert_error_string(verified));
        }
        throw tls_error(openssl_reason());
    }
  }
}

void tls_channel::send(std::string_view plaintext) {
  if (plaintext.empty())
    return;
  if (SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size())) <= 0)
    throw tls_error(openssl_reason());
}

std::string tls_channel::take_output() {
  auto* out = SSL_get_wbio(ssl_);
  std::string bytes(static_cast<std::size_t>(BIO_ctrl_pending(out)), '\0');
  if (!bytes.empty())
    BIO_read(out, bytes.data(), static_cast<int>(bytes.size()));
  return bytes;
}

bool tls_channel::handshake_done() const {
  return SSL_is_init_finished(ssl_) == 1;
}

std::string tls_channel::description() const {
  return std::string{SSL_get_version(ssl_)} + " with cipher "
         + SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_));
}

} // namespace postconn
