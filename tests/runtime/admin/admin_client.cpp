// Tests runtime/admin/admin_client.cpp: ages, the tables of each verb, text from the
// server made safe to print, and the verbs' exit codes against a canned admin
// API on a loopback port.
#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "runtime/admin/admin_client.hpp"

using namespace postconn;
using nlohmann::json;

namespace {

constexpr std::int64_t now = 1764000000;

const std::string long_error = "4.4.1 marker .postoffice missing (share not mounted?)";

json sales_delivery() {
  return {{"delivery_id", 7},
          {"message_id", "0006615ab267c25e"},
          {"postoffice", "sales"},
          {"recipients", {"bob@sales.example.test", "carol@sales.example.test"}},
          {"state", "deferred"},
          {"queued_at", now - 3600},
          {"open_retries", 3},
          {"max_open_retries", 144},
          {"transfer_retries", 0},
          {"max_transfer_retries", 2},
          {"attempts_made", 3},
          {"next_attempt_at", now + 600},
          {"last_error", long_error}};
}

json support_delivery() {
  return {{"delivery_id", 8},
          {"message_id", "0006615ab267c25f"},
          {"postoffice", "support"},
          {"recipients", {"dave@support.example.test"}},
          {"state", "held"},
          {"queued_at", now - 11520},
          {"open_retries", 0},
          {"max_open_retries", 144},
          {"transfer_retries", 1},
          {"max_transfer_retries", 2},
          {"next_attempt_at", now - 10},
          {"last_error", ""}};
}

json queue_reply() {
  return {{"total", 2}, {"now", now}, {"deliveries", {sales_delivery(), support_delivery()}}};
}

json ledger_reply() {
  auto delivery = sales_delivery();
  delivery["attempts"] = {
    {{"at", now - 3599}, {"outcome", "open_failed"}, {"code", "4.4.1"},
     {"text", "marker .postoffice missing (share not mounted?)"}},
    {{"at", now - 1000}, {"outcome", "held"}, {"code", ""}, {"text", ""}}};
  return {{"now", now},
          {"message_id", "0006615ab267c25e"},
          {"sender", "ann@support.example.test"},
          {"received_at", now - 3600},
          {"size", 1234},
          {"deliveries", {delivery}}};
}

json shape_reply() {
  return {{"now", now},
          {"bounds", {300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 76800}},
          {"total", 3006},
          {"ages", {1000, 0, 2, 0, 0, 0, 0, 0, 0, 2004}},
          {"postoffices",
           {{{"name", "support"}, {"total", 2}, {"ages", {0, 0, 2, 0, 0, 0, 0, 0, 0, 0}},
             {"oldest_queued_at", now - 700}},
            {{"name", "sales"}, {"total", 3004}, {"ages", {1000, 0, 0, 0, 0, 0, 0, 0, 0, 2004}},
             {"oldest_queued_at", now - 90000}}}}};
}

/// A stored message: a folded header with a tab, an escape sequence in the
/// subject, CRLF line ends.
const std::string stored_content = "Received: by connector.example.test (postconn)\r\n"
                                   "\tid 0006615ab267c25e\r\n"
                                   "Subject: \x1b[2Jhello\r\n"
                                   "\r\n"
                                   "line one\r\n"
                                   "\x1b]0;owned\x07\r\n";

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string{text}};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

/// Whether `text` has a byte a terminal could act on (line ends aside).
bool has_control_byte(std::string_view text) {
  for (unsigned char c : text)
    if ((c < 0x20 && c != '\n') || c == 0x7f)
      return true;
  return false;
}

