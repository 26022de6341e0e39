"""End-to-end fault injection: `[postoffice.fault]` on the real server. A
hung share fails its opens by the probe timeout while the other postoffices
keep delivering and the server's threads stay bounded; an SMTP connection cut
in the middle of DATA is a transfer failure and leaves nothing at the server;
a recipient refused by permfail bounces while the others are delivered."""
import os
import smtplib
import sqlite3
import time
import unittest
import urllib.request

from scripted_smtp import ScriptedServer
from test_delivery import RETRIES, DeliveryTest, make_postoffice, wait_for_files


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


class HungShare(DeliveryTest):
    def test_a_hung_share_fails_its_opens_and_holds_nobody_up(self):
        self.start_server(RETRIES + """
[[postoffice]]
name = "archive"
domains = ["archive.example.test"]
transport = "maildir"
path = "var/postoffices/archive"
probe_timeout = "1s"
[postoffice.fault]
mode = "hang"
""")
        make_postoffice(os.path.join(self.dir, "var/postoffices/archive"), "dan")
        # The admin API starts its threads after "serving on": counted once
        # it has answered.
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/postoffices",
                                    timeout=10) as reply:
            self.assertEqual(reply.status, 200)
        threads_at_start = thread_count(self.server.proc.pid)
        self.send(["dan@archive.example.test"])
        # While calls to the archive share hang, sales gets its mail at once.
        started = time.monotonic()
        self.send(["bob@sales.example.test"])
        wait_for_files(os.path.join(self.sales, "bob/new"), timeout=5)
        self.assertLess(time.monotonic() - started, 5)
        _, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; dan@archive.example.test", status)
        self.assertIn("Status: 5.4.1", status)
        # The first opens time out; once six calls hang, the pool says so.
        self.assertRegex(" ".join(status.split()),
                         r"last error: (probe timed out after 1s|share busy)")
        self.server.wait_for_log("unreachable (probe timed out after 1s)")
        self.assertEqual(os.listdir(os.path.join(self.dir, "var/postoffices/archive/dan/new")),
                         [])
        # A probe a second keeps hanging: the pool gives the archive at most
        # six workers, then answers "share busy" without a new thread. (The
        # other postoffices' calls may add a few threads; without the cap the
        # archive alone would add one a second.)
        self.server.wait_for_log("share busy", timeout=30)
        # Six more opens refused as busy (new mail for the archive, from the
        # null sender, so no NDR adds calls for support): without the cap
        # each would have taken a thread of its own. Counted once their
        # deliveries have ended (bounced by their failed opens).
        busy = self.busy_attempts()
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            for _ in range(6):
                client.sendmail("", ["dan@archive.example.test"], b"Subject: more\r\n\r\nx\r\n")
        deadline = time.monotonic() + 30
        while self.busy_attempts() < busy + 6 or self.unfinished_deliveries():
            self.assertLess(time.monotonic(), deadline, "no six opens refused as busy")
            time.sleep(0.1)
        self.assertLessEqual(thread_count(self.server.proc.pid), threads_at_start + 6 + 4)


    def queue_count(self, query):
        db = sqlite3.connect(os.path.join(self.dir, "var/queue.db"), timeout=10)
        try:
            return db.execute(query).fetchone()[0]
        finally:
            db.close()

    def busy_attempts(self):
        """Attempts whose open the share pool refused as busy."""
        return self.queue_count("SELECT count(*) FROM attempts WHERE outcome = 'open_failed'"
                                " AND text LIKE '%share busy%'")

    def unfinished_deliveries(self):
        return self.queue_count("SELECT count(*) FROM deliveries"
                                " WHERE state NOT IN ('delivered', 'bounced')")


class RemoteFaults(DeliveryTest):
    def start(self, fault):
        self.mail_server = ScriptedServer().start()
        self.addCleanup(self.mail_server.stop)
        self.start_server(RETRIES + f"""
[[postoffice]]
name = "remote"
domains = ["remote.example.test"]
transport = "smtp"
address = "127.0.0.1:{self.mail_server.port}"
probe_timeout = "1s"
[postoffice.fault]
{fault}
""")

    def test_a_connection_cut_during_data_is_a_transfer_failure(self):
        self.start('mode = "drop"')
        self.send(["a@remote.example.test"])
        _, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; a@remote.example.test", status)
        self.assertIn("connection lost while waiting for the end-of-data reply",
                      " ".join(status.split()))
        self.assertIn("transfer_failed", self.server.wait_for_log("bounced"))
        self.assertEqual(self.mail_server.messages, [])

    def test_permfail_refuses_the_chosen_recipient_and_delivers_the_others(self):
        self.start('mode = "permfail"\nrecipients = ["b@remote.example.test"]')
        self.send(["a@remote.example.test", "b@remote.example.test"])
        _, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; b@remote.example.test", status)
        self.assertNotIn("a@remote.example.test", status)
        self.assertIn("Status: 5.1.1", status)
        self.assertIn("fault injection: permfail", status)
        self.assertEqual([m[1] for m in self.mail_server.messages], [["a@remote.example.test"]])


if __name__ == "__main__":
    unittest.main()
