// NAME
//   transport -- the transport of each kind of postoffice (see transport.hpp).
#include "actors/transport.hpp"

#include "actors/mail_server_transport.hpp"
#include "actors/maildir_transport.hpp"

namespace postconn {

std::unique_ptr<transport> make_transport(const postoffice_config& cfg) {
  switch (cfg.transport) {
    case transport_kind::maildir:
      return std::make_unique<maildir_transport>();
    case transport_kind::smtp:
    case transport_kind::lmtp:
      return std::make_unique<mail_server_transport>();
  }
  return nullptr;
}

} // namespace postconn