/// An admin API with canned replies on a free loopback port, answering on a
/// thread of its own until destroyed.
class canned_admin_api {
public:
  canned_admin_api() {
    serve_queue();
    serve_messages();
    server_.Post("/flush", [this](const httplib::Request& req, httplib::Response& res) {
      remember(req);
      res.set_content(R"({"flushed": 3})", "application/json");
    });
    server_.Get("/postoffices", [](const httplib::Request&, httplib::Response& res) {
      res.status = 500;
      res.set_content("internal trouble", "text/plain");
    });
    // Node b is still a member; any other is gone, its replicas adopted.
    server_.Post(R"(/cluster/forget/(.+))", [this](const httplib::Request& req,
                                                  httplib::Response& res) {
      remember(req);
      std::string node = req.matches[1];
      if (node == "b") {
        res.status = 409;
        res.set_content(R"({"error": "node b is still a member"})", "application/json");
        return;
      }
      res.set_content(json{{"node", node}, {"adopted", 2314}}.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0)
      throw std::runtime_error("no free loopback port");
    thread_ = std::thread{[this] { server_.listen_after_bind(); }};
  }

  ~canned_admin_api() {
    // A stop() before the listener runs would be lost.
    while (!server_.is_running())
      std::this_thread::yield();
    server_.stop();
    thread_.join();
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

  /// The path and decoded query parameters of the last request seen.
  std::string last_path() {
    std::lock_guard<std::mutex> guard{mutex_};
    return last_path_;
  }
  httplib::Params last_params() {
    std::lock_guard<std::mutex> guard{mutex_};
    return last_params_;
  }

private:
  void serve_queue() {
    // Asked for pages of 1000: the first names the next, the second none.
    server_.Get("/queue", [this](const httplib::Request& req, httplib::Response& res) {
      remember(req);
      auto reply = queue_reply();
      if (req.get_param_value("limit") == "1000" && !req.has_param("after")) {
        reply["deliveries"] = {sales_delivery()};
        reply["next"] = std::to_string(now - 3600) + "-7";
      } else if (req.has_param("after")) {
        reply["deliveries"] = {support_delivery()};
      }
      res.set_content(reply.dump(2) + "\n", "application/json");
    });
    server_.Get("/queue/shape", [this](const httplib::Request& req, httplib::Response& res) {
      remember(req);
      res.set_content(shape_reply().dump(), "application/json");
    });
    server_.Post(R"(/queue/(hold|release|flush|delete|requeue))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   remember(req);
                   auto hold = req.matches[1] == "hold";
                   res.set_content(json{{hold ? "held" : "released", 2314},
                                        {"in_flight", hold ? 12 : 0}}
                                     .dump(),
                                   "application/json");
                 });
  }

  void serve_messages() {
    server_.Get("/messages/broken", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<html>not the admin API</html>", "text/html");
    });
    server_.Get("/messages/0006615ab267c25e/content",
                [](const httplib::Request&, httplib::Response& res) {
                  res.set_content(stored_content, "message/rfc822");
                });
    server_.Get(R"(/messages/(.+))", [this](const httplib::Request& req,
                                              httplib::Response& res) {
      remember(req);
      res.status = 404;
      res.set_content(json{{"error", "no message " + std::string{req.matches[1]}}}.dump(),
                      "application/json");
    });
    server_.Post(R"(/messages/([^/]+)/hold)", [this](const httplib::Request& req,
                                                     httplib::Response& res) {
      remember(req);
      res.set_content(R"({"held": 1})", "application/json");
    });
  }

  void remember(const httplib::Request& req) {
    std::lock_guard<std::mutex> guard{mutex_};
    last_path_ = req.path;
    last_params_ = req.params;
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::string last_path_;
  httplib::Params last_params_;
};

/// A loopback port bound but not listening: connections to it are refused,
/// and nothing else can take it while this lives.
class refusing_port {
public:
  refusing_port() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0
        || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("cannot bind a loopback port");
    port_ = ntohs(address.sin_port);
  }
  ~refusing_port() {
    ::close(fd_);
  }
  refusing_port(const refusing_port&) = delete;
  refusing_port& operator=(const refusing_port&) = delete;

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

private:
  int fd_;
  int port_ = 0;
};

/// What one run of a verb printed, and its exit code.
struct verb_run {
  int exit_code;
  std::string out;
  std::string err;
};

verb_run run(const admin_verb& verb) {
  std::ostringstream out;
  std::ostringstream err;
  auto code = run_admin_verb(verb, out, err);
  return {code, out.str(), err.str()};
}

admin_verb verb_at(std::string url, std::string name, std::string argument = "") {
  admin_verb verb;
  verb.name = std::move(name);
  verb.argument = std::move(argument);
  verb.admin_url = std::move(url);
  return verb;
}

} // namespace

TEST_CASE("format_age keeps the two largest units and truncates") {
  CHECK(format_age(0) == "0s");
  CHECK(format_age(-5) == "0s");
  CHECK(format_age(1) == "1s");
  CHECK(format_age(59) == "59s");
  CHECK(format_age(60) == "1m");
  CHECK(format_age(61) == "1m1s");
  CHECK(format_age(200) == "3m20s");
  CHECK(format_age(3599) == "59m59s");
  CHECK(format_age(3600) == "1h");
  CHECK(format_age(3659) == "1h");
  CHECK(format_age(3660) == "1h1m");
  CHECK(format_age(11520) == "3h12m");
  CHECK(format_age(86399) == "23h59m");
  CHECK(format_age(86400) == "1d");
  CHECK(format_age(2 * 86400 + 4 * 3600 + 3599) == "2d4h");
  CHECK(format_age(400 * 86400) == "400d");
}

