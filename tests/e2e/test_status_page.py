"""End-to-end status page: GET / on the admin listener of the real server,
rendered by a real headless browser (Debian's chromium) after its script
has run against the live admin API. The server has two maildir
postoffices, support's share missing; mail waits deferred for support, one
recipient at sales bounces. The rendered page must show support down and
its queue, the deferred deliveries with their counts against their limits
and the bounce; without the token the page asks for it and shows nothing
else. A screenshot of the page goes next to the binary (status_page.png)."""
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from html.parser import HTMLParser

from postconn_process import POSTCONN, Server, temp_workdir, write_config
from test_delivery import make_postoffice

TOKEN = "page-s3cret"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.path.join(os.path.dirname(os.path.abspath(shutil.which(POSTCONN) or POSTCONN)),
                          "status_page.png")


class Rendered(HTMLParser):
    """The parts of a rendered page the test reads: every table row as its
    data-* attributes and its cells' texts by class, and the elements with
    an id, with whether they are hidden."""

    def __init__(self, dom):
        super().__init__()
        self.rows = []          # (table id, {data-*}, [(cell classes, text)])
        self.hidden = {}        # element id -> hidden attribute present
        self.texts = {}         # element id -> its text
        self._tables, self._open_ids, self._cell = [], [], None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._tables.append(attrs.get("id"))
        elif tag == "tr" and self._tables:
            data = {k[5:]: v for k, v in attrs.items() if k.startswith("data-")}
            self.rows.append((self._tables[-1], data, []))
        elif tag == "td" and self.rows:
            self._cell = [attrs.get("class") or "", ""]
        if "id" in attrs:
            self.hidden[attrs["id"]] = "hidden" in attrs
            self.texts[attrs["id"]] = ""
            self._open_ids.append((tag, attrs["id"]))

    def handle_endtag(self, tag):
        if tag == "table" and self._tables:
            self._tables.pop()
        elif tag == "td" and self._cell is not None:
            self.rows[-1][2].append(tuple(self._cell))
            self._cell = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        for _, element in self._open_ids:
            self.texts[element] += data

    def table(self, table_id):
        """Rows of a table's body: ({data-*}, {first class of a cell: text},
        [cell texts])."""
        return [(data, {cls.split()[-1]: text for cls, text in cells if cls}, [t for _, t in cells])
                for table, data, cells in self.rows if table == table_id and cells]


def chromium(url, profile, *mode):
    """Runs headless chromium on `url` with `mode` (--dump-dom or
    --screenshot=...), giving the page's script five seconds of virtual
    time (its requests included); its stdout."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
         "--virtual-time-budget=5000", *mode, url],
        capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"chromium exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


class StatusPage(unittest.TestCase):
    def setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            self.fail(f"no {CHROMIUM}: the status page test needs Debian's chromium "
                      "(apt-get install chromium; ./build.sh test installs it)")
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        self.dir = holder.name
        self.sales = os.path.join(self.dir, "var/postoffices/sales")
        make_postoffice(self.sales, "bob")  # support's share is missing
        with open(os.path.join(self.dir, "admin.token"), "w") as f:
            f.write(TOKEN + "\n")
        # Retried hourly: support's mail stays deferred while the page is read.
        config = write_config(self.dir, extra='[retry]\nmax_open_retries = 50\n'
                                              'open_interval = "1h"\n')
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace("[admin]\n", '[admin]\ntoken_file = "admin.token"\n', 1))
        self.server = Server(self.dir, config)
        self.addCleanup(self.server.__exit__)
        self.addCleanup(self.server.stop)
        self.server.wait_for_log("serving on")
        self.url = self.server.admin_url + "/"
        profile = tempfile.TemporaryDirectory(prefix="postconn-chromium-")
        self.addCleanup(profile.cleanup)
        self.profile = profile.name

    def api(self, path):
        request = urllib.request.Request(self.server.admin_url + path,
                                         headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def wait_for(self, predicate, what, timeout=20):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.assertLess(time.monotonic(), deadline, what)
            time.sleep(0.1)

    def send(self, recipient):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port) as client:
            client.sendmail("bob@sales.example.test", [recipient],
                            b"Subject: for the status page\r\n\r\nbody\r\n")

    def test_the_page_renders_the_live_state_with_one_postoffice_down(self):
        for _ in range(3):
            self.send("carol@support.example.test")
        self.send("nobody@sales.example.test")  # no such mailbox: bounces at once
        self.send("bob@sales.example.test")
        self.wait_for(lambda: self.api("/queue?state=deferred&postoffice=support")["total"] == 3
                      and all(d["open_retries"] >= 1 for d in
                              self.api("/queue?postoffice=support")["deliveries"]),
                      "support's mail is not deferred after a failed open")
        self.wait_for(lambda: self.api("/bounces")["bounces"], "no bounce")

        page = Rendered(chromium(self.url + "?token=" + TOKEN, self.profile, "--dump-dom"))
        self.assertFalse(page.hidden["report"], "the report is not shown")
        self.assertTrue(page.hidden["token-form"])
        self.assertTrue(page.hidden["error"], page.texts.get("error"))
        self.assertIn("As of", page.texts["updated"])
        offices = {data["postoffice"]: (data, cells) for data, cells, _ in
                   page.table("postoffices")}
        support, support_cells = offices["support"]
        self.assertEqual(support["state"], "down")
        self.assertEqual(support_cells["state-down"], "down")
        self.assertIn("root", support_cells["problem"])
        self.assertIn("since", support_cells["since"])
        self.assertTrue(support_cells["depth"].startswith("3"), support_cells["depth"])
        self.assertNotEqual(support_cells["oldest"], "-")
        sales, sales_cells = offices["sales"]
        self.assertEqual((sales["state"], sales_cells["state-up"]), ("up", "up"))
        self.assertIn("1 up, 1 down", page.texts["postoffice-summary"])

        deferred = page.table("deferred")
        self.assertEqual(len(deferred), 3)
        for data, cells, texts in deferred:
            self.assertEqual(data["postoffice"], "support")
            opens, limit = cells["open-retries"].split(" / ")
            self.assertGreaterEqual(int(opens), 1)
            self.assertEqual(limit, "50")
            self.assertIn("carol@support.example.test", texts)
        self.assertIn("3 deferred deliveries", page.texts["deferred-summary"])

        [(bounce, _, texts)] = page.table("bounces")
        self.assertEqual(bounce["postoffice"], "sales")
        self.assertIn("nobody@sales.example.test", texts)
        self.assertIn("5.1.1", texts)

        chromium(self.url + "?token=" + TOKEN, self.profile, f"--screenshot={SCREENSHOT}",
                 "--window-size=1200,900")
        with open(SCREENSHOT, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print(f"\nstatus page screenshot: {SCREENSHOT}")

    def test_without_the_token_the_page_is_401_and_only_asks_for_it(self):
        self.send("carol@support.example.test")
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(self.url, timeout=10)
        self.assertEqual(refused.exception.code, 401)
        page = Rendered(chromium(self.url, self.profile, "--dump-dom"))
        self.assertFalse(page.hidden["token-form"])
        self.assertTrue(page.hidden["report"])
        self.assertIn("needs its token", page.texts["token-reason"])
        self.assertEqual(page.table("postoffices"), [])
        page = Rendered(chromium(self.url + "?token=wrong", self.profile, "--dump-dom"))
        self.assertFalse(page.hidden["token-form"])
        self.assertIn("refused that token", page.texts["token-reason"])
        self.assertEqual(page.table("postoffices"), [])


if __name__ == "__main__":
    unittest.main()
