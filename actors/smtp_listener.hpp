// NAME
//   smtp_listener -- accepts SMTP connections and forks a session for each.
//
// DESCRIPTION
//   A typed broker (smtp_listener_broker) that accepts on the listening
//   socket serve() bound at start-up, handed over as a doorman (so tests can
//   hand it one of CAF's test multiplexer, which takes no real socket).
//   It keeps the sessions it forked (`status` answers how many are open); a
//   connection beyond smtp.max_connections, or beyond
//   smtp.max_connections_per_client from one address, is answered 421 4.7.0
//   and closed (after a second look, so a session that just ended is not
//   counted);
//   when it is told to exit (shutdown), it stops accepting and tells every
//   open session to say 421 and close. `(reload_atom, settings)` gives new
//   settings (a config reload): sessions opened from then on use them, open
//   ones keep theirs. `(backlog_atom, bool)` from the supervisor, and
//   `(expire_atom, bool)` from the cluster actor (the node cannot prove it
//   holds its etcd lease), go to every open session and to those opened
//   later. Once a second while any
//   session is open, it tells each to check its deadlines.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

#include <caf/io/doorman.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/smtp_session.hpp"
#include "messages/actors.hpp"

namespace postconn {

struct smtp_listener_state {
  /// Sessions still open, with their client's address.
  std::unordered_map<smtp_session_broker, std::string> sessions;
  /// Open sessions by client address.
  std::unordered_map<std::string, std::size_t> per_client;
  /// For the sessions opened from now on.
  std::shared_ptr<const smtp_settings> settings;
  /// The queue is over its high-water mark (the supervisor says so).
  bool backlogged = false;
  /// This node cannot prove it holds its etcd lease (the cluster actor
  /// says so): it owns no postoffice.
  bool fenced = false;
  /// A tick is on its way: every second while sessions are open, each is
  /// told to check its deadlines.
  bool ticking = false;

  static inline const char* name = "smtp_listener";
};

using smtp_listener_pointer =
  caf::stateful_actor<smtp_listener_state, typed_broker_for<smtp_listener_broker>::type>*;

smtp_listener_broker::behavior_type smtp_listener(smtp_listener_pointer self,
                                                  caf::io::doorman_ptr listening,
                                                  std::shared_ptr<const smtp_settings> settings,
                                                  acceptor_actor store);

} // namespace postconn