TEST_CASE("the queue table shows each delivery's ledger in columns") {
  auto lines = lines_of(format_queue(queue_reply()));
  REQUIRE(lines.size() == 4);
  const auto& header = lines[0];
  for (auto name : {"ID", "DELIVERY", "POSTOFFICE", "STATE", "AGE", "OPENS", "TRANSFERS",
                    "NEXT", "RECIPIENTS", "LAST ERROR"})
    CHECK(header.find(name) != std::string::npos);
  CHECK(lines[1].find("0006615ab267c25e") == 0);
  CHECK(lines[1].find("  sales  ") != std::string::npos);
  CHECK(lines[1].find(" 1h ") != std::string::npos);
  CHECK(lines[1].find("3/144") != std::string::npos);
  CHECK(lines[1].find(" 0/2 ") != std::string::npos);
  CHECK(lines[1].find(" 10m ") != std::string::npos);
  CHECK(lines[1].find("bob@sales.example.test +1") != std::string::npos);
  CHECK(lines[2].find(" 3h12m ") != std::string::npos);
  CHECK(lines[2].find(" 1/2 ") != std::string::npos);
  CHECK(lines[2].find("dave@support.example.test") != std::string::npos);
  CHECK(lines[3] == "2 deliveries");

  SUBCASE("a long error is cut to 40 characters with an ellipsis") {
    auto cut = long_error.substr(0, 37) + "...";
    CHECK(lines[1].size() - lines[1].find(cut) == 40);
    CHECK(lines[1].find(long_error) == std::string::npos);
  }
  SUBCASE("a held delivery has no next attempt and no error shows as a dash") {
    CHECK(lines[2].find("held") != std::string::npos);
    CHECK(lines[2].substr(header.find("LAST ERROR")) == "-");
    CHECK(lines[2].substr(header.find("NEXT"), 4) == "   -");
  }
  SUBCASE("columns line up under their headers") {
    CHECK(lines[1].find("deferred") == header.find("STATE"));
    CHECK(lines[2].find("held") == header.find("STATE"));
    CHECK(lines[1].find("bob@") == header.find("RECIPIENTS"));
  }
}

TEST_CASE("the queue line says which page is shown") {
  auto reply = queue_reply();
  reply["total"] = 12;
  CHECK(lines_of(format_queue(reply)).back() == "12 deliveries, showing 1-2");
  CHECK(lines_of(format_queue(reply, 10)).back() == "12 deliveries, showing 11-12");
  reply["deliveries"] = json::array();
  CHECK(format_queue(reply, 50) == "12 deliveries, none from 51 on\n");
  reply["total"] = 1;
  reply["deliveries"] = {sales_delivery()};
  CHECK(lines_of(format_queue(reply)).back() == "1 delivery");
}

TEST_CASE("an empty queue says so") {
  CHECK(format_queue(json{{"total", 0}, {"now", now}, {"deliveries", json::array()}})
        == "queue is empty\n");
}

TEST_CASE("the postoffices table shows a postoffice that is down and why") {
  json reply = {{"now", now},
                {"postoffices",
                 {{{"name", "sales"}, {"transport", "maildir"}, {"state", "down"},
                   {"since", now - 10000},
                   {"problem", "marker .postoffice missing (share not mounted?)"},
                   {"queued", 4}, {"held", 1}, {"in_flight", 0}, {"open_failures", 12}},
                  {{"name", "support"}, {"transport", "lmtp"}, {"state", "up"}, {"since", 0},
                   {"problem", ""}, {"queued", 0}, {"held", 0}, {"in_flight", 2},
                   {"open_failures", 0}}}}};
  auto lines = lines_of(format_postoffices(reply));
  REQUIRE(lines.size() == 4);
  for (auto name : {"NAME", "TRANSPORT", "STATUS", "SINCE", "QUEUED", "HELD", "IN FLIGHT",
                    "OPEN FAILURES", "PROBLEM"})
    CHECK(lines[0].find(name) != std::string::npos);
  CHECK(lines[1].find("sales    maildir    DOWN    2h46m") == 0);
  CHECK(lines[1].find("marker .postoffice missing (share not...") != std::string::npos);
  CHECK(lines[2].find("support  lmtp       up          -") == 0);
  CHECK(lines[2].substr(lines[0].find("PROBLEM")) == "-");
  // Counts are right-aligned under their headers.
  auto failures_end = lines[0].find("OPEN FAILURES") + std::string_view{"OPEN FAILURES"}.size();
  CHECK(lines[1].substr(failures_end - 2, 2) == "12");
  CHECK(lines[3] == "2 postoffices, 1 down");
  CHECK(format_postoffices(json{{"now", now}, {"postoffices", json::array()}})
        == "no postoffices\n");
}

TEST_CASE("the postoffices table shows a postoffice not probed yet as unknown, not up") {
  json reply = {{"now", now},
                {"postoffices",
                 {{{"name", "sales"}, {"transport", "maildir"}, {"state", "unknown"},
                   {"since", now - 3}, {"problem", "not probed yet"}, {"queued", 4},
                   {"held", 0}, {"in_flight", 0}, {"open_failures", 0}},
                  {{"name", "support"}, {"transport", "lmtp"}, {"state", "up"},
                   {"since", now - 2}, {"problem", ""}, {"queued", 0}, {"held", 0},
                   {"in_flight", 0}, {"open_failures", 0}}}}};
  auto lines = lines_of(format_postoffices(reply));
  REQUIRE(lines.size() == 4);
  INFO(lines[1] << "\n" << lines[2]);
  CHECK(lines[1].find("sales    maildir    unknown     3s") == 0);
  CHECK(lines[1].find("not probed yet") != std::string::npos);
  CHECK(lines[2].find("support  lmtp       up          2s") == 0);
  CHECK(lines[3] == "2 postoffices, 0 down, 1 not probed yet");
}

