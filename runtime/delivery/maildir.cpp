// NAME
//   maildir -- probing a maildir postoffice and delivering to its mailboxes
//   (see maildir.hpp).
#include "runtime/delivery/maildir.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

#include "runtime/mail/address.hpp"

namespace postconn {

namespace {

constexpr const char* marker_name = ".postoffice";
constexpr std::size_t max_delivery_key_length = 200;
constexpr mode_t file_mode = 0600;
constexpr mode_t folder_mode = 0700;

/// An open file descriptor, closed when it goes out of scope.
class descriptor {
public:
  explicit descriptor(int fd = -1) : fd_{fd} {
  }
  descriptor(descriptor&& other) noexcept : fd_{std::exchange(other.fd_, -1)} {
  }
  descriptor& operator=(descriptor&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  descriptor(const descriptor&) = delete;
  descriptor& operator=(const descriptor&) = delete;
  ~descriptor() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  int get() const {
    return fd_;
  }
  explicit operator bool() const {
    return fd_ >= 0;
  }
  /// Closes now; false (errno set) when close reports an error.
  bool close() {
    return ::close(std::exchange(fd_, -1)) == 0;
  }

private:
  int fd_;
};

std::string error_text(int err) {
  return std::generic_category().message(err);
}

// -- the postoffice root ------------------------------------------------------

struct postoffice_root {
  descriptor folder;
  /// Empty when the root is usable.
  std::string problem;
};

std::string root_problem(int err) {
  switch (err) {
    case ENOENT:
      return "root missing";
    case ENOTDIR:
      return "root is not a directory";
    default:
      return "root unreadable: " + error_text(err);
  }
}

/// Opens the root folder and checks that it holds the marker.
postoffice_root open_root(const std::filesystem::path& root) {
  descriptor folder{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!folder)
    return {descriptor{}, root_problem(errno)};
  struct stat marker;
  if (::fstatat(folder.get(), marker_name, &marker, 0) != 0)
    return {descriptor{}, errno == ENOENT
                            ? "marker .postoffice missing (share not mounted?)"
                            : "marker .postoffice unreadable: " + error_text(errno)};
  return {std::move(folder), {}};
}

/// A name no other probe uses, on this node or another sharing the root:
/// ".postconn-probe-<host>-<pid>-<count>" (no mailbox starts with a dot).
std::string probe_file_name() {
  static std::atomic<unsigned long> probes{0};
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  auto plain = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  };
  std::string name = ".postconn-probe-";
  for (const char* c = host; *c; ++c)
    name += plain(*c) ? *c : '_';
  return name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++probes);
}

/// Creates and removes a probe file; empty, or why that failed.
std::string write_test(int root) {
  auto name = probe_file_name();
  descriptor file{::openat(root, name.c_str(),
                           O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                           file_mode)};
  if (!file)
    return "not writable: " + error_text(errno);
  if (!file.close()) {
    auto err = errno;
    ::unlinkat(root, name.c_str(), 0);
    return "not writable: " + error_text(err);
  }
  if (::unlinkat(root, name.c_str(), 0) != 0)
    return "probe file " + name + " not removable: " + error_text(errno);
  return {};
}

// -- results ------------------------------------------------------------------

maildir_delivery_result delivered(std::string text) {
  return {maildir_result_kind::delivered, "2.0.0", std::move(text)};
}

maildir_delivery_result temporary(const char* status, std::string text) {
  return {maildir_result_kind::temporary_failure, status, std::move(text)};
}

maildir_delivery_result permanent(const char* status, std::string text) {
  return {maildir_result_kind::permanent_failure, status, std::move(text)};
}

// -- mailbox folders ----------------------------------------------------------

enum class folder_state { opened, missing, symbolic_link, not_a_folder, failed };

struct folder {
  descriptor fd;
  folder_state state;
  /// errno of the failed open.
  int error;
};

/// Opens `name` in `parent` as a folder, never through a symbolic link.
folder open_folder(int parent, const char* name) {
  descriptor fd{::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (fd)
    return {std::move(fd), folder_state::opened, 0};
  auto err = errno;
  if (err == ENOENT)
    return {descriptor{}, folder_state::missing, err};
  struct stat st;
  if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return {descriptor{}, folder_state::symbolic_link, err};
    if (!S_ISDIR(st.st_mode))
      return {descriptor{}, folder_state::not_a_folder, err};
  }
  return {descriptor{}, folder_state::failed, err};
}

/// Why a folder that is not missing could not be used, if it could not;
/// `shown` names it ("mailbox bob", "mailbox bob: tmp/").
std::optional<maildir_delivery_result> unusable(const folder& f,
                                                const std::string& shown) {
  switch (f.state) {
    case folder_state::opened:
      return std::nullopt;
    case folder_state::missing:
      return temporary("4.2.0", shown + " is missing (being set up or damaged)");
    case folder_state::symbolic_link:
      return temporary("4.3.0", shown + " is a symbolic link (refused)");
    case folder_state::not_a_folder:
      return temporary("4.2.0", shown + " is not a directory (damaged)");
    case folder_state::failed:
      break;
  }
  return temporary("4.3.0", shown + ": " + error_text(f.error));
}

/// Creates <root>/<mailbox>/ (unless another worker just did) and fsyncs
/// the root.
std::optional<maildir_delivery_result> create_mailbox(int root,
                                                      const std::string& mailbox) {
  if ((::mkdirat(root, mailbox.c_str(), folder_mode) != 0 && errno != EEXIST)
      || ::fsync(root) != 0)
    return temporary("4.3.0",
                     "cannot create mailbox " + mailbox + ": " + error_text(errno));
  return std::nullopt;
}

/// Opens tmp/, new/ or cur/ in the mailbox folder `box`. With `create`, a
/// missing one is made first (a creation cut short by a crash, or another
/// worker's under way) and the mailbox folder fsync'd.
folder open_subfolder(int box, const char* sub, bool create) {
  auto found = open_folder(box, sub);
  if (found.state != folder_state::missing || !create)
    return found;
  if ((::mkdirat(box, sub, folder_mode) != 0 && errno != EEXIST) || ::fsync(box) != 0)
    return {descriptor{}, folder_state::failed, errno};
  return open_folder(box, sub);
}

struct mailbox_folders {
  descriptor tmp;
  descriptor fresh;
  /// Invalid when the mailbox has no cur/ (nothing was moved on yet).
  descriptor cur;
  /// Set when the mailbox cannot take the message.
  std::optional<maildir_delivery_result> failure;
};

mailbox_folders failed_mailbox(maildir_delivery_result why) {
  return {descriptor{}, descriptor{}, descriptor{}, std::move(why)};
}

/// Opens tmp/ new/ and cur/ of <root>/<mailbox>/, creating them if asked.
mailbox_folders open_mailbox(int root, const std::string& mailbox, bool create) {
  auto box = open_folder(root, mailbox.c_str());
  if (box.state == folder_state::missing && create) {
    if (auto failure = create_mailbox(root, mailbox))
      return failed_mailbox(*failure);
    box = open_folder(root, mailbox.c_str());
  }
  if (box.state == folder_state::missing)
    return failed_mailbox(permanent("5.1.1", "mailbox " + mailbox + " does not exist"));
  if (auto failure = unusable(box, "mailbox " + mailbox))
    return failed_mailbox(*failure);
  auto tmp = open_subfolder(box.fd.get(), "tmp", create);
  auto fresh = open_subfolder(box.fd.get(), "new", create);
  auto cur = open_subfolder(box.fd.get(), "cur", create);
  if (auto failure = unusable(tmp, "mailbox " + mailbox + ": tmp/"))
    return failed_mailbox(*failure);
  if (auto failure = unusable(fresh, "mailbox " + mailbox + ": new/"))
    return failed_mailbox(*failure);
  if (cur.state != folder_state::missing)
    if (auto failure = unusable(cur, "mailbox " + mailbox + ": cur/"))
      return failed_mailbox(*failure);
  return {std::move(tmp.fd), std::move(fresh.fd), std::move(cur.fd), std::nullopt};
}

// -- an earlier delivery ------------------------------------------------------

/// True for `entry` == `name`, or `name` with a mail client's suffix:
/// ":2,<flags>", or ",S=<size>..." (Dovecot). Keys hold neither ':' nor ','.
bool names_same_message(std::string_view entry, std::string_view name) {
  if (entry.substr(0, name.size()) != name)
    return false;
  return entry.size() == name.size() || entry[name.size()] == ':'
         || entry[name.size()] == ',';
}

/// Scans cur/ for the message; errno when cur/ could not be read.
int find_in_cur(int cur, const std::string& name, bool& found) {
  auto copy = ::dup(cur);
  if (copy < 0)
    return errno;
  DIR* listing = ::fdopendir(copy);
  if (!listing) {
    auto err = errno;
    ::close(copy);
    return err;
  }
  errno = 0;
  while (auto entry = ::readdir(listing))
    if (names_same_message(entry->d_name, name)) {
      found = true;
      break;
    }
  auto err = found ? 0 : errno;
  ::closedir(listing);
  return err;
}

/// The result of an earlier attempt that delivered the message already,
/// or a failure to find out, or nothing.
std::optional<maildir_delivery_result>
earlier_delivery(const mailbox_folders& box, const std::string& mailbox,
                 const std::string& name) {
  struct stat st;
  if (::fstatat(box.fresh.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0
      && S_ISREG(st.st_mode)) {
    // The crash may have come before the earlier attempt's fsync.
    if (::fsync(box.fresh.get()) != 0)
      return temporary("4.3.0", "mailbox " + mailbox + ": new/: " + error_text(errno));
    return delivered("already delivered to " + mailbox + "/new/" + name);
  }
  if (!box.cur)
    return std::nullopt;
  bool found = false;
  if (auto err = find_in_cur(box.cur.get(), name, found))
    return temporary("4.3.0", "mailbox " + mailbox + ": cur/: " + error_text(err));
  if (found)
    return delivered("already delivered to " + mailbox + "/cur/" + name + " (read)");
  return std::nullopt;
}

// -- writing ------------------------------------------------------------------

/// Appends `text` with each CRLF turned into LF; a lone CR stays.
void append_with_lf(std::string& out, std::string_view text) {
  for (auto pos = text.find("\r\n"); pos != std::string_view::npos;
       pos = text.find("\r\n")) {
    out.append(text.substr(0, pos));
    out += '\n';
    text.remove_prefix(pos + 2);
  }
  out.append(text);
}

std::string file_content(const maildir_message& msg) {
  std::string out = "Return-Path: <" + msg.sender + ">\n";
  out.reserve(out.size() + msg.received_header.size() + msg.content.size());
  append_with_lf(out, msg.received_header);
  append_with_lf(out, msg.content);
  return out;
}

/// Writes all of `data`, through interrupted and short writes.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto written = ::write(fd, data.data(), data.size());
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0) {
      if (written == 0)
        errno = EIO;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

/// Writes tmp/<name> durably; errno when that failed.
int write_tmp_file(int tmp, const std::string& name, const std::string& content) {
  // Never O_TRUNC a leftover: it could be a hard link to a file elsewhere.
  if (::unlinkat(tmp, name.c_str(), 0) != 0 && errno != ENOENT)
    return errno;
  descriptor file{::openat(tmp, name.c_str(),
                           O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                           file_mode)};
  if (!file)
    return errno;
  if (!write_all(file.get(), content) || ::fsync(file.get()) != 0 || !file.close())
    return errno;
  return 0;
}

/// tmp/<name>, fsync, rename into new/<name>, fsync new/.
maildir_delivery_result store_message(const mailbox_folders& box,
                                      const std::string& mailbox,
                                      const std::string& name,
                                      const std::string& content) {
  auto err = write_tmp_file(box.tmp.get(), name, content);
  if (!err
      && ::renameat(box.tmp.get(), name.c_str(), box.fresh.get(), name.c_str()) != 0)
    err = errno;
  if (err) {
    ::unlinkat(box.tmp.get(), name.c_str(), 0);
    return temporary("4.3.0",
                     "mailbox " + mailbox + ": write failed: " + error_text(err));
  }
  // Complete in new/ already; a retry finds it there and repeats this fsync.
  if (::fsync(box.fresh.get()) != 0)
    return temporary("4.3.0", "mailbox " + mailbox + ": new/: " + error_text(errno));
  return delivered("delivered to " + mailbox + "/new/" + name);
}

/// Fault injection (drop): the first `length` bytes in tmp/<name>, unsynced
/// and left there, and the failure the writer sees.
maildir_delivery_result cut_off(const mailbox_folders& box, const std::string& mailbox,
                                const std::string& name, const std::string& content,
                                std::size_t length) {
  length = std::min(length, content.size());
  ::unlinkat(box.tmp.get(), name.c_str(), 0);
  descriptor file{::openat(box.tmp.get(), name.c_str(),
                           O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                           file_mode)};
  if (file)
    write_all(file.get(), std::string_view{content}.substr(0, length));
  return temporary("4.4.2", "mailbox " + mailbox + ": write cut off after "
                              + std::to_string(length) + " of "
                              + std::to_string(content.size())
                              + " bytes (fault injection: drop)");
}

// -- the recipient and the key --------------------------------------------------

/// The mailbox a recipient names, if any; a bare "postmaster" names one.
std::optional<std::string> mailbox_of(const std::string& recipient) {
  if (lower_cased(recipient) == "postmaster")
    return maildir_mailbox_name(recipient);
  auto address = parse_address(recipient);
  if (!address)
    return std::nullopt;
  return maildir_mailbox_name(address->local_part);
}

bool is_delivery_key(std::string_view key) {
  auto allowed = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.' || c == '-';
  };
  return !key.empty() && key.size() <= max_delivery_key_length && key.front() != '.'
         && std::all_of(key.begin(), key.end(), allowed);
}

} // namespace

