// NAME
//   config_writer -- a config written back out as TOML.
//
// SYNOPSIS
//   std::string config_to_toml(const config& cfg);                       // postconf
//   std::string config_to_toml(const config& cfg, key_choice::changed);  // postconf -n
//
// DESCRIPTION
//   config_to_toml() is a pure function: the text it returns is a config
//   file that parse_config() reads back to a config equal to `cfg`, for
//   every config parse_config() accepts. With key_choice::every it is the
//   effective config, every key with its value, defaults included; with
//   key_choice::changed only the keys whose value is not the default (and
//   those a table cannot do without: a postoffice's name, transport, path or
//   address, a cluster's node and listen). Either way in the order of
//   conf/postconn.toml: [server], [smtp], [retry], [admin], [cluster], then
//   each [[postoffice]].
//
//   Keys whose empty value means "not set" (smtp.tls_certificate and
//   tls_key, admin.token_file, a postoffice's tls_ca_file and owner) are
//   left out when empty, and a postoffice writes only the keys of its
//   transport. A postoffice's [postoffice.retry] holds the keys in which its
//   resolved policy differs from what it would get without them: from
//   [retry] as written (every key), or from its transport's defaults with
//   what [retry] changes (changed keys). So the effective config shows an
//   smtp postoffice's own retry defaults there. [postoffice.fault] is
//   written when a fault is set, with the keys its mode uses. Durations are
//   written in the largest unit that is exact ("90s", "10m", "1d", "0").
#pragma once

#include <chrono>
#include <string>

#include "runtime/config/config.hpp"

namespace postconn {

/// Which keys config_to_toml() writes: every one, or those not at their default.
enum class key_choice { every, changed };

/// `cfg` as a TOML config file that parse_config() reads back unchanged.
std::string config_to_toml(const config& cfg, key_choice choice = key_choice::every);

/// A duration in its largest exact unit: "90s", "10m", "2h", "5d" or "0".
std::string duration_to_toml(std::chrono::seconds duration);

} // namespace postconn
