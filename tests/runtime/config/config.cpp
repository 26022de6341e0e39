// Tests runtime/config/config.cpp: durations, listen addresses, the example config
// conf/postconn.toml, [postoffice.retry] overrides, and one problem line per
// bad key, each starting with the key's full path.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "runtime/config/config.hpp"
#include "tests/runtime/config/config_loading.hpp"

#ifndef POSTCONN_SOURCE_DIR
#define POSTCONN_SOURCE_DIR "."
#endif

using namespace postconn;
using namespace std::chrono_literals;

namespace {

const std::string source_dir = POSTCONN_SOURCE_DIR;

const std::string sales_postoffice = R"(
[[postoffice]]
name = "sales"
domains = ["sales.example.test"]
transport = "maildir"
path = "var/postoffices/sales"
)";

/// The problem line of `open_interval = "10x"` in [retry].
const std::string bad_open_interval = "retry.open_interval: invalid duration \"10x\" "
                                      "(use a number with s, m, h or d, e.g. \"600s\")";

/// The problems of a config, which must not load.
std::vector<std::string> problems_of(const std::string& text) {
  auto result = parse_config(text, "test.toml");
  CHECK_FALSE(result.value);
  return result.problems;
}

/// The problems of one [[postoffice]] with `body`, the only postoffice.
std::vector<std::string> postoffice_problems(const std::string& body) {
  return problems_of("[[postoffice]]\n" + body);
}

/// True when some problem starts with `key` + ": " and mentions `words`.
bool has_problem(const std::vector<std::string>& problems, const std::string& key,
                 const std::string& words = "") {
  return std::any_of(problems.begin(), problems.end(), [&](const std::string& p) {
    return p.rfind(key + ": ", 0) == 0 && p.find(words) != std::string::npos;
  });
}

using test::all_of;
using test::loaded;

} // namespace

TEST_CASE("durations take s, m, h and d units or plain seconds") {
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("10m") == 600s);
  CHECK(parse_duration("24h") == 86400s);
  CHECK(parse_duration("5d") == 432000s);
  CHECK(parse_duration("0") == 0s);
  CHECK(parse_duration("0s") == 0s);
  CHECK(parse_duration("600") == 600s);
  CHECK(parse_duration("36500d") == 36500 * 24h);
  for (auto bad : {"", "s", "-5s", "+5s", "1.5h", "10x", "10 m", "10mm", "1e3", " 5s",
                   "5s ", "10M", "36501d", "3153600001", "99999999999999999999999s"})
    CHECK_MESSAGE(!parse_duration(bad), bad);
}

TEST_CASE("durations in the config: strings, integer seconds, and clear rejects") {
  auto cfg = loaded(sales_postoffice + R"(
[server]
keep_finished = 0
min_free_space = 0
shutdown_grace = "2m"
[retry]
open_interval = 90
transfer_interval = "2m"
max_lifetime = 0
delay_warning = "4h"
)");
  CHECK(cfg.server.keep_finished == 0s);
  CHECK(cfg.server.min_free_space == 0);
  CHECK(cfg.server.shutdown_grace == 120s);
  CHECK(cfg.retry.open_interval == 90s);
  CHECK(cfg.retry.transfer_interval == 120s);
  CHECK(cfg.retry.max_lifetime == 0s);
  CHECK(cfg.retry.delay_warning == 4h);

  auto problems = problems_of(sales_postoffice + R"(
[retry]
open_interval = "10x"
transfer_interval = -5
max_lifetime = 1.5
delay_warning = "36501d"
)");
  INFO(all_of(problems));
  REQUIRE(problems.size() == 4);
  CHECK(problems[0] == bad_open_interval);
  CHECK(problems[1] == "retry.transfer_interval: invalid duration -5 (must not be negative)");
  CHECK(has_problem(problems, "retry.max_lifetime",
                    "expected a duration (\"90s\", \"10m\", \"24h\", \"5d\" or seconds), "
                    "got a number with a fraction"));
  CHECK(has_problem(problems, "retry.delay_warning", "too long (at most 36500d)"));
  CHECK(has_problem(problems_of(sales_postoffice + "[retry]\nmax_lifetime = 3153600001\n"),
                    "retry.max_lifetime", "at most 3153600000 seconds"));
}

TEST_CASE("listen addresses are host:port or [v6]:port") {
  auto v4 = parse_listen_address("127.0.0.1:2525");
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 2525);
  auto v6 = parse_listen_address("[::1]:25");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 25);
  auto named = parse_listen_address("mail.example.test:65535");
  REQUIRE(named);
  CHECK(named->host == "mail.example.test");
  CHECK(named->port == 65535);
  auto any_port = parse_listen_address("127.0.0.1:0"); // a listener binds a free one
  REQUIRE(any_port);
  CHECK(any_port->port == 0);
  for (auto bad : {"127.0.0.1", "127.0.0.1:65536", "127.0.0.1:025252", ":25",
                   "::1:25", "[::1]25", "[::1]:", "[]:25", "[mail.test]:25", "host:2x5",
                   "host:-25", "bad host:25", ""})
    CHECK_MESSAGE(!parse_listen_address(bad), bad);
}

