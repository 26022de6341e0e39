// NAME
//   smtp_listener -- accepts SMTP connections (see smtp_listener.hpp).
#include "actors/smtp_listener.hpp"

#include <chrono>

#include <caf/io/system_messages.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

namespace {

/// How often open sessions check their deadlines (idle, command line,
/// DATA): one timer for all of them instead of one per connection, each of
/// which would wake the clock thread.
constexpr auto deadline_tick = std::chrono::seconds(1);

void tick_while_sessions_are_open(smtp_listener_pointer self) {
  auto& st = self->state;
  if (st.ticking || st.sessions.empty())
    return;
  st.ticking = true;
  self->delayed_send(self, deadline_tick, tick_atom::value);
}

/// Forks a session for a new connection, or refuses it with 421 when a
/// connection limit is reached. A connection is only refused on a second
/// look: CAF hands the listener new connections at once, ahead of the
/// messages in its mailbox, where the end of a session that just said 221
/// may still wait, so the client reconnecting at its limit is looked at
/// again behind them.
void admit(smtp_listener_pointer self, caf::io::connection_handle handle, bool second_look,
           const acceptor_actor& store) {
  auto& st = self->state;
  auto client = self->remote_addr(handle);
  auto from_client = st.per_client.find(client);
  auto open_from_client = from_client == st.per_client.end() ? 0 : from_client->second;
  auto over_total = st.sessions.size() >= st.settings->max_connections;
  auto over_client = open_from_client >= st.settings->max_connections_per_client;
  if ((over_total || over_client) && !second_look) {
    self->send(self, connected_atom::value, handle);
    return;
  }
  // CAF 0.17's typed fork forwards its arguments twice (the second time
  // from what the first moved from): the reason goes as an lvalue.
  if (over_total) {
    spdlog::warn("smtp {}: refused, {} connections open (smtp.max_connections)", client,
                 st.sessions.size());
    auto why = st.settings->hostname + " Too many connections";
    self->fork(smtp_refusal, handle, why);
    return;
  }
  if (over_client) {
    spdlog::warn("smtp {}: refused, {} connections open from it "
                 "(smtp.max_connections_per_client)", client, open_from_client);
    auto why = st.settings->hostname + " Too many connections from your address";
    self->fork(smtp_refusal, handle, why);
    return;
  }
  auto session = self->fork(smtp_session, handle, st.settings, store, st.backlogged);
  if (st.fenced) // before anything the client can send
    self->send(session, expire_atom::value, true);
  self->monitor(session);
  st.sessions.emplace(session, client);
  ++st.per_client[client];
  tick_while_sessions_are_open(self);
}

} // namespace

smtp_listener_broker::behavior_type smtp_listener(smtp_listener_pointer self,
                                                  caf::io::doorman_ptr listening,
                                                  std::shared_ptr<const smtp_settings> settings,
                                                  acceptor_actor store) {
  self->add_doorman(std::move(listening));
  self->state.settings = std::move(settings);
  self->set_down_handler(
    [=](const caf::down_msg& msg) {
      auto& st = self->state;
      auto found = st.sessions.find(caf::actor_cast<smtp_session_broker>(msg.source));
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
      admit(self, msg.handle, false, store);
    },
    [=](connected_atom, caf::io::connection_handle handle) {
      admit(self, handle, true, store);
    },
    [=](tick_atom) {
      auto& st = self->state;
      st.ticking = false;
      // Brokers share the multiplexer thread: these sends wake no thread.
      for (const auto& [session, client] : st.sessions)
        self->send(session, idle_atom::value);
      tick_while_sessions_are_open(self);
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
    [=](expire_atom, bool fenced) {
      auto& st = self->state;
      st.fenced = fenced;
      for (const auto& [session, client] : st.sessions)
        self->send(session, expire_atom::value, fenced);
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
