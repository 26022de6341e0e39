// NAME
//   simulation -- runs a scenario on the real actors in simulated time (see
//   simulation.hpp).
#include "runtime/simulate/simulation.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/ndr_generator.hpp"
#include "actors/postoffice.hpp"
#include "actors/share_pool.hpp"
#include "actors/store.hpp"
#include "actors/supervisor.hpp"
#include "messages/registry.hpp"
#include "runtime/mail/address.hpp"
#include "runtime/store/queue_db.hpp"
#include "runtime/config/routing.hpp"

namespace postconn {

namespace fs = std::filesystem;

namespace {

/// Unix time of the simulated start (2026-01-01 00:00:00 UTC): it only shows
/// in the dates of the NDRs.
constexpr std::int64_t simulated_epoch = 1'767'225'600;

/// Each postoffice's folder in `dir`, with its marker and a mailbox for
/// every address of the scenario's mail that it takes.
void make_postoffices(config& cfg, const scenario& sc, const fs::path& dir) {
  for (auto& po : cfg.postoffices) {
    po.path = dir / "postoffices" / po.name;
    fs::create_directories(po.path);
    std::ofstream{po.path / ".postoffice"};
  }
  routing_table routes{cfg};
  auto add_mailbox = [&](const std::string& addr) {
    auto route = routes.route(addr);
    auto parsed = parse_address(addr);
    if (!route.postoffice || !parsed)
      return;
    if (auto mailbox = maildir_mailbox_name(parsed->local_part))
      for (const auto* sub : {"tmp", "new", "cur"})
        fs::create_directories(cfg.postoffices[*route.postoffice].path / *mailbox / sub);
  };
  for (const auto& mail : sc.mail) {
    add_mailbox(mail.sender);
    for (const auto& rcpt : mail.recipients)
      add_mailbox(rcpt);
  }
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items)
    text += (text.empty() ? "" : ", ") + item;
  return text;
}

class simulation {
public:
  simulation(const scenario& sc, const scenario_run& run, const fs::path& dir)
    : sc_(sc),
      cfg_(run.cfg),
      sys_(configure(sys_cfg_)),
      sched_(dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())),
      self_(sys_, true) {
    report_.name = run.name;
    report_.description = run.description;
    make_postoffices(cfg_, sc_, dir);
    for (const auto& po : cfg_.postoffices)
      report_.chart.postoffices.push_back(po.name);
    report_.chart.name = run.name;
    report_.chart.description = run.description;
    db_ = queue_db::open(dir / "queue.db");
    start_actors();
    schedule_scenario();
  }

