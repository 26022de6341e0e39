// Tests actors/smtp_session.cpp through CAF's test multiplexer
// (caf::io::network::test_multiplexer: no socket; the test writes the
// client's bytes into the connection and reads the session's replies from
// its output buffer) on the deterministic scheduler with simulated time,
// with a fake store (answers accept, fails it, or holds it until told; the
// store, not the session, tells the supervisor of new deliveries: see
// tests/actors/store.cpp). A small acceptor broker forks the session for the
// connection as actors/smtp_listener.cpp does. Covers the greeting and the
// EHLO extensions, a pipelined transaction answered 250 only once the store
// answered, 451 4.3.0 when the store fails or does not answer by
// data_timeout, 550 5.1.2 for a domain no postoffice takes, 503 for commands
// out of order, QUIT, and 421 4.4.2 after idle_timeout (the listener's
// once-a-second idle_atom, sent by the test).
#include <doctest/doctest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/test_multiplexer.hpp>
#include <caf/io/system_messages.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/smtp_session.hpp"
#include "messages/registry.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

const std::string queue_id = "0006615ab267c25e";

/// How the fake store answers accept.
enum class store_mode { answer, fail, hold };

struct fake_store_state {
  store_mode mode = store_mode::answer;
  /// Every message it was asked to commit.
  std::vector<incoming_message> accepted;
  /// Accepts held in hold mode, answered on (release_atom).
  std::vector<caf::response_promise> held;

  static inline const char* name = "fake_store";
};

accept_receipt receipt_for(const incoming_message& msg) {
  accept_receipt receipt{queue_id, {}};
  for (const auto& routed : msg.deliveries) {
    ledger_entry entry;
    entry.delivery_id = 1 + static_cast<std::int64_t>(receipt.deliveries.size());
    entry.message_id = queue_id;
    entry.postoffice = routed.postoffice;
    entry.recipients = routed.recipients;
    receipt.deliveries.push_back(entry);
  }
  return receipt;
}

caf::behavior fake_store(caf::stateful_actor<fake_store_state>* self) {
  return {
    [=](accept_atom, const incoming_message& msg) -> caf::result<accept_receipt> {
      auto& st = self->state;
      st.accepted.push_back(msg);
      if (st.mode == store_mode::fail)
        return make_error(store_errc::commit_failed, "disk full");
      if (st.mode == store_mode::hold) {
        st.held.push_back(self->make_response_promise());
        return caf::delegated<accept_receipt>{};
      }
      return receipt_for(msg);
    },
    [=](release_atom) {
      auto& st = self->state;
      for (auto& promise : st.held)
        promise.deliver(receipt_for(st.accepted.back()));
      st.held.clear();
    },
  };
}

/// Forks a session for each connection, as the SMTP listener does, and
/// hands the session's handle to the test.
caf::behavior acceptor(caf::io::broker* self, std::shared_ptr<const smtp_settings> settings,
                       store_actor store, caf::actor* session) {
  return {
    [=](const caf::io::new_connection_msg& msg) {
      *session = self->fork(smtp_session, msg.handle, settings, store, false);
    },
  };
}

