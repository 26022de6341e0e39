// Tests actors/ndr_generator.cpp on the deterministic scheduler with a fake
// store (answers fetch and report, fails them, or never answers) and a fake
// supervisor that records what it is told and watches the generator end:
// the DSN is built from the stored original and committed with the bounce
// in one report request; the supervisor hears reported_atom with the
// delivery's values (the store announces the DSN's deliveries); a delay
// warning says
// "delayed"; the null sender and an unroutable sender get no DSN while the
// bounce is still committed; a failing or silent store ends the generator
// with the error (the supervisor sees only the down message).
#include <doctest/doctest.h>

#include <optional>
#include <tuple>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/ndr_generator.hpp"
#include "tests/actor_fixture.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t t0 = 1'700'000'000;
const std::string original_id = "0006615ab267c25e";
const std::string original_content
  = "From: Ann <ann@support.example.test>\r\nSubject: quarterly report\r\n"
    "Message-ID: <q3@support.example.test>\r\n\r\nnumbers\r\n";

/// How a fake store answers one kind of request.
enum class answer_mode { answer, fail, hang, missing };

struct fake_store_state {
  answer_mode fetch_mode = answer_mode::answer;
  answer_mode report_mode = answer_mode::answer;
  std::string sender = "ann@support.example.test";
  /// Every fetch, by queue id.
  std::vector<std::string> fetched;
  /// Every report request: the delivery's values, the attempt, its
  /// recipients' outcomes, the DSN.
  struct report_request {
    ledger_entry entry;
    attempt_record attempt;
    std::vector<recipient_record> recipients;
    incoming_message dsn;
  };
  std::vector<report_request> reports;
  /// Requests left unanswered in hang mode.
  std::vector<caf::response_promise> hung;

  static inline const char* name = "fake_store";
};

/// Answers fetch and report as the store would (a report is answered with
/// one ledger entry per DSN delivery), or fails them, or never answers.
caf::behavior fake_store(caf::stateful_actor<fake_store_state>* self) {
  return {
    [=](fetch_atom, const std::string& id) -> caf::result<stored_message> {
      auto& st = self->state;
      st.fetched.push_back(id);
      if (st.fetch_mode == answer_mode::fail)
        return make_error(store_errc::read_failed, "disk I/O error");
      if (st.fetch_mode == answer_mode::missing)
        return make_error(store_errc::not_found, "no message " + id);
      if (st.fetch_mode == answer_mode::hang) {
        st.hung.push_back(self->make_response_promise());
        return caf::delegated<stored_message>{};
      }
      return stored_message{id, st.sender, original_content, t0 - 3600};
    },
    [=](report_atom, const ledger_change& change,
        const incoming_message& dsn) -> caf::result<std::vector<ledger_entry>> {
      auto& st = self->state;
      st.reports.push_back({change.entry, change.attempt, change.recipients, dsn});
      if (st.report_mode == answer_mode::fail)
        return make_error(store_errc::commit_failed, "disk full");
      if (st.report_mode == answer_mode::hang) {
        st.hung.push_back(self->make_response_promise());
        return caf::delegated<std::vector<ledger_entry>>{};
      }
      std::vector<ledger_entry> deliveries;
      for (const auto& routed : dsn.deliveries) {
        ledger_entry e;
        e.delivery_id = 900 + static_cast<std::int64_t>(deliveries.size());
        e.message_id = "00066160000000aa";
        e.postoffice = routed.postoffice;
        e.recipients = routed.recipients;
        e.queued_at = dsn.received_at;
        deliveries.push_back(e);
      }
      return deliveries;
    },
  };
}

struct fake_supervisor_state {
  /// Every reported_atom: the delivery's values.
  std::vector<ledger_entry> reported;
  /// The generator's exit reason, once it ended.
  std::optional<caf::error> ended;

  static inline const char* name = "fake_supervisor";
};

