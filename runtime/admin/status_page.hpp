// NAME
//   status_page -- the admin listener's HTML status page (GET /).
//
// DESCRIPTION
//   One self-contained page, status_page.html, embedded into the binary at
//   build time (embed_page.cmake): nothing to install beside the binary,
//   nothing fetched from elsewhere. Its script reads the admin API's JSON
//   (/postoffices, /queue?state=deferred, /bounces) and shows each
//   postoffice's state since when with its queue depth and oldest delivery,
//   the deferred deliveries with their counts against their limits, and the
//   recent bounces, refreshing itself every 5 s.
//
//   The token rule holds for it as for the API: without the token the page
//   comes with 401 and only asks for it. The token may come once in the
//   page's address (/?token=...): the script takes it out of the address,
//   keeps it for the browser tab (sessionStorage) and sends it as a bearer
//   header with every request.
#pragma once

namespace httplib {
struct Response;
} // namespace httplib

namespace postconn {

/// Answers with the page and headers that keep it to itself: no script,
/// style or request from or to another origin, no referrer, no caching.
void send_status_page(httplib::Response& res, int status);

} // namespace postconn
