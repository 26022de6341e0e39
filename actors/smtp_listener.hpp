// NAME
//   smtp_listener -- accepts SMTP connections and forks a session for each.
//
// DESCRIPTION
//   A broker that takes over the listening socket serve() bound at start-up.
//   It keeps the sessions it forked (`status` answers how many are open);
//   when it is told to exit (shutdown), it stops accepting and tells every
//   open session to say 421 and close. `(reload_atom, settings)` gives new
//   settings (a config reload): sessions opened from then on use them, open
//   ones keep theirs.
#pragma once

#include <memory>
#include <unordered_set>

#include <caf/actor.hpp>
#include <caf/io/broker.hpp>

#include "actors/smtp_session.hpp"
#include "messages/actors.hpp"

namespace postconn {

struct smtp_listener_state {
  /// Sessions still open.
  std::unordered_set<caf::actor> sessions;
  /// For the sessions opened from now on.
  std::shared_ptr<const smtp_settings> settings;

  static inline const char* name = "smtp_listener";
};

caf::behavior smtp_listener(caf::io::stateful_broker<smtp_listener_state>* self,
                            int listening_fd,
                            std::shared_ptr<const smtp_settings> settings,
                            store_actor store, supervisor_actor supervisor);

} // namespace postconn