TEST_CASE("the example config loads with the values written in it") {
  auto result = load_config_file(source_dir + "/conf/postconn.toml");
  INFO(all_of(result.problems));
  REQUIRE(result.value);
  CHECK(result.problems.empty());
  const auto& cfg = *result.value;
  CHECK(cfg.server.hostname == "connector.example.test");
  CHECK(cfg.server.data_dir == "var");
  CHECK(cfg.server.log_level == "info");
  CHECK(cfg.server.keep_finished == 24h);
  CHECK(cfg.server.min_free_space == 100 * 1024 * 1024);
  CHECK(cfg.server.shutdown_grace == 30s);
  CHECK(cfg.smtp.listen == "127.0.0.1:2525");
  CHECK(cfg.smtp.max_message_size == 35882577);
  CHECK(cfg.smtp.max_recipients == 1000);
  CHECK(cfg.smtp.max_connections == 500);
  CHECK(cfg.smtp.max_connections_per_client == 20);
  CHECK(cfg.smtp.idle_timeout == 300s);
  CHECK(cfg.smtp.data_timeout == 600s);
  CHECK(cfg.smtp.queue_high_water == 1000000);
  CHECK(cfg.smtp.tls_certificate.empty());
  CHECK(cfg.smtp.tls_key.empty());
  CHECK(cfg.smtp.relay_networks == std::vector<std::string>{"127.0.0.0/8", "::1/128"});
  CHECK(cfg.retry.max_open_retries == 144);
  CHECK(cfg.retry.open_interval == 600s);
  CHECK(cfg.retry.max_transfer_retries == 2);
  CHECK(cfg.retry.transfer_interval == 120s);
  CHECK(cfg.retry.enforce_retry_limits);
  CHECK(cfg.retry.max_lifetime == 5 * 24h);
  CHECK(cfg.retry.delay_warning == 0s);
  CHECK(cfg.admin.listen == "127.0.0.1:8025");
  REQUIRE(cfg.postoffices.size() == 2);
  const auto& sales = cfg.postoffices[0];
  CHECK(sales.name == "sales");
  CHECK(sales.domains == std::vector<std::string>{"sales.example.test"});
  CHECK(sales.transport == transport_kind::maildir);
  CHECK(sales.path == "var/postoffices/sales");
  CHECK_FALSE(sales.create_mailboxes);
  CHECK_FALSE(sales.is_default);
  CHECK(sales.probe_timeout == 10s);
  CHECK(sales.retry.max_open_retries == 144);
  CHECK(sales.retry.open_interval == 600s);
  const auto& support = cfg.postoffices[1];
  CHECK(support.name == "support");
  CHECK(support.domains == std::vector<std::string>{"support.example.test"});
  CHECK(support.path == "var/postoffices/support");
  CHECK(support.create_mailboxes);
  CHECK(support.retry.max_open_retries == 48);
  CHECK(support.retry.open_interval == 300s);
  CHECK(support.retry.max_transfer_retries == 2);
  CHECK(support.retry.max_lifetime == 5 * 24h);
}

TEST_CASE("postoffice retry overrides apply key by key over [retry], wherever it stands") {
  auto cfg = loaded(R"(
[[postoffice]]
name = "flaky"
domains = ["Flaky.Example.TEST"]
transport = "smtp"
address = "127.0.0.1:2400"
probe_timeout = 30
[postoffice.retry]
max_transfer_retries = 7
delay_warning = "4h"

[[postoffice]]
name = "steady"
domains = ["steady.example.test"]
transport = "lmtp"
address = "[::1]:24"
tls = "verify"
tls_ca_file = ")" + source_dir + R"(/README.md"

[retry]
transfer_interval = "1m"
max_transfer_retries = 3
enforce_retry_limits = false
)");
  REQUIRE(cfg.postoffices.size() == 2);
  const auto& flaky = cfg.postoffices[0];
  CHECK(flaky.transport == transport_kind::smtp);
  CHECK(flaky.address == "127.0.0.1:2400");
  CHECK(flaky.domains == std::vector<std::string>{"flaky.example.test"});
  CHECK(flaky.probe_timeout == 30s);
  CHECK(flaky.retry.max_transfer_retries == 7);
  CHECK(flaky.retry.delay_warning == 4h);
  CHECK(flaky.retry.transfer_interval == 60s);
  CHECK_FALSE(flaky.retry.enforce_retry_limits);
  CHECK(flaky.retry.max_open_retries == 144);
  CHECK(flaky.tls == tls_policy::none);
  const auto& steady = cfg.postoffices[1];
  CHECK(steady.transport == transport_kind::lmtp);
  CHECK(steady.tls == tls_policy::verify);
  CHECK(steady.tls_ca_file == source_dir + "/README.md");
  CHECK(steady.retry.max_transfer_retries == 3);
  CHECK(steady.retry.delay_warning == 0s);
  CHECK(cfg.retry.max_transfer_retries == 3);
  CHECK(cfg.retry.delay_warning == 0s);
}

TEST_CASE("a bad duration, a duplicate name and an unknown key are all reported") {
  auto file = source_dir + "/tests/configs/three_problems.toml";
  auto result = load_config_file(file);
  CHECK_FALSE(result.value);
  CHECK(result.problems
        == std::vector<std::string>{
          bad_open_interval,
          "postoffice[1].colour: unknown key",
          R"(postoffice[1].name: duplicate name "sales" (also postoffice[0]))",
        });
}

