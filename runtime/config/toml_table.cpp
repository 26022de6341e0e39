// NAME
//   toml_table -- reads one TOML table key by key (see toml_table.hpp).
#include "runtime/config/toml_table.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <memory>
#include <vector>

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

/// Edits that turn `a` into `b`: characters inserted, removed, changed, or
/// two neighbours swapped (the optimal string alignment distance).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  // rows[i % 3][j]: the distance of a's first i and b's first j characters.
  std::vector<std::vector<std::size_t>> rows(3, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t j = 0; j <= b.size(); ++j)
    rows[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    auto& row = rows[i % 3];
    const auto& above = rows[(i - 1) % 3];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      bool same = a[i - 1] == b[j - 1];
      row[j] = std::min({above[j] + 1, row[j - 1] + 1, above[j - 1] + (same ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        row[j] = std::min(row[j], rows[(i - 2) % 3][j - 2] + 1);
    }
  }
  return rows[a.size() % 3][b.size()];
}

} // namespace

std::optional<toml::table> parse_toml(std::string_view text, std::string_view source,
                                      toml_syntax_error& error) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    error = {e.source().begin.line, e.source().begin.column, one_line(e.description())};
    return std::nullopt;
  }
}

std::optional<toml::table> parse_toml(std::string_view text, std::string_view source,
                                      std::vector<std::string>& problems) {
  toml_syntax_error error;
  auto doc = parse_toml(text, source, error);
  if (!doc)
    problems.push_back(std::string{source} + ":" + std::to_string(error.line) + ":"
                       + std::to_string(error.column) + ": " + error.what);
  return doc;
}

std::optional<std::string_view> nearest_key(std::string_view key,
                                            std::initializer_list<std::string_view> known) {
  std::optional<std::string_view> nearest;
  auto nearest_distance = std::numeric_limits<std::size_t>::max();
  for (auto candidate : known) {
    auto distance = edit_distance(key, candidate);
    auto allowed = std::max<std::size_t>(1, std::max(key.size(), candidate.size()) / 3);
    if (distance <= allowed && distance < nearest_distance) {
      nearest = candidate;
      nearest_distance = distance;
    }
  }
  return nearest;
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
