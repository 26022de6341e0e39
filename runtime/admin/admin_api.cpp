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

/// Asks `dest` and waits; the answer, or `failure` set to why there is none.
template <class Result, class Handle, class... Ts>
std::optional<Result> ask(caf::actor_system& sys, const Handle& dest, caf::error& failure,
                          Ts... xs) {
  caf::scoped_actor self{sys};
  std::optional<Result> result;
  self->request(dest, ask_timeout, xs...)
    .receive([&](Result& answer) { result = std::move(answer); },
             [&](caf::error& err) { failure = std::move(err); });
  return result;
}

/// The same, with `error` set to why there is no answer, as text.
template <class Result, class Handle, class... Ts>
std::optional<Result> ask(caf::actor_system& sys, const Handle& dest, std::string& error,
                          Ts... xs) {
  caf::error failure;
  auto result = ask<Result>(sys, dest, failure, xs...);
  if (!result)
    error = sys.render(failure);
  return result;
}

/// Why an actor refused a request, when it did (a runtime_error with its
/// reason, as the cluster actor answers); empty for a timeout or an actor
/// gone.
std::string refusal_of(const caf::error& failure) {
  const auto& reason = failure.context();
  if (failure == caf::sec::runtime_error && reason.match_elements<std::string>())
    return reason.get_as<std::string>(0);
  return {};
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

/// What a verb's reply calls the deliveries it changed.
std::string done_word(const std::string& verb, bool with_ndr) {
  if (verb == "delete")
    return with_ndr ? "bounced" : "deleted";
  for (const auto& [name, done] : {std::pair{"hold", "held"}, std::pair{"release", "released"},
                                   std::pair{"flush", "flushed"}})
    if (verb == name)
      return done;
  return "requeued";
}

/// "QUEUED_AT-DELIVERY", the "next" of a /queue page; false when it is not.
bool parse_cursor(const std::string& text, std::int64_t& queued_at, std::int64_t& delivery) {
  auto dash = text.find('-');
  if (dash == std::string::npos)
    return false;
  auto first = text.substr(0, dash);
  auto second = text.substr(dash + 1);
  if (!is_digits(first) || !is_digits(second) || first.size() > 18 || second.size() > 18)
    return false;
  queued_at = std::stoll(first);
  delivery = std::stoll(second);
  return delivery > 0;
}

/// Each postoffice's oldest unfinished delivery, and its deliveries by
/// age in qshape's buckets, cumulative (every configured postoffice, with
/// 0 when it has none).
void write_age_metrics(std::ostream& out, const std::vector<queue_shape>& shapes,
                       const config& cfg, std::int64_t now) {
  std::map<std::string, queue_shape> by_postoffice;
  for (const auto& po : cfg.postoffices)
    by_postoffice[po.name].ages.resize(std::size(queue_age_bounds) + 1);
  for (const auto& shape : shapes)
    by_postoffice[shape.postoffice] = shape;
  out << "# HELP postconn_queue_oldest_seconds Age of the postoffice's oldest unfinished "
         "delivery (0: none).\n"
         "# TYPE postconn_queue_oldest_seconds gauge\n";
  for (const auto& [name, shape] : by_postoffice) {
    auto oldest = shape.oldest_queued_at == 0 ? now : shape.oldest_queued_at;
    out << "postconn_queue_oldest_seconds{postoffice=\"" << name << "\"} "
        << std::max<std::int64_t>(0, now - oldest) << "\n";
  }
  out << "# HELP postconn_queue_age_deliveries Unfinished deliveries by postoffice queued at "
         "most le seconds ago (qshape's buckets, cumulative).\n"
         "# TYPE postconn_queue_age_deliveries gauge\n";
  for (const auto& [name, shape] : by_postoffice) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < shape.ages.size(); ++i) {
      cumulative += shape.ages[i];
      auto le = i < std::size(queue_age_bounds) ? std::to_string(queue_age_bounds[i])
                                                : std::string{"+Inf"};
      out << "postconn_queue_age_deliveries{postoffice=\"" << name << "\",le=\"" << le
          << "\"} " << cumulative << "\n";
    }
  }
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

  /// The filter a request's parameters give (postoffice, state, sender,
  /// recipient, min_age); nothing when they are wrong, answered.
  std::optional<delivery_filter> filter_of(const httplib::Request& req, httplib::Response& res,
                                           std::int64_t now) {
    auto min_age = parse_duration(req.has_param("min_age") ? req.get_param_value("min_age")
                                                           : std::string{"0"});
    if (!min_age) {
      fail(res, 400, "min_age is a duration: seconds, or \"90s\", \"10m\", \"2h\", \"1d\"");
      return std::nullopt;
    }
    delivery_filter filter;
    filter.postoffice = req.get_param_value("postoffice");
    filter.state = req.get_param_value("state");
    filter.recipient = req.get_param_value("recipient");
    if (min_age->count() > 0)
      filter.queued_before = now - min_age->count();
    if (!filter.state.empty() && !is_unfinished_state(filter.state)) {
      fail(res, 400, "unknown state \"" + filter.state + "\" (the queue holds "
                       + unfinished_states + ")");
      return std::nullopt;
    }
    if (auto sender = req.get_param_value("sender"); !sender.empty()) {
      std::string error;
      auto ids = ask<std::vector<std::string>>(sys_, store_, error, load_atom::value,
                                               sender_atom::value, sender);
      if (!ids) {
        fail(res, 503, error);
        return std::nullopt;
      }
      filter.message_ids = std::move(*ids);
      filter.only_messages = true;
    }
    return filter;
  }

  void queue(const httplib::Request& req, httplib::Response& res) {
    auto limit = number_param(req, "limit", default_page);
    auto offset = number_param(req, "offset", 0);
    if (!limit || !offset || *limit == 0)
      return fail(res, 400, "limit and offset are whole numbers of at least 0 "
                            "(limit at least 1)");
    queue_query query;
    if (req.has_param("after")
        && !parse_cursor(req.get_param_value("after"), query.after_queued_at,
                         query.after_delivery))
      return fail(res, 400, "after is the \"next\" of the page before (QUEUED_AT-DELIVERY)");
    std::int64_t now = unix_time_origin::now().seconds;
    auto filter = filter_of(req, res, now);
    if (!filter)
      return;
    query.filter = std::move(*filter);
    query.offset = static_cast<std::uint64_t>(*offset);
    query.limit = static_cast<std::uint64_t>(std::min(*limit, largest_page));
    std::string error;
    auto selected = ask<queue_page>(sys_, sup_, error, page_atom::value, query);
    if (!selected)
      return fail(res, 503, "supervisor: " + error);
    auto page = json::array();
    for (const auto& entry : selected->deliveries)
      page.push_back(delivery_json(entry));
    auto body = json{{"now", now}, {"total", selected->total}, {"deliveries", page}};
    if (selected->more && !selected->deliveries.empty()) {
      const auto& last = selected->deliveries.back();
      body["next"] = std::to_string(last.queued_at) + "-" + std::to_string(last.delivery_id);
    }
    reply(res, 200, body);
  }

  /// The ages of what the filter selects, per postoffice and in all.
  void shape(const httplib::Request& req, httplib::Response& res) {
    std::int64_t now = unix_time_origin::now().seconds;
    auto filter = filter_of(req, res, now);
    if (!filter)
      return;
    std::string error;
    auto shapes = ask<std::vector<queue_shape>>(sys_, sup_, error, shape_atom::value, *filter,
                                                now);
    if (!shapes)
      return fail(res, 503, "supervisor: " + error);
    std::vector<std::uint64_t> all(std::size(queue_age_bounds) + 1);
    auto postoffices = json::array();
    for (const auto& shape : *shapes) {
      std::uint64_t total = 0;
      for (std::size_t i = 0; i < all.size() && i < shape.ages.size(); ++i) {
        all[i] += shape.ages[i];
        total += shape.ages[i];
      }
      postoffices.push_back({{"name", shape.postoffice},
                             {"total", total},
                             {"ages", shape.ages},
                             {"oldest_queued_at", shape.oldest_queued_at}});
    }
    std::uint64_t total = 0;
    for (auto count : all)
      total += count;
    reply(res, 200,
          json{{"now", now},
               {"bounds", queue_age_bounds},
               {"total", total},
               {"ages", all},
               {"postoffices", postoffices}});
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
      auto outcomes = ask<std::vector<recipient_record>>(
        sys_, store_, error, load_atom::value, outcomes_atom::value, entry.delivery_id);
      item["recipient_outcomes"] = json::array();
      for (const auto& outcome : outcomes.value_or(std::vector<recipient_record>{}))
        item["recipient_outcomes"].push_back({{"recipient", outcome.address},
                                              {"status", to_string(outcome.state)},
                                              {"code", outcome.code},
                                              {"text", outcome.text},
                                              {"at", outcome.at}});
      deliveries.push_back(std::move(item));
    }
    reply(res, 200,
          json{{"now", unix_time_origin::now().seconds},
               {"message_id", msg->id},
               {"sender", msg->sender},
               {"received_at", msg->received_at}, {"size", msg->content.size()},
               {"deliveries", deliveries}});
  }

  /// The message as the queue holds it: header and body, as delivered.
  void content(const std::string& id, httplib::Response& res) {
    std::string error;
    auto msg = ask<stored_message>(sys_, store_, error, fetch_atom::value, id);
    if (!msg)
      return fail(res, error.find("not found") != std::string::npos ? 404 : 503, error);
    res.status = 200;
    res.set_content(msg->content, "message/rfc822");
  }

  /// An operator's verb on the deliveries a filter selects: hold,
  /// release, flush, delete (?ndr=1: with NDRs), requeue (?to=P). A
  /// request without a filter must say all=1.
  void verb_by_filter(const std::string& verb, const httplib::Request& req,
                      httplib::Response& res) {
    auto filter = filter_of(req, res, unix_time_origin::now().seconds);
    if (!filter)
      return;
    if (selects_everything(*filter) && req.get_param_value("all") != "1")
      return fail(res, 400, "which deliveries? give postoffice, state, sender, recipient or "
                            "min_age, or all=1 for every one");
    auto target = req.get_param_value("to");
    if (verb == "requeue" && !requeue_target_ok(target, "to", res))
      return;
    auto tally = carry_out(verb, *filter, req.get_param_value("ndr") == "1", target, res);
    if (!tally)
      return;
    auto body = json{{done_word(verb, req.get_param_value("ndr") == "1"), tally->deliveries},
                     {"in_flight", tally->in_flight}};
    if (verb == "delete")
      body["messages"] = tally->messages;
    if (verb == "requeue")
      body["postoffice"] = target;
    reply(res, 200, body);
  }

  /// A verb on one message's deliveries, answered as before the verbs took
  /// filters: {"held": n}, ...; 409 when an attempt under way kept a
  /// delete or requeue from doing anything.
  void verb_on_message(const std::string& verb, const std::string& id,
                       const httplib::Request& req, httplib::Response& res) {
    auto target = req.get_param_value("postoffice");
    if (verb == "requeue" && !requeue_target_ok(target, "postoffice", res))
      return;
    std::string error;
    if (!ask<stored_message>(sys_, store_, error, fetch_atom::value, id))
      return fail(res, error.find("not found") != std::string::npos ? 404 : 503, error);
    auto with_ndr = req.get_param_value("ndr") == "1";
    auto tally = carry_out(verb, message_filter(id), with_ndr, target, res);
    if (!tally)
      return;
    if ((verb == "delete" || verb == "requeue") && tally->in_flight > 0
        && tally->deliveries == 0)
      return fail(res, 409, "an attempt to deliver it is under way; try again in a moment");
    auto body = json{{done_word(verb, with_ndr), tally->deliveries}};
    if (verb == "requeue") {
      body["postoffice"] = target;
      if (tally->in_flight > 0)
        body["in_flight"] = tally->in_flight;
    }
    reply(res, 200, body);
  }

  /// POST /flush[?postoffice=P]: every deferred delivery (of P) due now.
  void flush(const std::string& postoffice, httplib::Response& res) {
    if (!postoffice.empty() && !configured(postoffice))
      return fail(res, 404, "no postoffice " + postoffice);
    delivery_filter filter;
    filter.postoffice = postoffice;
    if (auto tally = carry_out("flush", filter, false, "", res))
      reply(res, 200, json{{"flushed", tally->deliveries}});
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

  /// POST /cluster/forget/NODE: `node` is gone for good, and every live
  /// node adopts the replicas it holds of its deliveries. The cluster
  /// actor refuses this node and a node still a member (409, its reason).
  void forget(const std::string& node, httplib::Response& res) {
    if (!cluster_)
      return fail(res, 404, "a single node: no [cluster] in its config");
    if (!is_node_name(node))
      return fail(res, 400, "invalid node name \"" + node
                              + "\" (lower-case letters, digits and -)");
    caf::error failure;
    auto adopted = ask<std::uint32_t>(sys_, cluster_, failure, forget_atom::value, node, true);
    if (!adopted) {
      auto refusal = refusal_of(failure);
      if (refusal.empty())
        return fail(res, 503, "cluster: " + sys_.render(failure));
      return fail(res, 409, refusal);
    }
    reply(res, 200, json{{"node", node}, {"adopted", *adopted}});
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
    std::int64_t now = unix_time_origin::now().seconds;
    auto shapes = ask<std::vector<queue_shape>>(sys_, sup_, error, shape_atom::value,
                                                delivery_filter{}, now);
    if (!shapes) {
      res.status = 503;
      res.set_content("# supervisor: " + error + "\n", "text/plain");
      return;
    }
    write_age_metrics(out, *shapes, *cfg(), now);
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
  /// Asks the supervisor to carry out `verb` on what `filter` selects
  /// (requeue: to `target`, which the caller has checked); nothing when it
  /// could not, answered.
  std::optional<verb_tally> carry_out(const std::string& verb, const delivery_filter& filter,
                                      bool with_ndr, const std::string& target,
                                      httplib::Response& res) {
    std::string error;
    std::optional<verb_tally> tally;
    if (verb == "hold")
      tally = ask<verb_tally>(sys_, sup_, error, hold_atom::value, filter);
    else if (verb == "release")
      tally = ask<verb_tally>(sys_, sup_, error, release_atom::value, filter);
    else if (verb == "flush")
      tally = ask<verb_tally>(sys_, sup_, error, flush_atom::value, filter);
    else if (verb == "delete")
      tally = ask<verb_tally>(sys_, sup_, error, delete_atom::value, filter, with_ndr);
    else
      tally = ask<verb_tally>(sys_, sup_, error, requeue_atom::value, filter, target);
    if (!tally)
      fail(res, 503, "supervisor: " + error);
    else if (!tally->refused.empty())
      fail(res, 409, tally->refused);
    else
      return tally;
    return std::nullopt;
  }

  /// False, answered, when a requeue's postoffice (named by `param`) is
  /// missing or not configured.
  bool requeue_target_ok(const std::string& target, const char* param, httplib::Response& res) {
    if (target.empty())
      fail(res, 400, std::string{"requeue to which postoffice? give ?"} + param + "=P");
    else if (!configured(target))
      fail(res, 404, "no postoffice " + target);
    else
      return true;
    return false;
  }

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
            {"attempts_made", e.attempts},
            {"unscheduled_failures", e.unscheduled_failures},
            {"in_doubt", e.in_doubt},
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
    return {{"node", report.node},
            {"state", report.state},
            {"members", members},
            {"owners", report.owners}};
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

admin_api::admin_api(const config& cfg) : admin_api(std::make_shared<const config>(cfg)) {}

admin_api::admin_api(std::shared_ptr<const config> shared)
  : cfg_(std::make_shared<config_holder>()), server_(new httplib::Server) {
  const auto& cfg = *shared;
  update_config(std::move(shared));
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
  update_config(std::make_shared<const config>(cfg));
}

void admin_api::update_config(std::shared_ptr<const config> fresh) {
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
  srv.Get("/queue/shape", [on](const httplib::Request& req, httplib::Response& res) {
    on->shape(req, res);
  });
  srv.Post(R"(/queue/(hold|release|flush|delete|requeue))",
           [on](const httplib::Request& req, httplib::Response& res) {
             on->verb_by_filter(req.matches[1], req, res);
           });
  srv.Get(R"(/messages/([0-9a-fA-F]+))",
          [on](const httplib::Request& req, httplib::Response& res) {
            on->message(queue_id(req), res);
          });
  srv.Get(R"(/messages/([0-9a-fA-F]+)/content)",
          [on](const httplib::Request& req, httplib::Response& res) {
            on->content(queue_id(req), res);
          });
  srv.Post(R"(/messages/([0-9a-fA-F]+)/(hold|release|flush|requeue))",
           [on](const httplib::Request& req, httplib::Response& res) {
             on->verb_on_message(req.matches[2], queue_id(req), req, res);
           });
  srv.Delete(R"(/messages/([0-9a-fA-F]+))",
             [on](const httplib::Request& req, httplib::Response& res) {
               on->verb_on_message("delete", queue_id(req), req, res);
             });
  srv.Post("/flush", [on](const httplib::Request& req, httplib::Response& res) {
    on->flush(req.get_param_value("postoffice"), res);
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
  // Any name, so that a malformed one is told so (400), not "no such resource".
  srv.Post(R"(/cluster/forget/([^/]+))", [on](const httplib::Request& req,
                                             httplib::Response& res) {
    on->forget(req.matches[1], res);
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
