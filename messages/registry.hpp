// NAME
//   registry -- registers every message type and error category with CAF.
//
// DESCRIPTION
//   Called once on every actor_system_config (server, tests, benchmarks),
//   so all nodes know the same types under the same names.
#pragma once

namespace caf {
class actor_system_config;
} // namespace caf

namespace postconn {

void register_types(caf::actor_system_config& cfg);

} // namespace postconn
