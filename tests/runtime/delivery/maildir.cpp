// Tests runtime/delivery/maildir.cpp: probe, delivery, exactly-once repeats, hostile paths.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "runtime/delivery/maildir.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& file, const std::string& text) {
  std::ofstream out{file, std::ios::binary};
  out << text;
}

std::string read_file(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

int mode_of(const fs::path& path) {
  return static_cast<int>(fs::status(path).permissions() & fs::perms::all);
}

/// A postoffice root with its marker: <dir>/po.
fs::path make_postoffice(const test::temp_dir& dir) {
  auto root = dir / "po";
  fs::create_directory(root);
  write_file(root / ".postoffice", "");
  return root;
}

void make_mailbox(const fs::path& folder) {
  for (const char* sub : {"tmp", "new", "cur"})
    fs::create_directories(folder / sub);
}

/// Every path below `top`, relative to it, symbolic links not followed.
std::set<std::string> tree(const fs::path& top) {
  std::set<std::string> paths;
  for (const auto& entry : fs::recursive_directory_iterator{top})
    paths.insert(fs::relative(entry.path(), top).string());
  return paths;
}

/// File names in a folder.
std::set<std::string> names_in(const fs::path& folder) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator{folder})
    names.insert(entry.path().filename().string());
  return names;
}

maildir_message message_to(const std::string& recipient, const std::string& key) {
  return {key, "alice@example.test", recipient, "Received: by mx.example.test\r\n",
          "Subject: hi\r\n\r\nbody\r\n"};
}

/// The problem probe_maildir() reports without root's power to write
/// anywhere: as root it runs in a child process that has become nobody.
std::string probe_unprivileged(const fs::path& root) {
  if (::geteuid() != 0)
    return probe_maildir(root).problem;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    std::string problem = ::setgid(65534) == 0 && ::setuid(65534) == 0
                            ? probe_maildir(root).problem
                            : "cannot become nobody";
    auto written = ::write(fds[1], problem.data(), problem.size());
    ::_exit(written < 0 ? 1 : 0);
  }
  ::close(fds[1]);
  std::string problem;
  char buffer[256];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;)
    problem.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  return problem;
}

} // namespace

TEST_CASE("a postoffice with its marker is reachable and the probe leaves no file") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  auto result = probe_maildir(root);
  CHECK(result.reachable);
  CHECK(result.problem == "");
  CHECK(names_in(root) == std::set<std::string>{".postoffice"});
}

TEST_CASE("the probe names each reason a postoffice is unreachable") {
  test::temp_dir dir;
  SUBCASE("root missing") {
    auto result = probe_maildir(dir / "absent");
    CHECK_FALSE(result.reachable);
    CHECK(result.problem == "root missing");
  }
  SUBCASE("root is a file") {
    write_file(dir / "file", "");
    auto result = probe_maildir(dir / "file");
    CHECK_FALSE(result.reachable);
    CHECK(result.problem == "root is not a directory");
  }
  SUBCASE("marker missing: an empty mount point") {
    fs::create_directory(dir / "mnt");
    auto result = probe_maildir(dir / "mnt");
    CHECK_FALSE(result.reachable);
    CHECK(result.problem == "marker .postoffice missing (share not mounted?)");
  }
  SUBCASE("not writable") {
    auto root = make_postoffice(dir);
    fs::permissions(dir.path(), fs::perms(0755));
    fs::permissions(root, fs::perms(0555));
    CHECK(probe_unprivileged(root) == "not writable: Permission denied");
    CHECK(probe_maildir(root).reachable == (::geteuid() == 0));
    fs::permissions(root, fs::perms(0755));
  }
}

