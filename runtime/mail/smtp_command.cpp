// NAME
//   smtp_command -- the SMTP command parser and reply formatter (see
//   smtp_command.hpp).
#include "runtime/mail/smtp_command.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "runtime/mail/address.hpp"

namespace postconn {

namespace {

constexpr std::array<std::pair<smtp_verb, std::string_view>, 10> verb_names{{
  {smtp_verb::ehlo, "EHLO"},
  {smtp_verb::helo, "HELO"},
  {smtp_verb::mail, "MAIL"},
  {smtp_verb::rcpt, "RCPT"},
  {smtp_verb::data, "DATA"},
  {smtp_verb::rset, "RSET"},
  {smtp_verb::noop, "NOOP"},
  {smtp_verb::quit, "QUIT"},
  {smtp_verb::vrfy, "VRFY"},
  {smtp_verb::starttls, "STARTTLS"},
}};

/// A MAIL or RCPT path split from the text that follows it.
struct path_split {
  std::string_view path;
  std::string_view parameters;
};

smtp_command_result refusal(int code, const char* status, std::string text) {
  return {std::nullopt, smtp_reply{code, status, std::move(text)}};
}

smtp_command command_of(smtp_verb verb, std::string_view argument,
                        std::string_view path = {}) {
  smtp_command command;
  command.verb = verb;
  command.argument = argument;
  command.path = path;
  return command;
}

char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(),
                       [](char x, char y) { return to_upper(x) == to_upper(y); });
}

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size()
         && equals_ignoring_case(text.substr(0, prefix.size()), prefix);
}

std::string_view trimmed(std::string_view text) {
  auto first = text.find_first_not_of(' ');
  if (first == std::string_view::npos)
    return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}


// Index of the '>' that closes a path starting with '<', skipping quoted
// strings (a quoted local part may hold '>').
std::size_t closing_bracket(std::string_view text) {
  bool quoted = false;
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (quoted && text[i] == '\\')
      ++i;
    else if (text[i] == '"')
      quoted = !quoted;
    else if (!quoted && text[i] == '>')
      return i;
  }
  return std::string_view::npos;
}

// "<path> PARAM PARAM" -> path and parameters, or nothing on bad syntax.
std::optional<path_split> split_path(std::string_view text) {
  if (text.empty() || text.front() != '<')
    return std::nullopt;
  auto close = closing_bracket(text);
  if (close == std::string_view::npos)
    return std::nullopt;
  auto rest = text.substr(close + 1);
  if (!rest.empty() && rest.front() != ' ')
    return std::nullopt;
  return path_split{text.substr(1, close - 1), trimmed(rest)};
}

// Drops an RFC 5321 source route ("@a,@b:") in front of a mailbox.
std::optional<std::string_view> without_source_route(std::string_view path) {
  if (path.empty() || path.front() != '@')
    return path;
  auto colon = path.find(':');
  if (colon == std::string_view::npos || colon + 1 == path.size())
    return std::nullopt;
  auto route = path.substr(0, colon);
  for (std::size_t start = 0;;) {
    auto comma = route.find(',', start);
    auto hop = route.substr(start, comma - start);
    if (hop.empty() || hop.front() != '@' || !is_domain(hop.substr(1)))
      return std::nullopt;
    if (comma == std::string_view::npos)
      return path.substr(colon + 1);
    start = comma + 1;
  }
}

