// Tests runtime/config/config_writer.cpp: the example config and a config
// using every key, written out and read back, are equal to what was written;
// durations in their largest exact unit; strings with quotes, control
// characters and UTF-8; only the keys not at their default (postconf -n),
// which read back equal too; smtp and lmtp postoffices' own retry defaults;
// and config equality, which a change in any one field breaks (so the round
// trips cannot pass by comparing nothing).
#include <doctest/doctest.h>

#include <string>

#include "runtime/config/config.hpp"
#include "tests/runtime/config/config_loading.hpp"
#include "runtime/config/config_writer.hpp"

#ifndef POSTCONN_SOURCE_DIR
#define POSTCONN_SOURCE_DIR "."
#endif

using namespace postconn;
using namespace std::chrono_literals;

namespace {

const std::string source_dir = POSTCONN_SOURCE_DIR;

using test::all_of;
using test::loaded;

/// `cfg` written out and read back.
config round_trip(const config& cfg) {
  return loaded(config_to_toml(cfg));
}

/// Every key of the config, each with a value other than its default.
/// tls_ca_file must name a readable file: the README stands in for a CA.
const std::string every_key = R"(
[server]
hostname = "mx.example.test"
data_dir = "/var/lib/postconn"
log_level = "debug"
keep_finished = "2h"
min_free_space = 0
shutdown_grace = "5s"

[smtp]
listen = "[::1]:25"
max_message_size = 1048576
max_recipients = 50
max_connections = 40
max_connections_per_client = 4
idle_timeout = 90
data_timeout = "20m"
queue_high_water = 5000
relay_networks = ["10.0.0.0/8"]
tls_certificate = "/etc/postconn/cert.pem"
tls_key = "/etc/postconn/key.pem"

[retry]
max_open_retries = 10
open_interval = "15m"
max_transfer_retries = 5
transfer_interval = "1h"
max_transfer_interval = "6h"
enforce_retry_limits = false
max_lifetime = "0"
delay_warning = "4h"
recovery_probe_interval = "30s"
recovery_rate = 20

[admin]
listen = "127.0.0.1:9025"
token_file = "/etc/postconn/token"

[cluster]
node = "mx1"
listen = "10.0.0.1:4200"
seeds = ["10.0.0.2:4200", "mx3.example.test:4200"]
reconnect_interval = "7s"
peer_timeout = "1m"
etcd = ["10.0.0.5:2379"]
lease_ttl = "4s"
replicas = 2
adopt_after = "2m"
without_replica = "accept"

[[postoffice]]
name = "sales"
domains = ["Sales.Example.test", "eu.sales.example.test"]
transport = "maildir"
path = "var/postoffices/sales"
create_mailboxes = true
probe_timeout = "30s"
owner = "mx1"

  [postoffice.retry]
  max_open_retries = 48
  open_interval = "5m"
  max_transfer_retries = 3
  transfer_interval = "90s"
  max_transfer_interval = "0"
  enforce_retry_limits = true
  max_lifetime = "3d"
  delay_warning = "0"
  recovery_probe_interval = "0"
  recovery_rate = 5

  [postoffice.fault]
  mode = "permfail"
  probability = 0.25
  seed = 42
  recipients = ["Bob@Sales.example.test"]

[[postoffice]]
name = "relay"
domains = ["relay.example.test"]
transport = "smtp"
address = "smtp.example.test:25"
tls = "verify"
tls_ca_file = ")" + source_dir + R"(/README.md"

  [postoffice.fault]
  mode = "flap"
  up = "10m"
  down = "5m"

[[postoffice]]
name = "archive"
domains = []
transport = "lmtp"
address = "[::1]:24"
tls = "may"
default = true

  [postoffice.fault]
  mode = "slow"
  latency = "3s"
  probability = 1

[[postoffice]]
name = "stuck"
domains = ["stuck.example.test"]
transport = "lmtp"
address = "127.0.0.1:24"

  [postoffice.fault]
  mode = "hang"
  probability = 0.1
)";