  ~simulation() {
    for (const auto& [name, po] : postoffices_)
      caf::anon_send_exit(po, caf::exit_reason::user_shutdown);
    for (const auto& actor : {caf::actor_cast<caf::actor>(sup_),
                              caf::actor_cast<caf::actor>(pool_),
                              caf::actor_cast<caf::actor>(store_)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sched_.run();
    sched_.clock().cancel_all();
    sched_.run();
  }

  run_report run() {
    auto& clock = sched_.clock();
    start_ = clock.current_time;
    auto end = start_ + std::chrono::duration_cast<caf::timespan>(sc_.duration);
    auto step = std::chrono::duration_cast<caf::timespan>(sc_.sample_interval);
    observe();
    while (clock.current_time < end) {
      auto target = std::min(end, clock.current_time + step);
      if (!actions_.empty())
        target = std::min(target, start_ + actions_.begin()->first);
      if (!clock.schedule().empty())
        target = std::max(clock.current_time, std::min(target, clock.schedule().begin()->first));
      sched_.advance_time(target - clock.current_time);
      sched_.run();
      while (!actions_.empty() && start_ + actions_.begin()->first <= clock.current_time) {
        for (const auto& action : actions_.begin()->second) {
          action();
          sched_.run();
        }
        actions_.erase(actions_.begin());
      }
      observe();
    }
    finish();
    return std::move(report_);
  }

private:
  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    register_types(cfg);
    return cfg;
  }

  void start_actors() {
    store_ = spawn_store(sys_, db_, store_options{}, false);
    share_pool_options pool_options;
    pool_options.detached = false;
    pool_ = sys_.spawn(share_pool, pool_options);
    std::vector<postoffice_slot> slots;
    auto hostname = std::make_shared<const std::string>(cfg_.server.hostname);
    for (const auto& po : cfg_.postoffices) {
      auto settings = std::make_shared<const postoffice_config>(po);
      auto start = [this, settings, hostname] {
        auto actor = sys_.spawn(postoffice, settings, pool_, store_, hostname);
        postoffices_[settings->name] = actor;
        return actor;
      };
      slots.push_back({po.name, po.retry, start, {}, false, {}});
    }
    auto ndr = std::make_shared<const ndr_settings>(
      ndr_settings{cfg_.server.hostname, routing_table{cfg_}});
    supervisor_options options;
    options.origin = {simulated_epoch, {}};
    options.fallback_retry = cfg_.retry;
    sup_ = sys_.spawn(supervisor, std::move(slots), std::vector<ledger_entry>{}, store_, ndr,
                      options);
    // As in the server: the store tells the supervisor of new deliveries.
    caf::anon_send(store_, watch_atom::value, store_listener_actor{sup_});
    sched_.run();
  }

  /// The scenario's mail and fault windows, by time since the start.
  void schedule_scenario() {
    // Faults first: one that starts with the mail is there for its first attempt.
    for (const auto& window : sc_.faults) {
      at_time(window.from, [this, window] {
        inject(window.postoffice, window.fault);
        event("fault injected into " + window.postoffice + ": "
              + std::string{to_string(window.fault.mode)});
      });
      if (window.until < sc_.duration)
        at_time(window.until, [this, window] {
          inject(window.postoffice, configured_fault(window.postoffice));
          event("fault on " + window.postoffice + " lifted");
        });
    }
    int number = 0;
    for (const auto& mail : sc_.mail)
      for (int i = 0; i < mail.count; ++i) {
        auto at = mail.at + i * mail.every;
        if (at < sc_.duration)
          at_time(at, [this, mail, name = "m" + std::to_string(++number)] {
            submit(name, mail);
          });
      }
  }

  void at_time(std::chrono::seconds at, std::function<void()> action) {
    actions_[std::chrono::duration_cast<caf::timespan>(at)].push_back(std::move(action));
  }

  fault_config configured_fault(const std::string& postoffice) const {
    for (const auto& po : cfg_.postoffices)
      if (po.name == postoffice)
        return po.fault;
    return {};
  }

  void inject(const std::string& postoffice, const fault_config& fault) {
    caf::anon_send(postoffices_.at(postoffice), fault_atom::value, fault);
  }

  /// Commits a message as an SMTP session would and hands it to the
  /// supervisor.
  void submit(const std::string& name, const mail_arrival& mail) {
    routing_table routes{cfg_};
    std::map<std::string, std::vector<std::string>> by_postoffice;
    for (const auto& rcpt : mail.recipients)
      by_postoffice[routes.route(rcpt).postoffice_name].push_back(rcpt);
    incoming_message msg;
    msg.sender = mail.sender;
    msg.received_at = simulated_epoch + now();
    msg.content = "From: <" + mail.sender + ">\r\nTo: " + joined(mail.recipients)
                  + "\r\nSubject: scenario message " + name + "\r\nMessage-ID: <" + name
                  + "@simulate.invalid>\r\n\r\nMessage " + name + " of the scenario.\r\n";
    for (auto& [postoffice, rcpts] : by_postoffice)
      msg.deliveries.push_back({postoffice, rcpts});
    auto receipt = std::make_shared<accept_receipt>();
    auto failure = std::make_shared<std::string>();
    sys_.spawn([=](caf::event_based_actor* client) {
      client->request(store_, caf::infinite, accept_atom::value, msg)
        .then(
          [=](accept_receipt& accepted) { *receipt = std::move(accepted); },
          [=](const caf::error& err) { *failure = sys_.render(err); });
    });
    sched_.run();
    if (!failure->empty()) {
      event(name + " refused by the store: " + *failure);
      return;
    }
    for (const auto& entry : receipt->deliveries) {
      unfinished_[entry.delivery_id] = entry;
      deliveries_[entry.delivery_id] = report_.deliveries.size();
      report_.deliveries.push_back(
        {name, entry.postoffice, entry.recipients, now(), std::nullopt, std::nullopt, 0});
    }
    event(name + " queued: " + mail.sender + " -> " + joined(mail.recipients), true);
  }

  /// Seconds since the start.
  std::int64_t now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(sched_.clock().current_time
                                                            - start_)
      .count();
  }

  void event(std::string text, bool about_one_message = false, bool bounce = false) {
    report_.timeline.push_back({now(), std::move(text), about_one_message, bounce});
  }

