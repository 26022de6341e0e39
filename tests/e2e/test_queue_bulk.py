"""End-to-end bulk queue operations: a real server holds 3,000 deliveries
(2,000 messages; both postoffices' shares are gone, so each delivery stays
deferred after its first failed open, for an hour). The admin verbs list
them all page by page, show their shape as qshape does (and /metrics their
ages), hold exactly what a filter selects, flush by filter, release ALL,
delete whole messages by postoffice, show a message's header and body, and
requeue by filter to a share that is back, where the mail lands."""
import json
import os
import smtplib
import sqlite3
import time
import unittest
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from postconn_process import run
from test_admin import metrics_families
from test_delivery import DeliveryTest, make_postoffice, wait_for_files

# Messages 0-999 go to both postoffices, 1000-1499 to sales only, 1500-1999
# to support only: 1,500 deliveries each.
MESSAGES = 2000
BOTH = range(0, 1000)
SALES_ONLY = range(1000, 1500)
SUPPORT_ONLY = range(1500, 2000)

SLOW_RETRIES = """
[retry]
max_open_retries = 1000
open_interval = "1h"
"""


def recipients_of(i):
    if i in BOTH:
        return [f"u{i}@sales.example.test", f"u{i}@support.example.test"]
    if i in SALES_ONLY:
        return [f"u{i}@sales.example.test"]
    return [f"u{i}@support.example.test"]


def content_of(i):
    return (f"Subject: bulk {i}\r\n"
            f"X-Folded: first\r\n\tsecond\r\n"
            f"X-Control: \x1b[31mred\r\n"
            f"\r\n"
            f"body of {i}\r\n").encode()


