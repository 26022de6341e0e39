// NAME
//   store_crash_writer -- commits messages through the store until killed.
//
// SYNOPSIS
//   store_crash_writer DB_FILE SUBMITTERS
//
// DESCRIPTION
//   The child process of the crash-consistency test. SUBMITTERS actors each
//   send accept requests to a detached store, one after the other; for every
//   acknowledged commit it writes "<queue id> <content>\n" to stdout, so the
//   parent knows exactly what was acknowledged when it sends SIGKILL.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/store.hpp"
#include "messages/registry.hpp"

using namespace postconn;

namespace {

/// Writes one acknowledgement line with a single write(2), unbuffered, so
/// it is complete in the pipe even if SIGKILL follows at once.
void report_ack(const std::string& id, const std::string& content) {
  auto line = id + " " + content + "\n";
  if (write(STDOUT_FILENO, line.data(), line.size()) < 0)
    std::_Exit(1);
}

/// Sends the next message once the previous one is acknowledged.
void submit(caf::event_based_actor* self, store_actor store, int who,
            int sequence) {
  incoming_message msg;
  msg.sender = "crash@example.org";
  msg.content = "s" + std::to_string(who) + "-n" + std::to_string(sequence);
  msg.received_at = 1700000000 + sequence;
  msg.deliveries = {{"sales", {"bob@sales.example.test"}}};
  auto content = msg.content;
  self->request(store, std::chrono::seconds(30), accept_atom::value, std::move(msg))
    .then(
      [=](const accept_receipt& receipt) {
        report_ack(receipt.id, content);
        submit(self, store, who, sequence + 1);
      },
      [=](const caf::error& err) {
        std::fprintf(stderr, "commit failed: %s\n",
                     self->system().render(err).c_str());
        std::_Exit(1);
      });
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DB_FILE SUBMITTERS\n", argv[0]);
    return 2;
  }
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  auto store = spawn_store(sys, queue_db::open(argv[1]), store_options{}, true);
  for (int who = 0; who < std::atoi(argv[2]); ++who)
    sys.spawn([=](caf::event_based_actor* self) { submit(self, store, who, 0); });
  pause(); // until SIGKILL
}
