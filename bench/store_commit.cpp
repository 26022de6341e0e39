// NAME
//   store_commit -- acknowledged commits per second of the store: group
//   commit against one fsync per request.
//
// SYNOPSIS
//   store_commit [DIR] [SECONDS] [ROUNDS] [SUBMITTERS...]
//
// DESCRIPTION
//   For 1, 8 and 64 concurrent submitters (or the SUBMITTERS given), each
//   sending its next message as soon as the previous one is acknowledged
//   (as SMTP sessions do), runs the real detached store for SECONDS
//   (default 2) on a fresh database in DIR (default: the current directory;
//   use the disk the queue will live on), ROUNDS times (default 3, the
//   median is printed), once with group commit and once with max_batch = 1, and prints both
//   rates and their ratio. Durability is the same in both: WAL with
//   synchronous=FULL, a reply only after the fsync'd COMMIT.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>
#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/store.hpp"
#include "messages/registry.hpp"

using namespace postconn;
namespace fs = std::filesystem;

namespace {

using bench_clock = std::chrono::steady_clock;

struct run_result {
  double acks_per_second;
  double commits_per_second;
};

run_result median(std::vector<run_result> runs) {
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return a.acks_per_second < b.acks_per_second;
  });
  return runs[runs.size() / 2];
}

/// Submits messages one after the other until `until`, counting acks.
void submit(caf::event_based_actor* self, store_actor store,
            bench_clock::time_point until, std::atomic<std::uint64_t>* acks) {
  if (bench_clock::now() >= until)
    return self->quit();
  incoming_message msg;
  msg.sender = "bench@example.org";
  msg.content = std::string(2048, 'x');
  msg.deliveries = {{"sales", {"bob@sales.example.test"}}};
  // No request timeout, as an SMTP session asks: a timeout would put every
  // request into CAF's clock and tax the machine the store runs on.
  self->request(store, caf::infinite, accept_atom::value, std::move(msg))
    .then(
      [=](const accept_receipt&) {
        ++*acks;
        submit(self, store, until, acks);
      },
      [=](const caf::error& err) {
        std::fprintf(stderr, "commit failed: %s\n",
                     self->system().render(err).c_str());
        self->quit();
      });
}

run_result run(const fs::path& dir, int submitters, std::size_t max_batch,
               double seconds) {
  auto file = dir / "bench-queue.db";
  for (auto suffix : {"", "-wal", "-shm"})
    fs::remove(file.string() + suffix);
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  store_options options;
  options.max_batch = max_batch;
  auto store = spawn_store(sys, queue_db::open(file), options, true);
  std::atomic<std::uint64_t> acks{0};
  auto start = bench_clock::now();
  auto until = start + std::chrono::duration_cast<bench_clock::duration>(
                         std::chrono::duration<double>(seconds));
  {
    caf::scoped_actor self{sys};
    for (int i = 0; i < submitters; ++i)
      self->spawn<caf::monitored>(
        [=, &acks](caf::event_based_actor* client) { submit(client, store, until, &acks); });
    for (int i = 0; i < submitters; ++i)
      self->receive([](const caf::down_msg&) {});
  }
  auto elapsed = std::chrono::duration<double>(bench_clock::now() - start).count();
  store_status status;
  {
    caf::scoped_actor self{sys};
    self->request(store, std::chrono::seconds(10), status_atom::value)
      .receive([&](const store_status& st) { status = st; },
               [](const caf::error&) {});
  }
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  for (auto suffix : {"", "-wal", "-shm"})
    fs::remove(file.string() + suffix);
  return {static_cast<double>(acks.load()) / elapsed,
          static_cast<double>(status.commits) / elapsed};
}

} // namespace

int main(int argc, char** argv) {
  fs::path dir = argc > 1 ? argv[1] : ".";
  double seconds = argc > 2 ? std::stod(argv[2]) : 2.0;
  int rounds = argc > 3 ? std::stoi(argv[3]) : 3;
  std::vector<int> submitter_counts{1, 8, 64};
  if (argc > 4) {
    submitter_counts.clear();
    for (int i = 4; i < argc; ++i)
      submitter_counts.push_back(std::stoi(argv[i]));
  }
  std::printf("store commit benchmark: 2 KiB messages, median of %d runs of "
              "%.1f s, WAL + synchronous=FULL in %s\n\n",
              rounds, seconds, fs::absolute(dir).c_str());
  std::printf("%10s  %22s  %22s  %8s\n", "submitters", "group commit acks/s",
              "fsync per request", "ratio");
  std::printf("%10s  %22s  %22s  %8s\n", "", "(commits/s)", "acks/s", "");
  for (int submitters : submitter_counts) {
    std::vector<run_result> group_runs;
    std::vector<run_result> single_runs;
    for (int round = 0; round < rounds; ++round) {
      group_runs.push_back(run(dir, submitters, store_options{}.max_batch, seconds));
      single_runs.push_back(run(dir, submitters, 1, seconds));
    }
    auto group = median(group_runs);
    auto single = median(single_runs);
    char group_text[64];
    std::snprintf(group_text, sizeof group_text, "%.0f (%.0f)",
                  group.acks_per_second, group.commits_per_second);
    std::printf("%10d  %22s  %22.0f  %7.1fx\n", submitters, group_text,
                single.acks_per_second,
                group.acks_per_second / single.acks_per_second);
  }
}