/// Calls `check(changed, field)` for a copy of `base` with one field
/// changed, for every field of every struct of the config. `base` is
/// every_key's config: postoffice[0] is a maildir one with a fault.
template <class Check>
void change_each_field(const config& base, Check check) {
  // One change per field below: a field added to a struct breaks these
  // bindings until it gets its change too.
  [[maybe_unused]] const auto& [c1, c2, c3, c4, c5, c6] = base;
  [[maybe_unused]] const auto& [s1, s2, s3, s4, s5, s6] = base.server;
  [[maybe_unused]] const auto& [m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = base.smtp;
  [[maybe_unused]] const auto& [r1, r2, r3, r4, r5, r6, r7, r8, r9, r10] = base.retry;
  [[maybe_unused]] const auto& [a1, a2] = base.admin;
  [[maybe_unused]] const auto& [k1, k2, k3, k4, k5, k6, k7, k8, k9, k10] = *base.cluster;
  [[maybe_unused]] const auto& [p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13]
    = base.postoffices.at(0);
  [[maybe_unused]] const auto& [f1, f2, f3, f4, f5, f6, f7] = base.postoffices.at(0).fault;

  auto change = [&](const char* field, auto edit) {
    auto changed = base;
    edit(changed);
    check(changed, field);
  };
  change("server.hostname", [](config& c) { c.server.hostname += "x"; });
  change("server.data_dir", [](config& c) { c.server.data_dir += "x"; });
  change("server.log_level", [](config& c) { c.server.log_level = "info"; });
  change("server.keep_finished", [](config& c) { c.server.keep_finished += 1s; });
  change("server.min_free_space", [](config& c) { c.server.min_free_space += 1; });
  change("server.shutdown_grace", [](config& c) { c.server.shutdown_grace += 1s; });

  change("smtp.listen", [](config& c) { c.smtp.listen = "[::1]:26"; });
  change("smtp.max_message_size", [](config& c) { c.smtp.max_message_size += 1; });
  change("smtp.max_recipients", [](config& c) { c.smtp.max_recipients += 1; });
  change("smtp.max_connections", [](config& c) { c.smtp.max_connections += 1; });
  change("smtp.max_connections_per_client",
         [](config& c) { c.smtp.max_connections_per_client += 1; });
  change("smtp.idle_timeout", [](config& c) { c.smtp.idle_timeout += 1s; });
  change("smtp.data_timeout", [](config& c) { c.smtp.data_timeout += 1s; });
  change("smtp.queue_high_water", [](config& c) { c.smtp.queue_high_water += 1; });
  change("smtp.tls_certificate", [](config& c) { c.smtp.tls_certificate += "x"; });
  change("smtp.tls_key", [](config& c) { c.smtp.tls_key += "x"; });
  change("smtp.relay_networks",
         [](config& c) { c.smtp.relay_networks.push_back("::1/128"); });

  change("retry.max_open_retries", [](config& c) { c.retry.max_open_retries += 1; });
  change("retry.open_interval", [](config& c) { c.retry.open_interval += 1s; });
  change("retry.max_transfer_retries", [](config& c) { c.retry.max_transfer_retries += 1; });
  change("retry.transfer_interval", [](config& c) { c.retry.transfer_interval += 1s; });
  change("retry.max_transfer_interval",
         [](config& c) { c.retry.max_transfer_interval += 1s; });
  change("retry.enforce_retry_limits",
         [](config& c) { c.retry.enforce_retry_limits = !c.retry.enforce_retry_limits; });
  change("retry.max_lifetime", [](config& c) { c.retry.max_lifetime += 1s; });
  change("retry.delay_warning", [](config& c) { c.retry.delay_warning += 1s; });
  change("retry.recovery_probe_interval",
         [](config& c) { c.retry.recovery_probe_interval += 1s; });
  change("retry.recovery_rate", [](config& c) { c.retry.recovery_rate += 1; });

  change("admin.listen", [](config& c) { c.admin.listen = "127.0.0.1:9026"; });
  change("admin.token_file", [](config& c) { c.admin.token_file += "x"; });

  change("cluster", [](config& c) { c.cluster.reset(); });
  change("cluster.node", [](config& c) { c.cluster->node += "x"; });
  change("cluster.listen", [](config& c) { c.cluster->listen = "10.0.0.1:4201"; });
  change("cluster.seeds", [](config& c) { c.cluster->seeds.pop_back(); });
  change("cluster.reconnect_interval", [](config& c) { c.cluster->reconnect_interval += 1s; });
  change("cluster.peer_timeout", [](config& c) { c.cluster->peer_timeout += 1s; });
  change("cluster.etcd", [](config& c) { c.cluster->etcd.push_back("10.0.0.9:2379"); });
  change("cluster.lease_ttl", [](config& c) { c.cluster->lease_ttl += 1s; });
  change("cluster.replicas", [](config& c) { c.cluster->replicas = 1; });
  change("cluster.adopt_after", [](config& c) { c.cluster->adopt_after += 1s; });
  change("cluster.without_replica",
         [](config& c) { c.cluster->accept_unreplicated = !c.cluster->accept_unreplicated; });

  change("postoffices", [](config& c) { c.postoffices.pop_back(); });
  auto po = [](config& c) -> postoffice_config& { return c.postoffices.at(0); };
  change("postoffice.name", [&](config& c) { po(c).name += "x"; });
  change("postoffice.domains", [&](config& c) { po(c).domains.pop_back(); });
  change("postoffice.transport", [&](config& c) { po(c).transport = transport_kind::lmtp; });
  change("postoffice.path", [&](config& c) { po(c).path += "x"; });
  change("postoffice.create_mailboxes",
         [&](config& c) { po(c).create_mailboxes = !po(c).create_mailboxes; });
  change("postoffice.address", [&](config& c) { po(c).address = "127.0.0.1:25"; });
  change("postoffice.tls", [&](config& c) { po(c).tls = tls_policy::may; });
  change("postoffice.tls_ca_file", [&](config& c) { po(c).tls_ca_file = "ca.pem"; });
  change("postoffice.default", [&](config& c) { po(c).is_default = !po(c).is_default; });
  change("postoffice.probe_timeout", [&](config& c) { po(c).probe_timeout += 1s; });
  change("postoffice.owner", [&](config& c) { po(c).owner += "x"; });

  change("postoffice.retry.max_open_retries",
         [&](config& c) { po(c).retry.max_open_retries += 1; });
  change("postoffice.retry.open_interval", [&](config& c) { po(c).retry.open_interval += 1s; });
  change("postoffice.retry.max_transfer_retries",
         [&](config& c) { po(c).retry.max_transfer_retries += 1; });
  change("postoffice.retry.transfer_interval",
         [&](config& c) { po(c).retry.transfer_interval += 1s; });
  change("postoffice.retry.max_transfer_interval",
         [&](config& c) { po(c).retry.max_transfer_interval += 1s; });
  change("postoffice.retry.enforce_retry_limits", [&](config& c) {
    po(c).retry.enforce_retry_limits = !po(c).retry.enforce_retry_limits;
  });
  change("postoffice.retry.max_lifetime", [&](config& c) { po(c).retry.max_lifetime += 1s; });
  change("postoffice.retry.delay_warning",
         [&](config& c) { po(c).retry.delay_warning += 1s; });
  change("postoffice.retry.recovery_probe_interval",
         [&](config& c) { po(c).retry.recovery_probe_interval += 1s; });
  change("postoffice.retry.recovery_rate", [&](config& c) { po(c).retry.recovery_rate += 1; });

  change("postoffice.fault.mode", [&](config& c) { po(c).fault.mode = fault_mode::drop; });
  change("postoffice.fault.probability", [&](config& c) { po(c).fault.probability = 0.5; });
  change("postoffice.fault.seed", [&](config& c) { po(c).fault.seed += 1; });
  change("postoffice.fault.recipients", [&](config& c) { po(c).fault.recipients.clear(); });
  change("postoffice.fault.latency", [&](config& c) { po(c).fault.latency += 1s; });
  change("postoffice.fault.up", [&](config& c) { po(c).fault.up += 1s; });
  change("postoffice.fault.down", [&](config& c) { po(c).fault.down += 1s; });
}

} // namespace