TEST_CASE("every rule of [server], [smtp], [retry] and [admin] names its key") {
  struct rule {
    const char* toml;
    const char* key;
    const char* words;
  };
  const rule rules[] = {
    {"[server]\nhostname = \"bad host\"\n", "server.hostname", "invalid host name \"bad host\""},
    {"[server]\nhostname = \"a..b\"\n", "server.hostname", "invalid host name"},
    {"[server]\nhostname = \"\"\n", "server.hostname", "invalid host name"},
    {"[server]\ndata_dir = \"\"\n", "server.data_dir", "must not be empty"},
    {"[server]\nlog_level = \"loud\"\n", "server.log_level", "unknown level \"loud\""},
    {"[server]\nname = \"x\"\n", "server.name", "unknown key"},
    {"[server]\nkeep_finished = \"1 week\"\n", "server.keep_finished",
     "invalid duration \"1 week\""},
    {"[server]\nmin_free_space = -1\n", "server.min_free_space", "must be at least 0, got -1"},
    {"[server]\nmin_free_space = \"1G\"\n", "server.min_free_space", "integer"},
    {"[smtp]\nlisten = \"localhost\"\n", "smtp.listen", "invalid address \"localhost\""},
    {"[smtp]\nlisten = \"[::1]:\"\n", "smtp.listen", "invalid address"},
    {"[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:0\"\n", "cluster.listen",
     "port 0 is not allowed here"},
    {"[smtp]\nmax_message_size = 0\n", "smtp.max_message_size", "must be at least 1, got 0"},
    {"[smtp]\nmax_recipients = 0\n", "smtp.max_recipients", "must be at least 1, got 0"},
    {"[smtp]\nmax_recipients = 4294967296\n", "smtp.max_recipients", "must be at most 4294967295"},
    {"[smtp]\nmax_recipients = \"many\"\n", "smtp.max_recipients",
     "expected an integer, got a string"},
    {"[smtp]\nrelay_networks = [\"10.0.0.0/33\"]\n", "smtp.relay_networks[0]", "10.0.0.0/33"},
    {"[smtp]\nrelay_networks = [\"::1\", \"::/129\"]\n", "smtp.relay_networks[1]", "::/129"},
    {"[smtp]\nrelay_networks = [\"localhost\"]\n", "smtp.relay_networks[0]", "localhost"},
    {"[smtp]\nrelay_networks = [7]\n", "smtp.relay_networks[0]", "expected a string"},
    {"[smtp]\nrelay_networks = \"127.0.0.1\"\n", "smtp.relay_networks",
     "expected an array of strings, got a string"},
    {"[smtp]\nidle_timeout = \"0\"\n", "smtp.idle_timeout", "must be longer than 0"},
    {"[smtp]\nlistn = \"x\"\n", "smtp.listn", "unknown key"},
    {"[retry]\nmax_open_retries = -1\n", "retry.max_open_retries", "must be at least 0, got -1"},
    {"[retry]\nmax_transfer_retries = -1\n", "retry.max_transfer_retries", "at least 0"},
    {"[retry]\nopen_interval = 0\n", "retry.open_interval", "must be longer than 0"},
    {"[retry]\ntransfer_interval = \"0m\"\n", "retry.transfer_interval", "longer than 0"},
    {"[retry]\nmax_lifetime = -3\n", "retry.max_lifetime", "must not be negative"},
    {"[retry]\ndelay_warning = \"4 h\"\n", "retry.delay_warning", "invalid duration \"4 h\""},
    {"[retry]\nenforce_retry_limits = 1\n", "retry.enforce_retry_limits",
     "expected a boolean, got an integer"},
    {"[retry]\nmax_open_retry = 3\n", "retry.max_open_retry", "unknown key"},
    {"[admin]\nlisten = \"127.0.0.1:99999\"\n", "admin.listen", "invalid address"},
    {"[admin]\ntoken = \"x\"\n", "admin.token", "unknown key"},
    {"server = 5\n", "server", "expected a table, got an integer"},
    {"[queue]\n", "queue", "unknown key"},
    {"debug = true\n", "debug", "unknown key"},
  };
  for (const auto& r : rules) {
    auto problems = problems_of(r.toml + sales_postoffice);
    INFO(all_of(problems));
    CHECK_MESSAGE(has_problem(problems, r.key, r.words), r.toml);
  }
}

