// Tests runtime/admin/admin_api.cpp: the admin API on a free loopback port
// (admin_api binds the port of its config and does not tell which one port 0
// gave, so the test picks a free port first, as tests/e2e do), answered from
// fake supervisor, store and SMTP listener actors in a real actor system,
// and queried with cpp-httplib's client: GET /queue (the query reaching the
// supervisor, the limits from the config), /messages/ID (the ledger with
// its attempts and each recipient's outcome), /postoffices (up, down and
// unknown), /bounces, the status page (GET /, its headers, the token as
// ?token= for it alone), /metrics (Prometheus text; no up sample for a
// postoffice not probed yet), POST /flush and /messages/ID/hold, the verbs by
// filter (POST /queue/VERB), GET /queue/shape and /messages/ID/content, POST
// /cluster/forget/NODE (a fake cluster actor's count, its refusal as 409),
// the cluster's metrics, the bearer token (401 without or with a wrong one,
// 200 with it), an unknown resource (404),
// a bad parameter (400), a POST without Content-Length (400, after
// cpp-httplib's five-second read timeout), and a supervisor that is gone
// (503).
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "messages/registry.hpp"
#include "runtime/admin/admin_api.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using nlohmann::json;

namespace {

const std::string known_id = "0006615ab267c25e";

/// A verb's tally that tells which filter reached the supervisor: its
/// deliveries are postoffice sales 1000 + state deferred 100 + a recipient
/// 10 + a min_age 1 + 2 per message id; always 12 in flight.
verb_tally echo(const delivery_filter& filter) {
  verb_tally tally;
  tally.deliveries = (filter.postoffice == "sales" ? 1000 : 0)
                     + (filter.state == "deferred" ? 100 : 0)
                     + (filter.recipient.empty() ? 0 : 10) + (filter.queued_before > 0 ? 1 : 0)
                     + 2 * static_cast<std::uint32_t>(filter.message_ids.size());
  tally.in_flight = 12;
  return tally;
}

/// Answers the supervisor requests the API makes with fixed data; the
/// queue page echoes the query (its postoffice, state, offset, limit), so a
/// test sees what reached the supervisor.
caf::behavior fake_supervisor(caf::event_based_actor*) {
  return {
    [](page_atom, const queue_query& query) {
      ledger_entry e;
      e.delivery_id = 7;
      e.message_id = known_id;
      e.postoffice = query.filter.postoffice.empty() ? "sales" : query.filter.postoffice;
      e.recipients = {"bob@sales.example.test"};
      e.state = delivery_state::deferred;
      e.open_retries = 3;
      e.attempts = 4;
      e.queued_at = 1'700'000'000;
      e.next_attempt_at = 1'700'000'600;
      e.last_error_code = "4.4.1";
      e.last_error_text = "share not mounted";
      queue_page page;
      page.total = 1000 * query.offset + query.limit;
      page.deliveries = {e};
      if (!query.filter.state.empty())
        page.deliveries.clear();
      // A cursor or a recipient: a page with more after it.
      page.more = query.after_delivery == 7 || !query.filter.recipient.empty();
      return page;
    },
    [](postoffice_atom) {
      postoffice_report sales{"sales", "maildir", reachability::down, "root missing",
                              1'700'000'000, 2, 0, 0, 3, "", 1'699'990'000};
      postoffice_report support{"support", "maildir", reachability::up, "", 0, 0, 1, 1,
                                0, "", 0};
      postoffice_report archive{"archive", "smtp", reachability::unknown,
                                "not probed yet", 1'700'000'100, 0, 0, 0, 0, "", 0};
      return std::vector<postoffice_report>{sales, support, archive};
    },
    [](bounced_atom) {
      return std::vector<bounce_report>{{1'700'000'500, known_id, "sales",
                                         "nobody@sales.example.test", "5.1.1",
                                         "mailbox does not exist"}};
    },
    [](depth_atom) {
      return std::vector<queue_depth>{{"sales", delivery_state::deferred, 2},
                                      {"support", delivery_state::held, 1},
                                      {"support", delivery_state::in_flight, 1}};
    },
    [](outcomes_atom) {
      return std::vector<outcome_count>{{"sales", "open_failed", 9},
                                        {"support", "delivered", 4},
                                        {"", "5.1.1", 2}};
    },
    [](flush_atom, const delivery_filter& filter) {
      verb_tally tally;
      tally.deliveries = filter.postoffice == "sales" ? 2 : filter.only_messages ? 1 : 5;
      return tally;
    },
    [](hold_atom, const delivery_filter& filter) { return echo(filter); },
    [](release_atom, const delivery_filter& filter) { return echo(filter); },
    // One message: its attempt is under way. Otherwise as echo(), and the
    // messages were half as many.
    [](delete_atom, const delivery_filter& filter, bool with_ndr) {
      verb_tally tally;
      if (filter.only_messages && filter.message_ids.size() == 1) {
        tally.in_flight = 1;
        return tally;
      }
      tally = echo(filter);
      tally.messages = tally.deliveries / 2 + (with_ndr ? 1 : 0);
      return tally;
    },
    [](requeue_atom, const delivery_filter& filter, const std::string& postoffice) {
      auto tally = echo(filter);
      if (postoffice == "support")
        tally.refused = "postoffice support is not running yet";
      return tally;
    },
    // sales: one delivery of 0-5 minutes, two of 10-20, one older than 1280
    // minutes, the oldest 80000 s old; support: one of 5-10 minutes.
    [](shape_atom, const delivery_filter& filter, std::int64_t now) {
      std::vector<queue_shape> shapes;
      if (filter.postoffice.empty() || filter.postoffice == "sales")
        shapes.push_back({"sales", {1, 0, 2, 0, 0, 0, 0, 0, 0, 1}, now - 80000});
      if (filter.postoffice.empty() || filter.postoffice == "support")
        shapes.push_back({"support", {0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, now - 400});
      return shapes;
    },
    // Runs sales here; support's actor is elsewhere.
    [](fault_atom, const std::string& postoffice, const fault_config&) {
      return postoffice == "sales";
    },
  };
}

/// Knows one message (known_id); answers its counters.
caf::behavior fake_store(caf::event_based_actor*) {
  return {
    [](fetch_atom, const std::string& id) -> caf::result<stored_message> {
      if (id != known_id)
        return make_error(store_errc::not_found, "message " + id + " not found");
      return stored_message{id, "ann@support.example.test", "Subject: x\r\n\r\nbody\r\n",
                            1'700'000'000};
    },
    [](status_atom) {
      store_status st;
      st.commits = 5;
      st.writes = 12;
      st.failed_writes = 1;
      st.messages_accepted = 4;
      st.messages_purged = 2;
      st.free_bytes = 123456789;
      st.commit_latency_buckets = {1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1};
      st.commit_seconds = 2.5;
      return st;
    },
    // known_id has one delivery, 7, delivered to one recipient and refused
    // to another.
    [](load_atom, const std::string&) {
      ledger_entry e;
      e.delivery_id = 7;
      e.message_id = known_id;
      e.postoffice = "sales";
      e.state = delivery_state::delivered;
      e.attempts = 1;
      return std::vector<ledger_entry>{e};
    },
    [](load_atom, std::int64_t) {
      return std::vector<attempt_record>{{7, 1'700'000'060, "delivered", "", "1 delivered"}};
    },
    [](load_atom, outcomes_atom, std::int64_t) {
      return std::vector<recipient_record>{
        {"bob@sales.example.test", recipient_state::delivered, "2.0.0", "250 2.0.0 OK",
         1'700'000'060},
        {"eve@sales.example.test", recipient_state::bounced, "5.1.1",
         "550 5.1.1 <eve@sales.example.test>: User unknown", 1'700'000'060}};
    },
  };
}

/// The SMTP listener: three sessions open.
caf::behavior fake_listener(caf::event_based_actor*) {
  return {[](status_atom) { return std::uint64_t{3}; }};
}

/// A loopback port nobody listens on right now.
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

config admin_config_for(const std::filesystem::path& token_file) {
  config cfg;
  cfg.server.hostname = "connector.example.test";
  cfg.retry.max_open_retries = 144;
  cfg.retry.max_transfer_retries = 2;
  postoffice_config sales;
  sales.name = "sales";
  sales.domains = {"sales.example.test"};
  sales.path = "/srv/sales";
  sales.retry = cfg.retry;
  postoffice_config support = sales;
  support.name = "support";
  support.domains = {"support.example.test"};
  support.path = "/srv/support";
  cfg.postoffices = {sales, support};
  cfg.admin.token_file = token_file;
  return cfg;
}

struct admin_fixture {
  caf::actor_system_config sys_cfg;
  caf::actor_system sys{register_and_return(sys_cfg)};
  test::temp_dir dir;
  caf::actor sup = sys.spawn(fake_supervisor);
  caf::actor store = sys.spawn(fake_store);
  caf::actor listener = sys.spawn(fake_listener);
  std::uint16_t port = 0;
  std::unique_ptr<admin_api> api;

  static caf::actor_system_config& register_and_return(caf::actor_system_config& c) {
    register_types(c);
    return c;
  }

  ~admin_fixture() {
    if (api)
      api->stop();
    for (const auto& actor : {sup, store, listener})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }

  /// Starts the API on a free port; with a token, requests must carry it;
  /// with a cluster actor, as a cluster node.
  void start(const std::string& token = "", caf::actor cluster = {}) {
    std::filesystem::path token_file;
    if (!token.empty()) {
      token_file = dir / "admin.token";
      std::ofstream{token_file} << token << "\n";
    }
    auto cfg = admin_config_for(token_file);
    // Another process may take the free port before the API binds it.
    for (int tries = 0; !api && tries < 10; ++tries) {
      port = free_port();
      cfg.admin.listen = "127.0.0.1:" + std::to_string(port);
      try {
        api = std::make_unique<admin_api>(cfg);
      } catch (const std::runtime_error&) {
        continue;
      }
    }
    REQUIRE(api);
    api->serve(sys, caf::actor_cast<supervisor_actor>(sup), caf::actor_cast<store_actor>(store),
               caf::actor_cast<smtp_listener_actor>(listener),
               caf::actor_cast<cluster_actor>(cluster));
  }

  httplib::Client client(const std::string& token = "") {
    httplib::Client cli{"127.0.0.1", port};
    cli.set_connection_timeout(5);
    cli.set_read_timeout(15);
    if (!token.empty())
      cli.set_bearer_token_auth(token.c_str());
    return cli;
  }

  /// Sends `text` as it is and reads the reply until the server closes.
  std::string raw_request(const std::string& text) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{15, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0
        && ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
        reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
  }
};

json body_of(const httplib::Result& res) {
  return json::parse(res->body, nullptr, false);
}

} // namespace

TEST_CASE_FIXTURE(admin_fixture, "GET /queue lists the supervisor's page with the limits of the config") {
  start();
  auto cli = client();
  auto res = cli.Get("/queue");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "application/json");
  auto body = body_of(res);
  REQUIRE(body.is_object());
  CHECK(body["total"] == 100); // the default limit reached the supervisor
  REQUIRE(body["deliveries"].size() == 1);
  auto d = body["deliveries"][0];
  CHECK(d["delivery_id"] == 7);
  CHECK(d["message_id"] == known_id);
  CHECK(d["postoffice"] == "sales");
  CHECK(d["state"] == "deferred");
  CHECK(d["open_retries"] == 3);
  CHECK(d["attempts_made"] == 4);
  CHECK(d["max_open_retries"] == 144);
  CHECK(d["max_transfer_retries"] == 2);
  CHECK(d["recipients"] == json::array({"bob@sales.example.test"}));
  CHECK(d["last_error"] == "4.4.1 share not mounted");
  CHECK(body["now"].is_number_integer());
}

TEST_CASE_FIXTURE(admin_fixture, "GET /messages/ID shows each delivery's attempts and what became of each recipient") {
  start();
  auto cli = client();
  auto res = cli.Get("/messages/" + known_id);
  REQUIRE(res);
  CHECK(res->status == 200);
  auto body = body_of(res);
  REQUIRE(body["deliveries"].size() == 1);
  auto d = body["deliveries"][0];
  CHECK(d["state"] == "delivered");
  CHECK(d["recipients"].empty());
  CHECK(d["attempts_made"] == 1);
  REQUIRE(d["attempts"].size() == 1);
  CHECK(d["attempts"][0]["outcome"] == "delivered");
  CHECK(d["recipient_outcomes"]
        == json::parse(R"([
          {"recipient": "bob@sales.example.test", "status": "delivered", "code": "2.0.0",
           "text": "250 2.0.0 OK", "at": 1700000060},
          {"recipient": "eve@sales.example.test", "status": "bounced", "code": "5.1.1",
           "text": "550 5.1.1 <eve@sales.example.test>: User unknown", "at": 1700000060}])"));
}

TEST_CASE_FIXTURE(admin_fixture, "GET /queue passes its filters and page on, and refuses a limit that is not a number") {
  start();
  auto cli = client();
  auto res = cli.Get("/queue?postoffice=support&offset=2&limit=5000");
  REQUIRE(res);
  CHECK(res->status == 200);
  auto body = body_of(res);
  CHECK(body["total"] == 2 * 1000 + 1000); // offset 2, limit capped at 1000
  CHECK(body["deliveries"][0]["postoffice"] == "support");
  res = cli.Get("/queue?state=held");
  REQUIRE(res);
  CHECK(body_of(res)["deliveries"].empty());
  res = cli.Get("/queue?limit=ten");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(body_of(res)["error"].get<std::string>().find("whole numbers") != std::string::npos);
  res = cli.Get("/queue?limit=0");
  REQUIRE(res);
  CHECK(res->status == 400);
}

TEST_CASE_FIXTURE(admin_fixture, "GET /queue takes min_age as a duration and names the states when one is unknown") {
  start();
  auto cli = client();
  for (auto age : {"3600", "1h", "90s", "0"}) {
    auto res = cli.Get(std::string{"/queue?min_age="} + age);
    REQUIRE(res);
    CHECK_MESSAGE(res->status == 200, age);
  }
  auto res = cli.Get("/queue?min_age=soon");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(body_of(res)["error"].get<std::string>().find("duration") != std::string::npos);
  res = cli.Get("/queue?state=bogus");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(body_of(res)["error"]
        == "unknown state \"bogus\" (the queue holds queued, in_flight, deferred, held)");
  res = cli.Get("/queue?state=delivered"); // finished deliveries are not in the queue
  REQUIRE(res);
  CHECK(res->status == 400);
}

TEST_CASE_FIXTURE(admin_fixture, "an upper-case queue id names the same message") {
  start();
  auto cli = client();
  auto upper = known_id;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  REQUIRE(upper != known_id);
  auto res = cli.Post("/messages/" + upper + "/hold", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(body_of(res) == json{{"held", 2}}); // the fake store knows known_id only
}

/// Node "a" of a cluster in which node "b" owns support; node "c" is
/// gone, and its replicas make 3 deliveries when forgotten.
caf::behavior fake_cluster(caf::event_based_actor*) {
  return {
    [](status_atom) {
      cluster_report report;
      report.node = "a";
      report.members = {{"a", "127.0.0.1:4201"}, {"b", "127.0.0.1:4202"}};
      report.owners = {{"sales", "a"}, {"support", "b"}};
      report.replicas = 2;
      report.unreplicated = 4;
      return report;
    },
    [](forget_atom, const std::string& node, bool everywhere) -> caf::result<std::uint32_t> {
      if (node == "a" || node == "b")
        return caf::make_error(caf::sec::runtime_error,
                               "node " + node + " is " + (node == "a" ? "this node" : "a member"));
      return std::uint32_t{everywhere ? 3u : 1u};
    },
  };
}

TEST_CASE_FIXTURE(admin_fixture, "PUT /postoffices/P/fault to a postoffice that runs elsewhere is 409, not a 200 that does nothing") {
  start();
  auto cli = client();
  auto res = cli.Put("/postoffices/support/fault", R"({"mode": "unreachable"})",
                     "application/json");
  REQUIRE(res);
  CHECK(res->status == 409);
  CHECK(body_of(res)["error"] == "postoffice support is not running on this node");
  res = cli.Put("/postoffices/sales/fault", R"({"mode": "unreachable"})", "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE_FIXTURE(admin_fixture, "in a cluster the 409 for a fault names the node that owns the postoffice") {
  auto cluster = sys.spawn(fake_cluster);
  start("", cluster);
  auto cli = client();
  auto res = cli.Put("/postoffices/support/fault", R"({"mode": "unreachable"})",
                     "application/json");
  REQUIRE(res);
  CHECK(res->status == 409);
  CHECK(body_of(res)["error"]
        == "postoffice support runs on node b, not on this node (a): ask that node's admin API");
  caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(admin_fixture, "POST /cluster/forget/NODE: what every node adopted, the cluster's refusal as 409, a malformed name 400") {
  auto cluster = sys.spawn(fake_cluster);
  start("", cluster);
  auto cli = client();
  auto res = cli.Post("/cluster/forget/c", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(body_of(res) == json{{"node", "c"}, {"adopted", 3}}); // asked of every node
  for (auto [node, error] :
       {std::pair{"a", "node a is this node"}, std::pair{"b", "node b is a member"}}) {
    res = cli.Post(std::string{"/cluster/forget/"} + node, "", "application/json");
    REQUIRE(res);
    CHECK(res->status == 409);
    CHECK(body_of(res)["error"] == error);
  }
  res = cli.Post("/cluster/forget/Node_C", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(body_of(res)["error"]
        == "invalid node name \"Node_C\" (lower-case letters, digits and -)");
  // A cluster actor that does not answer is no refusal.
  caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
  res = cli.Post("/cluster/forget/c", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(body_of(res)["error"].get<std::string>().rfind("cluster: ", 0) == 0);
}

TEST_CASE_FIXTURE(admin_fixture, "in a cluster /metrics adds the members, the postoffices owned and the mail accepted unreplicated") {
  auto cluster = sys.spawn(fake_cluster);
  start("", cluster);
  auto res = client().Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  for (auto line : {"\npostconn_cluster_members 2\n", "\npostconn_cluster_postoffices_owned 1\n",
                    "\n# TYPE postconn_unreplicated_accepted_total counter\n"
                    "postconn_unreplicated_accepted_total 4\n"})
    CHECK_MESSAGE(res->body.find(line) != std::string::npos, std::string{line});
  caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(admin_fixture, "POST /cluster/forget/NODE on a single node is 404") {
  start();
  auto res = client().Post("/cluster/forget/c", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 404);
  CHECK(body_of(res)["error"] == "a single node: no [cluster] in its config");
}

TEST_CASE_FIXTURE(admin_fixture, "GET /postoffices shows each postoffice's probe and counts") {
  start();
  auto cli = client();
  auto res = cli.Get("/postoffices");
  REQUIRE(res);
  CHECK(res->status == 200);
  auto body = body_of(res);
  REQUIRE(body["postoffices"].size() == 3);
  auto sales = body["postoffices"][0];
  CHECK(sales["name"] == "sales");
  CHECK(sales["transport"] == "maildir");
  CHECK(sales["state"] == "down");
  CHECK(sales["problem"] == "root missing");
  CHECK(sales["since"] == 1'700'000'000);
  CHECK(sales["queued"] == 2);
  CHECK(sales["oldest_queued_at"] == 1'699'990'000);
  CHECK(sales["open_failures"] == 3);
  CHECK(sales["tls"] == "");
  CHECK_FALSE(sales.contains("owner")); // a single node
  auto support = body["postoffices"][1];
  CHECK(support["state"] == "up");
  CHECK(support["held"] == 1);
  CHECK(support["in_flight"] == 1);
  auto archive = body["postoffices"][2];
  CHECK(archive["state"] == "unknown");
  CHECK(archive["problem"] == "not probed yet");
  CHECK_FALSE(body.contains("cluster"));
  res = cli.Get("/cluster");
  REQUIRE(res);
  CHECK(res->status == 404);
}

TEST_CASE_FIXTURE(admin_fixture, "GET /metrics is Prometheus text with every family described and the actors' numbers") {
  start();
  auto cli = client();
  auto res = cli.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4");
  std::istringstream lines{res->body};
  std::set<std::string> helped, typed, sampled;
  std::map<std::string, std::string> samples;
  const std::regex sample{R"(([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? ([0-9.e+-]+))"};
  const std::regex comment{R"(# (HELP|TYPE) ([a-z_]+) .+)"};
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, comment)) {
      (m[1] == "HELP" ? helped : typed).insert(m[2]);
    } else {
      INFO("line: " << line);
      REQUIRE(std::regex_match(line, m, sample));
      auto family = std::regex_replace(m[1].str(), std::regex{"_(bucket|sum|count)$"}, "");
      sampled.insert(family);
      samples[m[1].str() + m[2].str()] = m[4];
    }
  }
  CHECK(sampled.size() >= 14);
  for (const auto& family : sampled) {
    INFO("family: " << family);
    CHECK(helped.count(family) == 1);
    CHECK(typed.count(family) == 1);
  }
  // Depths: every configured postoffice in every unfinished state, 0 when absent.
  CHECK(samples[R"(postconn_queue_deliveries{postoffice="sales",state="deferred"})"] == "2");
  CHECK(samples[R"(postconn_queue_deliveries{postoffice="sales",state="queued"})"] == "0");
  CHECK(samples[R"(postconn_queue_deliveries{postoffice="support",state="held"})"] == "1");
  CHECK(samples[R"(postconn_postoffice_up{postoffice="sales"})"] == "0");
  CHECK(samples[R"(postconn_postoffice_up{postoffice="support"})"] == "1");
  // Not probed yet: no up sample at all, and its state says so.
  CHECK(samples.count(R"(postconn_postoffice_up{postoffice="archive"})") == 0);
  CHECK(samples[R"(postconn_postoffice_state{postoffice="archive",state="unknown"})"] == "1");
  CHECK(samples[R"(postconn_postoffice_state{postoffice="archive",state="up"})"] == "0");
  CHECK(samples[R"(postconn_postoffice_state{postoffice="archive",state="down"})"] == "0");
  CHECK(samples[R"(postconn_postoffice_state{postoffice="sales",state="down"})"] == "1");
  CHECK(samples[R"(postconn_postoffice_state{postoffice="sales",state="unknown"})"] == "0");
  CHECK(samples[R"(postconn_postoffice_state{postoffice="support",state="up"})"] == "1");
  CHECK(samples[R"(postconn_postoffice_open_failures{postoffice="sales"})"] == "3");
  CHECK(samples["postconn_store_commits_total"] == "5");
  CHECK(samples["postconn_store_writes_total"] == "12");
  CHECK(samples["postconn_store_failed_writes_total"] == "1");
  CHECK(samples["postconn_smtp_sessions"] == "3");
  CHECK(samples["postconn_messages_received_total"] == "4");
  CHECK(samples["postconn_messages_purged_total"] == "2");
  CHECK(samples["postconn_queue_disk_free_bytes"] == "123456789");
  CHECK(samples[R"(postconn_attempts_total{postoffice="sales",outcome="open_failed"})"] == "9");
  CHECK(samples[R"(postconn_ndr_recipients_total{status="5.1.1"})"] == "2");
  // The histogram's buckets are cumulative and end with every commit.
  CHECK(samples[R"(postconn_store_commit_seconds_bucket{le="0.001"})"] == "1");
  CHECK(samples[R"(postconn_store_commit_seconds_bucket{le="0.0025"})"] == "3");
  CHECK(samples[R"(postconn_store_commit_seconds_bucket{le="1"})"] == "4");
  CHECK(samples[R"(postconn_store_commit_seconds_bucket{le="+Inf"})"] == "5");
  CHECK(samples["postconn_store_commit_seconds_count"] == "5");
  CHECK(samples["postconn_store_commit_seconds_sum"] == "2.5");
  // Ages: the oldest, and the deliveries in qshape's buckets, cumulative.
  CHECK(samples[R"(postconn_queue_oldest_seconds{postoffice="sales"})"] == "80000");
  CHECK(samples[R"(postconn_queue_oldest_seconds{postoffice="support"})"] == "400");
  CHECK(samples[R"(postconn_queue_age_deliveries{postoffice="sales",le="300"})"] == "1");
  CHECK(samples[R"(postconn_queue_age_deliveries{postoffice="sales",le="600"})"] == "1");
  CHECK(samples[R"(postconn_queue_age_deliveries{postoffice="sales",le="1200"})"] == "3");
  CHECK(samples[R"(postconn_queue_age_deliveries{postoffice="sales",le="76800"})"] == "3");
  CHECK(samples[R"(postconn_queue_age_deliveries{postoffice="sales",le="+Inf"})"] == "4");
  CHECK(samples[R"(postconn_queue_age_deliveries{postoffice="support",le="300"})"] == "0");
  CHECK(samples[R"(postconn_queue_age_deliveries{postoffice="support",le="600"})"] == "1");
}

TEST_CASE_FIXTURE(admin_fixture, "POST verbs: /flush and /messages/ID/hold ask the supervisor, an unknown postoffice or message is 404") {
  start();
  auto cli = client();
  auto res = cli.Post("/flush?postoffice=sales", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(body_of(res) == json{{"flushed", 2}});
  res = cli.Post("/flush", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"flushed", 5}});
  res = cli.Post("/messages/" + known_id + "/flush", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"flushed", 1}});
  res = cli.Post("/flush?postoffice=nowhere", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 404);
  CHECK(body_of(res)["error"] == "no postoffice nowhere");
  res = cli.Post("/messages/" + known_id + "/hold", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(body_of(res) == json{{"held", 2}}); // the filter of one message, as before
  res = cli.Post("/messages/00000000000000ff/hold", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 404);
  CHECK(body_of(res)["error"].get<std::string>().find("not found") != std::string::npos);
}

TEST_CASE_FIXTURE(admin_fixture, "with a token file every request needs the bearer token: 401 without it or with a wrong one, 200 with it") {
  start("s3cret-token");
  auto anonymous = client();
  auto res = anonymous.Get("/queue");
  REQUIRE(res);
  CHECK(res->status == 401);
  CHECK(res->get_header_value("WWW-Authenticate") == "Bearer");
  CHECK(body_of(res)["error"] == "missing or wrong bearer token");
  res = anonymous.Post("/flush", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 401);
  auto wrong = client("s3cret-tokex");
  res = wrong.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 401);
  auto prefix = client("s3cret");
  res = prefix.Get("/queue");
  REQUIRE(res);
  CHECK(res->status == 401);
  auto right = client("s3cret-token");
  res = right.Get("/queue");
  REQUIRE(res);
  CHECK(res->status == 200);
  res = right.Post("/flush", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE_FIXTURE(admin_fixture, "GET /bounces lists the supervisor's recent bounces") {
  start();
  auto res = client().Get("/bounces");
  REQUIRE(res);
  CHECK(res->status == 200);
  auto bounces = body_of(res)["bounces"];
  REQUIRE(bounces.size() == 1);
  CHECK(bounces[0] == json{{"at", 1'700'000'500}, {"message_id", known_id},
                           {"postoffice", "sales"}, {"recipient", "nobody@sales.example.test"},
                           {"status", "5.1.1"}, {"diagnostic", "mailbox does not exist"}});
}

TEST_CASE_FIXTURE(admin_fixture, "GET / is the status page, kept to itself by its headers") {
  start();
  auto res = client().Get("/");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "text/html; charset=utf-8");
  CHECK(res->body.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(res->body.find("<title>postconn status</title>") != std::string::npos);
  CHECK(res->body.find("/postoffices") != std::string::npos);
  // Nothing from elsewhere: no address with a host, no file to load.
  CHECK(res->body.find("://") == std::string::npos);
  CHECK(res->body.find(" src=") == std::string::npos);
  CHECK(res->body.find("<link") == std::string::npos);
  CHECK(res->get_header_value("Content-Security-Policy").find("default-src 'none'")
        != std::string::npos);
  CHECK(res->get_header_value("Referrer-Policy") == "no-referrer");
  CHECK(res->get_header_value("Cache-Control") == "no-store");
}

TEST_CASE_FIXTURE(admin_fixture, "with a token file the status page is 401 without the token, and takes it once as ?token=") {
  start("s3cret-token");
  auto anonymous = client();
  auto status_of = [](const httplib::Result& res) { return res ? res->status : -1; };
  auto res = anonymous.Get("/");
  REQUIRE(res);
  CHECK(res->status == 401);
  // Only the page, which asks for the token: it holds no data itself.
  CHECK(res->get_header_value("Content-Type") == "text/html; charset=utf-8");
  CHECK(res->body.find("token-form") != std::string::npos);
  CHECK(status_of(anonymous.Get("/?token=s3cret-tokex")) == 401);
  CHECK(status_of(anonymous.Get("/?token=s3cret-token")) == 200);
  CHECK(status_of(client("s3cret-token").Get("/")) == 200);
  // The query token opens the page only, never the data.
  CHECK(status_of(anonymous.Get("/postoffices?token=s3cret-token")) == 401);
  CHECK(status_of(anonymous.Get("/bounces?token=s3cret-token")) == 401);
}

TEST_CASE_FIXTURE(admin_fixture, "an unknown resource is 404 with a JSON error naming it") {
  start();
  auto cli = client();
  auto res = cli.Get("/nothing");
  REQUIRE(res);
  CHECK(res->status == 404);
  CHECK(body_of(res)["error"] == "no such resource: GET /nothing");
  res = cli.Post("/messages/not-hex/hold", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 404);
}

TEST_CASE_FIXTURE(admin_fixture, "a POST without Content-Length is 400 saying so") {
  start();
  auto reply = raw_request("POST /flush HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto head_end = reply.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  CHECK(reply.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  auto body = json::parse(reply.substr(head_end + 4), nullptr, false);
  REQUIRE(body.is_object());
  CHECK(body["error"]
        == "bad request: POST /flush has no Content-Length; send an empty body (curl -d '')");
}

TEST_CASE_FIXTURE(admin_fixture, "a supervisor that is gone gets 503 naming it") {
  start();
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  {
    // Wait for its end, so the request below cannot reach it.
    caf::scoped_actor self{sys};
    self->monitor(sup);
    self->receive([](const caf::down_msg&) {},
                  caf::after(std::chrono::seconds(10)) >> [] { FAIL("the supervisor did not end"); });
  }
  auto cli = client();
  auto res = cli.Get("/postoffices");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK(body_of(res)["error"].get<std::string>().rfind("supervisor: ", 0) == 0);
  res = cli.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 503);
}

TEST_CASE_FIXTURE(admin_fixture, "POST /queue/VERB passes its filter on and answers the counts, and without a filter it needs all=1") {
  start();
  auto cli = client();
  auto res = cli.Post("/queue/hold?postoffice=sales&state=deferred&recipient=bob&min_age=1h", "",
                      "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(body_of(res) == json{{"held", 1111}, {"in_flight", 12}});
  res = cli.Post("/queue/release", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(body_of(res)["error"]
        == "which deliveries? give postoffice, state, sender, recipient or min_age, or all=1 "
           "for every one");
  res = cli.Post("/queue/release?min_age=0", "", "application/json"); // no age: no filter
  REQUIRE(res);
  CHECK(res->status == 400);
  res = cli.Post("/queue/release?all=1", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"released", 0}, {"in_flight", 12}});
  res = cli.Post("/queue/delete?postoffice=sales", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"deleted", 1000}, {"messages", 500}, {"in_flight", 12}});
  res = cli.Post("/queue/delete?postoffice=sales&ndr=1", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"bounced", 1000}, {"messages", 501}, {"in_flight", 12}});
  res = cli.Post("/queue/flush?postoffice=sales", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"flushed", 2}, {"in_flight", 0}});
  res = cli.Post("/queue/hold?state=bogus", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 400);
}

TEST_CASE_FIXTURE(admin_fixture, "POST /queue/requeue needs a configured postoffice to move to, and a refusal is 409") {
  start();
  auto cli = client();
  auto res = cli.Post("/queue/requeue?state=deferred", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(body_of(res)["error"] == "requeue to which postoffice? give ?to=P");
  res = cli.Post("/queue/requeue?state=deferred&to=hr", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 404);
  CHECK(body_of(res)["error"] == "no postoffice hr");
  res = cli.Post("/queue/requeue?state=deferred&to=sales", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"requeued", 100}, {"postoffice", "sales"}, {"in_flight", 12}});
  res = cli.Post("/queue/requeue?state=deferred&to=support", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 409);
  CHECK(body_of(res)["error"] == "postoffice support is not running yet");
  // One message, some of its deliveries moved, some in flight: it says so.
  res = cli.Post("/messages/" + known_id + "/requeue?postoffice=sales", "", "application/json");
  REQUIRE(res);
  CHECK(body_of(res) == json{{"requeued", 2}, {"postoffice", "sales"}, {"in_flight", 12}});
}

TEST_CASE_FIXTURE(admin_fixture, "DELETE /messages/ID of a message whose attempt is under way is 409, as before the filters") {
  start();
  auto cli = client();
  auto res = cli.Delete("/messages/" + known_id);
  REQUIRE(res);
  CHECK(res->status == 409);
  CHECK(body_of(res)["error"] == "an attempt to deliver it is under way; try again in a moment");
  res = cli.Delete("/messages/00000000000000ff");
  REQUIRE(res);
  CHECK(res->status == 404);
}

TEST_CASE_FIXTURE(admin_fixture, "GET /queue passes a recipient and a cursor on, and names the next page") {
  start();
  auto cli = client();
  auto res = cli.Get("/queue?recipient=bob");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(body_of(res)["next"] == "1700000000-7");
  res = cli.Get("/queue?after=1700000000-7");
  REQUIRE(res);
  CHECK(body_of(res)["next"] == "1700000000-7"); // the cursor reached the supervisor
  res = cli.Get("/queue");
  REQUIRE(res);
  CHECK_FALSE(body_of(res).contains("next"));
  for (auto bad : {"7", "x-7", "1700000000-0", "-7"}) {
    res = cli.Get(std::string{"/queue?after="} + bad);
    REQUIRE(res);
    CHECK_MESSAGE(res->status == 400, bad);
  }
}

TEST_CASE_FIXTURE(admin_fixture, "GET /queue/shape answers the ages per postoffice and in all") {
  start();
  auto cli = client();
  auto res = cli.Get("/queue/shape");
  REQUIRE(res);
  CHECK(res->status == 200);
  auto body = body_of(res);
  CHECK(body["bounds"]
        == json::array({300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 76800}));
  CHECK(body["total"] == 5);
  CHECK(body["ages"] == json::array({1, 1, 2, 0, 0, 0, 0, 0, 0, 1}));
  REQUIRE(body["postoffices"].size() == 2);
  auto sales = body["postoffices"][0];
  CHECK(sales["name"] == "sales");
  CHECK(sales["total"] == 4);
  CHECK(sales["oldest_queued_at"] == body["now"].get<std::int64_t>() - 80000);
  res = cli.Get("/queue/shape?postoffice=support");
  REQUIRE(res);
  CHECK(body_of(res)["total"] == 1);
  res = cli.Get("/queue/shape?min_age=soon");
  REQUIRE(res);
  CHECK(res->status == 400);
}

TEST_CASE_FIXTURE(admin_fixture, "GET /messages/ID/content is the message as stored, message/rfc822") {
  start();
  auto cli = client();
  auto res = cli.Get("/messages/" + known_id + "/content");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "message/rfc822");
  CHECK(res->body == "Subject: x\r\n\r\nbody\r\n");
  res = cli.Get("/messages/00000000000000ff/content");
  REQUIRE(res);
  CHECK(res->status == 404);
}