TEST_CASE("config writer: the example config reads back equal") {
  auto example = load_config_file(source_dir + "/conf/postconn.toml");
  INFO(all_of(example.problems));
  REQUIRE(example.value);
  auto text = config_to_toml(*example.value);
  CHECK(round_trip(*example.value) == *example.value);
  // support overrides two retry keys; only those are written for it.
  auto support = text.substr(text.find("name = \"support\""));
  CHECK(support.find("[postoffice.retry]\n  max_open_retries = 48\n  open_interval = \"5m\"\n")
        != std::string::npos);
  CHECK(support.find("transfer_interval") == std::string::npos);
  CHECK(text.find("[cluster]") == std::string::npos);
  CHECK(text.find("[postoffice.fault]") == std::string::npos);
}

TEST_CASE("config writer: a config using every key reads back equal") {
  auto cfg = loaded(every_key);
  REQUIRE(cfg.cluster);
  REQUIRE(cfg.postoffices.size() == 4);
  auto text = config_to_toml(cfg);
  INFO(text);
  auto again = round_trip(cfg);
  CHECK(again == cfg);
  // Written again, the text is the same: nothing drifts from one pass to the next.
  CHECK(config_to_toml(again) == text);
  // None of every_key's values is a default, so each shows in the text.
  for (auto line :
       {"hostname = \"mx.example.test\"", "keep_finished = \"2h\"", "min_free_space = 0",
        "shutdown_grace = \"5s\"", "idle_timeout = \"90s\"", "data_timeout = \"20m\"",
        "tls_key = \"/etc/postconn/key.pem\"",
        "enforce_retry_limits = false", "max_lifetime = \"0\"", "token_file =",
        "max_transfer_interval = \"6h\"", "max_transfer_interval = \"0\"",
        "seeds = [\"10.0.0.2:4200\", \"mx3.example.test:4200\"]",
        "peer_timeout = \"1m\"", "etcd = [\"10.0.0.5:2379\"]", "lease_ttl = \"4s\"",
        "replicas = 2", "adopt_after = \"2m\"", "without_replica = \"accept\"", "domains = [\"sales.example.test\", \"eu.sales.example.test\"]",
        "create_mailboxes = true", "owner = \"mx1\"", "probability = 0.25", "seed = 42",
        "recipients = [\"bob@sales.example.test\"]", "tls = \"verify\"", "tls_ca_file =",
        "up = \"10m\"", "down = \"5m\"", "latency = \"3s\"", "domains = []",
        "default = true", "tls = \"may\"", "mode = \"hang\"", "probability = 0.1\n"})
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
}

