"""End-to-end SIGHUP: the server reads its config again. New retry limits
apply to mail already queued, with its counts kept; a fault set in the file
is injected; an invalid file is refused with its problems in the log and the
server goes on with the running config."""
import os
import signal
import unittest

from postconn_process import write_config
from test_delivery import RETRIES, DeliveryTest, wait_for_files

PATIENT = RETRIES.replace("max_open_retries = 2", "max_open_retries = 50")


class Reload(DeliveryTest):
    def setUp(self):
        self.start_server(PATIENT)

    def rewrite_config(self, extra):
        write_config(self.dir, self.port, self.admin_port, extra=extra)

    def hangup(self, needle):
        self.server.proc.send_signal(signal.SIGHUP)
        return self.server.wait_for_log(needle)

    def test_lower_limits_bounce_queued_mail_with_its_counts_kept(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        self.server.wait_for_log("open_retries=2/50")
        self.rewrite_config(RETRIES)  # max_open_retries = 2: already used up
        self.hangup("retry settings and faults applied")
        _, status = self.ndr()
        self.assertIn("Status: 5.4.1", status)
        self.assertIn("open_retries=3/2", self.server.wait_for_log("open_retries=3/2"))

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

    def test_an_invalid_file_is_refused_and_the_server_goes_on(self):
        self.rewrite_config('[retry]\nopen_interval = "soon"\n')
        self.hangup("the running config stays")
        self.server.wait_for_log('reload: retry.open_interval: invalid duration "soon"')
        self.send(["bob@sales.example.test"])
        wait_for_files(os.path.join(self.sales, "bob/new"))
        self.assertEqual(self.server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