TEST_CASE("every rule of a [[postoffice]] names its key") {
  struct rule {
    const char* body;
    const char* key;
    const char* words;
  };
  const rule rules[] = {
    {"domains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n", "postoffice[0].name",
     "missing"},
    {"name = \"Sales!\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n",
     "postoffice[0].name", "invalid name \"Sales!\""},
    {"name = \"\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n",
     "postoffice[0].name", "invalid name"},
    {"name = \"a\"\ntransport = \"maildir\"\npath = \"p\"\n", "postoffice[0].domains", "missing"},
    {"name = \"a\"\ndomains = []\ntransport = \"maildir\"\npath = \"p\"\n",
     "postoffice[0].domains", "empty"},
    {"name = \"a\"\ndomains = [\"bad domain\"]\ntransport = \"maildir\"\npath = \"p\"\n",
     "postoffice[0].domains[0]", "invalid domain \"bad domain\""},
    {"name = \"a\"\ndomains = [\"a.test\"]\npath = \"p\"\n", "postoffice[0].transport",
     "missing"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"uucp\"\n", "postoffice[0].transport",
     "unknown transport \"uucp\""},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\n", "postoffice[0].path",
     "missing"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"\"\n",
     "postoffice[0].path", "must not be empty"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "address = \"h:1\"\n",
     "postoffice[0].address", "only for smtp and lmtp"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "create_mailboxes = \"yes\"\n",
     "postoffice[0].create_mailboxes", "expected a boolean"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"smtp\"\n", "postoffice[0].address",
     "missing"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"lmtp\"\naddress = \"h:1\"\n"
     "path = \"p\"\n",
     "postoffice[0].path", "only for maildir"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"smtp\"\naddress = \"h:1\"\n"
     "create_mailboxes = true\n",
     "postoffice[0].create_mailboxes", "only for maildir"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"smtp\"\naddress = \"h\"\n",
     "postoffice[0].address", "invalid address \"h\""},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "tls = \"may\"\n",
     "postoffice[0].tls", "only for smtp and lmtp"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"smtp\"\naddress = \"h:1\"\n"
     "tls = \"always\"\n",
     "postoffice[0].tls", "unknown TLS policy \"always\" (none, may or verify)"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"smtp\"\naddress = \"h:1\"\n"
     "tls = \"may\"\ntls_ca_file = \"ca.pem\"\n",
     "postoffice[0].tls_ca_file", "only with tls = \"verify\""},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"lmtp\"\naddress = \"h:1\"\n"
     "tls = \"verify\"\ntls_ca_file = \"/nonexistent/ca.pem\"\n",
     "postoffice[0].tls_ca_file", "cannot read \"/nonexistent/ca.pem\""},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "default = \"yes\"\n",
     "postoffice[0].default", "expected a boolean, got a string"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "probe_timeout = \"0s\"\n",
     "postoffice[0].probe_timeout", "must be longer than 0"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "[postoffice.retry]\nmax_open_retries = \"x\"\n",
     "postoffice[0].retry.max_open_retries", "expected an integer, got a string"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "[postoffice.retry]\nopen_interval = \"1y\"\n",
     "postoffice[0].retry.open_interval", "invalid duration \"1y\""},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "[postoffice.retry]\nretries = 3\n",
     "postoffice[0].retry.retries", "unknown key"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "retry = 3\n",
     "postoffice[0].retry", "expected a table, got an integer"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n"
     "colour = \"blue\"\n",
     "postoffice[0].colour", "unknown key"},
  };
  for (const auto& r : rules) {
    auto problems = postoffice_problems(r.body);
    INFO(all_of(problems));
    CHECK_MESSAGE(has_problem(problems, r.key, r.words), r.body);
  }
}

TEST_CASE("a bad domain entry is one problem, not also a missing list") {
  auto problems = postoffice_problems(
    "name = \"a\"\ndomains = [\"a.test\", 7]\ntransport = \"maildir\"\npath = \"p\"\n");
  CHECK(problems
        == std::vector<std::string>{"postoffice[0].domains[1]: expected a string, got an integer"});
}

TEST_CASE("a domain claimed twice is a problem of the second postoffice") {
  auto problems = problems_of(sales_postoffice + R"(
[[postoffice]]
name = "sales2"
domains = ["other.example.test", "SALES.example.test"]
transport = "maildir"
path = "p"
)");
  CHECK(problems
        == std::vector<std::string>{"postoffice[1].domains: domain \"sales.example.test\" is "
                                    "already routed to postoffice[0]"});
}

TEST_CASE("at most one default postoffice, only a default may have no domains") {
  auto cfg = loaded(sales_postoffice + R"(
[[postoffice]]
name = "catch-all"
default = true
transport = "smtp"
address = "127.0.0.1:25"
)");
  REQUIRE(cfg.postoffices.size() == 2);
  CHECK(cfg.postoffices[1].is_default);
  CHECK(cfg.postoffices[1].domains.empty());

  auto problems = problems_of(R"(
[[postoffice]]
name = "a"
default = true
transport = "smtp"
address = "127.0.0.1:25"
[[postoffice]]
name = "b"
default = true
transport = "smtp"
address = "127.0.0.1:26"
)");
  CHECK(problems
        == std::vector<std::string>{
          "postoffice[1].default: only one postoffice can be the default (also postoffice[0])"});
}

TEST_CASE("at least one [[postoffice]] is required") {
  const std::string required = "postoffice: at least one [[postoffice]] is required";
  CHECK(problems_of("[server]\n") == std::vector<std::string>{required});
  CHECK(problems_of("postoffice = []\n") == std::vector<std::string>{required});
  CHECK(has_problem(problems_of("[postoffice]\nname = \"a\"\n"), "postoffice",
                    "expected [[postoffice]] tables, got a table"));
}

TEST_CASE("a syntax error is one line with source, line and column") {
  auto problems = problems_of("[server]\nhostname = \"a\"\nlog_level = \n");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].rfind("test.toml:3:", 0) == 0);
}

TEST_CASE("an unreadable file is one problem naming it") {
  auto missing = load_config_file("/nonexistent/postconn.toml");
  CHECK_FALSE(missing.value);
  CHECK(missing.problems
        == std::vector<std::string>{
          "/nonexistent/postconn.toml: cannot read: No such file or directory"});
  auto directory = load_config_file(source_dir + "/conf");
  CHECK_FALSE(directory.value);
  CHECK(directory.problems
        == std::vector<std::string>{source_dir + "/conf: cannot read: Is a directory"});
}

TEST_CASE("transports are named as in the config") {
  CHECK(to_string(transport_kind::maildir) == "maildir");
  CHECK(to_string(transport_kind::smtp) == "smtp");
  CHECK(to_string(transport_kind::lmtp) == "lmtp");
}