TEST_CASE("in a cluster the postoffices table shows the members and each postoffice's owner") {
  json reply = {{"now", now},
                {"cluster",
                 {{"node", "a"},
                  {"members", {{{"node", "a"}, {"address", "10.0.0.1:4200"}},
                               {{"node", "b"}, {"address", "10.0.0.2:4200"}}}}}},
                {"postoffices",
                 {{{"name", "sales"}, {"owner", "a"}, {"transport", "maildir"}, {"state", "up"},
                   {"since", 0}, {"problem", ""}, {"queued", 3}, {"held", 0},
                   {"in_flight", 0}, {"open_failures", 0}},
                  {{"name", "support"}, {"owner", "b"}}}}};
  auto lines = lines_of(format_postoffices(reply));
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "cluster: node a; members a (10.0.0.1:4200) b (10.0.0.2:4200)");
  CHECK(lines[1].find("NAME     OWNER  TRANSPORT") == 0);
  CHECK(lines[2].find("sales    a      maildir    up") == 0);
  CHECK(lines[3].find("support  b      -          -") == 0);
  CHECK(lines[4] == "2 postoffices, 0 down, 1 owned by other nodes");
}

TEST_CASE("the ledger shows the message, each delivery, its recipients and its attempt log") {
  auto lines = lines_of(format_ledger(ledger_reply()));
  REQUIRE(lines.size() == 20);
  CHECK(lines[0] == "message   0006615ab267c25e");
  CHECK(lines[1] == "sender    ann@support.example.test");
  CHECK(lines[2] == "received  2025-11-24 15:00:00 UTC, 1h ago");
  CHECK(lines[3] == "size      1,234 bytes"); // counts grouped in threes
  CHECK(lines[4].empty());
  CHECK(lines[5] == "delivery 7 to sales: deferred");
  CHECK(lines[6] == "  queued        2025-11-24 15:00:00 UTC, 1h ago");
  CHECK(lines[7] == "  opens         3/144");
  CHECK(lines[8] == "  transfers     0/2");
  // The ledger's count, not the lines of the log (a hold is no attempt).
  CHECK(lines[9] == "  attempts      3");
  CHECK(lines[10] == "  next attempt  in 10m");
  CHECK(lines[11] == "  last error    " + long_error);
  CHECK(lines[12] == "  recipients    2 waiting");
  CHECK(lines[13] == "    RECIPIENT                 STATUS   CODE  TIME (UTC)  TEXT");
  CHECK(lines[14] == "    bob@sales.example.test    waiting  -     -           -");
  CHECK(lines[15] == "    carol@sales.example.test  waiting  -     -           -");
  CHECK(lines[16] == "  log           2 lines");
  CHECK(lines[17] == "    TIME (UTC)           RELATIVE  OUTCOME      CODE   TEXT");
  CHECK(lines[18]
        == "    2025-11-24 15:00:01   -59m59s  open_failed  4.4.1  "
           "marker .postoffice missing (share not mounted?)");
  CHECK(lines[19] == "    2025-11-24 15:43:20   -16m40s  held         -");
}

TEST_CASE("the ledger shows what became of each recipient, with the server's whole reply") {
  auto reply = ledger_reply();
  auto& delivery = reply["deliveries"][0];
  delivery["state"] = "deferred";
  delivery["recipients"] = {"carol@sales.example.test", "dave@sales.example.test"};
  const std::string refusal
    = "550 5.1.1 <eve@sales.example.test>: Recipient address rejected: User unknown in "
      "local recipient table";
  delivery["recipient_outcomes"] = {
    {{"recipient", "bob@sales.example.test"}, {"status", "delivered"}, {"code", "2.0.0"},
     {"text", "250 2.0.0 Ok: queued as 4F2A1"}, {"at", now - 60}},
    {{"recipient", "carol@sales.example.test"}, {"status", "deferred"}, {"code", "4.2.1"},
     {"text", "452 4.2.1 mailbox busy\x1b[2J"}, {"at", now - 60}},
    {{"recipient", "eve@sales.example.test"}, {"status", "bounced"}, {"code", "5.1.1"},
     {"text", refusal}, {"at", now - 60}}};
  auto lines = lines_of(format_ledger(reply));
  auto table = std::find(lines.begin(), lines.end(),
                         "  recipients    1 delivered, 1 deferred, 1 bounced, 1 waiting");
  REQUIRE(table != lines.end());
  CHECK(table[1] == "    RECIPIENT                 STATUS     CODE   TIME (UTC)           TEXT");
  CHECK(table[2] == "    bob@sales.example.test    delivered  2.0.0  2025-11-24 15:59:00  "
                    "250 2.0.0 Ok: queued as 4F2A1");
  CHECK(table[3] == "    carol@sales.example.test  deferred   4.2.1  2025-11-24 15:59:00  "
                    "452 4.2.1 mailbox busy?[2J");
  CHECK(table[4] == "    eve@sales.example.test    bounced    5.1.1  2025-11-24 15:59:00  "
                    + refusal);
  CHECK(table[5] == "    dave@sales.example.test   waiting    -      -                    -");
  CHECK(table[6] == "  log           2 lines");
}

