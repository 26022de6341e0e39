// NAME
//   admin_api -- the admin HTTP API: the queue, a message's ledger and
//   attempts, postoffice status, actions, and Prometheus metrics.
//
// DESCRIPTION
//   JSON over HTTP on `[admin] listen` (loopback by default), served by
//   cpp-httplib on threads of its own, which ask the actors with typed
//   requests and wait for the answers (never on a scheduler thread):
//
//     GET  /queue?postoffice=&state=&sender=&recipient=&min_age=&limit=&offset=&after=
//                                    sender, recipient: part of the address,
//                                    any case; after: the "next" of the
//                                    page before
//     GET  /queue/shape?(filters)    deliveries by age (qshape's buckets) per
//                                    postoffice
//     POST /queue/hold | release | flush | delete | requeue ?(filters)
//                                    the verb on every delivery the filters
//                                    select (all=1: no filter, every one);
//                                    delete takes ndr=1, requeue to=P
//     GET  /messages/ID              the message, its deliveries, attempts
//     GET  /messages/ID/content      the message itself (message/rfc822)
//     POST /messages/ID/hold | release | flush
//     POST /messages/ID/requeue?postoffice=P
//                                    its deliveries to P, counts reset
//     DELETE /messages/ID[?ndr=1]    without a trace, or bounced
//     POST /flush[?postoffice=P]     every deferred delivery due now
//     GET  /                         the status page (status_page.hpp)
//     GET  /postoffices              unknown/up/down since when, why,
//                                    counts, oldest delivery; in a cluster
//                                    also each one's owner, and those
//                                    other nodes own
//     GET  /bounces                  the last recipients bounced, newest
//                                    first
//     GET  /cluster                  this node, the live members, and every
//                                    postoffice's owner (404: single node)
//     POST /cluster/forget/NODE      NODE is gone for good: the live nodes
//                                    adopt the replicas they hold of its
//                                    deliveries; {"node", "adopted": N}
//                                    (409: this node, or still a member)
//     PUT  /postoffices/P/fault      a [postoffice.fault] table as JSON
//     GET  /metrics                  Prometheus text format
//
//   With `[admin] token_file`, every request needs "Authorization: Bearer
//   <token>" (401 otherwise; GET / may carry it as ?token=). Errors are a
//   status code with {"error": "..."}. The port is bound when the object is
//   made, without SO_REUSEPORT, so a taken port -- by another postconn too --
//   stops the server before it starts anything; serve() starts answering
//   once the actors exist. Port 0 binds a free port, which port() names.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <caf/actor.hpp>

#include "messages/actors.hpp"
#include "runtime/config/config.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace httplib {
class Server;
} // namespace httplib

namespace postconn {

struct config_holder;

class admin_api {
public:
  /// Reads the token file and binds `cfg.admin.listen`; throws
  /// std::runtime_error when either fails.
  explicit admin_api(const config& cfg);
  /// The same, sharing the server's one copy of the config (100,000
  /// postoffices make a config of ~80 MiB).
  explicit admin_api(std::shared_ptr<const config> cfg);
  ~admin_api();

  admin_api(const admin_api&) = delete;
  admin_api& operator=(const admin_api&) = delete;

  /// The port bound (the one picked when `[admin] listen` asks for port 0).
  int port() const { return port_; }

  /// Answers requests from now on, on threads of its own; `listener` is
  /// the SMTP listener, asked for its open sessions; `cluster` is null on a
  /// single node.
  void serve(caf::actor_system& sys, supervisor_actor sup, store_actor store,
             smtp_listener_actor listener, cluster_actor cluster = {});

  /// Stops answering and waits for the threads; before the actors stop.
  void stop();

  /// The config after a reload (the limits shown next to the counts).
  void update_config(const config& cfg);
  void update_config(std::shared_ptr<const config> cfg);

private:
  /// Shared with the handlers, which read it on their own threads.
  std::shared_ptr<config_holder> cfg_;
  /// Every request must carry it as a bearer token; empty: none needed.
  std::string token_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

} // namespace postconn
