// NAME
//   temp_dir -- a fresh directory per test, removed afterwards.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace postconn::test {

class temp_dir {
public:
  /// A directory under `base` (default: the system's temporary directory).
  explicit temp_dir(const std::filesystem::path& base
                    = std::filesystem::temp_directory_path()) {
    auto pattern = (base / "postconn-test-XXXXXX").string();
    if (!mkdtemp(pattern.data()))
      throw std::filesystem::filesystem_error(
        "mkdtemp", std::error_code(errno, std::generic_category()));
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const {
    return path_;
  }
  std::filesystem::path operator/(const std::string& name) const {
    return path_ / name;
  }

private:
  std::filesystem::path path_;
};

} // namespace postconn::test