/// Records reported_atom, and watches the actor it is told to watch as the
/// supervisor watches its NDR generators.
caf::behavior fake_supervisor(caf::stateful_actor<fake_supervisor_state>* self) {
  self->set_down_handler([=](caf::down_msg& msg) { self->state.ended = msg.reason; });
  return {
    [=](reported_atom, const ledger_entry& entry) {
      self->state.reported.push_back(entry);
    },
    [=](watch_atom, const caf::actor& generator) { self->monitor(generator); },
  };
}

config two_postoffices() {
  config cfg;
  cfg.server.hostname = "connector.example.test";
  postoffice_config sales;
  sales.name = "sales";
  sales.domains = {"sales.example.test"};
  sales.path = "/srv/sales";
  postoffice_config support = sales;
  support.name = "support";
  support.domains = {"support.example.test"};
  support.path = "/srv/support";
  cfg.postoffices = {sales, support};
  return cfg;
}

/// Delivery 7 of the original to postoffice sales: bob refused (5.1.1),
/// after 3 failed opens and a transfer.
ledger_decision bounce_decision() {
  ledger_decision d;
  d.entry.delivery_id = 7;
  d.entry.message_id = original_id;
  d.entry.postoffice = "sales";
  d.entry.recipients = {};
  d.entry.state = delivery_state::bounced;
  d.entry.open_retries = 3;
  d.entry.transfer_retries = 0;
  d.entry.attempts = 4;
  d.entry.queued_at = t0 - 3600;
  d.entry.first_attempt_at = t0 - 3000;
  d.entry.last_error_code = "5.1.1";
  d.entry.last_error_text = "550 5.1.1 <bob@sales.example.test>: mailbox unknown";
  d.attempt = {7, t0, "rejected", "5.1.1", d.entry.last_error_text};
  d.bounced = {{"bob@sales.example.test", "5.1.1",
                "550 5.1.1 <bob@sales.example.test>: mailbox unknown", true}};
  d.recipients = {{"bob@sales.example.test", recipient_state::bounced, "5.1.1",
                   "550 5.1.1 <bob@sales.example.test>: mailbox unknown", t0}};
  return d;
}

/// The same delivery still deferred after 4 hours, 24 failed opens 600 s
/// apart: a delay warning for carol.
ledger_decision delay_decision() {
  ledger_decision d;
  d.entry.delivery_id = 8;
  d.entry.message_id = original_id;
  d.entry.postoffice = "sales";
  d.entry.recipients = {"carol@sales.example.test"};
  d.entry.state = delivery_state::deferred;
  d.entry.open_retries = 24;
  d.entry.attempts = 24;
  d.entry.queued_at = t0 - 4 * 3600;
  d.entry.first_attempt_at = t0 - 4 * 3600;
  d.entry.next_attempt_at = t0 + 600;
  d.entry.delay_warned = true;
  d.attempt = {8, t0, "open_failed", "4.4.1", "share not mounted"};
  d.delayed = {{"carol@sales.example.test", "4.4.1", "share not mounted", false}};
  return d;
}

/// A DSN taken apart: its header block, the boundary, the parts (each with
/// its own header block and body).
struct parsed_dsn {
  std::string header;
  std::string boundary;
  struct part {
    std::string header;
    std::string body;
  };
  std::vector<part> parts;
};

std::pair<std::string, std::string> split_header(const std::string& text) {
  auto end = text.find("\r\n\r\n");
  if (end == std::string::npos)
    return {text, ""};
  return {text.substr(0, end + 2), text.substr(end + 4)};
}

parsed_dsn parse_dsn(const std::string& text) {
  parsed_dsn dsn;
  std::string body;
  std::tie(dsn.header, body) = split_header(text);
  const std::string key = "boundary=\"";
  auto at = dsn.header.find(key);
  if (at == std::string::npos)
    return dsn;
  at += key.size();
  dsn.boundary = dsn.header.substr(at, dsn.header.find('"', at) - at);
  auto delimiter = "\r\n--" + dsn.boundary;
  auto closing = delimiter + "--\r\n";
  auto end = body.rfind(closing);
  if (end == std::string::npos || end + closing.size() != body.size())
    return dsn; // no closing delimiter at the very end: no parts
  auto pos = body.find(delimiter);
  while (pos != std::string::npos && pos < end) {
    auto start = pos + delimiter.size() + 2; // the CRLF after the delimiter
    auto next = body.find(delimiter, start);
    auto [header, content] = split_header(body.substr(start, next - start));
    dsn.parts.push_back({header, content});
    pos = next;
  }
  return dsn;
}