TEST_CASE("a ledger without deliveries or attempts says so") {
  auto reply = ledger_reply();
  reply["sender"] = "";
  reply["deliveries"][0]["attempts"] = json::array();
  reply["deliveries"][0]["attempts_made"] = 0;
  reply["deliveries"][0]["recipients"] = json::array();
  auto lines = lines_of(format_ledger(reply));
  CHECK(lines[1] == "sender    <>");
  CHECK(lines[9] == "  attempts      none");
  CHECK(lines[12] == "  recipients    none");
  CHECK(lines.back() == "  log           none");
  reply["deliveries"] = json::array();
  CHECK(lines_of(format_ledger(reply)).back() == "no deliveries");
}

TEST_CASE("action replies count deliveries in the right number") {
  CHECK(format_action(json{{"held", 1}}) == "held 1 delivery\n");
  CHECK(format_action(json{{"released", 0}}) == "released 0 deliveries\n");
  CHECK(format_action(json{{"flushed", 3}}) == "flushed 3 deliveries\n");
  CHECK(format_action(json{{"deleted", 1}}) == "deleted 1 delivery\n");
  CHECK(format_action(json{{"bounced", 2}}) == "bounced 2 deliveries\n");
  CHECK(format_action(json{{"requeued", 1}}) == "requeued 1 delivery\n");
  CHECK_THROWS_AS(format_action(json{{"resent", 1}}), std::invalid_argument);
}

TEST_CASE("control characters from the server are shown as question marks") {
  auto reply = queue_reply();
  reply["deliveries"][0]["last_error"] =
    "4.4.1 \x1b[2J\x1b]0;owned\x07 \r\x7f \xc2\x9b" "5m \xff ok é";
  reply["deliveries"][0]["postoffice"] = "sa\nles";
  auto text = format_queue(reply);
  CHECK_FALSE(has_control_byte(text));
  CHECK(text.find("sa?les") != std::string::npos);
  CHECK(text.find("4.4.1 ?[2J?]0;owned? ?? ?5m ? ok é") != std::string::npos);
  auto ledger = ledger_reply();
  ledger["deliveries"][0]["attempts"][0]["text"] = "bad\x1b[31m";
  ledger["sender"] = "\x1b" "c@x";
  auto ledger_text = format_ledger(ledger);
  CHECK_FALSE(has_control_byte(ledger_text));
  CHECK(ledger_text.find("bad?[31m") != std::string::npos);
}

TEST_CASE("admin URLs are http with a host and an optional port") {
  auto plain = parse_admin_url("http://127.0.0.1:8025");
  REQUIRE(plain);
  CHECK(plain->host == "127.0.0.1");
  CHECK(plain->port == 8025);
  CHECK(parse_admin_url("http://admin.example.test/")->port == 80);
  CHECK(parse_admin_url("127.0.0.1:8025")->port == 8025);
  auto v6 = parse_admin_url("http://[::1]:8025");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK_FALSE(parse_admin_url("https://127.0.0.1:8025"));
  CHECK_FALSE(parse_admin_url("http://127.0.0.1:0"));
  CHECK_FALSE(parse_admin_url("http://127.0.0.1:99999"));
  CHECK_FALSE(parse_admin_url("http://127.0.0.1:8025/api"));
  CHECK_FALSE(parse_admin_url("http://"));
  CHECK_FALSE(parse_admin_url("http://user@host"));
}

TEST_CASE("admin_call returns the status and body, or why there was none") {
  canned_admin_api api;
  auto reply = admin_call(api.url(), "GET", "/queue");
  CHECK(reply.status == 200);
  CHECK(json::parse(reply.body) == queue_reply());
  CHECK(admin_call(api.url(), "GET", "/messages/nope").status == 404);

  refusing_port refusing;
  auto refused = admin_call(refusing.url(), "GET", "/queue");
  CHECK(refused.status == 0);
  CHECK(refused.error == "cannot reach the admin API at " + refusing.url()
                           + ": connection refused, or host unknown or unreachable");
}

