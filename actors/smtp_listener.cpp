// NAME
//   smtp_listener -- accepts SMTP connections (see smtp_listener.hpp).
#include "actors/smtp_listener.hpp"

#include <caf/io/system_messages.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

caf::behavior smtp_listener(caf::io::stateful_broker<smtp_listener_state>* self,
                            int listening_fd,
                            std::shared_ptr<const smtp_settings> settings,
                            store_actor store, supervisor_actor supervisor) {
  self->add_doorman(listening_fd);
  self->state.settings = std::move(settings);
  self->set_down_handler(
    [=](const caf::down_msg& msg) {
      self->state.sessions.erase(caf::actor_cast<caf::actor>(msg.source));
    });
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    for (const auto& session : self->state.sessions)
      self->send_exit(session, msg.reason);
    self->state.sessions.clear();
    self->close_all();
    self->quit(msg.reason);
  });
  return {
    [=](const caf::io::new_connection_msg& msg) {
      auto session = self->fork(smtp_session, msg.handle, self->state.settings, store,
                                supervisor);
      self->monitor(session);
      self->state.sessions.insert(session);
    },
    [=](reload_atom, std::shared_ptr<const smtp_settings>& fresh) {
      self->state.settings = std::move(fresh);
    },
    [=](status_atom) {
      return static_cast<std::uint64_t>(self->state.sessions.size());
    },
    [=](const caf::io::acceptor_closed_msg&) {
      spdlog::error("smtp: listening socket closed, no longer accepting");
      self->quit();
    },
  };
}

} // namespace postconn
