// NAME
//   etcd_client -- leases, keys and two transactions on etcd's v3 API (see
//   etcd_client.hpp).
//
// DESCRIPTION
//   The gateway's JSON is proto3's: 64-bit integers come as strings, and a
//   field at its zero value is left out (a txn that failed has no
//   "succeeded", an empty range no "kvs", a keepalive for a lease etcd no
//   longer has no "TTL"). LeaseKeepAlive is a stream in gRPC; the gateway
//   reads the request body as a stream of messages and answers each with
//   {"result": ...}, so a body of one message gets one answer and the reply
//   ends with the body.
#include "runtime/cluster/etcd_client.hpp"

#include <charconv>
#include <stdexcept>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "runtime/cluster/base64.hpp"

namespace postconn {

namespace {

using json = nlohmann::json;

/// gRPC's code for "unavailable": a member without a leader, or one that
/// timed out waiting for it. Another member may do better.
constexpr int grpc_unavailable = 14;

/// etcd's message for a lease it does not have (rpctypes.ErrLeaseNotFound).
constexpr std::string_view lease_not_found_message = "etcdserver: requested lease not found";

etcd_error unreachable(std::string why) {
  return {etcd_failure::unreachable, std::move(why)};
}

std::string milliseconds_text(std::chrono::milliseconds timeout) {
  return std::to_string(timeout.count()) + " ms";
}

/// Why an endpoint gave no HTTP answer.
std::string transport_failure(httplib::Error error, std::chrono::milliseconds timeout) {
  switch (error) {
  case httplib::Error::Connection:
    return "connection refused, or host unknown or unreachable";
  case httplib::Error::ConnectionTimeout:
    return "no connection within " + milliseconds_text(timeout);
  case httplib::Error::Read:
    return "no answer within " + milliseconds_text(timeout) + ", or the connection broke";
  case httplib::Error::Write:
    return "the request could not be sent";
  default:
    return httplib::to_string(error);
  }
}

/// An error etcd put in its reply: a unary call's {"error": "...",
/// "message": "...", "code": N}, or a stream's {"error": {"grpc_code": N,
/// "message": "..."}}.
etcd_error error_in(const json& reply) {
  const auto& error = reply.at("error");
  auto message = error.is_object() ? error.value("message", std::string{})
                                   : reply.value("message", error.get<std::string>());
  auto code = error.is_object() ? error.value("grpc_code", 0) : reply.value("code", 0);
  if (code == grpc_unavailable)
    return unreachable("unavailable: " + message);
  if (message == lease_not_found_message)
    return {etcd_failure::lease_not_found, message};
  return {etcd_failure::refused, message};
}

/// What etcd's reply says: etcd's answer; an `unreachable` error whose
/// message is this endpoint's reason (try the next one); or etcd's own
/// error (final).
etcd_result<json> reply_of(int status, const std::string& body) {
  auto reply = json::parse(body, nullptr, false);
  if (!reply.is_object())
    return unreachable("answered HTTP " + std::to_string(status)
                       + " without JSON: not etcd's v3 API");
  if (reply.contains("error")) {
    try {
      return error_in(reply);
    } catch (const json::exception&) {
      return unreachable("answered an error that is not etcd's v3 API");
    }
  }
  if (status != 200)
    return unreachable("answered HTTP " + std::to_string(status) + ": not etcd's v3 API");
  return reply;
}

/// POSTs `body` to `path` at one endpoint: what reply_of makes of the reply.
///
/// etcd's gateway ends an error reply with a trailer after the last chunk
/// (Grpc-Trailer-Content-Type), which cpp-httplib before 0.12 reads as a
/// broken connection and then drops the response. So the body is collected
/// as it arrives, and a reply that broke off after a whole JSON object has
/// arrived counts as answered: a reply cut short is not whole JSON.
etcd_result<json> post(const std::string& host, int port, const std::string& path,
                       const std::string& body, std::chrono::milliseconds timeout) {
  httplib::Client client{host, port};
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  httplib::Request request;
  request.method = "POST";
  request.path = path;
  request.body = body;
  request.set_header("Content-Type", "application/json");
  int status = 0;
  std::string received;
  request.response_handler = [&](const httplib::Response& response) {
    status = response.status;
    return true;
  };
  request.content_receiver = [&](const char* data, std::size_t size, std::uint64_t,
                                 std::uint64_t) {
    received.append(data, size);
    return true;
  };
  auto result = client.send(request);
  auto whole = result || (result.error() == httplib::Error::Read && status != 0
                          && json::accept(received));
  if (!whole)
    return unreachable(transport_failure(result.error(), timeout));
  return reply_of(status, received);
}

// Fields of a reply.

/// A 64-bit integer field: a string in proto3 JSON; absent means 0.
std::int64_t int64_of(const json& object, const char* key) {
  auto found = object.find(key);
  if (found == object.end())
    return 0;
  if (found->is_number_integer())
    return found->get<std::int64_t>();
  const auto& text = found->get_ref<const std::string&>();
  std::int64_t value = 0;
  auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (problem != std::errc{} || end != text.data() + text.size())
    throw std::runtime_error(std::string{key} + " is not an integer: " + text);
  return value;
}

/// A bytes field: base64; absent means empty.
std::string bytes_of(const json& object, const char* key) {
  auto found = object.find(key);
  if (found == object.end())
    return {};
  auto bytes = base64_decode(found->get_ref<const std::string&>());
  if (!bytes)
    throw std::runtime_error(std::string{key} + " is not base64");
  return *bytes;
}

std::int64_t revision_of(const json& reply) {
  return int64_of(reply.at("header"), "revision");
}

etcd_key_value key_value_of(const json& kv) {
  return {bytes_of(kv, "key"),           bytes_of(kv, "value"),   int64_of(kv, "create_revision"),
          int64_of(kv, "mod_revision"), int64_of(kv, "version"), int64_of(kv, "lease")};
}

etcd_range range_of(const json& reply) {
  etcd_range range;
  range.revision = revision_of(reply);
  for (const auto& kv : reply.value("kvs", json::array()))
    range.keys.push_back(key_value_of(kv));
  return range;
}

/// The answer `decode` makes of a reply; a reply it cannot read is no
/// usable answer.
template <class T, class Decode>
etcd_result<T> decoded(const etcd_result<json>& reply, Decode decode) {
  if (!reply)
    return reply.error();
  try {
    return decode(reply.value());
  } catch (const std::exception& e) {
    return unreachable(std::string{"unexpected reply from etcd: "} + e.what());
  }
}

// Requests.

/// A 64-bit integer (a lease ID, a revision) as proto3 JSON writes it.
std::string int64_text(std::int64_t value) {
  return std::to_string(value);
}

/// The end of the range of keys that start with `prefix`: the prefix with
/// its last byte below 0xff raised by one; "\0" (no end) when there is none.
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

json range_request(const std::string& key) {
  return {{"key", base64_encode(key)}};
}

/// A transaction: the requests of `success` if `compare` holds, else those
/// of `failure`.
json txn_request(json compare, json success, json failure = json::array()) {
  return {{"compare", json::array({std::move(compare)})},
          {"success", std::move(success)},
          {"failure", std::move(failure)}};
}

/// Whether a transaction's comparison held (and its success branch ran).
etcd_result<bool> txn_succeeded(const etcd_result<json>& reply) {
  return decoded<bool>(reply, [](const json& r) { return r.value("succeeded", false); });
}

etcd_error no_such_lease(std::int64_t lease) {
  return {etcd_failure::lease_not_found,
          std::string{lease_not_found_message} + " (lease " + int64_text(lease) + ")"};
}

} // namespace

etcd_client::etcd_client(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
  : endpoints_{std::move(endpoints)}, timeout_{timeout} {
  if (endpoints_.empty())
    throw std::invalid_argument("no etcd endpoints");
  if (timeout_.count() <= 0)
    throw std::invalid_argument("the etcd timeout must be positive");
  constexpr std::string_view scheme = "http://";
  for (const auto& endpoint : endpoints_) {
    auto bad = [&] {
      return std::invalid_argument("not an etcd endpoint (http://HOST:PORT): " + endpoint);
    };
    std::string_view rest{endpoint};
    if (rest.substr(0, scheme.size()) != scheme)
      throw bad();
    rest.remove_prefix(scheme.size());
    if (!rest.empty() && rest.back() == '/')
      rest.remove_suffix(1);
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      throw bad();
    auto host = rest.substr(0, colon);
    if (host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    if (host.empty() || host.find_first_of("/[]@ ") != std::string_view::npos)
      throw bad();
    auto port_text = rest.substr(colon + 1);
    int port = 0;
    auto [end, problem] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (problem != std::errc{} || end != port_text.data() + port_text.size() || port < 1
        || port > 65535)
      throw bad();
    addresses_.push_back({std::string{host}, port});
  }
}

etcd_result<json> etcd_client::call(const std::string& path, const json& request) const {
  auto body = request.dump();
  std::string reasons;
  auto first = preferred_.load();
  for (std::size_t n = 0; n < addresses_.size(); ++n) {
    auto i = (first + n) % addresses_.size();
    auto reply = post(addresses_[i].host, addresses_[i].port, path, body, timeout_);
    if (reply || reply.error().failure != etcd_failure::unreachable) {
      preferred_ = i;
      return reply;
    }
    reasons += (reasons.empty() ? "" : "; ") + endpoints_[i] + ": " + reply.error().message;
  }
  return unreachable("no etcd endpoint answered: " + reasons);
}

etcd_result<etcd_lease> etcd_client::grant(std::chrono::seconds ttl) const {
  return decoded<etcd_lease>(call("/v3/lease/grant", {{"TTL", ttl.count()}}),
                             [](const json& r) {
                               return etcd_lease{int64_of(r, "ID"),
                                                 std::chrono::seconds{int64_of(r, "TTL")}};
                             });
}

etcd_result<std::chrono::seconds> etcd_client::keep_alive(std::int64_t lease) const {
  auto reply = call("/v3/lease/keepalive", {{"ID", int64_text(lease)}});
  return decoded<std::chrono::seconds>(
    reply, [&](const json& r) -> etcd_result<std::chrono::seconds> {
      auto ttl = int64_of(r.at("result"), "TTL");
      if (ttl <= 0)
        return no_such_lease(lease);
      return std::chrono::seconds{ttl};
    });
}

etcd_result<std::int64_t> etcd_client::revoke(std::int64_t lease) const {
  return decoded<std::int64_t>(call("/v3/lease/revoke", {{"ID", int64_text(lease)}}),
                               revision_of);
}

etcd_result<etcd_lease_time> etcd_client::time_to_live(std::int64_t lease) const {
  auto reply = call("/v3/lease/timetolive", {{"ID", int64_text(lease)}});
  return decoded<etcd_lease_time>(reply, [&](const json& r) -> etcd_result<etcd_lease_time> {
    auto remaining = int64_of(r, "TTL");
    if (remaining < 0)
      return no_such_lease(lease);
    return etcd_lease_time{std::chrono::seconds{remaining},
                           std::chrono::seconds{int64_of(r, "grantedTTL")}};
  });
}

etcd_result<std::int64_t> etcd_client::put(const std::string& key, const std::string& value,
                                           std::int64_t lease) const {
  json request = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0)
    request["lease"] = int64_text(lease);
  return decoded<std::int64_t>(call("/v3/kv/put", request), revision_of);
}

etcd_result<etcd_range> etcd_client::get(const std::string& key) const {
  return decoded<etcd_range>(call("/v3/kv/range", range_request(key)), range_of);
}

etcd_result<etcd_range> etcd_client::get_prefix(const std::string& prefix) const {
  auto request = range_request(prefix.empty() ? std::string(1, '\0') : prefix);
  request["range_end"] = base64_encode(prefix_end(prefix));
  return decoded<etcd_range>(call("/v3/kv/range", request), range_of);
}

etcd_result<std::int64_t> etcd_client::delete_key(const std::string& key) const {
  return decoded<std::int64_t>(call("/v3/kv/deleterange", range_request(key)),
                               [](const json& r) { return int64_of(r, "deleted"); });
}

etcd_result<etcd_claim> etcd_client::create_if_absent(const std::string& key,
                                                      const std::string& value,
                                                      std::int64_t lease) const {
  json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0)
    put["lease"] = int64_text(lease);
  json read = {{"request_range", range_request(key)}};
  // Both branches end by reading the key: the holder, whoever won.
  auto request = txn_request(
    {{"key", base64_encode(key)}, {"result", "EQUAL"}, {"target", "CREATE"},
     {"create_revision", "0"}},
    json::array({{{"request_put", put}}, read}), json::array({read}));
  return decoded<etcd_claim>(call("/v3/kv/txn", request), [](const json& r) {
    etcd_claim claim;
    claim.won = r.value("succeeded", false);
    claim.revision = revision_of(r);
    auto holder = range_of(r.at("responses").back().at("response_range"));
    if (holder.keys.empty())
      throw std::runtime_error("the transaction read no holder");
    claim.holder = holder.keys.front();
    return claim;
  });
}

etcd_result<bool> etcd_client::put_unless_exists(const std::string& key,
                                                 const std::string& value,
                                                 const std::string& absent) const {
  json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  auto request = txn_request({{"key", base64_encode(absent)}, {"result", "EQUAL"},
                              {"target", "CREATE"}, {"create_revision", "0"}},
                             json::array({{{"request_put", put}}}));
  return txn_succeeded(call("/v3/kv/txn", request));
}

etcd_result<bool> etcd_client::delete_if_value(const std::string& key,
                                               const std::string& value) const {
  auto request = txn_request({{"key", base64_encode(key)}, {"result", "EQUAL"},
                              {"target", "VALUE"}, {"value", base64_encode(value)}},
                             json::array({{{"request_delete_range", range_request(key)}}}));
  return txn_succeeded(call("/v3/kv/txn", request));
}

etcd_result<bool> etcd_client::delete_if_mod_revision(const std::string& key,
                                                      std::int64_t mod_revision) const {
  auto request = txn_request({{"key", base64_encode(key)}, {"result", "EQUAL"},
                              {"target", "MOD"}, {"mod_revision", int64_text(mod_revision)}},
                             json::array({{{"request_delete_range", range_request(key)}}}));
  return txn_succeeded(call("/v3/kv/txn", request));
}

} // namespace postconn