TEST_CASE("a delivery lands in new/ with Return-Path, Received and LF endings") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  maildir_message msg{"0005f3a2b1c4d5e6.7", "alice@example.test", "Bob@Example.TEST",
                      "Received: by mx.example.test\r\n\tfor <Bob@Example.TEST>\r\n",
                      "Subject: hi\r\nX-Bare: a\rb\r\n\r\nline 1\r\nline 2"};
  auto result = deliver_to_maildir(root, false, msg);
  CHECK(result.kind == maildir_result_kind::delivered);
  CHECK(result.status == "2.0.0");
  CHECK(result.text == "delivered to bob/new/0005f3a2b1c4d5e6.7.postconn");
  CHECK(maildir_file_name(msg.delivery_key) == "0005f3a2b1c4d5e6.7.postconn");
  CHECK(names_in(root / "bob" / "new")
        == std::set<std::string>{"0005f3a2b1c4d5e6.7.postconn"});
  CHECK(names_in(root / "bob" / "tmp").empty());
  CHECK(read_file(root / "bob" / "new" / "0005f3a2b1c4d5e6.7.postconn")
        == "Return-Path: <alice@example.test>\n"
           "Received: by mx.example.test\n\tfor <Bob@Example.TEST>\n"
           "Subject: hi\nX-Bare: a\rb\n\nline 1\nline 2");
  CHECK(mode_of(root / "bob" / "new" / "0005f3a2b1c4d5e6.7.postconn") == 0600);
}

TEST_CASE("the null sender becomes Return-Path: <>, no Received: is fine") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  maildir_message msg{"k1", "", "bob@example.test", "", "Subject: bounce\r\n\r\nx\r\n"};
  REQUIRE(deliver_to_maildir(root, false, msg).kind == maildir_result_kind::delivered);
  CHECK(read_file(root / "bob" / "new" / "k1.postconn")
        == "Return-Path: <>\nSubject: bounce\n\nx\n");
}

TEST_CASE("a repeated delivery finds the first one and writes nothing") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  auto first = message_to("bob@example.test", "q1.1");
  REQUIRE(deliver_to_maildir(root, false, first).kind == maildir_result_kind::delivered);
  auto again = first;
  again.content = "Subject: changed\r\n\r\n";
  auto result = deliver_to_maildir(root, false, again);
  CHECK(result.kind == maildir_result_kind::delivered);
  CHECK(result.text == "already delivered to bob/new/q1.1.postconn");
  CHECK(names_in(root / "bob" / "new") == std::set<std::string>{"q1.1.postconn"});
  CHECK(names_in(root / "bob" / "tmp").empty());
  CHECK(read_file(root / "bob" / "new" / "q1.1.postconn").find("Subject: hi")
        != std::string::npos);
}

TEST_CASE("a leftover tmp/ file of a crashed attempt is replaced, not appended to") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  write_file(root / "bob" / "tmp" / "q1.1.postconn",
             "partial garbage, much longer than the message itself ..........");
  auto msg = message_to("bob@example.test", "q1.1");
  REQUIRE(deliver_to_maildir(root, false, msg).kind == maildir_result_kind::delivered);
  CHECK(read_file(root / "bob" / "new" / "q1.1.postconn")
        == "Return-Path: <alice@example.test>\nReceived: by mx.example.test\n"
           "Subject: hi\n\nbody\n");
  CHECK(names_in(root / "bob" / "tmp").empty());
}

TEST_CASE("a message a mail client moved on to cur/ counts as delivered") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  auto msg = message_to("bob@example.test", "q1.1");
  REQUIRE(deliver_to_maildir(root, false, msg).kind == maildir_result_kind::delivered);
  auto delivered_file = root / "bob" / "new" / "q1.1.postconn";
  std::string moved_name;
  SUBCASE("with flags") {
    moved_name = "q1.1.postconn:2,S";
  }
  SUBCASE("without flags") {
    moved_name = "q1.1.postconn";
  }
  SUBCASE("with Dovecot's size") {
    moved_name = "q1.1.postconn,S=123:2,RS";
  }
  fs::rename(delivered_file, root / "bob" / "cur" / moved_name);
  auto result = deliver_to_maildir(root, false, msg);
  CHECK(result.kind == maildir_result_kind::delivered);
  CHECK(result.text == "already delivered to bob/cur/q1.1.postconn (read)");
  CHECK(names_in(root / "bob" / "new").empty());
  CHECK(names_in(root / "bob" / "cur") == std::set<std::string>{moved_name});
}