TEST_CASE("the queue verb sends its filters encoded and prints the table") {
  canned_admin_api api;
  auto verb = verb_at(api.url(), "queue");
  verb.filters = {{"postoffice", "sales & co"}, {"state", "deferred"}, {"min_age", ""}};
  auto result = run(verb);
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out == format_queue(queue_reply()));
  CHECK(api.last_path() == "/queue");
  auto params = api.last_params();
  CHECK(params.size() == 2);
  CHECK(params.find("postoffice")->second == "sales & co");
  CHECK(params.find("state")->second == "deferred");

  verb.json = true;
  CHECK(run(verb).out == queue_reply().dump(2) + "\n");
}

TEST_CASE("action verbs reach their resources") {
  canned_admin_api api;
  auto held = run(verb_at(api.url(), "hold", "0006615ab267c25e"));
  CHECK(held.exit_code == 0);
  CHECK(held.out == "held 1 delivery\n");
  CHECK(api.last_path() == "/messages/0006615ab267c25e/hold");

  auto flushed = run(verb_at(api.url(), "flush", "sales"));
  CHECK(flushed.out == "flushed 3 deliveries\n");
  CHECK(api.last_params().find("postoffice")->second == "sales");
  run(verb_at(api.url(), "flush"));
  CHECK(api.last_params().empty());
}

TEST_CASE("a server error exits 1 with the server's error text") {
  canned_admin_api api;
  auto missing = run(verb_at(api.url(), "ledger", "nope"));
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.empty());
  CHECK(missing.err == "postconn ledger: no message nope\n");

  auto odd_id = run(verb_at(api.url(), "ledger", "a/b c"));
  CHECK(odd_id.err == "postconn ledger: no message a/b c\n");

  auto failing = run(verb_at(api.url(), "postoffices"));
  CHECK(failing.exit_code == 1);
  CHECK(failing.err
        == "postconn postoffices: the admin API answered HTTP 500: internal trouble\n");

  auto garbage = run(verb_at(api.url(), "ledger", "broken"));
  CHECK(garbage.exit_code == 1);
  CHECK(garbage.err.find("postconn ledger: unexpected reply from the admin API") == 0);
}

TEST_CASE("an admin API that cannot be reached exits 3") {
  refusing_port refusing;
  auto result = run(verb_at(refusing.url(), "queue"));
  CHECK(result.exit_code == 3);
  CHECK(result.out.empty());
  CHECK(result.err.find("postconn queue: cannot reach the admin API at " + refusing.url())
        == 0);
}

TEST_CASE("usage problems exit 2 before any request") {
  refusing_port refusing;
  auto usage = [&](admin_verb verb) {
    auto result = run(verb);
    CHECK(result.out.empty());
    return result.exit_code;
  };
  CHECK(usage(verb_at(refusing.url(), "ledger")) == 2);
  CHECK(usage(verb_at(refusing.url(), "hold")) == 2);
  CHECK(usage(verb_at(refusing.url(), "queue", "extra")) == 2);
  CHECK(usage(verb_at(refusing.url(), "requeue", "0006615ab267c25e")) == 2);
  CHECK(usage(verb_at(refusing.url(), "delete")) == 2);
  CHECK(usage(verb_at("https://127.0.0.1:8025", "queue")) == 2);
  auto filtered_hold = verb_at(refusing.url(), "hold", "0006615ab267c25e");
  filtered_hold.filters["state"] = "held";
  CHECK(usage(filtered_hold) == 2);
  auto unknown_filter = verb_at(refusing.url(), "queue");
  unknown_filter.filters["colour"] = "red";
  CHECK(usage(unknown_filter) == 2);
  CHECK(run(verb_at(refusing.url(), "ledger")).err
        == "postconn ledger: which message? give its ID\n");
  CHECK(run(verb_at(refusing.url(), "requeue", "0006615ab267c25e")).err
        == "postconn requeue: to which postoffice? give --to PO\n");
  CHECK(usage(verb_at(refusing.url(), "resend", "0006615ab267c25e")) == 2);
}

