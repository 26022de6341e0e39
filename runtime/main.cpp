// NAME
//   postconn -- the mail connector's command line.
//
// SYNOPSIS
//   postconn serve --config FILE [--log-level LEVEL]
//   postconn check-config FILE
//   postconn simulate SCENARIO [--svg FILE] [--keep DIR] [--log-level LEVEL]
//   postconn --version
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "runtime/config.hpp"
#include "runtime/logging.hpp"
#include "runtime/serve.hpp"
#include "runtime/simulate.hpp"

namespace {

/// `postconn check-config FILE`: one line per problem, exit 1 if any.
int check_config(const std::string& file) {
  auto loaded = postconn::load_config_file(file);
  for (const auto& problem : loaded.problems)
    std::fprintf(stderr, "%s: %s\n", file.c_str(), problem.c_str());
  if (!loaded.value)
    return 1;
  std::printf("%s: ok (%zu postoffices)\n", file.c_str(),
              loaded.value->postoffices.size());
  return 0;
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

  std::string config_file;
  auto* check_cmd = app.add_subcommand("check-config", "validate a config file");
  check_cmd->add_option("FILE", config_file, "config file (TOML)")->required();

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

  CLI11_PARSE(app, argc, argv);
  if (*serve_cmd)
    return postconn::serve(serve_opts);
  if (*simulate_cmd)
    return postconn::simulate(simulate_opts);
  return check_config(config_file);
}
