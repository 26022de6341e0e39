// NAME
//   scenario -- reading and checking a simulator scenario (see scenario.hpp).
//
// DESCRIPTION
//   The scenario's own sections are taken out of the document; what is left
//   is a postconn config and goes through parse_config(), so its problems
//   read exactly as `postconn check-config` would print them.
#include "runtime/simulate/scenario.hpp"

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include "runtime/config/routing.hpp"
#include "runtime/config/toml_table.hpp"

namespace postconn {

namespace {

constexpr const char* scenario_sections[] = {"scenario", "run", "fault", "mail"};

/// Calls `read` with a reader for each table of the array of tables `key`.
template <class Read>
void for_each_table(const toml::table& doc, const char* key,
                    std::vector<std::string>& problems, Read read) {
  const auto* node = doc.get(key);
  if (!node)
    return;
  const auto* array = node->as_array();
  if (!array) {
    problems.push_back(std::string{key} + ": expected an array of tables ([[" + key
                       + "]]), got " + type_name(*node));
    return;
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto path = std::string{key} + "[" + std::to_string(i) + "]";
    if (const auto* table = (*array)[i].as_table())
      read(table_reader{*table, path, problems});
    else
      problems.push_back(path + ": expected a table, got " + type_name((*array)[i]));
  }
}

/// The document without the scenario's sections: a postconn config.
config_result read_base_config(toml::table doc, std::string_view source) {
  for (const auto* section : scenario_sections)
    doc.erase(section);
  std::ostringstream text;
  text << doc;
  auto result = parse_config(text.str(), source);
  if (!result.value)
    return result;
  const auto& pos = result.value->postoffices;
  for (std::size_t i = 0; i < pos.size(); ++i)
    if (pos[i].transport != transport_kind::maildir)
      result.problems.push_back("postoffice[" + std::to_string(i)
                                + "].transport: the simulator runs maildir postoffices only");
  if (!result.problems.empty())
    result.value.reset();
  return result;
}

void read_header(table_reader in, scenario& sc) {
  in.reject_unknown_keys({"title", "duration", "sample_interval"});
  in.read("title", sc.title);
  if (in.require("duration", "how long to simulate, e.g. \"30d\""))
    in.read_duration("duration", sc.duration, zero_duration::refused);
  sc.sample_interval = std::max(std::chrono::seconds{1}, sc.duration / 2000);
  in.read_duration("sample_interval", sc.sample_interval, zero_duration::refused);
}

/// A [[run]]: its retry table applies over [retry] and every postoffice's
/// policy alike (problems reported once, for [retry]).
scenario_run read_run(table_reader in, const config& base, std::set<std::string>& names) {
  in.reject_unknown_keys({"name", "description", "retry"});
  scenario_run run{"", "", base};
  if (in.require("name", "names the run in the output") && in.read("name", run.name)) {
    if (!is_plain_name(run.name))
      in.problem("name", "invalid name " + in_quotes(run.name)
                           + " (use lower-case letters, digits, _ and -)");
    else if (!names.insert(run.name).second)
      in.problem("name", "duplicate run name " + in_quotes(run.name));
  }
  in.read("description", run.description);
  if (auto retry = in.table("retry")) {
    read_retry(*retry, run.cfg.retry);
    std::vector<std::string> repeated;
    for (auto& po : run.cfg.postoffices)
      read_retry(retry->recording_into(repeated), po.retry);
  }
  return run;
}

fault_window read_fault_window(table_reader in, const config& cfg,
                               std::chrono::seconds duration) {
  in.reject_unknown_keys({"postoffice", "from", "until", "inject"});
  fault_window window;
  window.until = duration;
  if (in.require("postoffice", "the postoffice the fault is injected into")
      && in.read("postoffice", window.postoffice)
      && std::none_of(cfg.postoffices.begin(), cfg.postoffices.end(),
                      [&](const auto& po) { return po.name == window.postoffice; }))
    in.problem("postoffice", "no postoffice " + in_quotes(window.postoffice));
  in.read_duration("from", window.from, zero_duration::allowed);
  in.read_duration("until", window.until, zero_duration::refused);
  if (window.from >= window.until)
    in.problem("until", "must be later than from");
  if (in.require("inject", "the fault, e.g. { mode = \"unreachable\" }"))
    if (auto inject = in.table("inject"))
      read_fault(*inject, window.fault);
  return window;
}

mail_arrival read_mail(table_reader in, const routing_table& routes,
                       std::chrono::seconds duration) {
  in.reject_unknown_keys({"from", "to", "at", "count", "every"});
  mail_arrival mail;
  if (in.require("from", "the envelope sender") && in.read("from", mail.sender)
      && mail.sender.empty())
    in.problem("from", "must not be empty");
  if (in.require("to", "the recipients") && in.read("to", mail.recipients)) {
    if (mail.recipients.empty())
      in.problem("to", "must name at least one recipient");
    for (std::size_t i = 0; i < mail.recipients.size(); ++i)
      if (!routes.route(mail.recipients[i]).postoffice)
        in.problem("to[" + std::to_string(i) + "]",
                   "no postoffice takes " + in_quotes(mail.recipients[i]));
  }
  if (in.read_duration("at", mail.at, zero_duration::allowed) && mail.at >= duration)
    in.problem("at", "must be before the end of the scenario");
  in.read("count", mail.count, 1);
  in.read_duration("every", mail.every, zero_duration::allowed);
  return mail;
}

} // namespace

scenario_result parse_scenario(std::string_view text, std::string_view source) {
  scenario_result result;
  auto doc = parse_toml(text, source, result.problems);
  if (!doc)
    return result;
  auto base = read_base_config(*doc, source);
  if (!base.value) {
    result.problems = std::move(base.problems);
    return result;
  }
  auto& problems = result.problems;
  scenario sc;
  table_reader root{*doc, "", problems};
  if (root.require("scenario", "a [scenario] table with the duration"))
    if (auto header = root.table("scenario"))
      read_header(*header, sc);
  std::set<std::string> names;
  for_each_table(*doc, "run", problems, [&](table_reader in) {
    sc.runs.push_back(read_run(in, *base.value, names));
  });
  if (sc.runs.empty())
    sc.runs.push_back({"default", "", *base.value});
  for_each_table(*doc, "fault", problems, [&](table_reader in) {
    sc.faults.push_back(read_fault_window(in, *base.value, sc.duration));
  });
  routing_table routes{*base.value};
  for_each_table(*doc, "mail", problems, [&](table_reader in) {
    sc.mail.push_back(read_mail(in, routes, sc.duration));
  });
  if (problems.empty())
    result.value = std::move(sc);
  return result;
}

scenario_result load_scenario_file(const std::filesystem::path& file) {
  std::string text;
  if (int error = read_whole_file(file, text))
    return {std::nullopt, {file.string() + ": cannot read: " + std::strerror(error)}};
  return parse_scenario(text, file.string());
}

} // namespace postconn
