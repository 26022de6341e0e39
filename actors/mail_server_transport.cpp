// NAME
//   mail_server_transport -- SMTP and LMTP postoffices (see
//   mail_server_transport.hpp).
#include "actors/mail_server_transport.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/postoffice.hpp"

namespace postconn {

namespace {

/// A session with the server; no messages: an open or a probe.
mail_server_job server_job(postoffice_state& st) {
  return {st.cfg->address,
          st.cfg->transport == transport_kind::lmtp,
          *st.hostname,
          st.cfg->probe_timeout.count(),
          {},
          st.faults.open_call(),
          st.cfg->tls,
          st.cfg->tls_ca_file.string()};
}

/// How long `steps` steps of a session may take, each probe_timeout, plus
/// the open (connect, greeting, EHLO, QUIT; with TLS also STARTTLS, the
/// handshake's round trips and EHLO again).
caf::timespan session_timeout(const postoffice_state& st, std::size_t steps) {
  auto fixed = st.cfg->tls == tls_policy::none ? 6 : 10;
  return std::chrono::duration_cast<caf::timespan>(st.cfg->probe_timeout * (steps + fixed));
}

transport_opening no_answer(postoffice_ptr self, const caf::error& err) {
  auto problem = "no answer from the session: " + self->system().render(err);
  return {false, "4.4.1", problem, std::nullopt};
}

} // namespace

void mail_server_transport::probe(postoffice_ptr self, opened_callback done) {
  auto& st = self->state;
  self->request(st.pool, session_timeout(st, 0), deliver_atom::value, server_job(st))
    .then(
      [=](const mail_server_result& result) {
        done({result.opened, "4.4.1", result.opened ? std::string{} : result.problem,
              result.opened ? std::optional<std::string>{result.tls} : std::nullopt});
      },
      [=](const caf::error& err) { done(no_answer(self, err)); });
}

void mail_server_transport::open(postoffice_ptr self, opened_callback done) {
  auto& st = self->state;
  self->request(st.pool, session_timeout(st, 0), open_atom::value, server_job(st))
    .then(
      [=](const mail_server_opening& opening) {
        done({opening.opened, opening.status, opening.problem,
              opening.opened ? std::optional<std::string>{opening.tls} : std::nullopt});
      },
      [=](const caf::error& err) { done(no_answer(self, err)); });
}

void mail_server_transport::deliver(postoffice_ptr self, std::vector<transfer> batch,
                                    delivered_callback done) {
  auto& st = self->state;
  std::vector<outgoing_mail> messages;
  std::size_t steps = 0;
  // Without an answer every recipient's transfer failed: the batch's ids and
  // recipients are kept for that, its contents only in the request.
  auto unanswered = std::make_shared<std::vector<delivery_outcome>>();
  for (auto& item : batch) {
    delivery_outcome outcome{item.job.delivery_id, true, "", "", {}};
    for (const auto& rcpt : item.recipients)
      outcome.recipients.push_back({rcpt, recipient_result::temporary_failure, "4.4.2", "",
                                    false});
    unanswered->push_back(std::move(outcome));
    steps += 3 + item.recipients.size();
    messages.push_back({item.job.delivery_id, std::move(item.message.sender),
                        std::move(item.recipients), std::move(item.message.content)});
  }
  self->request(st.pool, session_timeout(st, steps), deliver_atom::value, std::move(messages))
    .then(
      [=](mail_server_result& result) { done(std::move(result.outcomes)); },
      [=](const caf::error& err) {
        // Opened, so the messages' transfer failed, not the open.
        auto text = "no answer from the session: " + self->system().render(err);
        for (auto& outcome : *unanswered)
          for (auto& rcpt : outcome.recipients)
            rcpt.text = text;
        done(std::move(*unanswered));
      });
}

void mail_server_transport::close(postoffice_ptr self) {
  auto& st = self->state;
  self->request(st.pool, session_timeout(st, 0), deliver_atom::value, std::vector<outgoing_mail>{})
    .then([](const mail_server_result&) {}, [](const caf::error&) {});
}

} // namespace postconn
