// NAME
//   ndr_crash_server -- bounces mail as fast as it can until killed.
//
// SYNOPSIS
//   ndr_crash_server DB_FILE load|drain
//
// DESCRIPTION
//   The child process of the NDR crash test: the real store, supervisor and
//   NDR generators over DB_FILE, with two fake postoffices that are both
//   down, and max_open_retries = 0, so every delivery bounces at its first
//   attempt and its NDR stays queued. With "load", submitters keep queueing
//   messages until SIGKILL. With "drain", nothing new is queued; the process
//   exits 0 once the queue has no original left to bounce.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/store.hpp"
#include "actors/supervisor.hpp"
#include "messages/registry.hpp"
#include "tests/actors/supervisor_fixture.hpp"

using namespace postconn;

namespace {

void submit(caf::event_based_actor* self, store_actor store, int sequence) {
  incoming_message msg;
  msg.sender = "ann@live.example.test";
  msg.content = "Subject: crash " + std::to_string(sequence) + "\r\n\r\nbody\r\n";
  msg.received_at = std::time(nullptr);
  msg.deliveries = {{"dead", {"bob@dead.example.test"}}};
  self->request(store, std::chrono::seconds(30), accept_atom::value, std::move(msg))
    .then(
      [=](accept_receipt&) { submit(self, store, sequence + 1); },
      [=](const caf::error&) { std::_Exit(1); });
}

/// True while the queue still has an unfinished delivery at "dead" (an
/// original not bounced yet).
bool originals_left(caf::actor_system& sys, const store_actor& store) {
  caf::scoped_actor self{sys};
  bool left = true;
  self->request(store, std::chrono::seconds(10), load_atom::value)
    .receive(
      [&](const std::vector<ledger_entry>& entries) {
        left = std::any_of(entries.begin(), entries.end(),
                           [](const auto& e) { return e.postoffice == "dead"; });
      },
      [](const caf::error&) {});
  return left;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DB_FILE load|drain\n", argv[0]);
    return 2;
  }
  bool load = std::strcmp(argv[2], "load") == 0;
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  spdlog::set_level(spdlog::level::warn);
  retry_policy policy;
  policy.max_open_retries = 0;
  auto config = test::two_postoffices(policy);
  std::shared_ptr<queue_db> db = queue_db::open(argv[1]);
  auto ledger = db->unfinished_deliveries();
  auto store = spawn_store(sys, std::move(db), store_options{}, true);
  auto ndr = std::make_shared<const ndr_settings>(
    ndr_settings{config.server.hostname, routing_table{config}});
  auto fake = [&sys] { return sys.spawn(test::fake_postoffice); };
  supervisor_options options;
  options.origin = unix_time_origin::now();
  options.fallback_retry = policy;
  auto sup = sys.spawn(supervisor,
                       std::vector<postoffice_slot>{{"dead", policy, fake, {}, false, {}},
                                                    {"live", policy, fake, {}, false, {}}},
                       std::move(ledger), store, ndr, options);
  caf::anon_send(store, watch_atom::value, store_listener_actor{sup});
  if (load) {
    for (int i = 0; i < 4; ++i)
      sys.spawn([=](caf::event_based_actor* self) { submit(self, store, i * 1000000); });
    pause(); // until SIGKILL
  }
  while (originals_left(sys, store))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::_Exit(0);
}
