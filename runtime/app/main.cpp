// NAME
//   postconn -- the mail connector's command line.
//
// SYNOPSIS
//   postconn serve --config FILE [--log-level LEVEL] [--log-format text|json]
//   postconn check-config FILE
//   postconn config [--effective | -n] FILE
//   postconn simulate SCENARIO [--svg FILE] [--keep DIR] [--log-level LEVEL]
//   postconn queue [FILTERS] [--limit N] [--offset N] [--all] [--shape]
//   postconn postoffices | ledger ID | show ID [--body] | flush [PO] [FILTERS]
//   postconn hold|release ID|ALL|FILTERS
//   postconn delete ID|ALL|FILTERS [--ndr] | requeue ID|ALL|FILTERS --to PO
//   postconn cluster forget NODE
//     (FILTERS: [--postoffice PO] [--state STATE] [--sender TEXT]
//      [--recipient TEXT] [--min-age AGE]; each admin verb: [--admin URL]
//      [--config FILE] [--token-file FILE] [--json])
//   postconn --version
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "runtime/admin/admin_client.hpp"
#include "runtime/config/config.hpp"
#include "runtime/config/config_check.hpp"
#include "runtime/config/config_writer.hpp"
#include "runtime/app/logging.hpp"
#include "runtime/app/serve.hpp"
#include "runtime/app/simulate.hpp"

namespace {

/// Prints each problem (and warning) of a checked config on stderr, one
/// line each with its line in the file.
void print_findings(const std::string& file, const postconn::config_check& checked) {
  for (const auto& problem : checked.problems)
    std::fprintf(stderr, "%s\n", postconn::finding_line(file, problem, false).c_str());
  for (const auto& warning : checked.warnings)
    std::fprintf(stderr, "%s\n", postconn::finding_line(file, warning, true).c_str());
}

/// `postconn check-config FILE`: one line per problem and warning, exit 1
/// if there is a problem (warnings alone do not fail it).
int check_config(const std::string& file) {
  auto checked = postconn::check_config_file(file);
  print_findings(file, checked);
  if (!checked.value)
    return 1;
  std::printf("%s: ok (%zu postoffices)", file.c_str(), checked.value->postoffices.size());
  if (!checked.warnings.empty())
    std::printf(", %zu warnings", checked.warnings.size());
  std::printf("\n");
  return 0;
}

/// `postconn config [--effective | -n] FILE`: the config as the server
/// reads it, every key or only those not at their default; exit 1 (with
/// the problems) when it does not load.
int print_config(const std::string& file, postconn::key_choice choice) {
  auto checked = postconn::check_config_file(file);
  if (!checked.value) {
    print_findings(file, checked);
    return 1;
  }
  std::fputs(postconn::config_to_toml(*checked.value, choice).c_str(), stdout);
  return 0;
}

/// An admin verb's subcommand: its options fill `verb`, and `config_file`
/// names a config whose [admin] listen is the URL when --admin is not given.
struct admin_command {
  CLI::App* app = nullptr;
  postconn::admin_verb verb;
  std::string config_file;
  std::string token_file;
};

admin_command& add_admin_verb(CLI::App& app, std::vector<std::unique_ptr<admin_command>>& all,
                              const std::string& name, const std::string& help) {
  auto command = std::make_unique<admin_command>();
  command->verb.name = name;
  command->app = app.add_subcommand(name, help);
  command->app->add_option("--admin", command->verb.admin_url,
                           "the server's admin API (default http://127.0.0.1:8025)");
  command->app->add_option("--config", command->config_file,
                           "take the admin API's address from this config");
  command->app->add_flag("--json", command->verb.json, "print the server's JSON as it is");
  command->app->add_option("--token-file", command->token_file,
                           "a file with the admin API's bearer token");
  all.push_back(std::move(command));
  return *all.back();
}

/// The options that select deliveries: --postoffice, --state, --sender,
/// --recipient, --min-age.
void add_filters(admin_command& command) {
  for (const auto& [filter, what] :
       {std::pair{"postoffice", "only deliveries to this postoffice"},
        std::pair{"state", "only deliveries in this state (queued, in_flight, deferred, held)"},
        std::pair{"sender", "only messages whose sender contains this text (any case)"},
        std::pair{"recipient", "only deliveries with a recipient containing this text (any case)"},
        std::pair{"min_age", "only deliveries queued at least this long ago (600, 10m, 2h, 1d)"}}) {
    auto flag = std::string{"--"} + filter;
    std::replace(flag.begin(), flag.end(), '_', '-');
    command.app->add_option(flag, command.verb.filters[filter], what);
  }
}

/// Runs the admin verb the command line chose.
int run_admin_command(admin_command& command) {
  const auto* verb = command.verb.name.c_str();
  if (!command.config_file.empty()) {
    auto loaded = postconn::load_config_file(command.config_file);
    if (!loaded.value) {
      std::fprintf(stderr, "postconn %s: %s has problems (see postconn check-config)\n", verb,
                   command.config_file.c_str());
      return 2;
    }
    if (command.app->count("--admin") == 0)
      command.verb.admin_url = loaded.value->admin.listen;
    if (command.token_file.empty())
      command.token_file = loaded.value->admin.token_file.string();
  }
  if (!command.token_file.empty()) {
    auto read = postconn::read_token_file(command.token_file);
    if (!read.problem.empty()) {
      std::fprintf(stderr, "postconn %s: token: %s\n", verb, read.problem.c_str());
      return 2;
    }
    command.verb.token = read.token;
  }
  return postconn::run_admin_verb(command.verb);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"postconn: a mail connector that never loses accepted mail"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string{"postconn "} + POSTCONN_VERSION);

