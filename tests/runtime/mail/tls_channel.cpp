// NAME
//   tls_channel tests -- a real OpenSSL client talks to the channel over
//   memory buffers: handshake, records both ways, broken input, bad keys.
#include "runtime/mail/tls_channel.hpp"

#include <cstdio>
#include <memory>

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tests/temp_dir.hpp"

using namespace postconn;

namespace {

struct identity_files {
  std::filesystem::path certificate;
  std::filesystem::path key;
};

/// A fresh P-256 key and a self-signed certificate for it, as PEM files.
identity_files make_identity(const std::filesystem::path& dir, const std::string& name) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_EC_gen("P-256"), EVP_PKEY_free};
  std::unique_ptr<X509, decltype(&X509_free)> cert{X509_new(), X509_free};
  REQUIRE((key && cert));
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  auto* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), subject);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  identity_files files{dir / (name + ".crt"), dir / (name + ".key")};
  auto* out = std::fopen(files.certificate.c_str(), "w");
  PEM_write_X509(out, cert.get());
  std::fclose(out);
  out = std::fopen(files.key.c_str(), "w");
  PEM_write_PrivateKey(out, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(out);
  return files;
}

/// An OpenSSL client on memory BIOs that does not verify the server.
struct test_client {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl{nullptr, SSL_free};

  test_client() {
    ssl.reset(SSL_new(ctx.get()));
    SSL_set_bio(ssl.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl.get());
  }

  std::string output() {
    auto* out = SSL_get_wbio(ssl.get());
    std::string bytes(static_cast<std::size_t>(BIO_ctrl_pending(out)), '\0');
    if (!bytes.empty())
      BIO_read(out, bytes.data(), static_cast<int>(bytes.size()));
    return bytes;
  }

  void input(const std::string& bytes) {
    BIO_write(SSL_get_rbio(ssl.get()), bytes.data(), static_cast<int>(bytes.size()));
  }

  std::string read() {
    std::string plaintext;
    char buffer[4096];
    for (int n; (n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0;)
      plaintext.append(buffer, static_cast<std::size_t>(n));
    return plaintext;
  }

  void write(const std::string& plaintext) {
    REQUIRE(SSL_write(ssl.get(), plaintext.data(), static_cast<int>(plaintext.size())) > 0);
  }
};

/// Runs the handshake to its end; what the server decrypted on the way.
std::string handshake(test_client& client, tls_channel& server) {
  std::string plaintext;
  for (int round = 0; round < 10 && !server.handshake_done(); ++round) {
    SSL_do_handshake(client.ssl.get());
    plaintext += server.receive(client.output());
    client.input(server.take_output());
  }
  return plaintext;
}

std::shared_ptr<tls_server_context> context_for(const identity_files& files) {
  auto context = std::make_shared<tls_server_context>();
  context->use_certificate_chain(files.certificate);
  context->use_private_key(files.key);
  return context;
}

} // namespace

TEST_CASE("TLS channel: a client completes the handshake and records pass both ways") {
  test::temp_dir dir;
  auto context = context_for(make_identity(dir.path(), "connector.example.test"));
  tls_channel server{*context};
  test_client client;
  CHECK(handshake(client, server).empty());
  REQUIRE(server.handshake_done());
  CHECK(server.description().rfind("TLSv1.3 with cipher ", 0) == 0);
  // Two commands in one flight arrive together, in order.
  client.write("EHLO client.example.org\r\n");
  client.write("MAIL FROM:<ann@example.org>\r\n");
  CHECK(server.receive(client.output())
        == "EHLO client.example.org\r\nMAIL FROM:<ann@example.org>\r\n");
  server.send("250 ok\r\n");
  client.input(server.take_output());
  CHECK(client.read() == "250 ok\r\n");
  CHECK(server.take_output().empty());
  CHECK_FALSE(server.closed());
  SSL_shutdown(client.ssl.get());
  CHECK(server.receive(client.output()).empty());
  CHECK(server.closed());
}

TEST_CASE("TLS channel: a record split at every byte still decrypts once whole") {
  test::temp_dir dir;
  auto context = context_for(make_identity(dir.path(), "connector.example.test"));
  tls_channel server{*context};
  test_client client;
  handshake(client, server);
  client.write("NOOP\r\n");
  auto record = client.output();
  std::string plaintext;
  for (char byte : record)
    plaintext += server.receive(std::string(1, byte));
  CHECK(plaintext == "NOOP\r\n");
}

