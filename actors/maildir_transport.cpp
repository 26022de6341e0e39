// NAME
//   maildir_transport -- maildir postoffices (see maildir_transport.hpp).
#include "actors/maildir_transport.hpp"

#include <ctime>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/postoffice.hpp"
#include "messages/unix_clock.hpp"

namespace postconn {

namespace {

std::string received_header(const postoffice_state& st, const stored_message& msg,
                            const std::string& recipient) {
  std::time_t now = unix_time_origin::now().seconds;
  std::tm utc{};
  gmtime_r(&now, &utc);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return "Received: by " + *st.hostname + " (postconn) with maildir id " + msg.id
         + "\r\n\tfor <" + recipient + ">; " + date + "\r\n";
}

/// A batch under way: transfers to write and outcomes collected.
struct batch_state {
  std::vector<transfer> transfers;
  std::vector<delivery_outcome> results;
  std::size_t next = 0;
  std::size_t writing = 0;
  transport::delivered_callback done;
};

void write_next(postoffice_ptr self, std::shared_ptr<batch_state> batch);

/// Writes one transfer's message to each of its recipients' mailboxes.
void write(postoffice_ptr self, std::shared_ptr<batch_state> batch, std::size_t index) {
  auto& st = self->state;
  const auto& item = batch->transfers[index];
  auto pending = std::make_shared<std::size_t>(item.recipients.size());
  auto finish = [=](recipient_outcome result) {
    batch->results[index].recipients.push_back(std::move(result));
    if (--*pending == 0) {
      --batch->writing;
      write_next(self, batch);
    }
  };
  if (*pending == 0) {
    --batch->writing;
    return write_next(self, batch);
  }
  for (const auto& rcpt : item.recipients) {
    maildir_job work{st.cfg->path.string(),
                     st.cfg->create_mailboxes,
                     item.job.key,
                     item.message.sender,
                     rcpt,
                     received_header(st, item.message, rcpt),
                     item.message.content,
                     st.faults.transfer_call()};
    self->request(st.pool, st.cfg->probe_timeout, deliver_atom::value, work)
      .then([=](recipient_outcome& result) { finish(std::move(result)); },
            [=](const caf::error& err) {
              finish({rcpt, recipient_result::temporary_failure, "4.3.0",
                      "maildir write failed: " + self->system().render(err), false});
            });
  }
}

/// Starts writes up to max_transfers; answers once all are done.
void write_next(postoffice_ptr self, std::shared_ptr<batch_state> batch) {
  while (batch->next < batch->transfers.size()
         && batch->writing < maildir_transport::max_transfers) {
    ++batch->writing;
    write(self, batch, batch->next++);
  }
  if (batch->next == batch->transfers.size() && batch->writing == 0)
    batch->done(std::move(batch->results));
}

} // namespace

void maildir_transport::probe(postoffice_ptr self, opened_callback done) {
  auto& st = self->state;
  self->request(st.pool, st.cfg->probe_timeout, probe_atom::value,
                probe_job{st.cfg->path.string(), st.faults.open_call()})
    .then(
      [=](const std::string& problem) {
        done({problem.empty(), "4.4.1", problem, std::nullopt});
      },
      [=](const caf::error& err) {
        auto problem = err == caf::sec::request_timeout
                         ? "probe timed out after "
                             + std::to_string(self->state.cfg->probe_timeout.count()) + "s"
                         : "probe failed: " + self->system().render(err);
        done({false, "4.4.1", problem, std::nullopt});
      });
}

void maildir_transport::open(postoffice_ptr self, opened_callback done) {
  probe(self, std::move(done));
}

void maildir_transport::deliver(postoffice_ptr self, std::vector<transfer> transfers,
                                delivered_callback done) {
  auto batch = std::make_shared<batch_state>();
  for (const auto& item : transfers)
    batch->results.push_back({item.job.delivery_id, true, "", "", {}});
  batch->transfers = std::move(transfers);
  batch->done = std::move(done);
  write_next(self, batch);
}

void maildir_transport::close(postoffice_ptr) {
  // A maildir tree holds nothing open.
}

} // namespace postconn
