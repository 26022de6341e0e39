// NAME
//   registry -- registers every message type and error category with CAF.
#include "messages/registry.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/message.hpp>

#include "messages/actors.hpp"
#include "messages/vocabulary.hpp"

namespace postconn {

namespace {

std::string render_store_error(std::uint8_t code, caf::atom_value,
                               const caf::message& context) {
  std::string text = "store: ";
  switch (static_cast<store_errc>(code)) {
    case store_errc::commit_failed:
      text += "commit failed";
      break;
    case store_errc::rejected:
      text += "request rejected";
      break;
    case store_errc::not_found:
      text += "not found";
      break;
    case store_errc::read_failed:
      text += "read failed";
      break;
    case store_errc::low_space:
      text += "low on disk space";
      break;
    case store_errc::no_replica:
      text += "no replica";
      break;
    default:
      text += "error " + std::to_string(code);
  }
  if (context.match_elements<std::string>())
    text += ": " + context.get_as<std::string>(0);
  return text;
}

} // namespace

void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<routed_recipients>("routed_recipients");
  cfg.add_message_type<incoming_message>("incoming_message");
  cfg.add_message_type<stored_message>("stored_message");
  cfg.add_message_type<ledger_entry>("ledger_entry");
  cfg.add_message_type<attempt_record>("attempt_record");
  cfg.add_message_type<recipient_record>("recipient_record");
  cfg.add_message_type<ledger_change>("ledger_change");
  cfg.add_message_type<store_status>("store_status");
  cfg.add_message_type<accept_receipt>("accept_receipt");
  cfg.add_message_type<purge_report>("purge_report");
  cfg.add_message_type<delivery_job>("delivery_job");
  cfg.add_message_type<recipient_outcome>("recipient_outcome");
  cfg.add_message_type<delivery_outcome>("delivery_outcome");
  cfg.add_message_type<postoffice_actor>("postoffice_actor");
  cfg.add_message_type<supervisor_actor>("supervisor_actor");
  cfg.add_message_type<fault_config>("fault_config");
  cfg.add_message_type<retry_policy>("retry_policy");
  cfg.add_message_type<postoffice_report>("postoffice_report");
  cfg.add_message_type<bounce_report>("bounce_report");
  cfg.add_message_type<outcome_count>("outcome_count");
  cfg.add_message_type<queue_depth>("queue_depth");
  cfg.add_message_type<delivery_filter>("delivery_filter");
  cfg.add_message_type<queue_query>("queue_query");
  cfg.add_message_type<verb_tally>("verb_tally");
  cfg.add_message_type<queue_shape>("queue_shape");
  cfg.add_message_type<queue_page>("queue_page");
  cfg.add_message_type<io_fault>("io_fault");
  cfg.add_message_type<probe_job>("probe_job");
  cfg.add_message_type<maildir_job>("maildir_job");
  cfg.add_message_type<outgoing_mail>("outgoing_mail");
  cfg.add_message_type<mail_server_job>("mail_server_job");
  cfg.add_message_type<mail_server_result>("mail_server_result");
  cfg.add_message_type<mail_server_opening>("mail_server_opening");
  cfg.add_message_type<share_worker_actor>("share_worker_actor");
  cfg.add_message_type<share_pool_actor>("share_pool_actor");
  cfg.add_message_type<store_actor>("store_actor");
  cfg.add_message_type<cluster_member>("cluster_member");
  cfg.add_message_type<handoff>("handoff");
  cfg.add_message_type<cluster_report>("cluster_report");
  cfg.add_message_type<cluster_peer_actor>("cluster_peer_actor");
  cfg.add_error_category(caf::atom("store"), render_store_error);
}

} // namespace postconn
