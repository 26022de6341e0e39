// NAME
//   config_check -- problems and warnings of a config file, with their lines
//   (see config_check.hpp).
#include "runtime/config/config_check.hpp"

#include <cstring>
#include <system_error>

#include <toml++/toml.h>

#include "runtime/config/toml_table.hpp"

namespace postconn {

namespace fs = std::filesystem;

namespace {

/// The line where the key path `path` ("postoffice[1].retry.open_interval")
/// stands in `doc`, or the nearest part of it that does; 0 for none.
std::size_t line_of(const toml::table& doc, std::string path) {
  while (!path.empty()) {
    if (auto found = toml::at_path(doc, path))
      return found.node()->source().begin.line;
    auto cut = path.find_last_of(".[");
    if (cut == std::string::npos)
      break;
    path.resize(cut);
  }
  return 0;
}

/// `text` ("key: what") with the line of its key.
config_finding located(const toml::table& doc, std::string text) {
  auto key = text.substr(0, text.find(": "));
  return {line_of(doc, key), 0, std::move(text)};
}

/// Why the server's probe will find no maildir postoffice at `root`, if it
/// will not: the root or its marker missing (the probe's write test is left
/// out, as the check may run as another user than the server).
std::optional<std::string> maildir_root_problem(const fs::path& root) {
  std::error_code error;
  auto root_status = fs::status(root, error);
  if (root_status.type() == fs::file_type::not_found)
    return std::string{"does not exist"};
  if (error)
    return "cannot be looked at from here (" + error.message() + ")";
  if (!fs::is_directory(root_status))
    return std::string{"is not a folder"};
  auto marker = std::string{maildir_marker};
  auto marker_status = fs::status(root / marker, error);
  if (marker_status.type() == fs::file_type::not_found)
    return "holds no " + marker + " marker (a share not mounted?)";
  if (error)
    return "has a " + marker + " marker that cannot be looked at from here ("
           + error.message() + ")";
  return std::nullopt;
}

/// Keys of [cluster] that have no effect with (or without) cluster.etcd,
/// or without replicas = 2.
void cluster_warnings(const cluster_config& cluster, std::vector<std::string>& warnings) {
  const cluster_config base;
  if (!cluster.etcd.empty() && !cluster.seeds.empty())
    warnings.push_back("cluster.seeds: not used with cluster.etcd (the members and their "
                       "addresses come from etcd)");
  if (cluster.etcd.empty() && cluster.lease_ttl != base.lease_ttl)
    warnings.push_back("cluster.lease_ttl: has no effect without cluster.etcd");
  if (cluster.replicas == 1 && cluster.adopt_after != base.adopt_after)
    warnings.push_back("cluster.adopt_after: has no effect with replicas = 1 (no node holds "
                       "replicas to adopt)");
  if (cluster.replicas == 1 && cluster.accept_unreplicated != base.accept_unreplicated)
    warnings.push_back("cluster.without_replica: has no effect with replicas = 1 (mail is "
                       "never replicated)");
}

} // namespace

std::vector<std::string> config_warnings(const config& cfg) {
  std::vector<std::string> warnings;
  if (cfg.cluster)
    cluster_warnings(*cfg.cluster, warnings);
  for (std::size_t i = 0; i < cfg.postoffices.size(); ++i) {
    const auto& po = cfg.postoffices[i];
    if (po.transport != transport_kind::maildir)
      continue;
    if (auto problem = maildir_root_problem(po.path))
      warnings.push_back("postoffice[" + std::to_string(i) + "].path: "
                         + in_quotes(po.path.string()) + " " + *problem
                         + "; the server probes postoffice " + in_quotes(po.name)
                         + " as down");
  }
  return warnings;
}

config_check check_config(std::string_view text, std::string_view source) {
  config_check checked;
  toml_syntax_error syntax;
  auto doc = parse_toml(text, source, syntax);
  if (!doc) {
    checked.problems.push_back({syntax.line, syntax.column, syntax.what});
    return checked;
  }
  auto parsed = parse_config(text, source);
  for (auto& problem : parsed.problems)
    checked.problems.push_back(located(*doc, std::move(problem)));
  if (parsed.value)
    for (auto& warning : config_warnings(*parsed.value))
      checked.warnings.push_back(located(*doc, std::move(warning)));
  checked.value = std::move(parsed.value);
  return checked;
}

config_check check_config_file(const fs::path& file) {
  std::string text;
  if (int error = read_whole_file(file, text)) {
    config_check unreadable;
    unreadable.problems.push_back({0, 0, std::string{"cannot read: "} + std::strerror(error)});
    return unreadable;
  }
  return check_config(text, file.string());
}

std::string finding_line(std::string_view file, const config_finding& finding, bool warning) {
  auto line = std::string{file};
  if (finding.line != 0)
    line += ":" + std::to_string(finding.line);
  if (finding.line != 0 && finding.column != 0)
    line += ":" + std::to_string(finding.column);
  return line + ": " + (warning ? "warning: " : "") + finding.text;
}

} // namespace postconn
