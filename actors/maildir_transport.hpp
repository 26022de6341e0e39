// NAME
//   maildir_transport -- a postoffice that is a maildir tree on a share.
//
// DESCRIPTION
//   Opening is the probe of DESIGN.md: the root exists and holds its
//   `.postoffice` marker (a share that is not mounted has none). Each
//   recipient's copy is written by a share worker into its mailbox
//   (tmp/, then new/, named by the delivery key so a repeated delivery
//   replaces the file), at most `max_transfers` messages at a time. Every
//   call runs under probe_timeout, so a hung share fails the call, never the
//   postoffice actor. There is nothing to close.
#pragma once

#include <cstddef>

#include "actors/transport.hpp"

namespace postconn {

class maildir_transport : public transport {
public:
  /// Messages written at once, at most, per batch.
  static constexpr std::size_t max_transfers = 4;

  void probe(postoffice_ptr self, opened_callback done) override;
  void open(postoffice_ptr self, opened_callback done) override;
  void deliver(postoffice_ptr self, std::vector<transfer> batch,
               delivered_callback done) override;
  void close(postoffice_ptr self) override;
};

} // namespace postconn