TEST_CASE("config writer: defaults are written out, and read back equal") {
  auto cfg = loaded("[[postoffice]]\nname = \"all\"\ntransport = \"maildir\"\n"
                    "path = \"p\"\ndefault = true\n");
  auto text = config_to_toml(cfg);
  CHECK(round_trip(cfg) == cfg);
  for (auto line : {"hostname = \"localhost\"", "keep_finished = \"1d\"",
                    "min_free_space = 104857600", "shutdown_grace = \"30s\"",
                    "listen = \"127.0.0.1:2525\"",
                    "max_open_retries = 144", "open_interval = \"10m\"",
                    "max_lifetime = \"5d\"", "delay_warning = \"0\"",
                    "recovery_probe_interval = \"10s\"", "recovery_rate = 100",
                    "listen = \"127.0.0.1:8025\"", "probe_timeout = \"10s\""})
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  CHECK(text.find("tls_certificate") == std::string::npos);
  CHECK(text.find("token_file") == std::string::npos);
  CHECK(text.find("[postoffice.retry]") == std::string::npos);
}

TEST_CASE("config writer: a cluster's replication keys are written at their defaults, and read back equal") {
  // lease_ttl 3m would need adopt_after 6m with replicas = 2; with one
  // replica the default 5m written out must still read back.
  auto cfg = loaded("[[postoffice]]\nname = \"all\"\ntransport = \"maildir\"\n"
                    "path = \"p\"\ndefault = true\n[cluster]\nnode = \"a\"\n"
                    "listen = \"127.0.0.1:4200\"\netcd = [\"127.0.0.1:2379\"]\n"
                    "lease_ttl = \"3m\"\n");
  auto text = config_to_toml(cfg);
  INFO(text);
  CHECK(round_trip(cfg) == cfg);
  CHECK(text.find("lease_ttl = \"3m\"\nreplicas = 1\nadopt_after = \"5m\"\n"
                  "without_replica = \"refuse\"\n")
        != std::string::npos);
  auto changed = config_to_toml(cfg, key_choice::changed);
  for (auto key : {"replicas", "adopt_after", "without_replica"})
    CHECK_MESSAGE(changed.find(key) == std::string::npos, key);
}