  /// Asks the supervisor for its ledger and each postoffice for its last
  /// probe, and records what changed.
  void observe() {
    std::vector<ledger_entry> ledger;
    auto asked = self_->request(sup_, caf::infinite, ledger_atom::value);
    sched_.run();
    asked.receive([&](std::vector<ledger_entry>& entries) { ledger = std::move(entries); },
                  [&](const caf::error& err) { event("supervisor: " + sys_.render(err)); });
    std::map<std::int64_t, ledger_entry> present;
    for (auto& entry : ledger)
      present.emplace(entry.delivery_id, std::move(entry));
    for (auto i = unfinished_.begin(); i != unfinished_.end();) {
      if (present.count(i->first)) {
        ++i;
        continue;
      }
      finished(i->second);
      i = unfinished_.erase(i);
    }
    for (auto& [id, entry] : present)
      if (unfinished_.emplace(id, entry).second && !deliveries_.count(id))
        event("NDR queued for " + joined(entry.recipients) + " at " + entry.postoffice, true);
    auto& depth = report_.chart.queue_depth;
    if (depth.empty() || depth.back().deliveries != present.size())
      depth.push_back({now(), present.size()});
    for (const auto& [name, po] : postoffices_)
      observe_postoffice(name, po);
  }

  void observe_postoffice(const std::string& name, const postoffice_actor& po) {
    std::string problem;
    auto asked = self_->request(po, caf::infinite, status_atom::value);
    sched_.run();
    asked.receive([&](postoffice_report& report) { problem = std::move(report.problem); },
                  [&](const caf::error& err) { problem = sys_.render(err); });
    auto open = down_since_.find(name);
    if (!problem.empty() && open == down_since_.end()) {
      down_since_[name] = now();
      event(name + " down: " + problem);
    } else if (problem.empty() && open != down_since_.end()) {
      report_.chart.down.push_back({name, open->second, now()});
      down_since_.erase(open);
      event(name + " up again");
    }
  }

  /// Asks the store, as any actor would; empty when it fails.
  template <class Result, class... Ts>
  Result ask_store(Ts... xs) {
    Result result{};
    auto asked = self_->request(store_, caf::infinite, xs...);
    sched_.run();
    asked.receive([&](Result& answer) { result = std::move(answer); },
                  [&](const caf::error& err) { event("store: " + sys_.render(err)); });
    return result;
  }

  /// A delivery left the ledger: delivered or bounced.
  void finished(const ledger_entry& last_seen) {
    ledger_entry final_entry = last_seen;
    for (const auto& entry :
         ask_store<std::vector<ledger_entry>>(load_atom::value, last_seen.message_id))
      if (entry.delivery_id == last_seen.delivery_id)
        final_entry = entry;
    bool delivered = final_entry.state == delivery_state::delivered;
    auto mine = deliveries_.find(final_entry.delivery_id);
    if (mine == deliveries_.end()) {
      event(std::string{"NDR "} + (delivered ? "delivered to " : "bounced at ")
              + joined(final_entry.recipients),
            true);
      return;
    }
    auto& row = report_.deliveries[mine->second];
    row.attempts = final_entry.attempts;
    if (delivered) {
      row.delivered_at = now();
      event(row.message + " delivered at " + row.postoffice + " to "
              + joined(row.recipients),
            true);
      return;
    }
    row.bounced_at = now();
    ++report_.ndrs;
    report_.chart.ndrs.push_back({now(), row.message + " " + row.postoffice});
    event(row.message + " at " + row.postoffice + ": bounced, NDR to the sender (last error: "
            + final_entry.last_error_code + " " + final_entry.last_error_text + ")",
          true, true);
  }

  void finish() {
    for (const auto& [name, since] : down_since_)
      report_.chart.down.push_back({name, since, now()});
    // The attempts of the deliveries still queued, as their ledger counts them.
    for (const auto& [id, last_seen] : unfinished_)
      if (auto mine = deliveries_.find(id); mine != deliveries_.end())
        for (const auto& entry :
             ask_store<std::vector<ledger_entry>>(load_atom::value, last_seen.message_id))
          if (entry.delivery_id == id)
            report_.deliveries[mine->second].attempts = entry.attempts;
  }

  const scenario& sc_;
  config cfg_;
  caf::actor_system_config sys_cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  caf::scoped_actor self_;
  std::shared_ptr<queue_db> db_;
  store_actor store_;
  share_pool_actor pool_;
  supervisor_actor sup_;
  /// The running actor of each postoffice (a restart replaces it).
  std::map<std::string, postoffice_actor> postoffices_;
  caf::actor_clock::time_point start_;
  /// Scenario actions by time since the start.
  std::map<caf::timespan, std::vector<std::function<void()>>> actions_;
  /// Report rows of the scenario's deliveries, by delivery id.
  std::map<std::int64_t, std::size_t> deliveries_;
  /// The ledger as last seen.
  std::map<std::int64_t, ledger_entry> unfinished_;
  /// Postoffices down, since when.
  std::map<std::string, std::int64_t> down_since_;
  run_report report_;
};