std::optional<std::uint64_t> parse_size(std::string_view digits) {
  if (digits.empty() || digits.size() > 19
      || digits.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  return std::stoull(std::string{digits});
}

std::optional<body_type> parse_body(std::string_view value) {
  if (equals_ignoring_case(value, "7BIT"))
    return body_type::seven_bit;
  if (equals_ignoring_case(value, "8BITMIME"))
    return body_type::eight_bit_mime;
  return std::nullopt;
}

// Applies one "KEYWORD=value" of MAIL to `command`; the refusal if any.
std::optional<smtp_command_result> apply_mail_parameter(std::string_view parameter,
                                                        smtp_command& command) {
  auto equals = parameter.find('=');
  auto keyword = parameter.substr(0, equals);
  auto value = equals == std::string_view::npos ? std::string_view{}
                                                : parameter.substr(equals + 1);
  if (equals_ignoring_case(keyword, "SIZE")) {
    auto size = parse_size(value);
    if (!size || command.size)
      return refusal(501, "5.5.4", "Bad or repeated SIZE parameter");
    command.size = size;
  } else if (equals_ignoring_case(keyword, "BODY")) {
    auto body = parse_body(value);
    if (!body || command.body != body_type::unspecified)
      return refusal(501, "5.5.4", "Bad or repeated BODY parameter");
    command.body = *body;
  } else {
    return refusal(555, "5.5.4", "Unsupported parameter " + std::string{keyword});
  }
  return std::nullopt;
}

smtp_command_result with_mail_parameters(std::string_view parameters,
                                         smtp_command command) {
  while (!parameters.empty()) {
    auto space = std::min(parameters.find(' '), parameters.size());
    if (auto refused = apply_mail_parameter(parameters.substr(0, space), command))
      return *refused;
    parameters = trimmed(parameters.substr(space));
  }
  return {std::move(command), {}};
}

smtp_command_result parse_mail(std::string_view argument) {
  auto split = starts_with_ignoring_case(argument, "FROM:")
                 ? split_path(trimmed(argument.substr(5)))
                 : std::nullopt;
  if (!split)
    return refusal(501, "5.5.4", "Syntax: MAIL FROM:<address>");
  auto path = without_source_route(split->path);
  if (!path || (!path->empty() && !parse_address(*path)))
    return refusal(501, "5.1.7", "Bad sender address syntax");
  return with_mail_parameters(split->parameters,
                              command_of(smtp_verb::mail, argument, *path));
}

smtp_command_result parse_rcpt(std::string_view argument) {
  auto split = starts_with_ignoring_case(argument, "TO:")
                 ? split_path(trimmed(argument.substr(3)))
                 : std::nullopt;
  if (!split)
    return refusal(501, "5.5.4", "Syntax: RCPT TO:<address>");
  auto path = without_source_route(split->path);
  if (!path || !(equals_ignoring_case(*path, "postmaster") || parse_address(*path)))
    return refusal(501, "5.1.3", "Bad recipient address syntax");
  if (!split->parameters.empty())
    return refusal(555, "5.5.4", "RCPT parameters are not supported");
  return {command_of(smtp_verb::rcpt, argument, *path), {}};
}

// EHLO, HELO, VRFY need an argument; DATA, RSET, QUIT, STARTTLS take none;
// NOOP any.
smtp_command_result parse_simple(smtp_verb verb, std::string_view argument) {
  bool needs_argument = verb == smtp_verb::ehlo || verb == smtp_verb::helo
                        || verb == smtp_verb::vrfy;
  bool takes_argument = needs_argument || verb == smtp_verb::noop;
  auto usage = std::string{"Syntax: "} + std::string{to_string(verb)};
  if (needs_argument && argument.empty())
    return refusal(501, "5.5.4",
                   usage + (verb == smtp_verb::vrfy ? " string" : " domain"));
  if (!takes_argument && !argument.empty())
    return refusal(501, "5.5.4", usage + " (no arguments)");
  return {command_of(verb, argument), {}};
}

char printable(char c) {
  auto byte = static_cast<unsigned char>(c);
  return byte < 32 || byte == 127 ? '?' : c;
}

void append_reply_line(std::string& out, int code, bool last, std::string_view status,
                       std::string_view text) {
  std::string body{status};
  if (!status.empty() && !text.empty())
    body += ' ';
  body += text;
  std::transform(body.begin(), body.end(), body.begin(), printable);
  out += std::to_string(code);
  if (!last || !body.empty())
    out += last ? ' ' : '-';
  out += body;
  out += "\r\n";
}

} // namespace

std::optional<smtp_verb> smtp_verb_named(std::string_view word) {
  for (const auto& [verb, name] : verb_names)
    if (equals_ignoring_case(word, name))
      return verb;
  return std::nullopt;
}

std::string_view to_string(smtp_verb verb) {
  for (const auto& [each, name] : verb_names)
    if (each == verb)
      return name;
  return "?";
}

smtp_command_result parse_smtp_command(std::string_view line) {
  if (line.size() > max_command_line_length)
    return refusal(500, "5.5.2", "Line too long");
  if (line.empty())
    return refusal(500, "5.5.2", "Empty command");
  if (line.find_first_of(std::string_view{"\r\n\0", 3}) != std::string_view::npos)
    return refusal(500, "5.5.2", "Bare CR, LF or NUL in command");
  auto space = std::min(line.find(' '), line.size());
  auto verb = smtp_verb_named(line.substr(0, space));
  if (!verb)
    return refusal(502, "5.5.1", "Command not recognized");
  auto argument = trimmed(line.substr(space));
  if (*verb == smtp_verb::mail)
    return parse_mail(argument);
  if (*verb == smtp_verb::rcpt)
    return parse_rcpt(argument);
  return parse_simple(*verb, argument);
}

std::string format_reply(const smtp_reply& reply) {
  return format_reply(reply.code, reply.status, {reply.text});
}

std::string format_reply(int code, std::string_view status,
                         const std::vector<std::string>& lines) {
  std::string out;
  if (lines.empty())
    append_reply_line(out, code, true, status, {});
  for (std::size_t i = 0; i < lines.size(); ++i)
    append_reply_line(out, code, i + 1 == lines.size(), status, lines[i]);
  return out;
}

} // namespace postconn
