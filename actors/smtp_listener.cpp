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
      auto& st = self->state;
      auto found = st.sessions.find(caf::actor_cast<caf::actor>(msg.source));
      if (found == st.sessions.end())
        return;
      if (auto client = st.per_client.find(found->second);
          client != st.per_client.end() && --client->second == 0)
        st.per_client.erase(client);
      st.sessions.erase(found);
    });
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    for (const auto& [session, client] : self->state.sessions)
      self->send_exit(session, msg.reason);
    self->state.sessions.clear();
    self->state.per_client.clear();
    self->close_all();
    self->quit(msg.reason);
  });
  return {
    [=](const caf::io::new_connection_msg& msg) {
      auto& st = self->state;
      auto client = self->remote_addr(msg.handle);
      if (st.sessions.size() >= st.settings->max_connections) {
        spdlog::warn("smtp {}: refused, {} connections open (smtp.max_connections)", client,
                     st.sessions.size());
        self->fork(smtp_refusal, msg.handle, st.settings->hostname + " Too many connections");
        return;
      }
      if (st.per_client[client] >= st.settings->max_connections_per_client) {
        spdlog::warn("smtp {}: refused, {} connections open from it "
                     "(smtp.max_connections_per_client)", client, st.per_client[client]);
        self->fork(smtp_refusal, msg.handle,
                   st.settings->hostname + " Too many connections from your address");
        return;
      }
      auto session = self->fork(smtp_session, msg.handle, st.settings, store, supervisor,
                                st.backlogged);
      self->monitor(session);
      st.sessions.emplace(session, client);
      ++st.per_client[client];
    },
    [=](reload_atom, std::shared_ptr<const smtp_settings>& fresh) {
      self->state.settings = std::move(fresh);
    },
    [=](backlog_atom, bool backlogged) {
      auto& st = self->state;
      st.backlogged = backlogged;
      for (const auto& [session, client] : st.sessions)
        self->send(session, backlog_atom::value, backlogged);
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