/// A maildir and an smtp postoffice.
const std::string share_and_relay = R"(
[[postoffice]]
name = "share"
domains = ["share.example.test"]
transport = "maildir"
path = "var/share"

[[postoffice]]
name = "relay"
domains = ["relay.example.test"]
transport = "smtp"
address = "127.0.0.1:25"
)";

/// Postoffices of each transport under a [retry] that sets keys to the
/// seed's own values (which a maildir postoffice has anyway, but an smtp one
/// would not) and to others.
const std::string mixed_transports = R"(
[retry]
transfer_interval = "120s"
max_transfer_retries = 2
max_open_retries = 10
)" + share_and_relay + R"(
[[postoffice]]
name = "store"
domains = ["store.example.test"]
transport = "lmtp"
address = "127.0.0.1:24"

  [postoffice.retry]
  max_transfer_interval = "2h"

[[postoffice]]
name = "quiet"
domains = ["quiet.example.test"]
transport = "smtp"
address = "127.0.0.1:26"
)";

TEST_CASE("config writer: the effective config shows an smtp postoffice's own retry defaults") {
  auto cfg = loaded(share_and_relay);
  auto text = config_to_toml(cfg);
  INFO(text);
  CHECK(round_trip(cfg) == cfg);
  auto relay = text.substr(text.find("name = \"relay\""));
  CHECK(relay.find("[postoffice.retry]\n  max_transfer_retries = 120\n"
                   "  transfer_interval = \"5m\"\n  max_transfer_interval = \"4000s\"\n")
        != std::string::npos);
  auto share_from = text.find("name = \"share\"");
  auto share = text.substr(share_from, text.find("name = \"relay\"") - share_from);
  CHECK(share.find("[postoffice.retry]") == std::string::npos);
  auto retry = text.substr(text.find("[retry]"));
  CHECK(retry.find("transfer_interval = \"2m\"\nmax_transfer_interval = \"0\"\n")
        != std::string::npos);
}

TEST_CASE("config writer: only the keys not at their default (postconf -n), read back equal") {
  auto cfg = loaded("[[postoffice]]\nname = \"all\"\ntransport = \"maildir\"\n"
                    "path = \"p\"\ndefault = true\n");
  CHECK(config_to_toml(cfg, key_choice::changed)
        == "# postconn config: the keys whose value is not the default.\n\n"
           "[[postoffice]]\nname = \"all\"\ntransport = \"maildir\"\npath = \"p\"\n"
           "default = true\n");
  auto example = load_config_file(source_dir + "/conf/postconn.toml");
  REQUIRE(example.value);
  auto all = loaded(every_key);
  for (const auto& [name, original] :
       {std::pair{"defaults", cfg}, std::pair{"example", *example.value},
        std::pair{"every_key", all}, std::pair{"mixed", loaded(mixed_transports)}}) {
    CAPTURE(name);
    auto text = config_to_toml(original, key_choice::changed);
    INFO(text);
    auto again = loaded(text);
    CHECK(again == original);
    CHECK(config_to_toml(again, key_choice::changed) == text);
  }
}

