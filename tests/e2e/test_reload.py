"""End-to-end SIGHUP: the server reads its config again. New retry limits
apply to mail already queued, with its counts kept; a fault set in the file
is injected; a postoffice added to the file receives mail, one re-pointed
gets its queued mail at the new place, one removed takes no new mail and
keeps its queue; an SMTP session open across the reload goes on; an invalid
file is refused with its problems in the log and the server goes on with
the running config."""
import json
import os
import signal
import smtplib
import unittest
import urllib.request

from postconn_process import write_config
from test_delivery import RETRIES, DeliveryTest, make_postoffice, wait_for_files

HR = """
[[postoffice]]
name = "hr"
domains = ["hr.example.test"]
transport = "maildir"
path = "var/postoffices/hr"
"""

PATIENT = RETRIES.replace("max_open_retries = 2", "max_open_retries = 50")


class Reload(DeliveryTest):
    def setUp(self):
        self.start_server(PATIENT)

    def rewrite_config(self, extra):
        # Port 0 as at the start: the listen addresses stay as they were.
        write_config(self.dir, extra=extra)

    def hangup(self, needle):
        self.server.proc.send_signal(signal.SIGHUP)
        return self.server.wait_for_log(needle)

    def test_lower_limits_bounce_queued_mail_with_its_counts_kept(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        self.server.wait_for_log("open_retries=2/50")
        self.rewrite_config(RETRIES)  # max_open_retries = 2: already used up
        self.hangup("(added: -; changed: -; removed: -)")
        _, status = self.ndr()
        self.assertIn("Status: 5.4.1", status)
        # The third failed open finds both retries used: 2/2, never 3/2.
        self.assertIn("attempts=3 open_retries=2/2", self.server.wait_for_log("state=bounced"))

    def test_a_fault_in_the_reloaded_file_is_injected(self):
        # The support postoffice (last in the file) gets the fault.
        self.rewrite_config(PATIENT + '\n[postoffice.fault]\nmode = "unreachable"\n')
        log = self.hangup("injecting fault unreachable")
        self.assertIn("postoffice support: injecting fault unreachable", log)
        self.send(["ann@support.example.test"])
        self.server.wait_for_log("unreachable (fault injection)")
        self.assertEqual(os.listdir(os.path.join(self.support, "ann/new")), [])
        self.rewrite_config(PATIENT)
        self.hangup("no fault injected")
        wait_for_files(os.path.join(self.support, "ann/new"), timeout=10)

    def test_a_postoffice_added_by_sighup_receives_mail_without_a_restart(self):
        hr = os.path.join(self.dir, "var/postoffices/hr")
        make_postoffice(hr, "carol")
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as refused:
            self.send(["carol@hr.example.test"])
        self.assertEqual(refused.exception.recipients["carol@hr.example.test"][0], 550)
        with smtplib.SMTP("127.0.0.1", self.port) as open_before:
            open_before.ehlo()
            self.rewrite_config(PATIENT + HR)
            self.hangup("3 postoffices (added: hr; changed: -; removed: -)")
            self.server.wait_for_log("postoffice hr: added")
            # The session open across the reload goes on.
            open_before.sendmail("ann@support.example.test", ["bob@sales.example.test"],
                                 b"Subject: across\r\n\r\nstill here\r\n")
        self.send(["carol@hr.example.test"])
        wait_for_files(os.path.join(hr, "carol/new"))
        wait_for_files(os.path.join(self.sales, "bob/new"))
        self.assertEqual(self.server.stop(), 0)

    def test_a_repointed_postoffice_gets_its_queued_mail_at_the_new_place(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        self.server.wait_for_log("open_retries=1/50")
        moved = os.path.join(self.dir, "var/postoffices/sales-new")
        make_postoffice(moved, "bob")
        config = open(os.path.join(self.dir, "postconn.toml")).read()
        with open(os.path.join(self.dir, "postconn.toml"), "w") as f:
            f.write(config.replace('"var/postoffices/sales"', '"var/postoffices/sales-new"'))
        self.hangup("postoffice sales: restarted with its new settings")
        [path] = wait_for_files(os.path.join(moved, "bob/new"))
        self.assertIn(b"line one", open(path, "rb").read())

    def test_a_removed_postoffice_takes_no_new_mail_and_keeps_its_queue(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        self.server.wait_for_log("open_retries=1/50")
        config = open(os.path.join(self.dir, "postconn.toml")).read()
        blocks = config.split("[[postoffice]]\n")
        without_sales = "[[postoffice]]\n".join(
            block for block in blocks if not block.startswith('name = "sales"'))
        self.assertNotIn('"sales"', without_sales)
        self.assertIn('"support"', without_sales)
        with open(os.path.join(self.dir, "postconn.toml"), "w") as f:
            f.write(without_sales)
        self.hangup("postoffice sales: removed")
        self.server.wait_for_log("postoffice sales is not configured")
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as refused:
            self.send(["bob@sales.example.test"])
        self.assertEqual(refused.exception.recipients["bob@sales.example.test"][0], 550)
        url = f"http://127.0.0.1:{self.admin_port}/queue?postoffice=sales"
        with urllib.request.urlopen(url, timeout=10) as reply:
            queue = json.load(reply)
        self.assertEqual(queue["total"], 1)
        # Configured again, it gets the mail that waited.
        os.rename(self.sales + ".gone", self.sales)
        self.rewrite_config(PATIENT)
        self.hangup("postoffice sales: added")
        wait_for_files(os.path.join(self.sales, "bob/new"))

    def test_an_invalid_file_is_refused_and_the_server_goes_on(self):
        self.rewrite_config('[retry]\nopen_interval = "soon"\n')
        self.hangup("the running config stays")
        self.server.wait_for_log('reload: retry.open_interval: invalid duration "soon"')
        self.send(["bob@sales.example.test"])
        wait_for_files(os.path.join(self.sales, "bob/new"))
        self.assertEqual(self.server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
