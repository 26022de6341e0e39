// Tests runtime/config.cpp: durations, listen addresses, the example config,
// [postoffice.retry] overrides, and one clear problem per bad key.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "runtime/config.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

const std::string minimal_postoffice = R"(
[[postoffice]]
name = "sales"
domains = ["sales.example.test"]
transport = "maildir"
path = "var/postoffices/sales"
)";

/// The problems of a config, which must not load.
std::vector<std::string> problems_of(const std::string& text) {
  auto result = parse_config(text, "test.toml");
  CHECK_FALSE(result.value);
  return result.problems;
}

/// True when some problem starts with `key` + ": " and mentions `words`.
bool has_problem(const std::vector<std::string>& problems, const std::string& key,
                 const std::string& words = "") {
  return std::any_of(problems.begin(), problems.end(), [&](const std::string& p) {
    return p.rfind(key + ": ", 0) == 0 && p.find(words) != std::string::npos;
  });
}

std::string first_problem(const config_result& result) {
  return result.problems.empty() ? std::string{} : result.problems.front();
}

} // namespace

TEST_CASE("durations take s, m, h and d units or plain seconds") {
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("10m") == 600s);
  CHECK(parse_duration("24h") == 86400s);
  CHECK(parse_duration("5d") == 432000s);
  CHECK(parse_duration("0") == 0s);
  CHECK(parse_duration("600") == 600s);
  for (auto bad : {"", "s", "-5s", "1.5h", "10x", "10 m", "10mm", "1e3", " 5s",
                   "9999999999999d"})
    CHECK_MESSAGE(!parse_duration(bad), bad);
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
  for (auto bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":25", "::1:25",
                   "[::1]25", "host:2x5", ""})
    CHECK_MESSAGE(!parse_listen_address(bad), bad);
}

TEST_CASE("the example config loads with the values written in it") {
  auto result = load_config_file(std::string{POSTCONN_SOURCE_DIR} + "/conf/postconn.toml");
  INFO(first_problem(result));
  REQUIRE(result.value);
  const auto& cfg = *result.value;
  CHECK(cfg.server.hostname == "connector.example.test");
  CHECK(cfg.server.data_dir == "var");
  CHECK(cfg.smtp.listen == "127.0.0.1:2525");
  CHECK(cfg.smtp.max_message_size == 35882577);
  CHECK(cfg.smtp.idle_timeout == 300s);
  CHECK(cfg.retry.max_open_retries == 144);
  CHECK(cfg.retry.open_interval == 600s);
  CHECK(cfg.retry.max_lifetime == 5 * 24h);
  CHECK(cfg.retry.delay_warning == 0s);
  REQUIRE(cfg.postoffices.size() == 2);
  CHECK(cfg.postoffices[0].name == "sales");
  CHECK(cfg.postoffices[0].transport == transport_kind::maildir);
  CHECK(cfg.postoffices[0].path == "var/postoffices/sales");
  CHECK(cfg.postoffices[0].retry.max_open_retries == 144);
  CHECK(cfg.postoffices[1].create_mailboxes);
  CHECK(cfg.postoffices[1].retry.max_open_retries == 48);
  CHECK(cfg.postoffices[1].retry.open_interval == 300s);
}

TEST_CASE("postoffice retry overrides apply key by key over [retry], wherever it stands") {
  auto result = parse_config(R"(
[[postoffice]]
name = "flaky"
domains = ["Flaky.Example.TEST"]
transport = "smtp"
address = "127.0.0.1:2400"
probe_timeout = 30
[postoffice.retry]
max_transfer_retries = 7

[retry]
transfer_interval = "1m"
max_transfer_retries = 3
enforce_retry_limits = false
)", "test.toml");
  INFO(first_problem(result));
  REQUIRE(result.value);
  const auto& po = result.value->postoffices.at(0);
  CHECK(po.transport == transport_kind::smtp);
  CHECK(po.address == "127.0.0.1:2400");
  CHECK(po.domains == std::vector<std::string>{"flaky.example.test"});
  CHECK(po.probe_timeout == 30s);
  CHECK(po.retry.max_transfer_retries == 7);
  CHECK(po.retry.transfer_interval == 60s);
  CHECK_FALSE(po.retry.enforce_retry_limits);
  CHECK(po.retry.max_open_retries == 144);
  CHECK(result.value->retry.max_transfer_retries == 3);
}

TEST_CASE("a bad duration, a duplicate name and an unknown key are all reported") {
  auto problems = problems_of(R"(
[retry]
open_interval = "10 minutes"
)" + minimal_postoffice + minimal_postoffice + R"(
colour = "blue"
)");
  CHECK(problems.size() == 4); // the duplicate also claims the domain again
  CHECK(has_problem(problems, "retry.open_interval", "invalid duration \"10 minutes\""));
  CHECK(has_problem(problems, "postoffice[1].name", "duplicate name \"sales\" (also postoffice[0])"));
  CHECK(has_problem(problems, "postoffice[1].colour", "unknown key"));
  CHECK(has_problem(problems, "postoffice[1].domains", "already routed to postoffice[0]"));
}