  postconn::serve_options serve_opts;
  auto* serve_cmd = app.add_subcommand("serve", "run the server in the foreground");
  serve_cmd->add_option("--config", serve_opts.config_file, "config file (TOML)")
    ->required();
  serve_cmd->add_option("--log-level", serve_opts.log_level,
                        "trace, debug, info, warn, error, critical or off")
    ->check([](const std::string& level) {
      return postconn::is_log_level(level) ? std::string{}
                                           : "unknown log level " + level;
    });

  serve_cmd->add_option("--log-format", serve_opts.log_format, "text (default) or json")
    ->check([](const std::string& format) {
      return postconn::is_log_format(format) ? std::string{}
                                             : "unknown log format " + format;
    });

  std::string config_file;
  auto* check_cmd = app.add_subcommand("check-config", "validate a config file");
  check_cmd->add_option("FILE", config_file, "config file (TOML)")->required();

  auto* config_cmd = app.add_subcommand(
    "config", "print a config as the server reads it (like postconf, postconf -n)");
  config_cmd->add_option("FILE", config_file, "config file (TOML)")->required();
  auto* effective_flag = config_cmd->add_flag(
    "--effective", "every key with its value, defaults filled in (the default)");
  config_cmd->add_flag("-n,--non-default", "only the keys whose value is not the default")
    ->excludes(effective_flag);

  postconn::simulate_options simulate_opts;
  auto* simulate_cmd = app.add_subcommand(
    "simulate", "replay a scenario on the real actors in simulated time");
  simulate_cmd->add_option("SCENARIO", simulate_opts.scenario_file, "scenario file (TOML)")
    ->required();
  simulate_cmd->add_option("--svg", simulate_opts.svg_file,
                           "chart file (default: SCENARIO's name with .svg, here)");
  simulate_cmd->add_option("--keep", simulate_opts.keep_dir,
                           "keep each run's queue and maildirs in this directory");
  simulate_cmd->add_option("--log-level", simulate_opts.log_level,
                           "the actors' log on stderr (default off)")
    ->check([](const std::string& level) {
      return postconn::is_log_level(level) ? std::string{}
                                           : "unknown log level " + level;
    });

  std::vector<std::unique_ptr<admin_command>> admin_commands;
  auto& queue = add_admin_verb(app, admin_commands, "queue", "list the queue (admin API)");
  add_filters(queue);
  queue.app->add_option("--limit", queue.verb.filters["limit"],
                        "deliveries on the page (default 100, at most 1000)");
  queue.app->add_option("--offset", queue.verb.filters["offset"],
                        "skip this many deliveries first");
  queue.app->add_flag("--all", queue.verb.all_pages, "every delivery, page after page");
  queue.app->add_flag("--shape", queue.verb.shape,
                      "deliveries by age per postoffice, as qshape shows them");
  add_admin_verb(app, admin_commands, "postoffices", "show every postoffice (admin API)");
  auto& ledger = add_admin_verb(app, admin_commands, "ledger",
                                "show a message, its ledger and attempts (admin API)");
  ledger.app->add_option("ID", ledger.verb.argument, "the message's queue id")->required();
  auto& show = add_admin_verb(app, admin_commands, "show",
                              "print a queued message's header (admin API)");
  show.app->add_option("ID", show.verb.argument, "the message's queue id")->required();
  show.app->add_flag("--body", show.verb.with_body, "print the body too");
  auto& flush = add_admin_verb(app, admin_commands, "flush",
                               "retry deferred deliveries now (admin API)");
  flush.app->add_option("PO", flush.verb.argument, "the postoffice (default: all)");
  add_filters(flush);
  for (const auto& [name, what] :
       {std::pair{"hold", "hold deliveries: no attempt, no expiry until released"},
        std::pair{"release", "release held deliveries, due at once"},
        std::pair{"delete", "delete whole messages, without a trace or with NDRs"},
        std::pair{"requeue", "move deliveries to another postoffice"}}) {
    auto& command = add_admin_verb(app, admin_commands, name, std::string{what} + " (admin API)");
    command.app->add_option("ID", command.verb.argument,
                            "a message's queue id, or ALL (with filters: all they select)");
    add_filters(command);
    if (std::string{name} == "delete")
      command.app->add_flag("--ndr", command.verb.with_ndr,
                            "bounce the deliveries with an NDR to the sender instead");
    if (std::string{name} == "requeue")
      command.app->add_option("--to", command.verb.to, "the postoffice to move them to");
  }
  auto* cluster_cmd = app.add_subcommand("cluster", "act on the cluster's members");
  cluster_cmd->require_subcommand(1);
  auto& forget = add_admin_verb(*cluster_cmd, admin_commands, "forget",
                                "a node is gone for good: the live nodes adopt the replicas "
                                "of its deliveries (admin API)");
  forget.verb.name = "cluster forget"; // as admin_client knows it, and its errors name it
  forget.app->add_option("NODE", forget.verb.argument, "the node's name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the problem (or the help); --help and --version exit 0,
    // every usage problem 2, as README promises (not CLI11's own codes).
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (auto& command : admin_commands)
    if (*command->app)
      return run_admin_command(*command);
  if (*serve_cmd)
    return postconn::serve(serve_opts);
  if (*simulate_cmd)
    return postconn::simulate(simulate_opts);
  if (*config_cmd)
    return print_config(config_file, config_cmd->count("--non-default") > 0
                                       ? postconn::key_choice::changed
                                       : postconn::key_choice::every);
  return check_config(config_file);
}
