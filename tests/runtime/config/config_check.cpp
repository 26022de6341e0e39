// Tests runtime/config/config_check.cpp: the line of each problem (the key's,
// the table's for a missing key, none for a missing section, line and column
// for a syntax error), warnings for maildir paths the server will probe as
// down, and the lines check-config prints.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "runtime/config/config_check.hpp"
#include "tests/runtime/config/config_loading.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;

namespace {

/// "LINE: text" for each finding, to compare in one CHECK.
std::vector<std::string> numbered(const std::vector<config_finding>& findings) {
  std::vector<std::string> lines;
  for (const auto& f : findings)
    lines.push_back(std::to_string(f.line) + ": " + f.text);
  return lines;
}

/// A maildir postoffice `name` at `path`.
std::string maildir_at(const std::string& name, const std::filesystem::path& path) {
  return "[[postoffice]]\nname = \"" + name + "\"\ndomains = [\"" + name
         + ".example.test\"]\ntransport = \"maildir\"\npath = \"" + path.string() + "\"\n";
}

} // namespace

TEST_CASE("each problem has the line of its key, or of the table that lacks it") {
  const std::string text = R"([smtp]
listn = "127.0.0.1:25"

[retry]
max_open_retries = -1

[[postoffice]]
name = "sales"
domains = ["sales.example.test"]
transport = "maildir"
path = "p"

[[postoffice]]
name = "sales"
domains = ["bad domain"]
transport = "maildir"

  [postoffice.retry]
  open_interval = "soon"
)";
  auto checked = check_config(text, "test.toml");
  CHECK_FALSE(checked.value);
  CHECK(numbered(checked.problems)
        == std::vector<std::string>{
          R"(2: smtp.listn: unknown key (did you mean "listen"?))",
          "5: retry.max_open_retries: must be at least 0, got -1",
          R"(15: postoffice[1].domains[0]: invalid domain "bad domain")",
          "13: postoffice[1].path: missing (the root directory of a maildir postoffice)",
          R"(19: postoffice[1].retry.open_interval: invalid duration "soon" (use a number with s, m, h or d, e.g. "600s"))",
          R"(14: postoffice[1].name: duplicate name "sales" (also postoffice[0]))",
        });
}

TEST_CASE("a problem no line stands for has none, a syntax error has line and column") {
  auto none = check_config("[server]\nhostname = \"mx.example.test\"\n", "test.toml");
  REQUIRE(none.problems.size() == 1);
  CHECK(none.problems[0].line == 0);
  CHECK(none.problems[0].text == "postoffice: at least one [[postoffice]] is required");
  CHECK(finding_line("test.toml", none.problems[0], false)
        == "test.toml: postoffice: at least one [[postoffice]] is required");

  auto syntax = check_config("[server]\nhostname = \"mx\n", "test.toml");
  REQUIRE(syntax.problems.size() == 1);
  CHECK(syntax.problems[0].line == 2);
  CHECK(syntax.problems[0].column > 0);
  auto printed = finding_line("conf.toml", syntax.problems[0], false);
  CHECK(printed.rfind("conf.toml:2:" + std::to_string(syntax.problems[0].column) + ": ", 0)
        == 0);
  // The file is named once, by check-config, not again by the parser.
  CHECK(printed.find("test.toml") == std::string::npos);
}

TEST_CASE("an unreadable file is one problem without a line") {
  auto checked = check_config_file("/nonexistent/postconn.toml");
  CHECK_FALSE(checked.value);
  REQUIRE(checked.problems.size() == 1);
  CHECK(finding_line("/nonexistent/postconn.toml", checked.problems[0], false)
        == "/nonexistent/postconn.toml: cannot read: No such file or directory");
}