/// Scenarios with more deliveries leave the lines of each message's
/// queueing and delivery out of the timeline (bounces stay).
constexpr std::size_t timeline_message_limit = 50;

/// Per postoffice: deliveries by outcome, how long they waited, attempts.
std::vector<std::string> postoffice_digests(const run_report& report) {
  std::map<std::string, std::vector<const simulated_delivery*>> by_postoffice;
  for (const auto& row : report.deliveries)
    by_postoffice[row.postoffice].push_back(&row);
  std::vector<std::string> lines;
  for (const auto& [postoffice, rows] : by_postoffice) {
    std::size_t delivered = 0;
    std::size_t bounced = 0;
    int most_attempts = 0;
    std::vector<std::int64_t> waits;
    for (const auto* row : rows) {
      delivered += row->delivered_at ? 1 : 0;
      bounced += row->bounced_at ? 1 : 0;
      most_attempts = std::max(most_attempts, row->attempts);
      if (auto end = row->delivered_at ? row->delivered_at : row->bounced_at)
        waits.push_back(*end - row->queued_at);
    }
    std::ostringstream line;
    line << postoffice << ": " << rows.size() << " deliveries, " << delivered
         << " delivered, " << bounced << " NDR'd, " << rows.size() - delivered - bounced
         << " still queued";
    if (!waits.empty()) {
      std::sort(waits.begin(), waits.end());
      line << "; waited median " << format_offset(waits[waits.size() / 2]) << ", at most "
           << format_offset(waits.back());
    }
    line << "; attempts at most " << most_attempts;
    lines.push_back(line.str());
  }
  return lines;
}

std::string padded(std::string text, std::size_t width) {
  if (text.size() < width)
    text.append(width - text.size(), ' ');
  return text;
}

std::string offset_or_dash(const std::optional<std::int64_t>& at) {
  return at ? format_offset(*at) : "-";
}

} // namespace

run_report simulate_run(const scenario& sc, const scenario_run& run, const fs::path& scratch) {
  auto dir = scratch / run.name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  simulation sim{sc, run, dir};
  return sim.run();
}

std::string format_offset(std::int64_t seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%lldd %02lld:%02lld:%02lld",
                static_cast<long long>(seconds / 86400),
                static_cast<long long>(seconds / 3600 % 24),
                static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60));
  return text;
}

std::string format_run_report(const run_report& report) {
  std::ostringstream out;
  out << "== run " << report.name;
  if (!report.description.empty())
    out << ": " << report.description;
  out << "\n\ntimeline:\n";
  auto per_message = report.deliveries.size() <= timeline_message_limit;
  std::size_t left_out = 0;
  for (const auto& event : report.timeline) {
    if (!per_message && event.about_one_message && !event.bounce) {
      ++left_out;
      continue;
    }
    out << "  " << padded(format_offset(event.at), 13) << " " << event.text << "\n";
  }
  if (left_out > 0)
    out << "  (" << left_out << " lines of mail queued and delivered left out: "
        << report.deliveries.size() << " deliveries, see the summary)\n";
  out << "\nsummary:\n  " << padded("message", 8) << padded("postoffice", 12)
      << padded("queued", 13) << padded("delivered", 13) << padded("NDR", 13)
      << "attempts  recipients\n";
  for (const auto& row : report.deliveries)
    out << "  " << padded(row.message, 8) << padded(row.postoffice, 12)
        << padded(format_offset(row.queued_at), 13) << padded(offset_or_dash(row.delivered_at), 13)
        << padded(offset_or_dash(row.bounced_at), 13) << padded(std::to_string(row.attempts), 10)
        << joined(row.recipients) << "\n";
  out << "\n";
  for (const auto& line : postoffice_digests(report))
    out << "  " << line << "\n";
  const auto& depth = report.chart.queue_depth;
  auto peak = std::max_element(depth.begin(), depth.end(), [](const auto& a, const auto& b) {
    return a.deliveries < b.deliveries;
  });
  if (peak != depth.end())
    out << "  queue: at most " << peak->deliveries << " unfinished deliveries, at "
        << format_offset(peak->at) << "; " << report.ndrs << " NDRs\n";
  return out.str();
}

} // namespace postconn