struct ndr_fixture : test::actor_fixture {
  caf::actor store_impl = sys.spawn(fake_store);
  caf::actor sup_impl = sys.spawn(fake_supervisor);
  std::shared_ptr<const ndr_settings> settings = std::make_shared<const ndr_settings>(
    ndr_settings{"connector.example.test", routing_table{two_postoffices()}});

  ndr_fixture() {
    sched.run();
  }

  ~ndr_fixture() {
    for (const auto& actor : {store_impl, sup_impl})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  fake_store_state& store() {
    return dynamic_cast<caf::stateful_actor<fake_store_state>&>(
             *caf::actor_cast<caf::abstract_actor*>(store_impl))
      .state;
  }

  fake_supervisor_state& sup() {
    return dynamic_cast<caf::stateful_actor<fake_supervisor_state>&>(
             *caf::actor_cast<caf::abstract_actor*>(sup_impl))
      .state;
  }

  /// Spawns a generator for `decision`, watched by the fake supervisor, and
  /// runs until nothing is left to do (timers do not fire).
  void generate(const ledger_decision& decision) {
    auto generator = sys.spawn(ndr_generator, decision, settings,
                               caf::actor_cast<store_actor>(store_impl),
                               caf::actor_cast<supervisor_actor>(sup_impl));
    self->send(sup_impl, watch_atom::value, caf::actor_cast<caf::actor>(generator));
    sched.run();
  }
};

} // namespace

TEST_CASE("the DSN parser of these tests finds three parts, and none in a cut-off DSN") {
  auto text = std::string{"Content-Type: multipart/report; boundary=\"b1\"\r\n\r\n"}
              + "\r\n--b1\r\nContent-Type: a\r\n\r\none\r\n--b1\r\nContent-Type: b\r\n\r\ntwo"
              + "\r\n--b1\r\nContent-Type: c\r\n\r\nthree\r\n--b1--\r\n";
  auto dsn = parse_dsn(text);
  CHECK(dsn.boundary == "b1");
  REQUIRE(dsn.parts.size() == 3);
  CHECK(dsn.parts[1].header == "Content-Type: b\r\n");
  CHECK(dsn.parts[1].body == "two");
  CHECK(parse_dsn(text.substr(0, text.size() - 4)).parts.empty());
}