TEST_CASE("a [postoffice.fault] table sets the injected fault of its postoffice") {
  auto result = parse_config(sales_postoffice + R"(
[postoffice.fault]
mode = "permfail"
probability = 0.5
seed = 42
recipients = ["Bob@Sales.Example.Test"]
)",
                             "test.toml");
  REQUIRE(result.value);
  const auto& fault = result.value->postoffices.at(0).fault;
  CHECK(fault.mode == fault_mode::permfail);
  CHECK(fault.probability == 0.5);
  CHECK(fault.seed == 42);
  CHECK(fault.recipients == std::vector<std::string>{"bob@sales.example.test"});
  auto flap = parse_config(sales_postoffice + R"(
[postoffice.fault]
mode = "flap"
up = "10m"
down = 300
)",
                           "test.toml");
  REQUIRE(flap.value);
  CHECK(flap.value->postoffices.at(0).fault.up == 600s);
  CHECK(flap.value->postoffices.at(0).fault.down == 300s);
  auto none = parse_config(sales_postoffice, "test.toml");
  REQUIRE(none.value);
  CHECK(none.value->postoffices.at(0).fault.mode == fault_mode::none);
}

TEST_CASE("every rule of [postoffice.fault] names its key") {
  auto fault_problems = [](const std::string& table) {
    return problems_of(sales_postoffice + "[postoffice.fault]\n" + table);
  };
  auto problems = fault_problems("mode = \"explode\"\n");
  CHECK(has_problem(problems, "postoffice[0].fault.mode",
                    "unknown fault \"explode\" (unreachable, hang, tempfail, permfail, "
                    "slow, flap, drop or none)"));
  CHECK(has_problem(fault_problems("probability = 1\n"), "postoffice[0].fault.mode",
                    "missing"));
  problems = fault_problems("mode = \"unreachable\"\nprobability = 1.5\n");
  CHECK(has_problem(problems, "postoffice[0].fault.probability",
                    "must be from 0 to 1, got 1.5"));
  problems = fault_problems("mode = \"unreachable\"\nprobability = \"half\"\n");
  CHECK(has_problem(problems, "postoffice[0].fault.probability", "expected a number"));
  problems = fault_problems("mode = \"tempfail\"\nrecipients = [\"bob@x.test\"]\n");
  CHECK(has_problem(problems, "postoffice[0].fault.recipients",
                    "only for mode = \"permfail\""));
  problems = fault_problems("mode = \"unreachable\"\nlatency = \"5s\"\n");
  CHECK(has_problem(problems, "postoffice[0].fault.latency", "only for mode = \"slow\""));
  CHECK(has_problem(fault_problems("mode = \"slow\"\n"), "postoffice[0].fault.latency",
                    "missing"));
  problems = fault_problems("mode = \"flap\"\nup = \"10m\"\n");
  CHECK(has_problem(problems, "postoffice[0].fault.down", "missing"));
  problems = fault_problems("mode = \"flap\"\nup = \"10m\"\ndown = \"0\"\n");
  CHECK(has_problem(problems, "postoffice[0].fault.down", "longer than 0"));
  problems = fault_problems("mode = \"drop\"\nseed = -1\n");
  CHECK(has_problem(problems, "postoffice[0].fault.seed", "at least 0"));
  problems = fault_problems("mode = \"drop\"\nwhen = \"now\"\n");
  CHECK(has_problem(problems, "postoffice[0].fault.when"));
}

TEST_CASE("admin.token_file is a path, not empty, and read_token_file trims the token") {
  auto result = parse_config("[admin]\ntoken_file = \"/etc/postconn/admin.token\"\n"
                               + sales_postoffice,
                             "test.toml");
  REQUIRE(result.value);
  CHECK(result.value->admin.token_file == "/etc/postconn/admin.token");
  CHECK(has_problem(problems_of("[admin]\ntoken_file = \"\"\n" + sales_postoffice),
                    "admin.token_file", "must not be empty"));
  auto missing = read_token_file("/nonexistent/admin.token");
  CHECK(missing.token.empty());
  CHECK(missing.problem == "/nonexistent/admin.token: cannot read: No such file or directory");
}

TEST_CASE("a TOML syntax error quoting a line break is still one problem on one line") {
  auto result = parse_config("h=t\n", "bad.toml");
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].find('\n') == std::string::npos);
  CHECK(result.problems[0].rfind("bad.toml:1:", 0) == 0);
}

TEST_CASE("STARTTLS needs both the certificate and the key") {
  auto only_certificate = parse_config("[smtp]\ntls_certificate = \"cert.pem\"\n", "tls.toml");
  CHECK(all_of(only_certificate.problems).find("smtp.tls_key: missing")
        != std::string::npos);
  auto empty_key = parse_config(
    "[smtp]\ntls_certificate = \"cert.pem\"\ntls_key = \"\"\n", "tls.toml");
  CHECK(all_of(empty_key.problems).find("smtp.tls_key: must not be empty")
        != std::string::npos);
  auto both = parse_config(
    "[smtp]\ntls_certificate = \"cert.pem\"\ntls_key = \"key.pem\"\n", "tls.toml");
  CHECK(all_of(both.problems).find("smtp.tls") == std::string::npos);
}

