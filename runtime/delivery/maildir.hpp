// NAME
//   maildir -- the maildir transport's file-system work: probing a
//   postoffice and delivering one message to one mailbox.
//
// DESCRIPTION
//   Plain blocking calls, no actor code: the share pool runs them on its
//   worker threads under a timeout, since any of them can hang on a dead
//   network share.
//
//   probe_maildir() is the open test (README, "Delivery, retries and
//   NDRs"): the root exists, is a directory, holds the marker file
//   .postoffice (an unmounted share leaves an empty mount point, and mail
//   written there would go to the wrong disk), and a file can be created
//   and removed in it.
//
//   deliver_to_maildir() writes <root>/<mailbox>/tmp/<name>, fsyncs it,
//   renames it into new/<name> and fsyncs new/. <name> comes only from the
//   delivery key, so a delivery repeated after a crash finds its file in
//   new/, or moved on by a mail client in cur/ ("<name>:2,S"), and does not
//   write it again: maildir delivery is exactly-once. The file holds
//   "Return-Path: <sender>", the Received: header and the message, with LF
//   line endings. Files are created 0600, mailbox folders 0700.
//
//   The mailbox is the recipient's local part through
//   maildir_mailbox_name(), and every step below the root goes through
//   folder descriptors opened with O_NOFOLLOW, so neither a hostile
//   recipient nor a symbolic link planted in the postoffice can make a
//   write land outside <root>/<mailbox>/. A leftover tmp/<name> is removed
//   and created afresh, never truncated: it might be a hard link to a file
//   elsewhere. Each delivery checks the marker again before it calls a
//   mailbox missing, so a share unmounted since the probe defers mail
//   instead of bouncing it (or creating mailboxes on the wrong disk).
//
//   Results, with RFC 3463 status codes:
//     2.0.0  delivered, now or by an earlier attempt
//     4.2.0  mailbox incomplete (no tmp/ or new/) or not a folder: being
//            set up or damaged
//     4.3.0  postoffice unreachable, a symbolic link in the mailbox, or an
//            I/O error (ENOSPC, EIO, EACCES, ...) with its description
//     5.1.1  mailbox does not exist and create_mailboxes is off
//     5.1.3  the recipient's local part names no valid mailbox
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace postconn {

/// The outcome of a probe; `problem` says why it failed in an
/// administrator's words ("root missing", "marker .postoffice missing
/// (share not mounted?)", "not writable: Permission denied").
struct maildir_probe_result {
  bool reachable;
  std::string problem;
};

/// Checks that the postoffice at `root` can take mail (see DESCRIPTION).
maildir_probe_result probe_maildir(const std::filesystem::path& root);

enum class maildir_result_kind { delivered, temporary_failure, permanent_failure };

struct maildir_delivery_result {
  maildir_result_kind kind;
  /// RFC 3463 enhanced status code ("2.0.0", "4.3.0", "5.1.1", ...).
  std::string status;
  /// What happened, for the log and the NDR's Diagnostic-Code.
  std::string text;
};

struct maildir_message {
  /// Unique per delivery and recipient ("<queue id>.<delivery id>"), made
  /// only of [0-9a-z.-] with no leading dot: it names the file.
  std::string delivery_key;
  /// Envelope sender, "" for the null sender <>.
  std::string sender;
  /// Full address (or a bare "postmaster"); its local part is the mailbox.
  std::string recipient;
  /// The Received: header this hop adds, CRLF-terminated; may be empty.
  std::string received_header;
  /// The message as received, CRLF line endings.
  std::string_view content;
  /// Fault injection (drop): write only this many bytes to tmp/ and fail,
  /// leaving the file there as a share that vanished mid-write does.
  std::optional<std::size_t> cut_off_after{};
};

/// The name a delivery's file has in new/: "<delivery_key>.postconn".
std::string maildir_file_name(std::string_view delivery_key);

/// Delivers one message to one mailbox of the postoffice at `root`,
/// creating a missing mailbox when `create_mailboxes` is set.
maildir_delivery_result deliver_to_maildir(const std::filesystem::path& root,
                                           bool create_mailboxes,
                                           const maildir_message& msg);

} // namespace postconn