TEST_CASE_FIXTURE(ndr_fixture, "a bounce: the DSN is built from the original and committed with the bounce in one report") {
  auto decision = bounce_decision();
  generate(decision);
  CHECK(store().fetched == std::vector<std::string>{original_id});
  REQUIRE(store().reports.size() == 1);
  const auto& report = store().reports.front();
  // The delivery's new values and its attempt, as decided.
  CHECK(report.entry.delivery_id == 7);
  CHECK(report.entry.state == delivery_state::bounced);
  CHECK(report.attempt.delivery_id == 7);
  CHECK(report.attempt.outcome == "rejected");
  CHECK(report.attempt.at == t0);
  // What became of bob goes into the same commit.
  REQUIRE(report.recipients.size() == 1);
  CHECK(report.recipients[0].address == "bob@sales.example.test");
  CHECK(report.recipients[0].state == recipient_state::bounced);
  CHECK(report.recipients[0].text == "550 5.1.1 <bob@sales.example.test>: mailbox unknown");
  // The DSN: to the original sender through the postoffice of its domain.
  const auto& dsn = report.dsn;
  CHECK(dsn.sender.empty());
  CHECK(dsn.received_at == t0);
  REQUIRE(dsn.deliveries.size() == 1);
  CHECK(dsn.deliveries[0].postoffice == "support");
  CHECK(dsn.deliveries[0].recipients == std::vector<std::string>{"ann@support.example.test"});
  auto parsed = parse_dsn(dsn.content);
  CHECK(parsed.header.find("Content-Type: multipart/report; report-type=delivery-status;")
        != std::string::npos);
  CHECK(parsed.header.find("To: <ann@support.example.test>\r\n") != std::string::npos);
  CHECK(parsed.header.find("From: ") != std::string::npos);
  CHECK(parsed.header.find("connector.example.test") != std::string::npos);
  REQUIRE(parsed.parts.size() == 3);
  CHECK(parsed.parts[0].header.find("Content-Type: text/plain") == 0);
  CHECK(parsed.parts[0].body.find("\r\n4 attempts were made over 50m") != std::string::npos);
  CHECK(parsed.parts[1].header == "Content-Type: message/delivery-status\r\n");
  CHECK(parsed.parts[2].header == "Content-Type: text/rfc822-headers\r\n");
  const auto& status = parsed.parts[1].body;
  CHECK(status.find("Reporting-MTA: dns; connector.example.test\r\n") != std::string::npos);
  CHECK(status.find("Final-Recipient: rfc822; bob@sales.example.test\r\n") != std::string::npos);
  CHECK(status.find("Action: failed\r\n") != std::string::npos);
  CHECK(status.find("Status: 5.1.1\r\n") != std::string::npos);
  CHECK(status.find("Diagnostic-Code: smtp; 550 5.1.1") != std::string::npos);
  // Part 3 quotes the stored original's header block, not its body.
  CHECK(parsed.parts[2].body.find("Subject: quarterly report\r\n") != std::string::npos);
  CHECK(parsed.parts[2].body.find("Message-ID: <q3@support.example.test>") != std::string::npos);
  CHECK(parsed.parts[2].body.find("numbers") == std::string::npos);
}

TEST_CASE_FIXTURE(ndr_fixture, "after the commit the supervisor hears the delivery's values, and the generator ends normally") {
  generate(bounce_decision());
  REQUIRE(sup().reported.size() == 1);
  const auto& entry = sup().reported.front();
  CHECK(entry.delivery_id == 7);
  CHECK(entry.message_id == original_id);
  CHECK(entry.state == delivery_state::bounced);
  CHECK(entry.open_retries == 3);
  // The DSN's deliveries reach the supervisor from the store, not from here.
  REQUIRE(store().reports.size() == 1);
  REQUIRE(store().reports[0].dsn.deliveries.size() == 1);
  CHECK(store().reports[0].dsn.deliveries[0].postoffice == "support");
  REQUIRE(sup().ended);
  CHECK_FALSE(*sup().ended); // quit() without an error
}

TEST_CASE_FIXTURE(ndr_fixture, "a delay warning: the same DSN with Action: delayed and the class 4 status") {
  generate(delay_decision());
  REQUIRE(store().reports.size() == 1);
  const auto& report = store().reports.front();
  CHECK(report.entry.delivery_id == 8);
  CHECK(report.entry.state == delivery_state::deferred);
  CHECK(report.entry.delay_warned);
  REQUIRE(report.dsn.deliveries.size() == 1);
  auto parsed = parse_dsn(report.dsn.content);
  CHECK(parsed.header.find("multipart/report; report-type=delivery-status") != std::string::npos);
  REQUIRE(parsed.parts.size() == 3);
  const auto& status = parsed.parts[1].body;
  CHECK(status.find("Final-Recipient: rfc822; carol@sales.example.test\r\n") != std::string::npos);
  CHECK(status.find("Action: delayed\r\n") != std::string::npos);
  CHECK(status.find("Status: 4.4.1\r\n") != std::string::npos);
  CHECK(status.find("Action: failed") == std::string::npos);
  // The attempts the ledger counts: 24 failed opens, not one more.
  CHECK(parsed.parts[0].body.find("\r\n24 attempts were made over 4h") != std::string::npos);
  REQUIRE(sup().reported.size() == 1);
  CHECK(sup().reported[0].state == delivery_state::deferred);
  REQUIRE(sup().ended);
  CHECK_FALSE(*sup().ended);
}

