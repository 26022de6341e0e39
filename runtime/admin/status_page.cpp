// NAME
//   status_page -- the admin listener's HTML status page (see status_page.hpp).
#include "runtime/admin/status_page.hpp"

#include <httplib.h>

namespace postconn {

/// status_page.html, generated into the build by embed_page.cmake.
extern const char status_page_html[];

void send_status_page(httplib::Response& res, int status) {
  res.status = status;
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "connect-src 'self'; form-action 'self'; base-uri 'none'; "
                 "frame-ancestors 'none'");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(status_page_html, "text/html; charset=utf-8");
}

} // namespace postconn