TEST_CASE("TLS channel: plaintext SMTP where a handshake belongs is an error, not input") {
  test::temp_dir dir;
  auto context = context_for(make_identity(dir.path(), "connector.example.test"));
  tls_channel server{*context};
  CHECK_THROWS_AS(server.receive("MAIL FROM:<evil@example.org>\r\n"), tls_error);
}

TEST_CASE("TLS context: a missing file or a key that does not match is refused by name") {
  test::temp_dir dir;
  auto mine = make_identity(dir.path(), "mine");
  auto other = make_identity(dir.path(), "other");
  tls_server_context context;
  try {
    context.use_certificate_chain(dir.path() / "missing.crt");
    FAIL("a missing certificate was accepted");
  } catch (const tls_error& e) {
    CHECK(std::string{e.what()}.rfind((dir.path() / "missing.crt").string() + ": ", 0) == 0);
  }
  context.use_certificate_chain(mine.certificate);
  try {
    context.use_private_key(other.key);
    FAIL("a key of another certificate was accepted");
  } catch (const tls_error& e) {
    CHECK(std::string{e.what()}.find("does not match the certificate") != std::string::npos);
  }
  CHECK_NOTHROW(context.use_private_key(mine.key));
}

namespace {

/// Moves bytes between our client and server channels until the client's
/// handshake is done; throws what the client throws.
void connect(tls_channel& client, tls_channel& server) {
  client.receive({});
  for (int round = 0; round < 10 && !client.handshake_done(); ++round) {
    server.receive(client.take_output());
    client.receive(server.take_output());
  }
  server.receive(client.take_output());
}

/// The client's handshake failure, or "" when it succeeded.
std::string failure_of(const tls_client_context& context, const std::string& name,
                       tls_server_context& server_context) {
  tls_channel client{context, name};
  tls_channel server{server_context};
  try {
    connect(client, server);
  } catch (const tls_error& e) {
    return e.what();
  }
  return client.handshake_done() ? "" : "handshake unfinished";
}

} // namespace

TEST_CASE("TLS client: a verified server by its name, records both ways") {
  test::temp_dir dir;
  auto identity = make_identity(dir.path(), "lmtp.example.test");
  auto server_context = context_for(identity);
  tls_client_context context{true, identity.certificate};
  tls_channel client{context, "lmtp.example.test"};
  tls_channel server{*server_context};
  connect(client, server);
  REQUIRE(client.handshake_done());
  REQUIRE(server.handshake_done());
  client.send("LHLO connector.example.test\r\n");
  CHECK(server.receive(client.take_output()) == "LHLO connector.example.test\r\n");
  server.send("250 ok\r\n");
  CHECK(client.receive(server.take_output()) == "250 ok\r\n");
}

TEST_CASE("TLS client: verification refuses another name or an unknown CA, without it any certificate does") {
  test::temp_dir dir;
  auto identity = make_identity(dir.path(), "lmtp.example.test");
  auto server_context = context_for(identity);
  tls_client_context pinned{true, identity.certificate};
  CHECK(failure_of(pinned, "other.example.test", *server_context)
        == "certificate verification failed: hostname mismatch");
  CHECK(failure_of(pinned, "127.0.0.1", *server_context)
        == "certificate verification failed: IP address mismatch");
  tls_client_context system_cas{true, {}};
  CHECK(failure_of(system_cas, "lmtp.example.test", *server_context)
        .rfind("certificate verification failed: self", 0) == 0);
  tls_client_context opportunistic{false, {}};
  CHECK(failure_of(opportunistic, "other.example.test", *server_context).empty());
  CHECK(failure_of(opportunistic, "127.0.0.1", *server_context).empty());
}

TEST_CASE("TLS client: a CA file that cannot be read is refused by name") {
  test::temp_dir dir;
  try {
    tls_client_context context{true, dir.path() / "missing.pem"};
    FAIL("a missing CA file was accepted");
  } catch (const tls_error& e) {
    CHECK(std::string{e.what()}.rfind((dir.path() / "missing.pem").string() + ": ", 0) == 0);
  }
}