TEST_CASE_FIXTURE(ndr_fixture, "an original with the null sender gets no DSN, and the bounce is still committed and reported") {
  store().sender = "";
  generate(bounce_decision());
  REQUIRE(store().reports.size() == 1);
  const auto& report = store().reports.front();
  CHECK(report.entry.delivery_id == 7);
  CHECK(report.entry.state == delivery_state::bounced);
  CHECK(report.dsn.deliveries.empty());
  CHECK(report.dsn.content.empty());
  REQUIRE(sup().reported.size() == 1);
  CHECK(sup().reported[0].delivery_id == 7);
  REQUIRE(sup().ended);
  CHECK_FALSE(*sup().ended);
}

TEST_CASE_FIXTURE(ndr_fixture, "a sender whose domain no postoffice takes gets no DSN, and the bounce is still committed") {
  store().sender = "ann@elsewhere.example.test";
  generate(bounce_decision());
  REQUIRE(store().reports.size() == 1);
  CHECK(store().reports[0].dsn.deliveries.empty());
  REQUIRE(sup().reported.size() == 1);
}

TEST_CASE_FIXTURE(ndr_fixture, "an unreadable original commits nothing and ends the generator with the store's error") {
  // The supervisor then decides the bounce again after a pause: a DSN is
  // never dropped because a read failed once.
  store().fetch_mode = answer_mode::fail;
  generate(bounce_decision());
  CHECK(store().fetched.size() == 1);
  CHECK(store().reports.empty());
  CHECK(sup().reported.empty());
  REQUIRE(sup().ended);
  CHECK(is_store_error(*sup().ended, store_errc::read_failed));
}

TEST_CASE_FIXTURE(ndr_fixture, "an original gone from the queue: the bounce is committed without a DSN (nobody to address)") {
  store().fetch_mode = answer_mode::missing;
  generate(bounce_decision());
  REQUIRE(store().reports.size() == 1);
  CHECK(store().reports[0].entry.state == delivery_state::bounced);
  CHECK(store().reports[0].dsn.deliveries.empty());
  REQUIRE(sup().reported.size() == 1);
  REQUIRE(sup().ended);
  CHECK_FALSE(*sup().ended);
}

TEST_CASE_FIXTURE(ndr_fixture, "a fetch unanswered for 120 s times out and is handled like an unreadable original") {
  store().fetch_mode = answer_mode::hang;
  generate(bounce_decision());
  CHECK(store().fetched.size() == 1);
  sched.advance_time(119s);
  sched.run();
  CHECK_FALSE(sup().ended);
  sched.advance_time(1s);
  sched.run();
  CHECK(store().reports.empty());
  CHECK(sup().reported.empty());
  REQUIRE(sup().ended);
  CHECK(*sup().ended == caf::sec::request_timeout);
}

TEST_CASE_FIXTURE(ndr_fixture, "a failed report commit ends the generator with the store's error and tells the supervisor nothing") {
  store().report_mode = answer_mode::fail;
  generate(bounce_decision());
  REQUIRE(store().reports.size() == 1);
  CHECK(sup().reported.empty());
  REQUIRE(sup().ended);
  CHECK(is_store_error(*sup().ended, store_errc::commit_failed));
}

TEST_CASE_FIXTURE(ndr_fixture, "a report unanswered for 120 s ends the generator with request_timeout") {
  store().report_mode = answer_mode::hang;
  generate(bounce_decision());
  REQUIRE(store().reports.size() == 1);
  sched.advance_time(119s);
  sched.run();
  CHECK_FALSE(sup().ended);
  sched.advance_time(1s);
  sched.run();
  CHECK(sup().reported.empty());
  REQUIRE(sup().ended);
  CHECK(*sup().ended == caf::sec::request_timeout);
}
