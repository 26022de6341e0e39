// NAME
//   toml_table -- reads one TOML table key by key, with one problem line per
//   bad key.
//
// DESCRIPTION
//   A table_reader walks one TOML table: it knows the table's key path
//   ("postoffice[2].retry"), rejects keys the table does not list (naming
//   the listed key nearest a misspelt one), and checks each value's type
//   and range where it is read. Problems are recorded, never thrown, so one
//   pass reports them all. The config and the simulator's scenarios are
//   read with it.
//
//   Durations are capped at 36500 days: anything longer overflows a
//   nanosecond clock once added to the current time.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "runtime/config/config.hpp"

namespace postconn {

/// Longer durations overflow a nanosecond clock once added to the time now.
constexpr std::chrono::seconds longest_duration = std::chrono::hours{24 * 36500};
constexpr std::string_view longest_duration_text = "36500d";

/// Whether a duration may be zero ("disabled") or must be positive.
enum class zero_duration { allowed, refused };

/// Appends the whole of `file` to `text`; the errno of a failure, else 0.
int read_whole_file(const std::filesystem::path& file, std::string& text);

/// Where TOML text stops being TOML (from 1), and why, on one line.
struct toml_syntax_error {
  std::size_t line = 0;
  std::size_t column = 0;
  std::string what;
};

/// Parses TOML text; a syntax error is described in `error`.
std::optional<toml::table> parse_toml(std::string_view text, std::string_view source,
                                      toml_syntax_error& error);

/// Parses TOML text; on a syntax error, one problem "source:line:column: what".
std::optional<toml::table> parse_toml(std::string_view text, std::string_view source,
                                      std::vector<std::string>& problems);

/// The key of `known` nearest to the unknown `key`, when it is near enough
/// to be a misspelling: at most a third of the longer one's characters
/// inserted, removed, changed or swapped with a neighbour (at least one).
std::optional<std::string_view> nearest_key(std::string_view key,
                                            std::initializer_list<std::string_view> known);

/// `text` in double quotes, for problem lines.
std::string in_quotes(std::string_view text);

/// "a string", "an integer", ...: a value's type in problem lines.
std::string type_name(const toml::node& node);

/// A name made of [a-z0-9_-], not empty: postoffices, runs.
bool is_plain_name(std::string_view name);

/// One or more decimal digits and nothing else.
bool is_digits(std::string_view text);

/// Seconds in one `unit` (s, m, h, d); 0 for any other letter.
std::int64_t seconds_per(char unit);

/// Digits with an optional s, m, h or d: a duration unless it is too long.
bool has_duration_syntax(std::string_view text);

/// One TOML table being read; problems are recorded under its key path.
class table_reader {
public:
  table_reader(const toml::table& table, std::string path,
               std::vector<std::string>& problems)
    : table_(table), path_(std::move(path)), problems_(problems) {
  }

  const toml::node* get(std::string_view key) const {
    return table_.get(key);
  }

  /// The same table, with its problems recorded into `sink` instead.
  table_reader recording_into(std::vector<std::string>& sink) const {
    return table_reader{table_, path_, sink};
  }

  bool has(std::string_view key) const {
    return get(key) != nullptr;
  }

  void problem(std::string_view key, const std::string& what) {
    problems_.push_back(key_path(key) + ": " + what);
  }

  /// Records problems whose lines already name their key.
  void add_problems(const std::vector<std::string>& lines) {
    problems_.insert(problems_.end(), lines.begin(), lines.end());
  }