TEST_CASE("every rule names its key") {
  struct rule {
    const char* toml;
    const char* key;
    const char* words;
  };
  const rule rules[] = {
    {"[server]\nhostname = \"bad host\"\n", "server.hostname", "invalid host name"},
    {"[server]\ndata_dir = \"\"\n", "server.data_dir", "must not be empty"},
    {"[server]\nlog_level = \"loud\"\n", "server.log_level", "unknown level"},
    {"[smtp]\nlisten = \"localhost\"\n", "smtp.listen", "invalid address"},
    {"[smtp]\nmax_message_size = 0\n", "smtp.max_message_size", "between 1 and"},
    {"[smtp]\nmax_recipients = \"many\"\n", "smtp.max_recipients", "expected an integer, got a string"},
    {"[smtp]\nrelay_networks = [\"10.0.0.0/33\"]\n", "smtp.relay_networks[0]", ""},
    {"[smtp]\nrelay_networks = [7]\n", "smtp.relay_networks[0]", "expected a string"},
    {"[smtp]\nidle_timeout = \"0\"\n", "smtp.idle_timeout", "longer than 0"},
    {"[smtp]\nlistn = \"x\"\n", "smtp.listn", "unknown key"},
    {"[retry]\nmax_open_retries = -1\n", "retry.max_open_retries", "between 0 and"},
    {"[retry]\nopen_interval = 0\n", "retry.open_interval", "longer than 0"},
    {"[retry]\nmax_lifetime = -3\n", "retry.max_lifetime", "negative"},
    {"[retry]\nenforce_retry_limits = 1\n", "retry.enforce_retry_limits", "expected a boolean"},
    {"[retry]\ndelay_warning = 1.5\n", "retry.delay_warning", "expected a duration"},
    {"[admin]\nlisten = \"127.0.0.1:99999\"\n", "admin.listen", "invalid address"},
    {"[admin]\ntoken = \"x\"\n", "admin.token", "unknown key"},
    {"server = 5\n", "server", "expected a table"},
    {"[queue]\n", "queue", "unknown key"},
  };
  for (const auto& r : rules) {
    auto problems = problems_of(r.toml + minimal_postoffice);
    CHECK_MESSAGE(has_problem(problems, r.key, r.words), r.toml);
  }
}

TEST_CASE("postoffice rules name their key") {
  struct rule {
    const char* body;
    const char* key;
    const char* words;
  };
  const rule rules[] = {
    {"domains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n", "postoffice[0].name", "missing"},
    {"name = \"Sales!\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n", "postoffice[0].name", "invalid name"},
    {"name = \"a\"\ntransport = \"maildir\"\npath = \"p\"\n", "postoffice[0].domains", "missing or empty"},
    {"name = \"a\"\ndomains = [\"bad domain\"]\ntransport = \"maildir\"\npath = \"p\"\n", "postoffice[0].domains[0]", "invalid domain"},
    {"name = \"a\"\ndomains = [\"a.test\"]\npath = \"p\"\n", "postoffice[0].transport", "missing"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"uucp\"\n", "postoffice[0].transport", "unknown transport"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\n", "postoffice[0].path", "missing"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\naddress = \"h:1\"\n", "postoffice[0].address", "only for smtp"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"smtp\"\n", "postoffice[0].address", "missing"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"lmtp\"\naddress = \"h:1\"\npath = \"p\"\n", "postoffice[0].path", "only for maildir"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"smtp\"\naddress = \"h\"\n", "postoffice[0].address", "invalid address"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\nprobe_timeout = \"0s\"\n", "postoffice[0].probe_timeout", "longer than 0"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n[postoffice.retry]\nmax_open_retries = \"x\"\n", "postoffice[0].retry.max_open_retries", "expected an integer"},
    {"name = \"a\"\ndomains = [\"a.test\"]\ntransport = \"maildir\"\npath = \"p\"\n[postoffice.retry]\nretries = 3\n", "postoffice[0].retry.retries", "unknown key"},
  };
  for (const auto& r : rules) {
    auto problems = problems_of(std::string{"[[postoffice]]\n"} + r.body);
    CHECK_MESSAGE(has_problem(problems, r.key, r.words), r.body);
  }
}

TEST_CASE("at most one default postoffice, and at least one postoffice") {
  auto two_defaults = problems_of(R"(
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
  CHECK(has_problem(two_defaults, "postoffice[1].default", "only one"));
  CHECK(has_problem(problems_of("[server]\n"), "postoffice", "at least one"));
}

TEST_CASE("a syntax error is one line with file, line and column") {
  auto problems = problems_of("[server\nhostname = 1\n");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].rfind("test.toml:1:", 0) == 0);
}

TEST_CASE("an unreadable file is one problem naming it") {
  auto result = load_config_file("/nonexistent/postconn.toml");
  CHECK_FALSE(result.value);
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].find("/nonexistent/postconn.toml: cannot read") == 0);
}
