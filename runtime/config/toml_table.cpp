// NAME
//   toml_table -- reads one TOML table key by key (see toml_table.hpp).
#include "runtime/config/toml_table.hpp"

#include <cerrno>
#include <cstdio>
#include <memory>

namespace postconn {

int read_whole_file(const std::filesystem::path& file, std::string& text) {
  auto close = [](std::FILE* f) { std::fclose(f); };
  std::unique_ptr<std::FILE, decltype(close)> in{std::fopen(file.c_str(), "rb"), close};
  if (!in)
    return errno;
  char buffer[65536];
  while (auto n = std::fread(buffer, 1, sizeof buffer, in.get()))
    text.append(buffer, n);
  return std::ferror(in.get()) ? errno : 0;
}

namespace {

/// The parser's message with control characters it quotes from the input
/// escaped, so a problem stays one line.
std::string one_line(std::string_view text) {
  std::string line;
  for (unsigned char c : text) {
    if (c == '\n')
      line += "\\n";
    else if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      line += escaped;
    } else
      line += static_cast<char>(c);
  }
  return line;
}

} // namespace

std::optional<toml::table> parse_toml(std::string_view text, std::string_view source,
                                      std::vector<std::string>& problems) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream line;
    line << source << ":" << e.source().begin.line << ":" << e.source().begin.column
         << ": " << one_line(e.description());
    problems.push_back(line.str());
    return std::nullopt;
  }
}

std::string in_quotes(std::string_view text) {
  return "\"" + std::string{text} + "\"";
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number with a fraction";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date or time";
  }
}

bool is_plain_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool is_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
}

std::int64_t seconds_per(char unit) {
  switch (unit) {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 3600;
    case 'd':
      return 86400;
    default:
      return 0;
  }
}

bool has_duration_syntax(std::string_view text) {
  return is_digits(text)
         || (text.size() >= 2 && seconds_per(text.back()) != 0
             && is_digits(text.substr(0, text.size() - 1)));
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (!has_duration_syntax(text))
    return std::nullopt;
  bool has_unit = seconds_per(text.back()) != 0;
  auto unit = has_unit ? seconds_per(text.back()) : 1;
  auto digits = has_unit ? text.substr(0, text.size() - 1) : text;
  std::int64_t count = 0;
  for (char digit : digits) {
    count = count * 10 + (digit - '0');
    if (count > longest_duration.count() / unit)
      return std::nullopt;
  }
  return std::chrono::seconds{count * unit};
}

} // namespace postconn