  void reject_unknown_keys(std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : table_) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end())
        continue;
      auto nearest = nearest_key(key.str(), known);
      problem(key.str(), nearest ? "unknown key (did you mean " + in_quotes(*nearest) + "?)"
                                 : std::string{"unknown key"});
    }
  }

  /// True when `key` is present; a "missing" problem saying `why` if not.
  bool require(std::string_view key, const std::string& why) {
    if (!has(key))
      problem(key, "missing (" + why + ")");
    return has(key);
  }

  /// The table under `key`, when present and a table.
  std::optional<table_reader> table(std::string_view key) {
    const auto* node = get(key);
    if (!node)
      return std::nullopt;
    if (const auto* found = node->as_table())
      return table_reader{*found, key_path(key), problems_};
    problem(key, "expected a table, got " + type_name(*node));
    return std::nullopt;
  }

  bool read(std::string_view key, std::string& out) {
    const auto* value = typed<std::string>(key, "a string");
    if (value)
      out = value->get();
    return value != nullptr;
  }

  bool read(std::string_view key, bool& out) {
    const auto* value = typed<bool>(key, "a boolean");
    if (value)
      out = value->get();
    return value != nullptr;
  }

  /// A probability: a number from 0 to 1 (an integer 0 or 1 too).
  bool read_probability(std::string_view key, double& out) {
    const auto* node = get(key);
    if (!node)
      return false;
    std::optional<double> value;
    if (const auto* real = node->as_floating_point())
      value = real->get();
    else if (const auto* whole = node->as_integer())
      value = static_cast<double>(whole->get());
    else
      problem(key, "expected a number from 0 to 1, got " + type_name(*node));
    if (value && !(*value >= 0.0 && *value <= 1.0)) {
      std::ostringstream text;
      text << *value;
      problem(key, "must be from 0 to 1, got " + text.str());
      value.reset();
    }
    if (value)
      out = *value;
    return value.has_value();
  }

  /// An integer of at least `min` that fits `Int`.
  template <class Int>
  bool read(std::string_view key, Int& out, std::int64_t min) {
    auto* v = typed<std::int64_t>(key, "an integer");
    if (!v)
      return false;
    auto max = static_cast<std::int64_t>(std::min<std::uint64_t>(
      std::numeric_limits<Int>::max(), std::numeric_limits<std::int64_t>::max()));
    auto value = v->get();
    if (value < min || value > max) {
      problem(key, "must be " + (value < min ? "at least " + std::to_string(min)
                                             : "at most " + std::to_string(max))
                     + ", got " + std::to_string(value));
      return false;
    }
    out = static_cast<Int>(value);
    return true;
  }

  /// An array of strings, every element checked.
  bool read(std::string_view key, std::vector<std::string>& out) {
    auto* array = typed_array(key);
    if (!array)
      return false;
    std::vector<std::string> values;
    for (std::size_t i = 0; i < array->size(); ++i) {
      if (const auto* text = (*array)[i].as_string())
        values.push_back(text->get());
      else
        problem(std::string{key} + "[" + std::to_string(i) + "]",
                "expected a string, got " + type_name((*array)[i]));
    }
    if (values.size() != array->size())
      return false;
    out = std::move(values);
    return true;
  }

  /// "90s", "10m", "24h", "5d", "0", or an integer count of seconds.
  bool read_duration(std::string_view key, std::chrono::seconds& out,
                     zero_duration zero) {
    const auto* node = get(key);
    if (!node)
      return false;
    std::optional<std::chrono::seconds> parsed;
    if (const auto* text = node->as_string())
      parsed = duration_from(key, text->get());
    else if (const auto* number = node->as_integer())
      parsed = duration_from(key, number->get());
    else
      problem(key, "expected a duration (\"90s\", \"10m\", \"24h\", \"5d\" or seconds), got "
                     + type_name(*node));
    if (parsed && zero == zero_duration::refused && parsed->count() == 0) {
      problem(key, "must be longer than 0");
      parsed.reset();
    }
    if (parsed)
      out = *parsed;
    return parsed.has_value();
  }

  /// A "host:port" or "[v6]:port" string.
  bool read_listen(std::string_view key, std::string& out) {
    std::string text;
    if (!read(key, text))
      return false;
    if (!parse_listen_address(text)) {
      problem(key, "invalid address " + in_quotes(text)
                     + " (use host:port or [ipv6]:port, port 0 to 65535 (0: any free port), "
                       "e.g. \"127.0.0.1:2525\")");
      return false;
    }
    out = text;
    return true;
  }

private:
  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string{key} : path_ + "." + std::string{key};
  }

  /// The value under `key` if it has type T; a problem if it has another.
  template <class T>
  const toml::value<T>* typed(std::string_view key, const char* expected) {
    const auto* node = get(key);
    if (!node)
      return nullptr;
    if (const auto* value = node->as<T>())
      return value;
    problem(key, std::string{"expected "} + expected + ", got " + type_name(*node));
    return nullptr;
  }

  const toml::array* typed_array(std::string_view key) {
    const auto* node = get(key);
    if (!node)
      return nullptr;
    if (const auto* array = node->as_array())
      return array;
    problem(key, "expected an array of strings, got " + type_name(*node));
    return nullptr;
  }

  std::optional<std::chrono::seconds> duration_from(std::string_view key,
                                                    const std::string& text) {
    if (auto parsed = parse_duration(text))
      return parsed;
    if (has_duration_syntax(text))
      problem(key, "duration " + in_quotes(text) + " is too long (at most "
                     + std::string{longest_duration_text} + ")");
    else
      problem(key, "invalid duration " + in_quotes(text)
                     + " (use a number with s, m, h or d, e.g. \"600s\")");
    return std::nullopt;
  }

  std::optional<std::chrono::seconds> duration_from(std::string_view key,
                                                    std::int64_t seconds) {
    if (seconds >= 0 && seconds <= longest_duration.count())
      return std::chrono::seconds{seconds};
    problem(key, "invalid duration " + std::to_string(seconds)
                   + (seconds < 0 ? " (must not be negative)"
                                  : " (at most " + std::to_string(longest_duration.count())
                                      + " seconds)"));
    return std::nullopt;
  }

  const toml::table& table_;
  std::string path_;
  std::vector<std::string>& problems_;
};

} // namespace postconn