TEST_CASE("the queue high-water mark and the DATA deadline are positive") {
  auto result = parse_config("[smtp]\nqueue_high_water = 0\ndata_timeout = \"0s\"\n",
                             "limits.toml");
  auto text = all_of(result.problems);
  CHECK(text.find("smtp.queue_high_water:") != std::string::npos);
  CHECK(text.find("smtp.data_timeout:") != std::string::npos);
}

TEST_CASE("connection limits are at least 1") {
  auto result = parse_config("[smtp]\nmax_connections = 0\nmax_connections_per_client = -3\n",
                             "limits.toml");
  auto text = all_of(result.problems);
  CHECK(text.find("smtp.max_connections:") != std::string::npos);
  CHECK(text.find("smtp.max_connections_per_client:") != std::string::npos);
}

TEST_CASE("no [cluster] section: a single node") {
  auto cfg = loaded(sales_postoffice);
  CHECK_FALSE(cfg.cluster);
  CHECK(cfg.postoffices[0].owner.empty());
}

TEST_CASE("[cluster] reads the node, its listen address, seeds and intervals") {
  auto cfg = loaded(sales_postoffice + "owner = \"node-b\"\n" + R"(
[cluster]
node = "node-a"
listen = "127.0.0.1:4200"
seeds = ["127.0.0.1:4201", "10.0.0.3:4200"]
reconnect_interval = "2s"
peer_timeout = "6s"
)");
  REQUIRE(cfg.cluster);
  CHECK(cfg.cluster->node == "node-a");
  CHECK(cfg.cluster->listen == "127.0.0.1:4200");
  CHECK(cfg.cluster->seeds == std::vector<std::string>{"127.0.0.1:4201", "10.0.0.3:4200"});
  CHECK(cfg.cluster->reconnect_interval == 2s);
  CHECK(cfg.cluster->peer_timeout == 6s);
  CHECK(cfg.postoffices[0].owner == "node-b");
}

TEST_CASE("[cluster] problems name their keys") {
  auto problems = problems_of(sales_postoffice + R"(
[cluster]
node = "Node_A"
seeds = ["nowhere"]
peer_timeout = "0"
gossip = true
)");
  INFO(all_of(problems));
  CHECK(has_problem(problems, "cluster.node", "invalid node name \"Node_A\""));
  CHECK(has_problem(problems, "cluster.listen", "missing"));
  CHECK(has_problem(problems, "cluster.seeds[0]", "invalid address \"nowhere\""));
  CHECK(has_problem(problems, "cluster.peer_timeout", "longer than 0"));
  CHECK(has_problem(problems, "cluster.gossip"));
}

