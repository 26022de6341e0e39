// NAME
//   serve -- `postconn serve` (see serve.hpp).
#include "runtime/app/serve.hpp"

#include <chrono>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/multiplexer.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/cluster.hpp"
#include "actors/cluster_lease.hpp"
#include "actors/postoffice.hpp"
#include "actors/purger.hpp"
#include "actors/share_pool.hpp"
#include "actors/smtp_listener.hpp"
#include "runtime/cluster/membership.hpp"
#include "actors/store.hpp"
#include "actors/supervisor.hpp"
#include "messages/registry.hpp"
#include "runtime/admin/admin_api.hpp"
#include "runtime/config/config.hpp"
#include "runtime/app/listen_socket.hpp"
#include "runtime/app/logging.hpp"
#include "runtime/store/queue_db.hpp"

namespace postconn {

namespace {

namespace fs = std::filesystem;

/// A start-up check that failed; its text is the one line the operator sees.
struct startup_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Creates the data directory if needed and proves it is writable.
void check_data_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw startup_error("server.data_dir: cannot create " + dir.string() + ": "
                        + ec.message());
  auto probe = dir / ".write-test";
  {
    std::ofstream out{probe};
    if (!(out << "postconn\n") || !out.flush())
      throw startup_error("server.data_dir: " + dir.string()
                          + " is not writable");
  }
  fs::remove(probe, ec);
}

/// Holds an exclusive lock on the data directory while the server runs, so
/// two servers never share one queue.
class data_dir_lock {
public:
  explicit data_dir_lock(const fs::path& dir) {
    auto file = dir / "postconn.lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw startup_error("server.data_dir: cannot open " + file.string());
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0)
      throw startup_error("server.data_dir: " + dir.string()
                          + " is in use by another postconn server");
  }
  ~data_dir_lock() {
    ::close(fd_);
  }
  data_dir_lock(const data_dir_lock&) = delete;
  data_dir_lock& operator=(const data_dir_lock&) = delete;

private:
  int fd_ = -1;
};