maildir_probe_result probe_maildir(const std::filesystem::path& root) {
  auto opened = open_root(root);
  if (!opened.problem.empty())
    return {false, opened.problem};
  if (auto problem = write_test(opened.folder.get()); !problem.empty())
    return {false, problem};
  return {true, {}};
}

std::string maildir_file_name(std::string_view delivery_key) {
  return std::string{delivery_key} + ".postconn";
}

maildir_delivery_result deliver_to_maildir(const std::filesystem::path& root,
                                           bool create_mailboxes,
                                           const maildir_message& msg) {
  auto mailbox = mailbox_of(msg.recipient);
  if (!mailbox)
    return permanent("5.1.3", "local part is not a valid mailbox name");
  if (!is_delivery_key(msg.delivery_key))
    return temporary("4.3.0", "internal error: delivery key is not a valid file name");
  auto opened = open_root(root);
  if (!opened.problem.empty())
    return temporary("4.3.0", "postoffice unreachable: " + opened.problem);
  auto box = open_mailbox(opened.folder.get(), *mailbox, create_mailboxes);
  if (box.failure)
    return *box.failure;
  auto name = maildir_file_name(msg.delivery_key);
  if (auto earlier = earlier_delivery(box, *mailbox, name))
    return *earlier;
  if (msg.cut_off_after)
    return cut_off(box, *mailbox, name, file_content(msg), *msg.cut_off_after);
  return store_message(box, *mailbox, name, file_content(msg));
}

} // namespace postconn