TEST_CASE("[cluster] etcd endpoints and lease_ttl") {
  auto cfg = loaded(sales_postoffice + R"(
[cluster]
node = "node-a"
listen = "127.0.0.1:4200"
etcd = ["127.0.0.1:2379", "http://etcd-2.example.test:2379", "[::1]:2379"]
lease_ttl = "4s"
)");
  REQUIRE(cfg.cluster);
  CHECK(cfg.cluster->etcd
        == std::vector<std::string>{"127.0.0.1:2379", "http://etcd-2.example.test:2379",
                                    "[::1]:2379"});
  CHECK(cfg.cluster->lease_ttl == 4s);
  CHECK(etcd_url(cfg.cluster->etcd[0]) == "http://127.0.0.1:2379");
  CHECK(etcd_url(cfg.cluster->etcd[1]) == "http://etcd-2.example.test:2379");
  auto without = loaded(sales_postoffice + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n");
  CHECK(without.cluster->etcd.empty());
  CHECK(without.cluster->lease_ttl == 10s);
}

TEST_CASE("[cluster] etcd and lease_ttl problems name their keys") {
  auto problems = problems_of(sales_postoffice + R"(
[cluster]
node = "a"
listen = "127.0.0.1:4200"
etcd = ["127.0.0.1:2379", "nowhere", "https://10.0.0.1:2379", "127.0.0.1:0",
        "http://127.0.0.1:2379"]
lease_ttl = "1s"
)");
  INFO(all_of(problems));
  CHECK(has_problem(problems, "cluster.etcd[1]", "invalid etcd endpoint \"nowhere\""));
  CHECK(has_problem(problems, "cluster.etcd[2]", "https is not supported"));
  CHECK(has_problem(problems, "cluster.etcd[3]", "invalid etcd endpoint"));
  CHECK(has_problem(problems, "cluster.etcd[4]", "is also etcd[0]"));
  CHECK(has_problem(problems, "cluster.lease_ttl", "must be at least 2s"));
  CHECK(problems.size() == 5);
  CHECK(has_problem(problems_of(sales_postoffice
                                + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n"
                                  "etcd = []\n"),
                    "cluster.etcd", "empty"));
  CHECK(has_problem(problems_of(sales_postoffice
                                + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n"
                                  "lease_tll = \"4s\"\n"),
                    "cluster.lease_tll", "did you mean \"lease_ttl\""));
}

namespace {

/// A [cluster] with etcd, which replicas = 2 needs, and `keys`.
std::string replicated_cluster(const std::string& keys) {
  return sales_postoffice + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n"
         + "etcd = [\"127.0.0.1:2379\"]\n" + keys;
}

} // namespace

TEST_CASE("[cluster] replication: one node holds the mail, adoption after 5m, refused without a replica, by default") {
  auto cfg = loaded(sales_postoffice + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n");
  REQUIRE(cfg.cluster);
  CHECK(cfg.cluster->replicas == 1);
  CHECK(cfg.cluster->adopt_after == 300s);
  CHECK_FALSE(cfg.cluster->accept_unreplicated);
  CHECK_FALSE(loaded(replicated_cluster("replicas = 2\n")).cluster->accept_unreplicated);
}

TEST_CASE("[cluster] reads replicas, adopt_after and without_replica") {
  auto cfg = loaded(replicated_cluster(
    "replicas = 2\nadopt_after = \"10m\"\nwithout_replica = \"accept\"\n"));
  REQUIRE(cfg.cluster);
  CHECK(cfg.cluster->replicas == 2);
  CHECK(cfg.cluster->adopt_after == 600s);
  CHECK(cfg.cluster->accept_unreplicated);
  CHECK(loaded(replicated_cluster("replicas = 1\n")).cluster->replicas == 1);
  CHECK_FALSE(loaded(replicated_cluster("replicas = 2\nwithout_replica = \"refuse\"\n"))
                .cluster->accept_unreplicated);
  // Exactly twice lease_ttl is enough; seconds as an integer too.
  CHECK(loaded(replicated_cluster("replicas = 2\nlease_ttl = \"30s\"\nadopt_after = 60\n"))
          .cluster->adopt_after
        == 60s);
}

TEST_CASE("[cluster] replicas is 1 or 2, and 2 needs etcd") {
  for (auto value : {"0", "3", "-1", "\"2\"", "2.0"}) {
    CAPTURE(value);
    auto problems = problems_of(replicated_cluster(std::string{"replicas = "} + value + "\n"));
    INFO(all_of(problems));
    CHECK(has_problem(problems, "cluster.replicas",
                      "must be 1 (the accepting node alone) or 2 (it and one other live node)"));
    CHECK(problems.size() == 1);
  }
  CHECK(problems_of(replicated_cluster("replicas = 3\n"))[0]
        == "cluster.replicas: must be 1 (the accepting node alone) or 2 (it and one other "
           "live node), got 3");
  auto problems = problems_of(sales_postoffice
                              + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n"
                                "seeds = [\"127.0.0.1:4201\"]\nreplicas = 2\n");
  INFO(all_of(problems));
  REQUIRE(problems.size() == 1);
  CHECK(has_problem(problems, "cluster.replicas", "2 needs cluster.etcd"));
}

TEST_CASE("[cluster] adopt_after is a duration of at least twice lease_ttl, and without_replica refuse or accept") {
  auto problems = problems_of(replicated_cluster("replicas = 2\nadopt_after = \"15s\"\n"));
  INFO(all_of(problems));
  CHECK(problems
        == std::vector<std::string>{
          "cluster.adopt_after: must be at least twice lease_ttl (20s), got 15s"});
  CHECK(has_problem(problems_of(replicated_cluster(
                      "replicas = 2\nlease_ttl = \"1m\"\nadopt_after = \"119s\"\n")),
                    "cluster.adopt_after", "at least twice lease_ttl (120s), got 119s"));
  // A lease_ttl longer than half the default adoption needs a longer one.
  CHECK(has_problem(problems_of(replicated_cluster("replicas = 2\nlease_ttl = \"3m\"\n")),
                    "cluster.adopt_after", "(360s), got 300s"));
  CHECK(has_problem(problems_of(replicated_cluster("adopt_after = \"0\"\n")),
                    "cluster.adopt_after", "longer than 0"));
  CHECK(has_problem(problems_of(replicated_cluster("adopt_after = \"soon\"\n")),
                    "cluster.adopt_after", "invalid duration \"soon\""));
  CHECK(has_problem(problems_of(replicated_cluster("without_replica = \"maybe\"\n")),
                    "cluster.without_replica", "unknown choice \"maybe\" (refuse or accept)"));
  CHECK(has_problem(problems_of(replicated_cluster("without_replica = true\n")),
                    "cluster.without_replica", "expected a string"));
  // With one replica nothing is adopted: a short adopt_after does no harm.
  CHECK(loaded(replicated_cluster("adopt_after = \"1s\"\n")).cluster->adopt_after == 1s);
}

TEST_CASE("a postoffice owner needs a [cluster] section and a valid node name") {
  CHECK(has_problem(problems_of(sales_postoffice + "owner = \"node-b\"\n"),
                    "postoffice[0].owner", "only with a [cluster] section"));
  CHECK(has_problem(problems_of(sales_postoffice + "owner = \"b c\"\n"
                                + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n"),
                    "postoffice[0].owner", "invalid node name"));
}

namespace {

/// One postoffice of `transport` (maildir, smtp or lmtp) named `name`,
/// with `retry` as its [postoffice.retry] body when not empty.
std::string postoffice_of(const std::string& name, const std::string& transport,
                          const std::string& retry = "") {
  auto text = "\n[[postoffice]]\nname = \"" + name + "\"\ndomains = [\"" + name
              + ".example.test\"]\ntransport = \"" + transport + "\"\n"
              + (transport == "maildir" ? "path = \"p\"\n" : "address = \"127.0.0.1:25\"\n");
  return retry.empty() ? text : text + "[postoffice.retry]\n" + retry;
}

} // namespace

TEST_CASE("retry defaults follow the transport: smtp and lmtp back off over hours, maildir keeps the seed's") {
  CHECK(default_retry(transport_kind::maildir) == retry_policy{});
  for (auto kind : {transport_kind::smtp, transport_kind::lmtp}) {
    auto policy = default_retry(kind);
    CHECK(policy.transfer_interval == 300s);        // Postfix minimal_backoff_time
    CHECK(policy.max_transfer_interval == 4000s);   // Postfix maximal_backoff_time
    CHECK(policy.max_transfer_retries == 120);
    // The rest is the seed's: open failures, the lifetime, the warning.
    auto rest = policy;
    rest.transfer_interval = retry_policy{}.transfer_interval;
    rest.max_transfer_interval = retry_policy{}.max_transfer_interval;
    rest.max_transfer_retries = retry_policy{}.max_transfer_retries;
    CHECK(rest == retry_policy{});
  }
  auto cfg = loaded(postoffice_of("share", "maildir") + postoffice_of("relay", "smtp")
                    + postoffice_of("store", "lmtp"));
  CHECK(cfg.retry == retry_policy{});
  CHECK(cfg.postoffices[0].retry == default_retry(transport_kind::maildir));
  CHECK(cfg.postoffices[1].retry == default_retry(transport_kind::smtp));
  CHECK(cfg.postoffices[2].retry == default_retry(transport_kind::lmtp));
}

TEST_CASE("retry keys set in the file win over the transport's defaults: [postoffice.retry], then [retry]") {
  auto cfg = loaded(R"(
[retry]
transfer_interval = "2m"
max_open_retries = 10
)" + postoffice_of("relay", "smtp")
                    + postoffice_of("quota", "smtp", "max_transfer_retries = 30\n")
                    + postoffice_of("own", "lmtp",
                                    "transfer_interval = \"1m\"\nmax_transfer_interval = \"0\"\n")
                    + postoffice_of("share", "maildir", "max_transfer_interval = \"10m\"\n"));
  const auto& relay = cfg.postoffices[0];
  CHECK(relay.retry.transfer_interval == 120s);      // [retry] set it
  CHECK(relay.retry.max_open_retries == 10);         // [retry] set it
  CHECK(relay.retry.max_transfer_interval == 4000s); // smtp's default
  CHECK(relay.retry.max_transfer_retries == 120);    // smtp's default
  const auto& quota = cfg.postoffices[1];
  CHECK(quota.retry.max_transfer_retries == 30);
  CHECK(quota.retry.transfer_interval == 120s);
  const auto& own = cfg.postoffices[2];
  CHECK(own.retry.transfer_interval == 60s);
  CHECK(own.retry.max_transfer_interval == 0s);
  CHECK(own.retry.max_transfer_retries == 120);
  const auto& share = cfg.postoffices[3];
  CHECK(share.retry.max_transfer_interval == 600s);
  CHECK(share.retry.transfer_interval == 120s);
  CHECK(share.retry.max_transfer_retries == 2);
  CHECK(share.retry.max_open_retries == 10);
  // [retry] itself is the seed's defaults with its keys: no transport's.
  CHECK(cfg.retry.transfer_interval == 120s);
  CHECK(cfg.retry.max_transfer_interval == 0s);
  CHECK(cfg.retry.max_transfer_retries == 2);
}

TEST_CASE("max_transfer_interval is a duration, 0 for fixed intervals") {
  CHECK(loaded("[retry]\nmax_transfer_interval = \"4000s\"\n" + sales_postoffice)
          .retry.max_transfer_interval
        == 4000s);
  CHECK(loaded("[retry]\nmax_transfer_interval = 0\n" + sales_postoffice)
          .retry.max_transfer_interval
        == 0s);
  auto problems = problems_of("[retry]\nmax_transfer_interval = \"an hour\"\n" + sales_postoffice);
  CHECK(has_problem(problems, "retry.max_transfer_interval", "invalid duration \"an hour\""));
}

TEST_CASE("an unknown key names the nearest known key of its table when it is close") {
  struct misspelt {
    const char* toml;
    const char* problem;
  };
  const misspelt cases[] = {
    {"[smtp]\nlistn = \"x\"\n", R"(smtp.listn: unknown key (did you mean "listen"?))"},
    {"[retry]\nmax_open_retry = 3\n",
     R"(retry.max_open_retry: unknown key (did you mean "max_open_retries"?))"},
    {"[retyr]\n", R"(retyr: unknown key (did you mean "retry"?))"},
    {"[server]\nHostname = \"a\"\n",
     R"(server.Hostname: unknown key (did you mean "hostname"?))"},
    {"[retry]\ndelay_warn = \"4h\"\n",
     R"(retry.delay_warn: unknown key (did you mean "delay_warning"?))"},
    // Far from every key of its table: no guess.
    {"[server]\nname = \"x\"\n", "server.name: unknown key"},
    {"[admin]\ntoken = \"x\"\n", "admin.token: unknown key"},
  };
  for (const auto& c : cases) {
    auto problems = problems_of(c.toml + sales_postoffice);
    INFO(all_of(problems));
    CHECK_MESSAGE(std::find(problems.begin(), problems.end(), c.problem) != problems.end(),
                  c.toml);
  }
  // In a [[postoffice]], and with two letters swapped.
  auto problems = postoffice_problems(
    "name = \"a\"\ndomains = [\"a.test\"]\ntransprot = \"maildir\"\ntransport = \"maildir\"\n"
    "path = \"p\"\n");
  CHECK(problems
        == std::vector<std::string>{
          R"(postoffice[0].transprot: unknown key (did you mean "transport"?))"});
}
