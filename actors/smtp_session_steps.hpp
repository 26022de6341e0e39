// NAME
//   smtp_session_steps -- what the SMTP session's two files call of each
//   other.
//
// DESCRIPTION
//   Private to the session: smtp_session.cpp holds the connection (reading,
//   TLS, pacing, deadlines, the behaviour), smtp_dialogue.cpp the commands
//   and the end of DATA.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "actors/smtp_session.hpp"
#include "runtime/mail/smtp_command.hpp"

namespace postconn {

using session_ptr = smtp_session_pointer;

/// What one read takes at most, commands and DATA alike: 4 KiB, as
/// Postfix's smtpd reads. CAF 0.17 shrinks its read buffer to what a read
/// returned and grows it back before the next read, zeroing the difference:
/// a short command line costs zeroing the rest of the buffer, so a small
/// buffer keeps that cheap (DATA fills it, and zeroes next to nothing).
constexpr std::size_t read_size = 4 * 1024;

// -- smtp_session.cpp: the connection ----------------------------------------

/// Writes bytes as they are (TLS records, or plaintext before TLS).
void write_raw(session_ptr self, const std::string& bytes);

/// Writes text to the client, through TLS once it runs.
void send_text(session_ptr self, const std::string& text);

void reply(session_ptr self, int code, const char* status, const std::string& text);
void reply(session_ptr self, const smtp_reply& r);

/// Ends the session after the reply already written.
void close_session(session_ptr self);

/// Handles the buffered input, then paces reading by what is left.
void process_input(session_ptr self);

// -- smtp_dialogue.cpp: the commands -----------------------------------------

/// One command line (CRLF removed).
void on_command(session_ptr self, std::string_view line);

/// The message is complete: commit it, then answer.
void finish_data(session_ptr self);

} // namespace postconn