TEST_CASE("usage problems of the verbs that act on deliveries exit 2 before any request") {
  refusing_port refusing;
  auto problem = [&](admin_verb verb) {
    auto result = run(verb);
    CHECK(result.exit_code == 2);
    CHECK(result.out.empty());
    return result.err;
  };
  CHECK(problem(verb_at(refusing.url(), "release"))
        == "postconn release: which deliveries? give an ID, ALL, or filters (--postoffice, "
           "--state, --sender, --recipient, --min-age)\n");
  auto id_and_filter = verb_at(refusing.url(), "delete", "0006615ab267c25e");
  id_and_filter.filters["postoffice"] = "sales";
  CHECK(problem(id_and_filter)
        == "postconn delete: an ID or filters, not both (ALL with filters: every delivery they "
           "select)\n");
  auto empty_values = verb_at(refusing.url(), "hold"); // options left out: no filter
  empty_values.filters = {{"postoffice", ""}, {"state", ""}};
  CHECK(problem(empty_values).find("which deliveries?") != std::string::npos);
  auto twice = verb_at(refusing.url(), "flush", "sales");
  twice.filters["postoffice"] = "support";
  CHECK(problem(twice) == "postconn flush: give the postoffice once: as PO or as --postoffice\n");
  auto paged = verb_at(refusing.url(), "queue");
  paged.all_pages = true;
  paged.filters["limit"] = "5";
  CHECK(problem(paged) == "postconn queue: --all reads every page: leave out --limit and --offset\n");
  auto shaped = verb_at(refusing.url(), "queue");
  shaped.shape = true;
  shaped.all_pages = true;
  CHECK(problem(shaped).find("--shape counts every delivery selected") != std::string::npos);
  for (auto limit : {"x", "0", "-1", "10000000000000"}) {
    auto bad = verb_at(refusing.url(), "queue");
    bad.filters["limit"] = limit;
    CHECK(problem(bad).find("--limit: a whole number of at least 1") != std::string::npos);
  }
  auto offset = verb_at(refusing.url(), "queue");
  offset.filters["offset"] = "ten";
  CHECK(problem(offset) == "postconn queue: --offset: a whole number, got \"ten\"\n");
  auto shown_as_json = verb_at(refusing.url(), "show", "0006615ab267c25e");
  shown_as_json.json = true;
  CHECK(problem(shown_as_json).find("--json does not apply") != std::string::npos);
  CHECK(problem(verb_at(refusing.url(), "show")) == "postconn show: which message? give its ID\n");
  auto ledger_filter = verb_at(refusing.url(), "ledger", "0006615ab267c25e");
  ledger_filter.filters["state"] = "held";
  CHECK(problem(ledger_filter) == "postconn ledger: no filter state here\n");
}

TEST_CASE("verbs by filter send their filters to /queue/VERB, ALL sends all=1, an ID keeps its message's route") {
  canned_admin_api api;
  auto hold = verb_at(api.url(), "hold");
  hold.filters = {{"postoffice", "sales"}, {"state", "deferred"}, {"min_age", ""}};
  auto held = run(hold);
  CHECK(held.exit_code == 0);
  CHECK(held.out == "held 2,314 deliveries (12 in flight: held after their attempt)\n");
  CHECK(api.last_path() == "/queue/hold");
  auto params = api.last_params();
  CHECK(params.size() == 2);
  CHECK(params.find("postoffice")->second == "sales");
  CHECK(params.find("state")->second == "deferred");

  auto release_all = run(verb_at(api.url(), "release", "ALL"));
  CHECK(release_all.out == "released 2,314 deliveries\n");
  CHECK(api.last_path() == "/queue/release");
  CHECK(api.last_params().find("all")->second == "1");

  auto requeue = verb_at(api.url(), "requeue", "all");
  requeue.to = "support";
  requeue.filters["recipient"] = "bob@";
  run(requeue);
  CHECK(api.last_path() == "/queue/requeue");
  params = api.last_params();
  CHECK(params.find("to")->second == "support");
  CHECK(params.find("recipient")->second == "bob@");
  CHECK(params.find("all")->second == "1");

  auto remove = verb_at(api.url(), "delete");
  remove.filters["sender"] = "ann@";
  remove.with_ndr = true;
  run(remove);
  CHECK(api.last_path() == "/queue/delete");
  CHECK(api.last_params().find("ndr")->second == "1");

  auto flush = verb_at(api.url(), "flush", "sales");
  flush.filters["state"] = "deferred";
  run(flush);
  CHECK(api.last_path() == "/queue/flush");
  CHECK(api.last_params().find("postoffice")->second == "sales");

  CHECK(run(verb_at(api.url(), "hold", "0006615ab267c25e")).out == "held 1 delivery\n");
  CHECK(api.last_path() == "/messages/0006615ab267c25e/hold");
}

TEST_CASE("queue --all reads page after page, each after the last delivery of the one before, and prints them as one") {
  canned_admin_api api;
  auto verb = verb_at(api.url(), "queue");
  verb.all_pages = true;
  verb.filters["state"] = "deferred";
  auto result = run(verb);
  CHECK(result.exit_code == 0);
  auto lines = lines_of(result.out);
  REQUIRE(lines.size() == 4);
  CHECK(lines[1].find("0006615ab267c25e") == 0);
  CHECK(lines[2].find("0006615ab267c25f") == 0);
  CHECK(lines[3] == "2 deliveries");
  auto params = api.last_params();
  CHECK(params.find("after")->second == std::to_string(now - 3600) + "-7");
  CHECK(params.find("limit")->second == "1000");
  CHECK(params.find("state")->second == "deferred");
  verb.json = true;
  auto merged = json::parse(run(verb).out);
  CHECK(merged["total"] == 2);
  CHECK(merged["deliveries"].size() == 2);
  CHECK_FALSE(merged.contains("next"));
}

