// Fuzzes runtime/mail/smtp_data.cpp against a plain reference: DATA ends at the
// first <CRLF>.<CRLF> (the first line counting as preceded by CRLF), dots
// are unstuffed, and the message is refused exactly when it holds a bare
// CR or LF, a line over 1000 octets or more than the size limit. Chunking
// the same bytes differently changes nothing.
//
// Input: one byte for the size limit, one for the chunk length, the bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/check.hpp"
#include "runtime/mail/smtp_data.hpp"

using namespace postconn;

namespace {

struct decoded {
  std::size_t consumed = 0;
  bool finished = false;
  std::optional<smtp_reply> rejection;
  std::string content;
};

decoded decode(std::string_view bytes, std::uint64_t limit, std::size_t chunk) {
  smtp_data_decoder decoder{limit};
  decoded out;
  while (out.consumed < bytes.size() && !decoder.finished()) {
    auto piece = bytes.substr(out.consumed, chunk);
    auto taken = decoder.feed(piece);
    FUZZ_CHECK(taken <= piece.size());
    FUZZ_CHECK(taken == piece.size() || decoder.finished());
    out.consumed += taken;
  }
  FUZZ_CHECK(decoder.feed("x") == 0 || !decoder.finished());
  out.finished = decoder.finished();
  if (out.finished) {
    out.rejection = decoder.rejection();
    out.content = decoder.take_content();
  }
  return out;
}

/// The content as the reference reads it: raw bytes before the
/// terminator's ".\r\n", with a leading dot removed from each line.
std::string unstuffed(std::string_view raw) {
  std::string content;
  bool line_start = true;
  for (char c : raw) {
    if (!(line_start && c == '.'))
      content += c;
    line_start = c == '\n';
  }
  return content;
}

bool has_bare_cr_or_lf(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool crlf_cr = text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n';
    bool crlf_lf = text[i] == '\n' && i > 0 && text[i - 1] == '\r';
    if ((text[i] == '\r' && !crlf_cr) || (text[i] == '\n' && !crlf_lf))
      return true;
  }
  return false;
}

bool has_long_line(std::string_view text) {
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find("\r\n", start);
    end = end == std::string_view::npos ? text.size() : end + 2;
    if (end - start > max_text_line_length)
      return true;
    start = end;
  }
  return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2)
    return 0;
  std::uint64_t limit = std::uint64_t{data[0]} * 16;
  std::size_t chunk = data[1] % 64 + 1;
  std::string_view bytes{reinterpret_cast<const char*>(data) + 2, size - 2};

  auto whole = decode(bytes, limit, bytes.size() + 1);
  auto chunked = decode(bytes, limit, chunk);
  FUZZ_CHECK(whole.consumed == chunked.consumed && whole.finished == chunked.finished);
  FUZZ_CHECK(whole.content == chunked.content);
  FUZZ_CHECK(whole.rejection.has_value() == chunked.rejection.has_value());
  if (whole.rejection)
    FUZZ_CHECK(whole.rejection->code == chunked.rejection->code);

  auto terminator = ("\r\n" + std::string{bytes}).find("\r\n.\r\n");
  if (terminator == std::string::npos) {
    FUZZ_CHECK(!whole.finished && whole.consumed == bytes.size());
    return 0;
  }
  FUZZ_CHECK(whole.finished && whole.consumed == terminator + 3);
  auto expected = unstuffed(bytes.substr(0, terminator));
  bool refused = has_bare_cr_or_lf(bytes.substr(0, terminator)) || has_long_line(expected)
                 || expected.size() > limit;
  FUZZ_CHECK(whole.rejection.has_value() == refused);
  if (!refused)
    FUZZ_CHECK(whole.content == expected);
  else
    FUZZ_CHECK(whole.content.empty());
  return 0;
}
