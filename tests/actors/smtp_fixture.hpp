// NAME
//   smtp_fixture -- the SMTP listener and its sessions on CAF's test
//   multiplexer, for tests/actors/smtp_session.cpp and smtp_listener.cpp.
//
// DESCRIPTION
//   caf::io::network::test_multiplexer: no socket; the test writes a
//   client's bytes into its connection and reads the session's replies from
//   the connection's output buffer. The real listener accepts every
//   connection the test makes and forks its session (or refusal); brokers
//   and actors run on the deterministic scheduler with simulated time, so a
//   session's deadlines come with the listener's once-a-second tick when the
//   test lets time pass. The fake store answers accept, fails it, or holds
//   it until told (the store, not the session, tells the supervisor of new
//   deliveries: see tests/actors/store.cpp).
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/test_multiplexer.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/smtp_listener.hpp"
#include "messages/registry.hpp"

namespace postconn::test {

inline const std::string queue_id = "0006615ab267c25e";

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

inline accept_receipt receipt_for(const incoming_message& msg) {
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

inline caf::behavior fake_store(caf::stateful_actor<fake_store_state>* self) {
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

/// Two postoffices, sales and support, each taking its own domain.
inline config smtp_config_for_tests() {
  using namespace std::chrono_literals;
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
  caf::scoped_actor self;
  caf::actor store_impl;
  smtp_listener_broker listener;
  const caf::io::accept_handle acceptor_hdl = caf::io::accept_handle::from_int(1);
  /// The connection of a test with one client.
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

  explicit smtp_fixture(const config& smtp_config = smtp_config_for_tests())
    : sys(configure(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      mpx(dynamic_cast<caf::io::network::test_multiplexer&>(sys.middleman().backend())),
      self(sys, true) {
    store_impl = sys.spawn(fake_store);
    listener = sys.middleman().spawn_broker(smtp_listener, mpx.new_doorman(acceptor_hdl, 25),
                                            make_smtp_settings(smtp_config),
                                            caf::actor_cast<acceptor_actor>(store_impl));
    run();
  }

  ~smtp_fixture() {
    sched.clock().cancel_all();
    caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(store_impl, caf::exit_reason::user_shutdown);
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

  /// A client connects; returns what the server said (the greeting, or a
  /// refusal).
  std::string connect(caf::io::connection_handle hdl) {
    mpx.add_pending_connect(acceptor_hdl, hdl);
    mpx.accept_connection(acceptor_hdl);
    run();
    return take_output(hdl);
  }

  std::string connect() {
    return connect(connection);
  }

  /// What the server wrote to the client since the last look.
  std::string take_output(caf::io::connection_handle hdl) {
    auto& buf = mpx.output_buffer(hdl);
    std::string text{buf.begin(), buf.end()};
    buf.clear();
    return text;
  }

  std::string take_output() {
    return take_output(connection);
  }

  /// The client sends `text` (one chunk, any number of lines); returns the
  /// replies once everything ran.
  std::string say(caf::io::connection_handle hdl, const std::string& text) {
    mpx.virtual_send(hdl, std::vector<char>{text.begin(), text.end()});
    run();
    return take_output(hdl);
  }

  std::string say(const std::string& text) {
    return say(connection, text);
  }

  /// Lets simulated time pass: the listener's tick asks each session to
  /// check its deadlines. Returns what the session wrote.
  std::string advance(caf::timespan duration) {
    sched.advance_time(duration);
    run();
    return take_output();
  }

  /// The server closed the connection (and stopped reading it).
  bool closed(caf::io::connection_handle hdl) {
    return mpx.stopped_reading(hdl);
  }

  bool closed() {
    return closed(connection);
  }

  /// The sessions the listener counts as open.
  std::size_t open_sessions() {
    return dynamic_cast<std::remove_pointer_t<smtp_listener_pointer>&>(
             *caf::actor_cast<caf::abstract_actor*>(listener))
      .state.sessions.size();
  }

  fake_store_state& store() {
    return dynamic_cast<caf::stateful_actor<fake_store_state>&>(
             *caf::actor_cast<caf::abstract_actor*>(store_impl))
      .state;
  }
};

} // namespace postconn::test