TEST_CASE("a maildir path that is missing, no folder or has no marker is a warning, not a problem") {
  test::temp_dir dir;
  auto ready = dir / "ready";
  std::filesystem::create_directories(ready);
  std::ofstream{ready / ".postoffice"};
  auto unmounted = dir / "unmounted";
  std::filesystem::create_directories(unmounted);
  auto file = dir / "file";
  std::ofstream{file};
  auto text = maildir_at("ready", ready) + maildir_at("gone", dir / "gone")
              + maildir_at("unmounted", unmounted) + maildir_at("file", file)
              + "[[postoffice]]\nname = \"relay\"\ndomains = [\"relay.example.test\"]\n"
                "transport = \"smtp\"\naddress = \"127.0.0.1:25\"\n";
  auto checked = check_config(text, "test.toml");
  CHECK(checked.problems.empty());
  REQUIRE(checked.value);
  auto quoted = [](const std::filesystem::path& p) { return "\"" + p.string() + "\""; };
  CHECK(numbered(checked.warnings)
        == std::vector<std::string>{
          "10: postoffice[1].path: " + quoted(dir / "gone")
            + " does not exist; the server probes postoffice \"gone\" as down",
          "15: postoffice[2].path: " + quoted(unmounted)
            + " holds no .postoffice marker (a share not mounted?); the server probes "
              "postoffice \"unmounted\" as down",
          "20: postoffice[3].path: " + quoted(file)
            + " is not a folder; the server probes postoffice \"file\" as down",
        });
  CHECK(finding_line("test.toml", checked.warnings[0], true)
        == "test.toml:10: warning: " + checked.warnings[0].text);
  // Once the share is mounted (its marker there), the warning goes.
  std::ofstream{unmounted / ".postoffice"};
  CHECK(config_warnings(*checked.value).size() == 2);
}

TEST_CASE("a config with problems has no warnings: they are about a config that loads") {
  auto checked
    = check_config(maildir_at("gone", "/nonexistent/share") + "colour = \"blue\"\n", "t.toml");
  CHECK(checked.problems.size() == 1);
  CHECK(checked.warnings.empty());
  CHECK(config_warnings(test::loaded(maildir_at("gone", "/nonexistent/share"))).size() == 1);
}

TEST_CASE("cluster.seeds with cluster.etcd, and lease_ttl without it, are warnings with their lines") {
  auto base = maildir_at("sales", "/nonexistent/share");
  auto with_etcd = check_config(base + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n"
                                       "seeds = [\"127.0.0.1:4201\"]\n"
                                       "etcd = [\"127.0.0.1:2379\"]\n",
                                "t.toml");
  CHECK(with_etcd.problems.empty());
  REQUIRE(!with_etcd.warnings.empty());
  CHECK(numbered(with_etcd.warnings)[0]
        == "9: cluster.seeds: not used with cluster.etcd (the members and their addresses "
           "come from etcd)");
  auto without = check_config(base + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n"
                                     "lease_ttl = \"4s\"\n",
                              "t.toml");
  REQUIRE(!without.warnings.empty());
  CHECK(numbered(without.warnings)[0]
        == "9: cluster.lease_ttl: has no effect without cluster.etcd");
}

TEST_CASE("check-config: the replication keys' problems have their lines, and adopt_after and without_replica warn with one replica") {
  auto base = maildir_at("sales", "/nonexistent/share")
              + "[cluster]\nnode = \"a\"\nlisten = \"127.0.0.1:4200\"\n";
  auto unquorate = check_config(base + "replicas = 2\nadopt_after = \"15s\"\n", "t.toml");
  CHECK(numbered(unquorate.problems)
        == std::vector<std::string>{
          "9: cluster.replicas: 2 needs cluster.etcd (only etcd's quorum can tell a node gone "
          "from one cut off; else both sides of a partition would adopt)",
          "10: cluster.adopt_after: must be at least twice lease_ttl (20s), got 15s"});
  auto alone = check_config(base + "adopt_after = \"10m\"\nwithout_replica = \"accept\"\n",
                            "t.toml");
  CHECK(alone.problems.empty());
  auto warnings = numbered(alone.warnings);
  warnings.pop_back(); // the share's path
  CHECK(warnings
        == std::vector<std::string>{
          "9: cluster.adopt_after: has no effect with replicas = 1 (no node holds replicas "
          "to adopt)",
          "10: cluster.without_replica: has no effect with replicas = 1 (mail is never "
          "replicated)"});
  auto replicated = check_config(base + "etcd = [\"127.0.0.1:2379\"]\nreplicas = 2\n"
                                        "adopt_after = \"10m\"\nwithout_replica = \"accept\"\n",
                                 "t.toml");
  CHECK(replicated.problems.empty());
  CHECK(replicated.warnings.size() == 1); // the share's path alone
}
