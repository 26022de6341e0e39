// Tests actors/smtp_listener.cpp on CAF's test multiplexer
// (tests/actors/smtp_fixture.hpp): the connection limits (421 4.7.0 with
// the reason, a slot freed when a session ends), the backlog flag and the
// cluster's fence passed to open sessions and to later ones, the status
// count, a reload's settings for new sessions only, and 421 4.3.2 from
// every open session at shutdown.
#include <doctest/doctest.h>

#include "tests/actors/smtp_fixture.hpp"

using namespace postconn;
using namespace postconn::test;

namespace {

const caf::io::connection_handle first = caf::io::connection_handle::from_int(1);
const caf::io::connection_handle second = caf::io::connection_handle::from_int(2);
const caf::io::connection_handle third = caf::io::connection_handle::from_int(3);

const std::string greeting = "220 mx.example.test ESMTP postconn\r\n";

config with_limits(std::uint32_t total, std::uint32_t per_client) {
  auto cfg = smtp_config_for_tests();
  cfg.smtp.max_connections = total;
  cfg.smtp.max_connections_per_client = per_client;
  return cfg;
}

/// Two connections from one client at once (the test multiplexer gives
/// every connection the same address).
struct per_client_limit_fixture : smtp_fixture {
  per_client_limit_fixture() : smtp_fixture(with_limits(500, 2)) {
  }
};

/// One connection at once.
struct total_limit_fixture : smtp_fixture {
  total_limit_fixture() : smtp_fixture(with_limits(1, 20)) {
  }
};

} // namespace

TEST_CASE_FIXTURE(per_client_limit_fixture, "a connection over max_connections_per_client gets 421 4.7.0 and is closed, and a session that ends frees its slot") {
  CHECK(connect(first) == greeting);
  CHECK(connect(second) == greeting);
  CHECK(connect(third) == "421 4.7.0 mx.example.test Too many connections from your address\r\n");
  CHECK(closed(third));
  CHECK(open_sessions() == 2);
  CHECK(say(first, "QUIT\r\n") == "221 2.0.0 Bye\r\n");
  const auto fourth = caf::io::connection_handle::from_int(4);
  CHECK(connect(fourth) == greeting);
  CHECK_FALSE(closed(fourth));
  CHECK(open_sessions() == 2);
}

TEST_CASE_FIXTURE(total_limit_fixture, "a connection over max_connections gets 421 4.7.0 and is closed") {
  CHECK(connect(first) == greeting);
  CHECK(connect(second) == "421 4.7.0 mx.example.test Too many connections\r\n");
  CHECK(closed(second));
  CHECK_FALSE(closed(first));
}

TEST_CASE_FIXTURE(smtp_fixture, "the backlog flag reaches open sessions and those opened later, and status counts the open sessions") {
  smtp_listener_actor as_others_see_it = listener;
  connect(first);
  caf::anon_send(as_others_see_it, backlog_atom::value, true);
  run();
  const std::string mail = "EHLO client.example.test\r\nMAIL FROM:<ann@support.example.test>\r\n";
  const std::string refused = "452 4.3.1 Insufficient system storage, try again later\r\n";
  CHECK(say(first, mail).find(refused) != std::string::npos);
  connect(second);
  CHECK(say(second, mail).find(refused) != std::string::npos);
  auto status = self->request(as_others_see_it, caf::infinite, status_atom::value);
  run();
  std::uint64_t open = 0;
  status.receive([&](std::uint64_t n) { open = n; },
                 [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(open == 2);
  caf::anon_send(as_others_see_it, backlog_atom::value, false);
  run();
  CHECK(say(first, "RSET\r\nMAIL FROM:<ann@support.example.test>\r\n")
        == "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n");
}

TEST_CASE_FIXTURE(smtp_fixture, "a fenced node answers RCPT TO 452 4.3.0 in open sessions and those opened later, until the fence rises") {
  smtp_listener_actor as_others_see_it = listener;
  connect(first);
  CHECK(say(first, "EHLO client.example.test\r\nMAIL FROM:<ann@example.org>\r\n")
          .find("250 2.1.0 Ok\r\n") != std::string::npos);
  caf::anon_send(as_others_see_it, expire_atom::value, true);
  run();
  const std::string refused = "452 4.3.0 Cannot take mail for <bob@sales.example.test> now: "
                              "this node lost its cluster membership, try again later\r\n";
  CHECK(say(first, "RCPT TO:<bob@sales.example.test>\r\n") == refused);
  connect(second);
  CHECK(say(second, "EHLO client.example.test\r\nMAIL FROM:<ann@example.org>\r\n"
                    "RCPT TO:<bob@sales.example.test>\r\n")
          .find(refused) != std::string::npos);
  caf::anon_send(as_others_see_it, expire_atom::value, false);
  run();
  CHECK(say(first, "RCPT TO:<bob@sales.example.test>\r\n") == "250 2.1.5 Ok\r\n");
}

TEST_CASE_FIXTURE(smtp_fixture, "a reload's settings are for sessions opened after it, open ones keep theirs") {
  connect(first);
  auto cfg = smtp_config_for_tests();
  cfg.server.hostname = "mx2.example.test";
  caf::anon_send(listener, reload_atom::value, make_smtp_settings(cfg));
  run();
  CHECK(connect(second) == "220 mx2.example.test ESMTP postconn\r\n");
  CHECK(say(first, "HELO client.example.test\r\n") == "250 mx.example.test\r\n");
}

TEST_CASE_FIXTURE(smtp_fixture, "at shutdown every open session says 421 4.3.2 and closes") {
  connect(first);
  connect(second);
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  run();
  for (auto hdl : {first, second}) {
    CHECK(take_output(hdl) == "421 4.3.2 mx.example.test Service shutting down, try again later\r\n");
    CHECK(closed(hdl));
  }
}