config smtp_config_for_tests() {
  config cfg;
  cfg.server.hostname = "mx.example.test";
  cfg.smtp.max_message_size = 10'000'000;
  cfg.smtp.max_recipients = 100;
  cfg.smtp.idle_timeout = 300s;
  cfg.smtp.data_timeout = 600s;
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

struct smtp_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::io::network::test_multiplexer& mpx;
  caf::actor store_impl;
  caf::actor listener;
  caf::actor session;
  const caf::io::accept_handle acceptor_hdl = caf::io::accept_handle::from_int(1);
  const caf::io::connection_handle connection = caf::io::connection_handle::from_int(1);

  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.load<caf::io::middleman>();
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("middleman.network-backend", caf::atom("testing"));
    c.set("middleman.manual-multiplexing", true);
    c.set("middleman.heartbeat-interval", caf::timespan{0});
    c.set("middleman.workers", size_t{0});
    register_types(c);
    return c;
  }

  smtp_fixture()
    : sys(configure(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      mpx(dynamic_cast<caf::io::network::test_multiplexer&>(sys.middleman().backend())) {
    store_impl = sys.spawn(fake_store);
    run();
  }

  ~smtp_fixture() {
    sched.clock().cancel_all();
    for (const auto& actor : {session, listener, store_impl})
      if (actor)
        caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    run();
  }

  /// Runs actors and brokers until neither has anything left to do (timers
  /// do not fire: time moves only through advance()).
  void run() {
    for (;;) {
      auto ran_actor = sched.try_run_once();
      auto ran_broker = mpx.try_exec_runnable();
      if (!ran_actor && !ran_broker)
        return;
    }
  }

  /// A client connects; returns the session's greeting.
  std::string connect() {
    auto settings = make_smtp_settings(smtp_config_for_tests());
    listener = sys.middleman().spawn_broker(acceptor, settings,
                                            caf::actor_cast<store_actor>(store_impl), &session);
    run();
    auto broker = static_cast<caf::io::abstract_broker*>(
      caf::actor_cast<caf::abstract_actor*>(listener));
    broker->add_doorman(mpx.new_doorman(acceptor_hdl, 25));
    mpx.add_pending_connect(acceptor_hdl, connection);
    mpx.accept_connection(acceptor_hdl);
    run();
    REQUIRE(session);
    return take_output();
  }

  /// What the session wrote since the last look.
  std::string take_output() {
    auto& buf = mpx.output_buffer(connection);
    std::string text{buf.begin(), buf.end()};
    buf.clear();
    return text;
  }

  /// The client sends `text` (one chunk, any number of lines); returns the
  /// replies once everything ran.
  std::string say(const std::string& text) {
    mpx.virtual_send(connection, std::vector<char>{text.begin(), text.end()});
    run();
    return take_output();
  }

  /// Lets simulated time pass, then the listener's tick asks the session to
  /// check its deadlines; returns what the session wrote.
  std::string advance(caf::timespan duration) {
    sched.advance_time(duration);
    run();
    caf::anon_send(session, idle_atom::value);
    run();
    return take_output();
  }

  /// The session closed the connection (and stopped reading it).
  bool closed() {
    return mpx.stopped_reading(connection);
  }

  bool session_ended() {
    return caf::actor_cast<caf::abstract_actor*>(session)->getf(
      caf::abstract_actor::is_terminated_flag);
  }

  fake_store_state& store() {
    return dynamic_cast<caf::stateful_actor<fake_store_state>&>(
             *caf::actor_cast<caf::abstract_actor*>(store_impl))
      .state;
  }
};

const std::string ehlo_reply = "250-mx.example.test\r\n"
                               "250-PIPELINING\r\n"
                               "250-SIZE 10000000\r\n"
                               "250-8BITMIME\r\n"
                               "250 ENHANCEDSTATUSCODES\r\n";

const std::string envelope = "EHLO client.example.test\r\n"
                             "MAIL FROM:<ann@support.example.test>\r\n"
                             "RCPT TO:<bob@sales.example.test>\r\n"
                             "RCPT TO:<carol@sales.example.test>\r\n"
                             "DATA\r\n";

const std::string envelope_replies = ehlo_reply
                                     + "250 2.1.0 Ok\r\n"
                                       "250 2.1.5 Ok\r\n"
                                       "250 2.1.5 Ok\r\n"
                                       "354 End data with <CR><LF>.<CR><LF>\r\n";

const std::string message = "Subject: quarterly report\r\n\r\nnumbers\r\n..dot-stuffed\r\n.\r\n";

} // namespace

TEST_CASE_FIXTURE(smtp_fixture, "the session greets with 220 and answers EHLO with its extensions, HELO with its name") {
  CHECK(connect() == "220 mx.example.test ESMTP postconn\r\n");
  CHECK(say("EHLO client.example.test\r\n") == ehlo_reply); // no STARTTLS: no certificate
  CHECK(say("HELO client.example.test\r\n") == "250 mx.example.test\r\n");
  CHECK(say("EHLO\r\n") == "501 5.5.4 Syntax: EHLO domain\r\n");
  CHECK(say("NOOP\r\n") == "250 2.0.0 Ok\r\n");
  CHECK_FALSE(closed());
}

TEST_CASE_FIXTURE(smtp_fixture, "a pipelined transaction is answered 250 only once the store has committed it") {
  store().mode = store_mode::hold;
  connect();
  CHECK(say(envelope) == envelope_replies);
  CHECK(say(message) == ""); // the store has not answered
  REQUIRE(store().accepted.size() == 1);
  // Commands pipelined meanwhile wait for the answer.
  CHECK(say("NOOP\r\n") == "");
  caf::anon_send(store_impl, release_atom::value);
  run();
  CHECK(take_output() == "250 2.0.0 Ok: queued as " + queue_id + "\r\n250 2.0.0 Ok\r\n");
  const auto& msg = store().accepted.front();
  CHECK(msg.sender == "ann@support.example.test");
  REQUIRE(msg.deliveries.size() == 1);
  CHECK(msg.deliveries[0].postoffice == "sales");
  CHECK(msg.deliveries[0].recipients
        == std::vector<std::string>{"bob@sales.example.test", "carol@sales.example.test"});
  CHECK(msg.content.rfind("Received: from client.example.test ([test])\r\n\tby mx.example.test "
                          "(postconn) with ESMTP; ", 0)
        == 0);
  auto body_at = msg.content.find("Subject: quarterly report\r\n");
  REQUIRE(body_at != std::string::npos);
  CHECK(msg.content.substr(body_at)
        == "Subject: quarterly report\r\n\r\nnumbers\r\n.dot-stuffed\r\n");
  // The transaction is over: a new one may start.
  CHECK(say("MAIL FROM:<>\r\n") == "250 2.1.0 Ok\r\n");
}