/// Blocks the signals the server waits for (SIGTERM, SIGINT, SIGHUP) in
/// this thread and every thread started after it (CAF's workers), so only
/// wait_for_signal() sees them.
sigset_t block_server_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_for_signal(const sigset_t& set) {
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

bool same_fault(const fault_config& a, const fault_config& b) {
  return a.mode == b.mode && a.probability == b.probability && a.seed == b.seed
         && a.recipients == b.recipients && a.latency == b.latency && a.up == b.up
         && a.down == b.down;
}

/// The settings a postoffice actor is started with (routing aside).
bool same_transport(const postoffice_config& a, const postoffice_config& b) {
  return a.transport == b.transport && a.path == b.path && a.address == b.address
         && a.probe_timeout == b.probe_timeout && a.create_mailboxes == b.create_mailboxes
         && a.tls == b.tls && a.tls_ca_file == b.tls_ca_file;
}

/// The actors a reload talks to, and what a new postoffice actor needs.
struct server_actors {
  caf::actor_system& sys;
  share_pool_actor pool;
  store_actor store;
  supervisor_actor supervisor;
  smtp_listener_actor listener;
  purger_actor purger;
  /// Cluster only: lines up the postoffices this node owns.
  cluster_actor cluster;

  /// Each actor the factory starts reads its settings from the running
  /// config `cfg` (`po` is one of its postoffices), which it keeps alive:
  /// no copy per postoffice.
  postoffice_factory starter(const std::shared_ptr<const config>& cfg,
                             const postoffice_config& po,
                             std::shared_ptr<const std::string> hostname) const {
    auto settings = std::shared_ptr<const postoffice_config>(cfg, &po);
    return [&sys = sys, settings, pool = pool, store = store, hostname] {
      return sys.spawn(postoffice, settings, pool, store, hostname);
    };
  }
};

/// The listener hears from the supervisor when the queue crosses the mark.
void watch_backlog(const server_actors& actors, std::uint64_t high_water) {
  caf::anon_send(actors.supervisor, watch_atom::value,
                 backlog_listener_actor{actors.listener}, high_water);
}

/// Every postoffice with a way to start it, for the cluster actor, which
/// starts those this node owns.
cluster_postoffices cluster_lineup(postoffice_lineup all, const config& cfg,
                                   const std::vector<std::string>& changed) {
  cluster_postoffices postoffices{std::move(all), {}, {changed.begin(), changed.end()}};
  for (const auto& po : cfg.postoffices)
    postoffices.owners[po.name] = po.owner;
  return postoffices;
}

/// "host:port" of a bound listener: the port it got, not the 0 it may have
/// asked for.
std::string bound_address(const listen_address& address, int port) {
  auto host = address.host.find(':') == std::string::npos ? address.host
                                                          : "[" + address.host + "]";
  return host + ":" + std::to_string(port);
}

std::string names(const std::vector<std::string>& list) {
  std::string text;
  for (const auto& name : list)
    text += (text.empty() ? "" : ", ") + name;
  return text;
}

/// SIGHUP: reads the config file again. An invalid one is refused and the
/// running config kept. Postoffices added, removed or changed, retry
/// policies, faults, routing, SMTP limits and the retention of finished
/// messages take effect at once (new SMTP sessions route by the new config;
/// deliveries keep their counts); the listen addresses and the data
/// directory need a restart, and the log says so.
void reload(const fs::path& file, std::shared_ptr<const config>& running,
            const server_actors& actors, admin_api& admin) {
  auto loaded = load_config_file(file);
  if (!loaded.value) {
    spdlog::error("reload: {} has {} problem(s); the running config stays", file.string(),
                  loaded.problems.size());
    for (const auto& problem : loaded.problems)
      spdlog::error("reload: {}", problem);
    return;
  }
  auto& fresh = *loaded.value;
  std::shared_ptr<const smtp_settings> smtp;
  try {
    smtp = make_smtp_settings(fresh, reply_writes::to_socket); // a renewed TLS certificate, say
  } catch (const std::runtime_error& e) {
    spdlog::error("reload: {}; the running config stays", e.what());
    return;
  }
  auto keep = [](const char* key, auto& now, const auto& before) {
    if (now == before)
      return;
    spdlog::warn("reload: {} changed: takes effect at the next restart", key);
    now = before;
  };
  keep("smtp.listen", fresh.smtp.listen, running->smtp.listen);
  keep("admin.listen", fresh.admin.listen, running->admin.listen);
  keep("admin.token_file", fresh.admin.token_file, running->admin.token_file);
  keep("server.data_dir", fresh.server.data_dir, running->server.data_dir);
  keep("cluster", fresh.cluster, running->cluster);
  // Shared from here on: the postoffice actors started below read their
  // settings from it.
  auto shared = std::make_shared<const config>(std::move(fresh));
  const auto& next = *shared;
  postoffice_lineup lineup;
  std::vector<std::string> added, changed, removed;
  std::vector<const postoffice_config*> new_faults;
  // By name: a reload of 100,000 postoffices must not compare every pair.
  std::unordered_map<std::string, const postoffice_config*> before;
  for (const auto& po : running->postoffices)
    before.emplace(po.name, &po);
  auto hostname = std::make_shared<const std::string>(next.server.hostname);
  for (const auto& po : next.postoffices) {
    auto old = before.find(po.name);
    postoffice_definition definition{po.name, po.retry, {}};
    if (old == before.end() || !same_transport(*old->second, po)) {
      definition.start = actors.starter(shared, po, hostname);
      (old == before.end() ? added : changed).push_back(po.name);
    } else if (actors.cluster) {
      // Started when its ownership moves here.
      definition.start = actors.starter(shared, po, hostname);
    }
    if (old != before.end()) {
      if (!same_fault(old->second->fault, po.fault))
        new_faults.push_back(&po);
      before.erase(old);
    }
    lineup.postoffices.push_back(std::move(definition));
  }
  for (const auto& po : running->postoffices)
    if (before.count(po.name))
      removed.push_back(po.name);
  lineup.fallback_retry = next.retry;
  lineup.ndr = std::make_shared<const ndr_settings>(
    ndr_settings{next.server.hostname, routing_table{next}});
  if (actors.cluster)
    caf::anon_send(actors.cluster, reload_atom::value,
                   cluster_lineup(std::move(lineup), next, changed));
  else
    caf::anon_send(actors.supervisor, reload_atom::value, std::move(lineup));
  // After the lineup: a replaced actor gets the fault too.
  for (const auto* po : new_faults)
    caf::anon_send(actors.supervisor, fault_atom::value, po->name, po->fault);
  caf::anon_send(actors.listener, reload_atom::value, std::move(smtp));
  caf::anon_send(actors.purger, reload_atom::value,
                 static_cast<std::int64_t>(next.server.keep_finished.count()));
  caf::anon_send(actors.store, reload_atom::value, next.server.min_free_space);
  watch_backlog(actors, next.smtp.queue_high_water);
  running = shared;
  admin.update_config(running);
  spdlog::info("reload: {} read; {} postoffices (added: {}; changed: {}; removed: {})",
               file.string(), running->postoffices.size(), added.empty() ? "-" : names(added),
               changed.empty() ? "-" : names(changed), removed.empty() ? "-" : names(removed));
}

/// Every unfinished delivery, read page by page, with a progress line every
/// few seconds while a large queue loads.
std::vector<ledger_entry> read_ledger(queue_db& db) {
  constexpr std::int64_t page_size = 10000;
  constexpr auto progress_every = std::chrono::seconds(2);
  auto started = std::chrono::steady_clock::now();
  auto last_progress = started;
  std::vector<ledger_entry> ledger;
  for (std::int64_t after = 0;;) {
    auto page = db.unfinished_deliveries_after(after, page_size);
    if (page.empty())
      break;
    after = page.back().delivery_id;
    std::move(page.begin(), page.end(), std::back_inserter(ledger));
    if (auto now = std::chrono::steady_clock::now(); now - last_progress >= progress_every) {
      spdlog::info("queue: reading the ledger, {} unfinished deliveries so far", ledger.size());
      last_progress = now;
    }
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  spdlog::info("queue: {} unfinished deliveries (read in {:.1f}s)", ledger.size(), took.count());
  return ledger;
}

/// What the server holds before any actor starts: each can fail with a
/// clear startup_error, and a failure leaves nothing running.
struct server_resources {
  std::shared_ptr<const smtp_settings> smtp;
  std::optional<listen_address> smtp_address;
  std::optional<listen_socket> smtp_socket;
  std::optional<admin_api> admin;
  fs::path db_file;
  std::shared_ptr<queue_db> db;
  std::vector<ledger_entry> ledger;
};

void open_resources(const std::shared_ptr<const config>& shared, server_resources& out) {
  const auto& cfg = *shared;
  try {
    out.smtp = make_smtp_settings(cfg, reply_writes::to_socket);
  } catch (const std::runtime_error& e) {
    throw startup_error(e.what());
  }
  out.smtp_address = parse_listen_address(cfg.smtp.listen);
  try {
    out.smtp_socket.emplace(*out.smtp_address);
  } catch (const std::runtime_error& e) {
    throw startup_error(std::string{"smtp.listen: cannot listen on "} + e.what());
  }
  try {
    out.admin.emplace(shared);
  } catch (const std::runtime_error& e) {
    auto what = std::string{e.what()};
    throw startup_error(what.rfind("token_file ", 0) == 0
                          ? "admin." + what
                          : "admin.listen: cannot listen on " + what);
  }
  out.db_file = cfg.server.data_dir / "queue.db";
  try {
    out.db = queue_db::open(out.db_file);
  } catch (const queue_db_error& e) {
    throw startup_error(std::string{"queue: cannot open "} + e.what());
  }
  try {
    out.ledger = read_ledger(*out.db);
  } catch (const queue_db_error& e) {
    throw startup_error(std::string{"queue: cannot read the ledger: "} + e.what());
  }
}

/// cluster.etcd: grants this node's lease and writes its member key, or
/// says in one line that etcd cannot be reached (naming every endpoint).
/// When other nodes adopted this node's deliveries while it was gone
/// (cluster.replicas) and its queue is empty, the records of that go; else
/// the cluster actor learns from the adopters what they took
/// (actors/cluster_replicas.hpp).
std::optional<member_registration> register_in_etcd(const config& cfg,
                                                   std::size_t unfinished) {
  if (!cfg.cluster || cfg.cluster->etcd.empty())
    return std::nullopt;
  const auto& cluster = *cfg.cluster;
  std::vector<std::string> endpoints;
  for (const auto& endpoint : cluster.etcd)
    endpoints.push_back(etcd_url(endpoint));
  etcd_client client{endpoints, etcd_call_timeout(cluster.lease_ttl)};
  auto registered = register_member(client, cluster.node, cluster.listen, cluster.lease_ttl);
  if (!registered)
    throw startup_error("cluster.etcd: node " + cluster.node + " cannot register in etcd ("
                        + names(endpoints) + "): " + registered.error().message);
  auto registration = *registered;
  if (!registration.adopted_by.empty() && unfinished == 0) {
    for (const auto& by : registration.adopted_by)
      client.delete_key(adopted_key(cluster.node, by));
    spdlog::warn("cluster: node {}'s deliveries were adopted by {} while it was gone; its queue "
                 "is empty, it starts afresh",
                 cluster.node, names(registration.adopted_by));
    registration.adopted_by.clear();
  }
  spdlog::info("cluster: node {} registered in etcd at {} (lease {}, ttl {}s)", cluster.node,
               names(endpoints), registration.lease.id, registration.lease.ttl.count());
  return registration;
}

void configure_system(const config& cfg, caf::actor_system_config& sys_cfg) {
  register_types(sys_cfg);
  sys_cfg.load<caf::io::middleman>();
  if (cfg.cluster) {
    // Heartbeats find a peer that hangs with its connection open.
    sys_cfg.set("middleman.heartbeat-interval", caf::timespan{cfg.cluster->peer_timeout} / 4);
    sys_cfg.set("middleman.connection-timeout", caf::timespan{cfg.cluster->peer_timeout});
  }
  // Idle workers wait for work instead of polling for it (CAF's default
  // work stealing sleeps and wakes every 50 us while it looks for work): a
  // relayed message cost 15 % less CPU, and an idle server costs nothing.
  // Blocking I/O runs in detached actors, never on these workers.
  sys_cfg.set("scheduler.policy", caf::atom("sharing"));
}

store_actor start_store(caf::actor_system& sys, const config& cfg,
                        std::shared_ptr<queue_db> db) {
  store_options store_opts;
  store_opts.min_free_space = cfg.server.min_free_space;
  store_opts.free_space = [data_dir = cfg.server.data_dir]() -> std::optional<std::uint64_t> {
    std::error_code error;
    auto space = fs::space(data_dir, error);
    if (error)
      return std::nullopt;
    return space.available;
  };
  return spawn_store(sys, std::move(db), std::move(store_opts), true);
}

supervisor_options supervisor_options_for(const config& cfg) {
  supervisor_options options;
  options.origin = unix_time_origin::now();
  options.fallback_retry = cfg.retry;
  if (cfg.cluster) {
    options.node = cfg.cluster->node;
    options.await_lineup = true;
    options.handoff_timeout = 2 * cfg.cluster->peer_timeout;
    options.handoff_retry = cfg.cluster->reconnect_interval;
  }
  return options;
}

/// Starts the supervisor with the postoffices this node runs (in a
/// cluster, the cluster actor lines them up, and starts itself here).
void start_supervisor(const std::shared_ptr<const config>& shared, server_actors& actors,
                      std::vector<ledger_entry> ledger, const supervisor_options& options,
                      const std::optional<member_registration>& registration) {
  const auto& cfg = *shared;
  std::vector<postoffice_slot> slots;
  postoffice_lineup everywhere;
  auto hostname = std::make_shared<const std::string>(cfg.server.hostname);
  for (const auto& po : cfg.postoffices) {
    auto start = actors.starter(shared, po, hostname);
    if (cfg.cluster) // the cluster actor starts those this node owns
      everywhere.postoffices.push_back({po.name, po.retry, std::move(start)});
    else
      slots.push_back({po.name, po.retry, std::move(start), {}, false, {}});
  }
  auto ndr = std::make_shared<const ndr_settings>(
    ndr_settings{cfg.server.hostname, routing_table{cfg}});
  actors.supervisor = actors.sys.spawn(supervisor, std::move(slots), std::move(ledger),
                                       actors.store, ndr, options);
  if (!cfg.cluster)
    return;
  everywhere.fallback_retry = cfg.retry;
  everywhere.ndr = ndr;
  try {
    actors.cluster = start_cluster(actors.sys, *cfg.cluster, actors.store, actors.supervisor,
                                   cluster_lineup(std::move(everywhere), cfg, {}),
                                   registration ? &*registration : nullptr);
  } catch (const std::runtime_error& e) {
    for (const auto& actor : {caf::actor_cast<caf::actor>(actors.supervisor),
                              caf::actor_cast<caf::actor>(actors.pool),
                              caf::actor_cast<caf::actor>(actors.store)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    throw startup_error(std::string{"cluster.listen: cannot listen on "} + e.what());
  }
}

/// A planned stop: no new mail (the listener goes; its sessions answer
/// 421), then the attempts under way end and are recorded, for at most
/// server.shutdown_grace. What is still under way then is attempted again
/// after the restart.
void drain(const server_actors& actors, std::chrono::seconds grace) {
  caf::anon_send_exit(actors.listener, caf::exit_reason::user_shutdown);
  if (grace.count() == 0)
    return;
  spdlog::info("shutdown: no new mail; finishing the attempts under way (up to {}s)",
               grace.count());
  caf::scoped_actor self{actors.sys};
  self->request(actors.supervisor, grace, drain_atom::value)
    .receive([](bool) { spdlog::info("shutdown: every attempt under way ended and is recorded"); },
             [&](const caf::error&) {
               spdlog::warn("shutdown: attempts still under way after server.shutdown_grace "
                            "{}s; they are attempted again after the restart",
                            grace.count());
             });
}

/// The admin API and the sessions first (sessions answer 421), then the
/// actors that use the store (the supervisor takes its postoffice actors
/// with it), then the store.
void stop_actors(const server_actors& actors, admin_api& admin) {
  admin.stop();
  caf::anon_send_exit(actors.listener, caf::exit_reason::user_shutdown);
  if (actors.cluster)
    caf::anon_send_exit(actors.cluster, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(actors.supervisor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(actors.purger, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(actors.pool, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(actors.store, caf::exit_reason::user_shutdown);
}

int run(std::shared_ptr<const config> running, const std::filesystem::path& config_file) {
  const auto& cfg = *running; // the config at the start
  // Before anything can be seen from outside (the bound port), so a signal
  // always means a clean shutdown (or a reload).
  auto signals = block_server_signals();
  check_data_dir(cfg.server.data_dir);
  data_dir_lock lock{cfg.server.data_dir};
  server_resources held;
  open_resources(running, held);
  auto registration = register_in_etcd(cfg, held.ledger.size());
  caf::actor_system_config sys_cfg;
  configure_system(cfg, sys_cfg);
  caf::actor_system sys{sys_cfg};
  auto store = start_store(sys, cfg, std::move(held.db));
  auto pool = sys.spawn(share_pool, share_pool_options{});
  server_actors actors{sys, pool, store, {}, {}, {}, {}};
  auto sup_options = supervisor_options_for(cfg);
  start_supervisor(running, actors, std::move(held.ledger), sup_options, registration);
  auto smtp_port = held.smtp_socket->port();
  auto listening = sys.middleman().backend().new_doorman(held.smtp_socket->release());
  // cluster.replicas: the 250 waits for a replica on another node too.
  auto acceptor = cfg.cluster && cfg.cluster->replicas > 1
                    ? acceptor_actor{actors.cluster}
                    : acceptor_actor{store};
  actors.listener = sys.middleman().spawn_broker(smtp_listener, std::move(listening),
                                                 held.smtp, acceptor);
  actors.purger = sys.spawn(purger, store,
                            purger_options{cfg.server.keep_finished, sup_options.origin});
  watch_backlog(actors, cfg.smtp.queue_high_water);
  if (actors.cluster)
    caf::anon_send(actors.cluster, watch_atom::value, actors.listener);
  caf::anon_send(store, watch_atom::value,
                 store_listener_actor{actors.supervisor});
  held.admin->serve(sys, actors.supervisor, store, actors.listener, actors.cluster);
  auto smtp_where = bound_address(*held.smtp_address, smtp_port);
  spdlog::info("smtp: listening on {}", smtp_where);
  spdlog::info("admin: listening on {}",
               bound_address(*parse_listen_address(cfg.admin.listen), held.admin->port()));
  spdlog::info("postconn {} serving on {} (hostname {}, queue {}, {} postoffices)",
               POSTCONN_VERSION, smtp_where, cfg.server.hostname,
               held.db_file.string(), cfg.postoffices.size());
  auto signal = wait_for_signal(signals);
  for (; signal == SIGHUP; signal = wait_for_signal(signals))
    reload(config_file, running, actors, *held.admin);
  spdlog::info("shutdown: {} received, stopping", strsignal(signal));
  drain(actors, running->server.shutdown_grace);
  stop_actors(actors, *held.admin);
  return 0;
}

} // namespace

int serve(const serve_options& options) {
  auto loaded = load_config_file(options.config_file);
  if (!loaded.value) {
    for (const auto& problem : loaded.problems)
      std::fprintf(stderr, "%s: %s\n", options.config_file.c_str(),
                   problem.c_str());
    std::fprintf(stderr, "postconn: not started: the config has %zu problem(s)\n",
                 loaded.problems.size());
    return 2;
  }
  auto cfg = std::make_shared<const config>(std::move(*loaded.value));
  auto level = options.log_level.empty() ? cfg->server.log_level
                                         : options.log_level;
  setup_logging(level, options.log_format);
  try {
    auto rc = run(std::move(cfg), options.config_file);
    spdlog::info("shutdown: clean");
    return rc;
  } catch (const startup_error& e) {
    spdlog::critical("not started: {}", e.what());
    return 1;
  }
}

} // namespace postconn
