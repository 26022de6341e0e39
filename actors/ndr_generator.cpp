// NAME
//   ndr_generator -- builds and commits one NDR (see ndr_generator.hpp).
#include "actors/ndr_generator.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/log/log_event.hpp"

#include "runtime/mail/dsn.hpp"

namespace postconn {

namespace {

dsn_report make_report(const ledger_decision& decision, const stored_message& original,
                       const ndr_settings& settings) {
  const auto& entry = decision.entry;
  dsn_report report;
  auto delayed = decision.bounced.empty();
  report.action = delayed ? dsn_action::delayed : dsn_action::failed;
  report.reporting_mta = settings.hostname;
  report.original_sender = original.sender;
  report.original_message_id = entry.message_id;
  report.postoffice = entry.postoffice;
  report.original_content = original.content;
  report.arrival_date = entry.queued_at;
  report.last_attempt_date = decision.attempt.at;
  report.attempts = entry.attempts;
  report.first_attempt_at = entry.first_attempt_at;
  report.now = decision.attempt.at;
  for (const auto& rcpt : delayed ? decision.delayed : decision.bounced)
    report.recipients.push_back(
      {rcpt.address, rcpt.status, rcpt.diagnostic, rcpt.diagnostic_is_reply});
  return report;
}

/// The NDR as a message to queue, or one with no deliveries when there is
/// nobody to send it to.
incoming_message make_ndr(const ledger_decision& decision, const stored_message& original,
                          const ndr_settings& settings) {
  incoming_message ndr;
  ndr.received_at = decision.attempt.at;
  const auto& id = decision.entry.message_id;
  if (original.sender.empty()) {
    spdlog::warn("ndr: msg {} has the null sender: double bounce dropped", id);
    return ndr;
  }
  auto route = settings.routes.route(original.sender);
  if (!route.postoffice) {
    spdlog::warn("ndr: msg {}: no postoffice takes sender <{}> ({}): NDR dropped", id,
                 original.sender, route.error.text);
    return ndr;
  }
  ndr.content = build_dsn(make_report(decision, original, settings));
  ndr.deliveries.push_back({route.postoffice_name, {original.sender}});
  return ndr;
}

void commit_bounce(ndr_generator_actor::pointer self, ledger_decision decision,
                   const stored_message& original,
                   std::shared_ptr<const ndr_settings> settings, store_actor store,
                   supervisor_actor supervisor) {
  auto ndr = make_ndr(decision, original, *settings);
  auto with_ndr = !ndr.deliveries.empty();
  self->request(store, store_timeout, report_atom::value,
                ledger_change{decision.entry, decision.attempt, decision.recipients},
                std::move(ndr))
    .then(
      [=](const std::vector<ledger_entry>& dsn) { // the store announces its deliveries
        auto delayed = decision.bounced.empty();
        std::string recipients;
        for (const auto& rcpt : delayed ? decision.delayed : decision.bounced)
          recipients += (recipients.empty() ? "" : " ") + rcpt.address + "=" + rcpt.status;
        // "<queue id>: ..., notification=bounced, ..., dsn_queue_id=<the DSN's>"
        log_event(spdlog::level::info, {"queue_id", decision.entry.message_id},
                  {{"delivery", decision.entry.delivery_id},
                   {"postoffice", decision.entry.postoffice},
                   {"notification", delayed ? "delayed" : "bounced"},
                   {"recipients", recipients},
                   {"dsn_queue_id", with_ndr && !dsn.empty() ? dsn.front().message_id
                                                             : std::string{}}});
        self->send(supervisor, reported_atom::value, decision.entry);
        self->quit();
      },
      [=](caf::error& err) {
        spdlog::error("ndr: msg {} delivery {}: cannot commit the bounce: {}",
                      decision.entry.message_id, decision.entry.delivery_id,
                      self->system().render(err));
        self->quit(std::move(err));
      });
}

} // namespace

ndr_generator_actor::behavior_type
ndr_generator(ndr_generator_actor::pointer self, ledger_decision decision,
              std::shared_ptr<const ndr_settings> settings, store_actor store,
              supervisor_actor supervisor) {
  auto id = decision.entry.message_id;
  self->request(store, store_timeout, fetch_atom::value, id)
    .then(
      [=](stored_message& original) {
        self->send(self, report_atom::value, std::move(original));
      },
      [=](caf::error& err) {
        if (is_store_error(err, store_errc::not_found)) {
          // The sender is only known from the original: nobody to tell.
          spdlog::error("ndr: msg {}: the original is gone from the queue; the bounce is "
                        "recorded, no NDR can be addressed",
                        id);
          self->send(self, report_atom::value, stored_message{});
          return;
        }
        // Unreadable for now: nothing is committed, and the supervisor
        // decides the bounce again after a pause.
        spdlog::error("ndr: msg {} delivery {}: original unreadable ({}); the bounce waits", id,
                      decision.entry.delivery_id, self->system().render(err));
        self->quit(std::move(err));
      });
  return {
    [=](report_atom, const stored_message& original) {
      commit_bounce(self, decision, original, settings, store, supervisor);
    },
  };
}

} // namespace postconn