TEST_CASE("the queue's shape is a qshape table: TOTAL first, then the largest postoffice") {
  auto lines = lines_of(format_shape(shape_reply()));
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "POSTOFFICE     T     5  10  20  40  80  160  320  640  1280  1280+");
  CHECK(lines[1] == "TOTAL       3006  1000   0   2   0   0    0    0    0     0   2004");
  CHECK(lines[2] == "sales       3004  1000   0   0   0   0    0    0    0     0   2004");
  CHECK(lines[3] == "support        2     0   0   2   0   0    0    0    0     0      0");
  auto empty = shape_reply();
  empty["total"] = 0;
  CHECK(format_shape(empty) == "queue is empty\n");
}

TEST_CASE("queue --shape asks for the shape with the filters and prints the table") {
  canned_admin_api api;
  auto verb = verb_at(api.url(), "queue");
  verb.shape = true;
  verb.filters["state"] = "deferred";
  auto result = run(verb);
  CHECK(result.exit_code == 0);
  CHECK(result.out == format_shape(shape_reply()));
  CHECK(api.last_path() == "/queue/shape");
  CHECK(api.last_params().find("state")->second == "deferred");
}

TEST_CASE("a stored message shows its header, --body the rest, control characters as question marks but tabs kept") {
  CHECK(format_message(stored_content, false)
        == "Received: by connector.example.test (postconn)\n"
           "\tid 0006615ab267c25e\n"
           "Subject: ?[2Jhello\n");
  auto whole = format_message(stored_content, true);
  CHECK(whole == format_message(stored_content, false) + "\nline one\n?]0;owned?\n");
  CHECK(format_message("Subject: no body", false) == "Subject: no body\n");

  canned_admin_api api;
  auto show = verb_at(api.url(), "show", "0006615ab267c25e");
  CHECK(run(show).out == format_message(stored_content, false));
  show.with_body = true;
  CHECK(run(show).out == whole);
  auto missing = run(verb_at(api.url(), "show", "0006615ab267c25f"));
  CHECK(missing.exit_code == 1);
  CHECK(missing.err == "postconn show: no message 0006615ab267c25f/content\n");
}

TEST_CASE("cluster forget says how many deliveries were adopted, in the right number") {
  CHECK(format_forget(json{{"node", "c"}, {"adopted", 1}})
        == "node c forgotten: 1 delivery adopted\n");
  CHECK(format_forget(json{{"node", "c"}, {"adopted", 0}})
        == "node c forgotten: 0 deliveries adopted\n");
  CHECK_THROWS(format_forget(json{{"node", "c"}}));
}

TEST_CASE("cluster forget posts to /cluster/forget/NODE, and the server's refusal exits 1") {
  canned_admin_api api;
  auto forgotten = run(verb_at(api.url(), "cluster forget", "c"));
  CHECK(forgotten.exit_code == 0);
  CHECK(forgotten.err.empty());
  CHECK(forgotten.out == "node c forgotten: 2,314 deliveries adopted\n");
  CHECK(api.last_path() == "/cluster/forget/c");
  auto member = run(verb_at(api.url(), "cluster forget", "b"));
  CHECK(member.exit_code == 1);
  CHECK(member.out.empty());
  CHECK(member.err == "postconn cluster forget: node b is still a member\n");
  refusing_port refusing;
  auto nameless = run(verb_at(refusing.url(), "cluster forget"));
  CHECK(nameless.exit_code == 2);
  CHECK(nameless.err == "postconn cluster forget: which node? give its name\n");
  auto filtered = verb_at(refusing.url(), "cluster forget", "c");
  filtered.filters["state"] = "held";
  CHECK(run(filtered).exit_code == 2);
}

TEST_CASE("action replies with messages and deliveries in flight say so, counts grouped") {
  CHECK(format_action(json{{"held", 2314}, {"in_flight", 12}})
        == "held 2,314 deliveries (12 in flight: held after their attempt)\n");
  CHECK(format_action(json{{"held", 2314}, {"in_flight", 0}}) == "held 2,314 deliveries\n");
  CHECK(format_action(json{{"deleted", 2500}, {"messages", 1500}, {"in_flight", 3}})
        == "deleted 1,500 messages, 2,500 deliveries (3 in flight: their messages stay; try "
           "again)\n");
  CHECK(format_action(json{{"bounced", 1}, {"messages", 1}, {"in_flight", 0}})
        == "bounced 1 message, 1 delivery\n");
  CHECK(format_action(json{{"requeued", 1000000}, {"postoffice", "sales"}, {"in_flight", 1}})
        == "requeued 1,000,000 deliveries (1 in flight: not moved; try again)\n");
  CHECK(format_action(json{{"flushed", 0}, {"in_flight", 2}})
        == "flushed 0 deliveries (2 in flight: being attempted already)\n");
}