TEST_CASE("a message in cur/ whose name merely starts alike is another message") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  write_file(root / "bob" / "cur" / "q1.1.postconnx:2,S", "other");
  write_file(root / "bob" / "cur" / "q1.1.postcon:2,S", "other");
  auto result = deliver_to_maildir(root, false, message_to("bob@example.test", "q1.1"));
  CHECK(result.text == "delivered to bob/new/q1.1.postconn");
  CHECK(names_in(root / "bob" / "new") == std::set<std::string>{"q1.1.postconn"});
}

TEST_CASE("an unknown mailbox fails permanently with 5.1.1") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  auto result = deliver_to_maildir(root, false, message_to("nobody@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::permanent_failure);
  CHECK(result.status == "5.1.1");
  CHECK(result.text == "mailbox nobody does not exist");
  CHECK(names_in(root) == std::set<std::string>{".postoffice"});
}

TEST_CASE("create_mailboxes makes tmp/ new/ cur/ and completes a half-made mailbox") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  SUBCASE("missing mailbox") {
  }
  SUBCASE("creation cut short after the mailbox folder") {
    fs::create_directory(root / "carol");
  }
  SUBCASE("creation cut short after tmp/") {
    fs::create_directories(root / "carol" / "tmp");
  }
  auto result = deliver_to_maildir(root, true, message_to("Carol@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::delivered);
  CHECK(names_in(root / "carol") == std::set<std::string>{"cur", "new", "tmp"});
  CHECK(names_in(root / "carol" / "new") == std::set<std::string>{"k.postconn"});
  CHECK(mode_of(root / "carol" / "new") == 0700);
}

TEST_CASE("a mailbox without tmp/ or new/ fails temporarily") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  std::string missing;
  SUBCASE("no tmp/") {
    missing = "tmp";
  }
  SUBCASE("no new/") {
    missing = "new";
  }
  for (const char* sub : {"tmp", "new", "cur"})
    if (sub != missing)
      fs::create_directories(root / "bob" / sub);
  auto result = deliver_to_maildir(root, false, message_to("bob@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::temporary_failure);
  CHECK(result.status == "4.2.0");
  CHECK(result.text
        == "mailbox bob: " + missing + "/ is missing (being set up or damaged)");
  CHECK(tree(root / "bob").size() == 2);
}

TEST_CASE("a mailbox without cur/ still takes mail") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  fs::create_directories(root / "bob" / "tmp");
  fs::create_directories(root / "bob" / "new");
  auto result = deliver_to_maildir(root, false, message_to("bob@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::delivered);
}

TEST_CASE("a mailbox that is a file fails temporarily") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  write_file(root / "bob", "");
  auto result = deliver_to_maildir(root, true, message_to("bob@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::temporary_failure);
  CHECK(result.status == "4.2.0");
  CHECK(result.text == "mailbox bob is not a directory (damaged)");
}

TEST_CASE("an unreachable postoffice defers instead of bouncing or creating") {
  test::temp_dir dir;
  fs::create_directory(dir / "mnt");
  for (bool create : {false, true}) {
    auto result
      = deliver_to_maildir(dir / "mnt", create, message_to("bob@example.test", "k"));
    CHECK(result.kind == maildir_result_kind::temporary_failure);
    CHECK(result.status == "4.3.0");
    CHECK(result.text
          == "postoffice unreachable: marker .postoffice missing (share not mounted?)");
  }
  CHECK(tree(dir.path()) == std::set<std::string>{"mnt"});
}

TEST_CASE("hostile recipients cannot write outside their own mailbox") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  fs::create_directory(dir / "outside");
  struct row {
    std::string recipient;
    std::string mailbox; // "" when refused with 5.1.3
  };
  const std::vector<row> rows = {
    {"../outside@example.test", ""},
    {"..@example.test", ""},
    {".@example.test", ""},
    {"a/../../outside@example.test", ""},
    {"a/b@example.test", ""},
    {(dir / "outside" / "abs").string() + "@example.test", ""},
    {"%2e%2e%2foutside@example.test", ""},
    {"%2e%2e@example.test", ""},
    {"\"../../outside\"@example.test", ""},
    {"\"a/b\"@example.test", ""},
    {"..\\..\\outside@example.test", ""},
    {"~root@example.test", ""},
    {"*@example.test", ""},
    {".postoffice@example.test", ""},
    {std::string("bob\0/../../outside@example.test", 31), ""},
    {std::string("bob\0@example.test", 17), ""},
    {"bob\r\n@example.test", ""},
    {"j\xc3\xb6rg@example.test", ""},
    {"\xef\xbc\x8e\xef\xbc\x8e\xef\xbc\x8foutside@example.test", ""},
    {"\xc0\xae\xc0\xae@example.test", ""},
    {std::string(65, 'a') + "@example.test", ""},
    {std::string(5000, 'a') + "@example.test", ""},
    {"", ""},
    {"@example.test", ""},
    {"example.test", ""},
    {"outside", ""},
    {"a@b@example.test", ""},
    {"a..b@example.test", ""},
    {"...@example.test", ""},
    {".bob@example.test", ""},
    {"%2E%2E%2F%2E%2E%2Foutside@example.test", ""},
    {"%252e%252e@example.test", ""},
    {"..%c0%af..%c0%afoutside@example.test", ""},
    {"=2E=2E@example.test", ""},
    {"&#46;&#46;@example.test", ""},
    {"\"..\"@example.test", ""},
    {"\"\\.\\.\"@example.test", ""},
    {"\"/etc/passwd\"@example.test", ""},
    {"\"bob\\/..\"@example.test", ""},
    {"bob\\..\\..@example.test", ""},
    {"bob\t@example.test", ""},
    {"bob outside@example.test", ""},
    {"\xef\xbc\x8e\xef\xbc\x8e@example.test", ""},       // fullwidth ..
    {"\xe2\x80\xa4\xe2\x80\xa4@example.test", ""},       // one dot leaders
    {"a\xe2\x88\x95" "b@example.test", ""},            // division slash
    {"a\xef\xbc\x8f" "b@example.test", ""},            // fullwidth solidus
    {"a\xc0\xaf" "b@example.test", ""},                 // overlong '/'
    {"\xe0\x80\xae\xe0\x80\xae@example.test", ""},       // overlong '.', 3 bytes
    {"\xf0\x80\x80\xae\xf0\x80\x80\xae@example.test", ""}, // overlong '.', 4 bytes
    {"bob\xe2\x80\xae@example.test", ""},              // right-to-left override
    {"b\xcc\x8aob@example.test", ""},                   // combining ring
    {"\xc4\xb1@example.test", ""},                      // dotless i
    {"\xe2\x84\xaa@example.test", ""},                 // Kelvin sign (lower-cases to k)
    {std::string(64, 'a') + "\xc3\xa9@example.test", ""},
    {std::string(1 << 16, '.') + "@example.test", ""},
    {"@evil.example:../outside@example.test", ""},
    {"POSTMASTER@Example.Test", "postmaster"},
    {"a.@example.test", ""},
    {"\"bob\"@example.test", ""},
    {"Bob.Smith+Tag@Example.TEST", "bob.smith+tag"},
    {"postmaster", "postmaster"},
    {std::string(64, 'z') + "@example.test", std::string(64, 'z')},
  };
  std::set<std::string> expected = {"outside", "po", "po/.postoffice"};
  int key = 0;
  for (const auto& [recipient, mailbox] : rows) {
    CAPTURE(recipient);
    auto delivery_key = "q." + std::to_string(++key);
    auto result = deliver_to_maildir(root, true, message_to(recipient, delivery_key));
    if (mailbox.empty()) {
      CHECK(result.kind == maildir_result_kind::permanent_failure);
      CHECK(result.status == "5.1.3");
      continue;
    }
    CHECK(result.kind == maildir_result_kind::delivered);
    for (const char* path : {"", "/tmp", "/new", "/cur"})
      expected.insert("po/" + mailbox + path);
    expected.insert("po/" + mailbox + "/new/" + delivery_key + ".postconn");
  }
  CHECK(tree(dir.path()) == expected);
}

TEST_CASE("local parts of path characters land in their own mailbox or nowhere") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  const std::string alphabet{"./\\%a~\0", 7};
  std::vector<std::string> local_parts{""};
  for (std::size_t length = 0; length < 3; ++length)
    for (std::size_t i = local_parts.size(); i-- > 0;)
      if (local_parts[i].size() == length)
        for (char c : alphabet)
          local_parts.push_back(local_parts[i] + c);
  std::set<std::string> expected = {"po", "po/.postoffice"};
  int key = 0;
  for (const auto& local_part : local_parts) {
    CAPTURE(local_part);
    auto delivery_key = "q." + std::to_string(++key);
    auto recipient = local_part + "@example.test";
    auto result = deliver_to_maildir(root, true, message_to(recipient, delivery_key));
    if (result.kind != maildir_result_kind::delivered) {
      CHECK(result.status == "5.1.3");
      continue;
    }
    CHECK(local_part.find_first_not_of("a.") == std::string::npos);
    for (const char* path : {"", "/tmp", "/new", "/cur"})
      expected.insert("po/" + local_part + path);
    expected.insert("po/" + local_part + "/new/" + delivery_key + ".postconn");
  }
  CHECK(tree(dir.path()) == expected);
}

TEST_CASE("a delivery key that is not a plain file name is refused") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  for (const char* key : {"", "../../x", ".hidden", "a/b", "A1"}) {
    CAPTURE(key);
    auto result = deliver_to_maildir(root, false, message_to("bob@example.test", key));
    CHECK(result.kind == maildir_result_kind::temporary_failure);
  }
  CHECK(tree(root / "bob") == std::set<std::string>{"cur", "new", "tmp"});
}

TEST_CASE("symbolic links in a mailbox are refused, nothing is written through them") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(dir / "outside");
  std::string link;
  SUBCASE("the mailbox") {
    fs::create_directory_symlink(dir / "outside", root / "bob");
    link = "mailbox bob";
  }
  SUBCASE("its tmp/") {
    fs::create_directories(root / "bob" / "new");
    fs::create_directories(root / "bob" / "cur");
    fs::create_directory_symlink(dir / "outside" / "tmp", root / "bob" / "tmp");
    link = "mailbox bob: tmp/";
  }
  SUBCASE("its new/") {
    fs::create_directories(root / "bob" / "tmp");
    fs::create_directories(root / "bob" / "cur");
    fs::create_directory_symlink(dir / "outside" / "new", root / "bob" / "new");
    link = "mailbox bob: new/";
  }
  for (bool create : {false, true}) {
    auto result = deliver_to_maildir(root, create, message_to("bob@example.test", "k"));
    CHECK(result.kind == maildir_result_kind::temporary_failure);
    CHECK(result.status == "4.3.0");
    CHECK(result.text == link + " is a symbolic link (refused)");
  }
  CHECK(tree(dir / "outside") == std::set<std::string>{"cur", "new", "tmp"});
}

TEST_CASE("a symbolic link planted as tmp/<name> is not written through") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  write_file(dir / "victim", "precious");
  fs::create_symlink(dir / "victim", root / "bob" / "tmp" / "k.postconn");
  auto result = deliver_to_maildir(root, false, message_to("bob@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::delivered);
  CHECK(read_file(dir / "victim") == "precious");
  CHECK(fs::is_regular_file(fs::symlink_status(root / "bob" / "new" / "k.postconn")));
}

TEST_CASE("a hard link planted as tmp/<name> is not written through") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  write_file(root / "victim", "precious");
  fs::create_hard_link(root / "victim", root / "bob" / "tmp" / "k.postconn");
  auto result = deliver_to_maildir(root, false, message_to("bob@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::delivered);
  CHECK(read_file(root / "victim") == "precious");
}

TEST_CASE("a failed rename defers the delivery and leaves tmp/ empty") {
  test::temp_dir dir;
  auto root = make_postoffice(dir);
  make_mailbox(root / "bob");
  fs::create_directories(root / "bob" / "new" / "k.postconn" / "in-the-way");
  auto result = deliver_to_maildir(root, false, message_to("bob@example.test", "k"));
  CHECK(result.kind == maildir_result_kind::temporary_failure);
  CHECK(result.status == "4.3.0");
  CHECK(result.text == "mailbox bob: write failed: Is a directory");
  CHECK(names_in(root / "bob" / "tmp").empty());
  CHECK(fs::is_directory(root / "bob" / "new" / "k.postconn"));
}