class BulkQueue(DeliveryTest):
    def setUp(self):
        # Thousands of attempts log thousands of lines; the Server reads
        # its stderr as it comes, so the pipe never fills.
        self.start_server(SLOW_RETRIES)
        for share in (self.sales, self.support):
            os.rename(share, share + ".gone")

    def verb(self, *args):
        code, out, err = run(*args, "--admin", self.server.admin_url)
        self.assertEqual(code, 0, (args, out, err))
        return out

    def total(self, *filters):
        """How many deliveries `postconn queue FILTERS` selects."""
        return json.loads(self.verb("queue", "--limit", "1", "--json", *filters))["total"]

    def until_deferred(self, count):
        """Waits until `count` deliveries wait deferred: none in flight."""
        deadline = time.monotonic() + 120
        while self.total("--state", "deferred") != count:
            self.assertLess(time.monotonic(), deadline, "deliveries not all deferred")
            time.sleep(0.2)

    def fill(self):
        def send(first):
            with smtplib.SMTP("127.0.0.1", self.port) as client:
                for i in range(first, MESSAGES, 8):
                    client.sendmail("ann@support.example.test", recipients_of(i), content_of(i))
        with ThreadPoolExecutor(8) as pool:
            for sent in [pool.submit(send, first) for first in range(8)]:
                sent.result()

    def test_bulk_operations_on_a_queue_of_3000_deliveries(self):
        started = time.monotonic()
        self.fill()
        self.until_deferred(3000)

        # Every page, each after the last delivery of the one before.
        listing = self.verb("queue", "--all")
        lines = listing.splitlines()
        self.assertEqual(lines[-1], "3,000 deliveries")
        self.assertEqual(len({line.split()[1] for line in lines[1:-1]}), 3000)
        every = json.loads(self.verb("queue", "--all", "--json"))
        self.assertEqual((every["total"], len(every["deliveries"])), (3000, 3000))
        page = self.verb("queue", "--limit", "5", "--offset", "10")
        self.assertEqual(page.splitlines()[-1], "3,000 deliveries, showing 11-15")
        by_recipient = json.loads(self.verb("queue", "--recipient", "U7@", "--json"))
        self.assertEqual(sorted(d["postoffice"] for d in by_recipient["deliveries"]),
                         ["sales", "support"])

        # The shape: all younger than five minutes, the totals add up.
        shape = self.verb("queue", "--shape").splitlines()
        self.assertEqual(shape[0].split(), ["POSTOFFICE", "T", "5", "10", "20", "40", "80",
                                            "160", "320", "640", "1280", "1280+"])
        rows = {line.split()[0]: [int(n) for n in line.split()[1:]] for line in shape[1:]}
        self.assertLess(time.monotonic() - started, 300, "too slow for the first bucket")
        self.assertEqual(rows, {"TOTAL": [3000, 3000] + [0] * 9,
                                "sales": [1500, 1500] + [0] * 9,
                                "support": [1500, 1500] + [0] * 9})
        deferred_sales = json.loads(self.verb("queue", "--shape", "--json", "--postoffice",
                                              "sales", "--state", "deferred"))
        self.assertEqual(deferred_sales["total"], 1500)
        metrics = metrics_families(self.call_metrics())
        ages = metrics["postconn_queue_age_deliveries"]
        self.assertEqual(ages[(("le", "300"), ("postoffice", "sales"))], 1500)
        self.assertEqual(ages[(("le", "+Inf"), ("postoffice", "support"))], 1500)
        self.assertLess(metrics["postconn_queue_oldest_seconds"][(("postoffice", "sales"),)], 300)

        # Hold exactly what the filter selects, flush by filter.
        self.assertEqual(self.verb("hold", "--postoffice", "sales", "--state", "deferred"),
                         "held 1,500 deliveries\n")
        held = json.loads(self.verb("queue", "--all", "--json", "--state", "held"))
        self.assertEqual({d["postoffice"] for d in held["deliveries"]}, {"sales"})
        self.assertEqual(len(held["deliveries"]), 1500)
        self.assertEqual(self.total("--postoffice", "sales", "--state", "deferred"), 0)
        self.assertEqual(self.verb("flush", "--postoffice", "support", "--state", "deferred"),
                         "flushed 1,500 deliveries\n")

        # Nothing acts on the whole queue unless ALL says so.
        code, out, err = run("release", "--admin", self.server.admin_url)
        self.assertEqual((code, out), (2, ""), err)
        self.assertEqual(self.total("--state", "held"), 1500)
        self.assertEqual(self.verb("release", "ALL"), "released 1,500 deliveries\n")
        self.until_deferred(3000)

        # Delete whole messages: those with a delivery to sales, with their
        # deliveries to support.
        self.assertEqual(self.verb("delete", "--postoffice", "sales"),
                         "deleted 1,500 messages, 2,500 deliveries\n")
        self.assertEqual(self.verb("queue", "--postoffice", "sales"), "queue is empty\n")
        rest = json.loads(self.verb("queue", "--all", "--json"))["deliveries"]
        self.assertEqual(len(rest), 500)
        self.assertEqual({int(d["recipients"][0][1:].split("@")[0]) for d in rest},
                         set(SUPPORT_ONLY))
        with sqlite3.connect(os.path.join(self.dir, "var/queue.db")) as db:
            self.assertEqual(db.execute("SELECT count(*) FROM messages").fetchone()[0], 500)
            self.assertEqual(db.execute("SELECT count(*) FROM deliveries").fetchone()[0], 500)

        # A message as stored: its header, and with --body all of it.
        [first] = [d for d in rest if d["recipients"] == ["u1500@support.example.test"]]
        header = self.verb("show", first["message_id"])
        self.assertRegex(header, r"^Received: from ")
        self.assertIn("Subject: bulk 1500\nX-Folded: first\n\tsecond\nX-Control: ?[31mred\n",
                      header)
        self.assertNotIn("body of", header)
        whole = self.verb("show", first["message_id"], "--body")
        self.assertTrue(whole.startswith(header), whole)
        self.assertTrue(whole.endswith("\n\nbody of 1500\n"), whole)

        # Requeue by filter to a share that is back: the mail lands there.
        os.rename(self.sales + ".gone", self.sales)
        make_postoffice(self.sales, *(f"u{i}" for i in SUPPORT_ONLY))
        self.assertEqual(self.verb("requeue", "--postoffice", "support", "--to", "sales"),
                         "requeued 500 deliveries\n")
        for i in (1500, 1999):
            [path] = wait_for_files(os.path.join(self.sales, f"u{i}", "new"), timeout=60)
            with open(path, "rb") as f:
                self.assertIn(f"Subject: bulk {i}".encode(), f.read())
        deadline = time.monotonic() + 60
        while self.total():
            self.assertLess(time.monotonic(), deadline, "the requeued mail was not delivered")
            time.sleep(0.2)
        delivered = sum(len(os.listdir(os.path.join(self.sales, f"u{i}", "new")))
                        for i in SUPPORT_ONLY)
        self.assertEqual(delivered, 500)

    def call_metrics(self):
        with urllib.request.urlopen(f"{self.server.admin_url}/metrics", timeout=10) as reply:
            return reply.read().decode()


if __name__ == "__main__":
    unittest.main()