TEST_CASE_FIXTURE(smtp_fixture, "a store that fails the commit gets the client 451 4.3.0, and the transaction is reset") {
  store().mode = store_mode::fail;
  connect();
  say(envelope);
  CHECK(say(message) == "451 4.3.0 Temporary failure: queue not available, try again later\r\n");
  CHECK(store().accepted.size() == 1);
  CHECK_FALSE(closed());
  // The transaction was reset: RCPT needs a new MAIL.
  CHECK(say("RCPT TO:<bob@sales.example.test>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  store().mode = store_mode::answer;
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\nRCPT TO:<bob@sales.example.test>\r\n"
            "DATA\r\n" + message)
        == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
           "250 2.0.0 Ok: queued as " + queue_id + "\r\n");
  CHECK(store().accepted.size() == 2);
}

TEST_CASE_FIXTURE(smtp_fixture, "a store that has not answered by data_timeout gets the client 451 and a closed connection, and the session waits for its answer") {
  store().mode = store_mode::hold;
  connect();
  say(envelope);
  CHECK(say(message) == "");
  CHECK(advance(599s) == "");
  CHECK_FALSE(closed());
  CHECK(advance(1s) == "451 4.3.0 Temporary failure: queue not available, try again later\r\n");
  CHECK(closed());
  CHECK_FALSE(session_ended()); // it waits for the store's answer
  caf::anon_send(store_impl, release_atom::value);
  run();
  CHECK(take_output() == "");
  CHECK(session_ended());
}

TEST_CASE_FIXTURE(smtp_fixture, "a recipient in a domain no postoffice takes gets 550 5.1.2, the others are taken") {
  connect();
  CHECK(say("EHLO client.example.test\r\nMAIL FROM:<ann@support.example.test>\r\n"
            "RCPT TO:<dave@elsewhere.example.test>\r\n")
        == ehlo_reply + "250 2.1.0 Ok\r\n"
                        "550 5.1.2 No postoffice takes domain elsewhere.example.test\r\n");
  CHECK(say("DATA\r\n") == "554 5.5.1 Error: no valid recipients\r\n");
  CHECK(say("RCPT TO:<bob@sales.example.test>\r\n") == "250 2.1.5 Ok\r\n");
}

TEST_CASE_FIXTURE(smtp_fixture, "commands out of order get 503 5.5.1") {
  connect();
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\n")
        == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  say("EHLO client.example.test\r\n");
  CHECK(say("RCPT TO:<bob@sales.example.test>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  CHECK(say("DATA\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\n") == "250 2.1.0 Ok\r\n");
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\n")
        == "503 5.5.1 Error: nested MAIL command\r\n");
  // RSET ends the transaction: RCPT needs MAIL again.
  CHECK(say("RSET\r\nRCPT TO:<bob@sales.example.test>\r\n")
        == "250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n");
  CHECK(store().accepted.empty());
}

TEST_CASE_FIXTURE(smtp_fixture, "QUIT is answered 221 and closes the connection") {
  connect();
  CHECK(say("QUIT\r\n") == "221 2.0.0 Bye\r\n");
  CHECK(closed());
  CHECK(session_ended());
}

TEST_CASE_FIXTURE(smtp_fixture, "a client silent for idle_timeout gets 421 4.4.2 and is disconnected") {
  connect();
  say("EHLO client.example.test\r\n");
  CHECK(advance(299s) == "");
  CHECK_FALSE(closed());
  // Activity starts the wait over.
  CHECK(say("NOOP\r\n") == "250 2.0.0 Ok\r\n");
  CHECK(advance(299s) == "");
  CHECK(advance(1s) == "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
  CHECK(closed());
  CHECK(session_ended());
}

TEST_CASE_FIXTURE(smtp_fixture, "a command line trickling in for longer than idle_timeout gets 421 4.4.2") {
  connect();
  CHECK(say("EH") == "");
  for (int i = 0; i < 4; ++i) {
    CHECK(advance(60s) == "");
    CHECK(say("L") == ""); // one byte a minute is never silent...
  }
  // ...but the line began 300 s ago.
  CHECK(advance(60s) == "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
  CHECK(closed());
}