TEST_CASE("config writer: changed keys of a postoffice's retry are those its transport would not have") {
  auto text = config_to_toml(loaded(mixed_transports), key_choice::changed);
  INFO(text);
  // [retry] keys equal to the seed's defaults are not written...
  CHECK(text.find("[retry]\nmax_open_retries = 10\n\n") != std::string::npos);
  // ...so an smtp postoffice that got them from [retry] says so itself.
  auto block = [&](const std::string& name) {
    auto from = text.find("name = \"" + name + "\"");
    return text.substr(from, text.find("[[postoffice]]", from) - from);
  };
  CHECK(block("share").find("[postoffice.retry]") == std::string::npos);
  for (auto name : {"relay", "quiet"})
    CHECK_MESSAGE(block(name).find("  [postoffice.retry]\n  max_transfer_retries = 2\n"
                                   "  transfer_interval = \"2m\"\n")
                    != std::string::npos,
                  name);
  CHECK(block("store").find("  max_transfer_interval = \"2h\"\n") != std::string::npos);
  // Keys at their default are nowhere: no [server], [smtp] or [admin].
  for (auto absent : {"[server]", "[smtp]", "[admin]", "probe_timeout", "create_mailboxes"})
    CHECK_MESSAGE(text.find(absent) == std::string::npos, absent);
}

TEST_CASE("config writer: durations in their largest exact unit") {
  CHECK(duration_to_toml(0s) == "0");
  CHECK(duration_to_toml(1s) == "1s");
  CHECK(duration_to_toml(90s) == "90s");
  CHECK(duration_to_toml(600s) == "10m");
  CHECK(duration_to_toml(7200s) == "2h");
  CHECK(duration_to_toml(86400s) == "1d");
  CHECK(duration_to_toml(90000s) == "25h");
  CHECK(duration_to_toml(36500 * 24h) == "36500d");
  for (auto seconds : {0s, 1s, 59s, 61s, 3599s, 3660s, 86399s, 90000s, 3153600000s})
    CHECK(parse_duration(duration_to_toml(seconds)) == seconds);
}

TEST_CASE("config writer: quotes, backslashes, control characters and UTF-8 read back") {
  auto cfg = loaded(R"(
[server]
data_dir = "a\"b\\c\td\ne\u0001f\u007fg\u00e9h\U0001F4EEi"

[[postoffice]]
name = "odd"
domains = ["odd.example.test"]
transport = "maildir"
path = 'C:\mail\"quoted"'

  [postoffice.fault]
  mode = "permfail"
  recipients = ["\"a b\"@odd.example.test", "x\\y@odd.example.test"]
)");
  CHECK(cfg.server.data_dir.native() == "a\"b\\c\td\ne\x01" "f\x7fg\xc3\xa9h\xf0\x9f\x93\xaei");
  auto text = config_to_toml(cfg);
  INFO(text);
  CHECK(round_trip(cfg) == cfg);
  // One key to a line: the newline in data_dir is escaped.
  CHECK(text.find("data_dir = \"a\\\"b\\\\c\\td\\ne\\u0001f\\u007fg\xc3\xa9h")
        != std::string::npos);
}

TEST_CASE("config writer: fault probabilities read back exactly") {
  for (auto probability : {0.0, 1.0, 0.1, 1.0 / 3, 1e-5, 5e-324, 0.9999999999999999}) {
    auto cfg = loaded("[[postoffice]]\nname = \"p\"\ndomains = [\"p.test\"]\n"
                      "transport = \"maildir\"\npath = \"p\"\n");
    cfg.postoffices[0].fault.mode = fault_mode::tempfail;
    cfg.postoffices[0].fault.probability = probability;
    CAPTURE(probability);
    CHECK(round_trip(cfg).postoffices[0].fault.probability == probability);
  }
}

TEST_CASE("config equality: a change in any one field makes configs unequal") {
  auto base = loaded(every_key);
  CHECK(base == loaded(every_key));
  int changes = 0;
  change_each_field(base, [&](const config& changed, const char* field) {
    CAPTURE(field);
    CHECK_FALSE(changed == base);
    CHECK_FALSE(base == changed);
    ++changes;
  });
  CHECK(changes == 69);
}
