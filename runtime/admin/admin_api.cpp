// NAME
//   admin_api -- the admin HTTP API (see admin_api.hpp).
#include "runtime/admin/admin_api.hpp"
#include "messages/unix_clock.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <set>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include <sys/socket.h>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "runtime/admin/status_page.hpp"
#include "runtime/config/toml_table.hpp"

namespace postconn {

/// The running config, replaced by a reload while handlers read it.
struct config_holder {
  std::mutex mutex;
  std::shared_ptr<const config> current;
};

namespace {

using json = nlohmann::json;

/// How long a request waits for an actor's answer.
constexpr auto ask_timeout = std::chrono::seconds(10);

/// Deliveries listed per page unless `limit` says otherwise, and at most.
constexpr std::int64_t default_page = 100;
constexpr std::int64_t largest_page = 1000;

/// Whether `given` is the token, compared in time that does not depend on
/// where a wrong one differs.
bool is_token(std::string_view given, const std::string& token) {
  if (given.size() != token.size())
    return false;
  unsigned char differs = 0;
  for (std::size_t i = 0; i < token.size(); ++i)
    differs |= static_cast<unsigned char>(given[i] ^ token[i]);
  return differs == 0;
}

/// "Bearer <token>" with the right token.
bool bearer_matches(const std::string& header, const std::string& token) {
  const std::string_view prefix = "Bearer ";
  return header.compare(0, prefix.size(), prefix) == 0
         && is_token(std::string_view{header}.substr(prefix.size()), token);
}

/// The token rule: every request carries the token as a bearer header. A
/// browser cannot add a header when it opens the status page, so GET / may
/// carry it as ?token= instead (the page then sends the header itself).
bool authorized(const httplib::Request& req, const std::string& token) {
  if (bearer_matches(req.get_header_value("Authorization"), token))
    return true;
  return req.method == "GET" && req.path == "/" && req.has_param("token")
         && is_token(req.get_param_value("token"), token);
}

/// cpp-httplib's own socket options set SO_REUSEPORT, with which a second
/// server binds the same address and takes every other connection. Only
/// SO_REUSEADDR here (a restart binds while old connections linger), so a
/// taken port stops the start.
void exclusive_listen_options(socket_t sock) {
  int on = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
}

/// Asks `dest` and waits; the answer, or `error` set to why there is none.
template <class Result, class Handle, class... Ts>
std::optional<Result> ask(caf::actor_system& sys, const Handle& dest, std::string& error,
                          Ts... xs) {
  caf::scoped_actor self{sys};
  std::optional<Result> result;
  self->request(dest, ask_timeout, xs...)
    .receive([&](Result& answer) { result = std::move(answer); },
             [&](const caf::error& err) { error = sys.render(err); });
  return result;
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

void fail(httplib::Response& res, int status, const std::string& error) {
  reply(res, status, json{{"error", error}});
}

/// A query parameter as a whole number of at least 0, or `fallback`;
/// nullopt when it is not a number.
std::optional<std::int64_t> number_param(const httplib::Request& req, const char* name,
                                         std::int64_t fallback) {
  if (!req.has_param(name))
    return fallback;
  auto text = req.get_param_value(name);
  if (!is_digits(text) || text.size() > 12)
    return std::nullopt;
  return std::stoll(text);
}

/// The queue id of a /messages/ID request: ids are lower-case hex, and an
/// upper-case one names the same message.
std::string queue_id(const httplib::Request& req) {
  std::string id = req.matches[1];
  std::transform(id.begin(), id.end(), id.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return id;
}

/// The states a delivery in the ledger can be in, as /queue takes them.
constexpr const char* unfinished_states = "queued, in_flight, deferred, held";

bool is_unfinished_state(const std::string& name) {
  delivery_state state;
  return from_string(name, state) && state != delivery_state::delivered
         && state != delivery_state::bounced;
}

class handlers {
public:
  handlers(std::shared_ptr<config_holder> cfg, caf::actor_system& sys, supervisor_actor sup,
           store_actor store, smtp_listener_actor listener, cluster_actor cluster)
    : cfg_(std::move(cfg)),
      sys_(sys),
      sup_(std::move(sup)),
      store_(std::move(store)),
      listener_(std::move(listener)),
      cluster_(std::move(cluster)) {}

  void queue(const httplib::Request& req, httplib::Response& res) {
    auto limit = number_param(req, "limit", default_page);
    auto offset = number_param(req, "offset", 0);
    if (!limit || !offset || *limit == 0)
      return fail(res, 400, "limit and offset are whole numbers of at least 0 "
                            "(limit at least 1)");
    auto min_age = parse_duration(req.has_param("min_age") ? req.get_param_value("min_age")
                                                           : std::string{"0"});
    if (!min_age)
      return fail(res, 400, "min_age is a duration: seconds, or \"90s\", \"10m\", \"2h\", "
                            "\"1d\"");
    std::string error;
    queue_query query;
    query.postoffice = req.get_param_value("postoffice");
    query.state = req.get_param_value("state");
    if (!query.state.empty() && !is_unfinished_state(query.state))
      return fail(res, 400, "unknown state \"" + query.state + "\" (the queue holds "
                              + unfinished_states + ")");
    if (auto sender = req.get_param_value("sender"); !sender.empty()) {
      auto ids = ask<std::vector<std::string>>(sys_, store_, error, load_atom::value,
                                               sender_atom::value, sender);
      if (!ids)
        return fail(res, 503, error);
      query.message_ids = std::move(*ids);
      query.only_messages = true;
    }
    std::time_t now = unix_time_origin::now().seconds;
    query.queued_before = now - min_age->count();
    query.offset = static_cast<std::uint64_t>(*offset);
    query.limit = static_cast<std::uint64_t>(std::min(*limit, largest_page));
    auto selected = ask<queue_page>(sys_, sup_, error, page_atom::value, query);
    if (!selected)
      return fail(res, 503, "supervisor: " + error);
    auto page = json::array();
    for (const auto& entry : selected->deliveries)
      page.push_back(delivery_json(entry));
    reply(res, 200, json{{"now", now}, {"total", selected->total}, {"deliveries", page}});
  }

  void message(const std::string& id, httplib::Response& res) {
    std::string error;
    auto msg = ask<stored_message>(sys_, store_, error, fetch_atom::value, id);
    if (!msg)
      return fail(res, error.find("not found") != std::string::npos ? 404 : 503, error);
    auto entries = ask<std::vector<ledger_entry>>(sys_, store_, error, load_atom::value, id);
    if (!entries)
      return fail(res, 503, error);
    // The supervisor's view is the newer one for deliveries still under way.
    auto ledger = ask<std::vector<ledger_entry>>(sys_, sup_, error, ledger_atom::value, id);
    auto deliveries = json::array();
    for (auto& entry : *entries) {
      if (ledger)
        for (const auto& live : *ledger)
          if (live.delivery_id == entry.delivery_id)
            entry = live;
      auto item = delivery_json(entry);
      auto attempts = ask<std::vector<attempt_record>>(sys_, store_, error, load_atom::value,
                                                       entry.delivery_id);
      item["attempts"] = json::array();
      for (const auto& attempt : attempts.value_or(std::vector<attempt_record>{}))
        item["attempts"].push_back({{"at", attempt.at},
                                    {"outcome", attempt.outcome},
                                    {"code", attempt.code},
                                    {"text", attempt.text}});
      deliveries.push_back(std::move(item));
    }
    reply(res, 200,
          json{{"now", unix_time_origin::now().seconds},
               {"message_id", msg->id},
               {"sender", msg->sender},
               {"received_at", msg->received_at}, {"size", msg->content.size()},
               {"deliveries", deliveries}});
  }

  void hold_or_release(const std::string& id, bool hold, httplib::Response& res) {
    std::string error;
    if (!ask<stored_message>(sys_, store_, error, fetch_atom::value, id))
      return fail(res, error.find("not found") != std::string::npos ? 404 : 503, error);
    auto changed = hold ? ask<std::int32_t>(sys_, sup_, error, hold_atom::value, id)
                        : ask<std::int32_t>(sys_, sup_, error, release_atom::value, id);
    if (!changed)
      return fail(res, 503, "supervisor: " + error);
    reply(res, 200, json{{hold ? "held" : "released", *changed}});
  }

  void remove(const std::string& id, bool with_ndr, httplib::Response& res) {
    std::string error;
    if (!ask<stored_message>(sys_, store_, error, fetch_atom::value, id))
      return fail(res, error.find("not found") != std::string::npos ? 404 : 503, error);
    auto ended = ask<std::int32_t>(sys_, sup_, error, delete_atom::value, id, with_ndr);
    if (!ended)
      return fail(res, 503, "supervisor: " + error);
    if (*ended < 0)
      return fail(res, 409, "an attempt to deliver it is under way; try again in a moment");
    reply(res, 200, json{{with_ndr ? "bounced" : "deleted", *ended}});
  }

  void requeue(const std::string& id, const std::string& postoffice, httplib::Response& res) {
    if (postoffice.empty())
      return fail(res, 400, "requeue to which postoffice? give ?postoffice=P");
    if (!configured(postoffice))
      return fail(res, 404, "no postoffice " + postoffice);
    std::string error;
    if (!ask<stored_message>(sys_, store_, error, fetch_atom::value, id))
      return fail(res, error.find("not found") != std::string::npos ? 404 : 503, error);
    auto moved = ask<std::int32_t>(sys_, sup_, error, requeue_atom::value, id, postoffice);
    if (!moved)
      return fail(res, 503, "supervisor: " + error);
    if (*moved == -1)
      return fail(res, 409, "an attempt to deliver it is under way; try again in a moment");
    if (*moved < 0)
      return fail(res, 409, "postoffice " + postoffice + " is not running yet");
    reply(res, 200, json{{"requeued", *moved}, {"postoffice", postoffice}});
  }

  void flush(const std::string& postoffice, const std::string& message_id,
             httplib::Response& res) {
    if (!postoffice.empty() && !configured(postoffice))
      return fail(res, 404, "no postoffice " + postoffice);
    std::string error;
    auto flushed = ask<std::int32_t>(sys_, sup_, error, flush_atom::value, postoffice,
                                     message_id);
    if (!flushed)
      return fail(res, 503, "supervisor: " + error);
    reply(res, 200, json{{"flushed", *flushed}});
  }

  void postoffices(httplib::Response& res) {
    std::string error;
    auto reports = ask<std::vector<postoffice_report>>(sys_, sup_, error, postoffice_atom::value);
    if (!reports)
      return fail(res, 503, "supervisor: " + error);
    auto list = json::array();
    for (const auto& r : *reports)
      list.push_back({{"name", r.name},
                      {"transport", r.transport},
                      {"state", to_string(r.state)},
                      {"since", r.since},
                      {"problem", r.problem},
                      {"queued", r.queued},
                      {"held", r.held},
                      {"in_flight", r.in_flight},
                      {"oldest_queued_at", r.oldest_queued_at},
                      {"open_failures", r.open_failures},
                      {"tls", r.tls}});
    auto body = json{{"now", unix_time_origin::now().seconds}, {"postoffices", list}};
    if (cluster_) {
      auto report = ask<cluster_report>(sys_, cluster_, error, status_atom::value);
      if (!report)
        return fail(res, 503, "cluster: " + error);
      add_owners(body, *report);
    }
    reply(res, 200, body);
  }

  void bounces(httplib::Response& res) {
    std::string error;
    auto recent = ask<std::vector<bounce_report>>(sys_, sup_, error, bounced_atom::value);
    if (!recent)
      return fail(res, 503, "supervisor: " + error);
    auto list = json::array();
    for (const auto& b : *recent)
      list.push_back({{"at", b.at},
                      {"message_id", b.message_id},
                      {"postoffice", b.postoffice},
                      {"recipient", b.recipient},
                      {"status", b.status},
                      {"diagnostic", b.diagnostic}});
    reply(res, 200, json{{"now", unix_time_origin::now().seconds}, {"bounces", list}});
  }

  void cluster(httplib::Response& res) {
    if (!cluster_)
      return fail(res, 404, "a single node: no [cluster] in its config");
    std::string error;
    auto report = ask<cluster_report>(sys_, cluster_, error, status_atom::value);
    if (!report)
      return fail(res, 503, "cluster: " + error);
    reply(res, 200, cluster_json(*report));
  }

  /// Why a configured postoffice has no actor here: another node owns it
  /// (named, so the caller can ask that node's admin API), or it is not
  /// running (a reload under way).
  std::string not_running_here(const std::string& postoffice) {
    std::string error;
    if (cluster_)
      if (auto report = ask<cluster_report>(sys_, cluster_, error, status_atom::value))
        if (auto owner = report->owners.find(postoffice);
            owner != report->owners.end() && owner->second != report->node)
          return "postoffice " + postoffice + " runs on node " + owner->second
                 + ", not on this node (" + report->node + "): ask that node's admin API";
    return "postoffice " + postoffice + " is not running on this node";
  }

  void fault(const std::string& postoffice, const httplib::Request& req,
             httplib::Response& res) {
    if (!configured(postoffice))
      return fail(res, 404, "no postoffice " + postoffice);
    std::string error;
    auto table = table_of(req.body, error);
    if (!table)
      return fail(res, 400, error);
    std::vector<std::string> problems;
    fault_config fault;
    read_fault(table_reader{*table, "fault", problems}, fault);
    if (!problems.empty()) {
      std::string text;
      for (const auto& problem : problems)
        text += (text.empty() ? "" : "; ") + problem;
      return fail(res, 400, text);
    }
    auto found = ask<bool>(sys_, sup_, error, fault_atom::value, postoffice, fault);
    if (!found)
      return fail(res, 503, "supervisor: " + error);
    if (!*found)
      return fail(res, 409, not_running_here(postoffice));
    reply(res, 200, json{{"postoffice", postoffice}, {"fault", to_string(fault.mode)}});
  }

  void metrics(httplib::Response& res) {
    std::string error;
    auto depths = ask<std::vector<queue_depth>>(sys_, sup_, error, depth_atom::value);
    auto reports = ask<std::vector<postoffice_report>>(sys_, sup_, error, postoffice_atom::value);
    auto store = ask<store_status>(sys_, store_, error, status_atom::value);
    auto outcomes = ask<std::vector<outcome_count>>(sys_, sup_, error, outcomes_atom::value);
    auto sessions = ask<std::uint64_t>(sys_, listener_, error, status_atom::value);
    if (!depths || !reports || !store || !outcomes || !sessions) {
      res.status = 503;
      res.set_content("# " + error + "\n", "text/plain");
      return;
    }
    std::ostringstream out;
    out << "# HELP postconn_queue_deliveries Unfinished deliveries by postoffice and state.\n"
           "# TYPE postconn_queue_deliveries gauge\n";
    std::map<std::pair<std::string, std::string>, std::uint64_t> depth;
    for (const auto& po : cfg()->postoffices)
      for (auto state : {delivery_state::queued, delivery_state::in_flight,
                         delivery_state::deferred, delivery_state::held})
        depth[{po.name, to_string(state)}] = 0;
    for (const auto& d : *depths)
      depth[{d.postoffice, to_string(d.state)}] += d.count;
    for (const auto& [key, count] : depth)
      out << "postconn_queue_deliveries{postoffice=\"" << key.first << "\",state=\""
          << key.second << "\"} " << count << "\n";
    // A postoffice not probed yet has no up sample: neither 1 (an alert
    // would clear falsely after a restart) nor 0; its state says unknown.
    out << "# HELP postconn_postoffice_up Whether the postoffice's last probe succeeded "
           "(no sample until the first has answered).\n"
           "# TYPE postconn_postoffice_up gauge\n";
    for (const auto& r : *reports)
      if (r.state != reachability::unknown)
        out << "postconn_postoffice_up{postoffice=\"" << r.name << "\"} "
            << (r.state == reachability::up ? 1 : 0) << "\n";
    out << "# HELP postconn_postoffice_state The postoffice's state: 1 for the one it is "
           "in (unknown until its first probe has answered), 0 for the others.\n"
           "# TYPE postconn_postoffice_state gauge\n";
    for (const auto& r : *reports)
      for (auto state : {reachability::unknown, reachability::up, reachability::down})
        out << "postconn_postoffice_state{postoffice=\"" << r.name << "\",state=\""
            << to_string(state) << "\"} " << (r.state == state ? 1 : 0) << "\n";
    out << "# HELP postconn_postoffice_open_failures Failed opens counted against the "
           "postoffice's queued deliveries.\n"
           "# TYPE postconn_postoffice_open_failures gauge\n";
    for (const auto& r : *reports)
      out << "postconn_postoffice_open_failures{postoffice=\"" << r.name << "\"} "
          << r.open_failures << "\n";
    out << "# HELP postconn_store_commits_total Queue transactions committed.\n"
           "# TYPE postconn_store_commits_total counter\n"
           "postconn_store_commits_total " << store->commits << "\n"
           "# HELP postconn_store_writes_total Queue writes acknowledged.\n"
           "# TYPE postconn_store_writes_total counter\n"
           "postconn_store_writes_total " << store->writes << "\n"
           "# HELP postconn_store_failed_writes_total Queue writes that failed.\n"
           "# TYPE postconn_store_failed_writes_total counter\n"
           "postconn_store_failed_writes_total " << store->failed_writes << "\n";
    out << "# HELP postconn_smtp_sessions Open SMTP sessions.\n"
           "# TYPE postconn_smtp_sessions gauge\n"
           "postconn_smtp_sessions " << *sessions << "\n";
    out << "# HELP postconn_messages_received_total Messages accepted over SMTP and "
           "committed.\n"
           "# TYPE postconn_messages_received_total counter\n"
           "postconn_messages_received_total " << store->messages_accepted << "\n"
           "# HELP postconn_messages_purged_total Finished messages removed from the "
           "queue after server.keep_finished.\n"
           "# TYPE postconn_messages_purged_total counter\n"
           "postconn_messages_purged_total " << store->messages_purged << "\n"
           "# HELP postconn_messages_refused_low_space_total Messages refused because "
           "the queue's disk was below server.min_free_space.\n"
           "# TYPE postconn_messages_refused_low_space_total counter\n"
           "postconn_messages_refused_low_space_total " << store->messages_refused_low_space
        << "\n"
           "# HELP postconn_queue_disk_free_bytes Bytes free on the queue's disk when new "
           "mail was last committed (or refused).\n"
           "# TYPE postconn_queue_disk_free_bytes gauge\n"
           "postconn_queue_disk_free_bytes " << store->free_bytes << "\n"
           "# HELP postconn_attempts_total Attempt outcomes by postoffice: delivered, "
           "open_failed, transfer_failed, rejected, expired, ...\n"
           "# TYPE postconn_attempts_total counter\n";
    for (const auto& c : *outcomes)
      if (!c.postoffice.empty())
        out << "postconn_attempts_total{postoffice=\"" << c.postoffice << "\",outcome=\""
            << c.outcome << "\"} " << c.count << "\n";
    out << "# HELP postconn_ndr_recipients_total Recipients reported in NDRs, by status.\n"
           "# TYPE postconn_ndr_recipients_total counter\n";
    for (const auto& c : *outcomes)
      if (c.postoffice.empty())
        out << "postconn_ndr_recipients_total{status=\"" << c.outcome << "\"} " << c.count
            << "\n";
    out << "# HELP postconn_store_commit_seconds Time to commit one queue transaction "
           "(fsync included).\n"
           "# TYPE postconn_store_commit_seconds histogram\n";
    std::uint64_t cumulative = 0;
    const auto& buckets = store->commit_latency_buckets;
    for (std::size_t i = 0; i < std::size(commit_latency_bounds); ++i) {
      cumulative += i < buckets.size() ? buckets[i] : 0;
      out << "postconn_store_commit_seconds_bucket{le=\"" << commit_latency_bounds[i]
          << "\"} " << cumulative << "\n";
    }
    out << "postconn_store_commit_seconds_bucket{le=\"+Inf\"} " << store->commits << "\n"
        << "postconn_store_commit_seconds_sum " << store->commit_seconds << "\n"
        << "postconn_store_commit_seconds_count " << store->commits << "\n";
    if (cluster_) {
      auto report = ask<cluster_report>(sys_, cluster_, error, status_atom::value);
      if (!report) {
        res.status = 503;
        res.set_content("# cluster: " + error + "\n", "text/plain");
        return;
      }
      auto owned = std::count_if(report->owners.begin(), report->owners.end(),
                                 [&](const auto& owner) { return owner.second == report->node; });
      out << "# HELP postconn_cluster_members Live cluster members, this node included.\n"
             "# TYPE postconn_cluster_members gauge\n"
             "postconn_cluster_members " << report->members.size() << "\n"
             "# HELP postconn_cluster_postoffices_owned Postoffices this node owns.\n"
             "# TYPE postconn_cluster_postoffices_owned gauge\n"
             "postconn_cluster_postoffices_owned " << owned << "\n";
    }
    res.status = 200;
    res.set_content(out.str(), "text/plain; version=0.0.4");
  }

private:
  std::shared_ptr<const config> cfg() const {
    std::lock_guard<std::mutex> guard{cfg_->mutex};
    return cfg_->current;
  }

  bool configured(const std::string& postoffice) const {
    auto current = cfg();
    return std::any_of(current->postoffices.begin(), current->postoffices.end(),
                       [&](const auto& po) { return po.name == postoffice; });
  }

  retry_policy policy_of(const std::string& postoffice) const {
    auto current = cfg();
    for (const auto& po : current->postoffices)
      if (po.name == postoffice)
        return po.retry;
    return current->retry;
  }

  json delivery_json(const ledger_entry& e) const {
    auto policy = policy_of(e.postoffice);
    auto last_error = e.last_error_code;
    if (!e.last_error_text.empty())
      last_error += (last_error.empty() ? "" : " ") + e.last_error_text;
    return {{"delivery_id", e.delivery_id},
            {"message_id", e.message_id},
            {"postoffice", e.postoffice},
            {"recipients", e.recipients},
            {"state", to_string(e.state)},
            {"queued_at", e.queued_at},
            {"open_retries", e.open_retries},
            {"max_open_retries", policy.max_open_retries},
            {"transfer_retries", e.transfer_retries},
            {"max_transfer_retries", policy.max_transfer_retries},
            {"next_attempt_at", e.next_attempt_at},
            {"last_error", last_error}};
  }

  /// A JSON object as a TOML table, so it is checked as the config is.
  static std::optional<toml::table> table_of(const std::string& body, std::string& error) {
    auto parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      error = "expected a JSON object, e.g. {\"mode\": \"unreachable\"}";
      return std::nullopt;
    }
    toml::table table;
    for (const auto& [key, value] : parsed.items()) {
      if (value.is_string()) {
        table.insert(key, value.get<std::string>());
      } else if (value.is_boolean()) {
        table.insert(key, value.get<bool>());
      } else if (value.is_number_integer()) {
        table.insert(key, value.get<std::int64_t>());
      } else if (value.is_number_float()) {
        table.insert(key, value.get<double>());
      } else if (value.is_array()
                 && std::all_of(value.begin(), value.end(),
                                [](const json& item) { return item.is_string(); })) {
        toml::array items;
        for (const auto& item : value)
          items.push_back(item.get<std::string>());
        table.insert(key, std::move(items));
      } else {
        error = "fault." + key + ": expected a string, number, boolean or list of strings";
        return std::nullopt;
      }
    }
    return table;
  }

  static json cluster_json(const cluster_report& report) {
    auto members = json::array();
    for (const auto& member : report.members)
      members.push_back({{"node", member.node}, {"address", member.address}});
    return {{"node", report.node}, {"members", members}, {"owners", report.owners}};
  }

  /// Each postoffice running here gets its owner (this node), those other
  /// nodes own are listed with theirs, and the membership comes along.
  static void add_owners(json& body, const cluster_report& report) {
    std::set<std::string> here;
    for (auto& po : body["postoffices"]) {
      here.insert(po["name"].get<std::string>());
      po["owner"] = report.node;
    }
    for (const auto& [name, owner] : report.owners)
      if (!here.count(name))
        body["postoffices"].push_back({{"name", name}, {"owner", owner}});
    body["cluster"] = cluster_json(report);
  }

  std::shared_ptr<config_holder> cfg_;
  caf::actor_system& sys_;
  supervisor_actor sup_;
  store_actor store_;
  smtp_listener_actor listener_;
  cluster_actor cluster_;
};

} // namespace

admin_api::admin_api(const config& cfg)
  : cfg_(std::make_shared<config_holder>()), server_(new httplib::Server) {
  update_config(cfg);
  if (!cfg.admin.token_file.empty()) {
    auto read = read_token_file(cfg.admin.token_file);
    if (!read.problem.empty())
      throw std::runtime_error("token_file " + read.problem);
    token_ = std::move(read.token);
  }
  server_->set_socket_options(exclusive_listen_options);
  auto address = parse_listen_address(cfg.admin.listen);
  if (address && address->port == 0)
    port_ = server_->bind_to_any_port(address->host);
  else if (address && server_->bind_to_port(address->host, address->port))
    port_ = address->port;
  else
    port_ = -1;
  if (port_ < 0)
    throw std::runtime_error(cfg.admin.listen + ": address in use or not available");
}

void admin_api::update_config(const config& cfg) {
  auto fresh = std::make_shared<const config>(cfg);
  std::lock_guard<std::mutex> guard{cfg_->mutex};
  cfg_->current = std::move(fresh);
}

admin_api::~admin_api() {
  stop();
}

void admin_api::serve(caf::actor_system& sys, supervisor_actor sup, store_actor store,
                      smtp_listener_actor listener, cluster_actor cluster) {
  auto on = std::make_shared<handlers>(cfg_, sys, std::move(sup), std::move(store),
                                       std::move(listener), std::move(cluster));
  auto& srv = *server_;
  srv.Get("/queue", [on](const httplib::Request& req, httplib::Response& res) {
    on->queue(req, res);
  });
  srv.Get(R"(/messages/([0-9a-fA-F]+))",
          [on](const httplib::Request& req, httplib::Response& res) {
            on->message(queue_id(req), res);
          });
  srv.Post(R"(/messages/([0-9a-fA-F]+)/requeue)",
           [on](const httplib::Request& req, httplib::Response& res) {
             on->requeue(queue_id(req), req.get_param_value("postoffice"), res);
           });
  srv.Post(R"(/messages/([0-9a-fA-F]+)/(hold|release|flush))",
           [on](const httplib::Request& req, httplib::Response& res) {
             std::string id = queue_id(req);
             std::string action = req.matches[2];
             if (action == "flush")
               on->flush("", id, res);
             else
               on->hold_or_release(id, action == "hold", res);
           });
  srv.Delete(R"(/messages/([0-9a-fA-F]+))",
             [on](const httplib::Request& req, httplib::Response& res) {
               on->remove(queue_id(req), req.get_param_value("ndr") == "1", res);
             });
  srv.Post("/flush", [on](const httplib::Request& req, httplib::Response& res) {
    on->flush(req.get_param_value("postoffice"), "", res);
  });
  srv.Get("/postoffices", [on](const httplib::Request&, httplib::Response& res) {
    on->postoffices(res);
  });
  srv.Get("/bounces", [on](const httplib::Request&, httplib::Response& res) {
    on->bounces(res);
  });
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) {
    send_status_page(res, 200);
  });
  srv.Get("/cluster", [on](const httplib::Request&, httplib::Response& res) {
    on->cluster(res);
  });
  srv.Put(R"(/postoffices/([a-z0-9_-]+)/fault)",
          [on](const httplib::Request& req, httplib::Response& res) {
            on->fault(req.matches[1], req, res);
          });
  srv.Get("/metrics", [on](const httplib::Request&, httplib::Response& res) {
    on->metrics(res);
  });
  if (!token_.empty())
    srv.set_pre_routing_handler([token = token_](const httplib::Request& req,
                                                 httplib::Response& res) {
      if (authorized(req, token))
        return httplib::Server::HandlerResponse::Unhandled;
      res.set_header("WWW-Authenticate", "Bearer");
      // The page holds no data: without the token it only asks for it.
      if (req.method == "GET" && req.path == "/")
        send_status_page(res, 401);
      else
        fail(res, 401, "missing or wrong bearer token");
      return httplib::Server::HandlerResponse::Handled;
    });
  srv.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return;
    auto request = req.method + " " + req.path;
    if (res.status == 404)
      fail(res, 404, "no such resource: " + request);
    else if (res.status == 400 && !req.has_header("Content-Length"))
      // cpp-httplib refuses a POST or PUT without a length, as `curl -X
      // POST URL` sends it.
      fail(res, 400, "bad request: " + request
                       + " has no Content-Length; send an empty body (curl -d '')");
    else
      fail(res, res.status, "bad request: " + request);
  });
  thread_ = std::thread{[this] { server_->listen_after_bind(); }};
  // A stop() before the listener runs would be lost: wait until it runs.
  for (int waited = 0; waited < 5000 && !server_->is_running(); ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void admin_api::stop() {
  if (!server_)
    return;
  server_->stop();
  if (thread_.joinable())
    thread_.join();
  // The handlers hold actor handles: dropped here, so a detached actor (the
  // store) is not kept alive past the actor system's shutdown.
  server_.reset();
}

} // namespace postconn
