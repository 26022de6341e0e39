"""End-to-end: two postconn servers that relay to each other cannot bounce
mail back and forth. Mail from a sender with no mailbox to a recipient with
no mailbox crosses to the other server, bounces there, and its NDR (null
sender) crosses back, fails too, and is dropped as a double bounce: one NDR
in all, both queues empty."""
import json
import os
import smtplib
import textwrap
import time
import unittest
import urllib.request

from postconn_process import Server, free_port, temp_workdir
from test_delivery import RETRIES, make_postoffice


def node_config(directory, name, smtp_port, admin_port, other, other_port):
    """A server whose own domain is NAME.example.test (a maildir) and which
    relays OTHER.example.test to the other server."""
    path = os.path.join(directory, "postconn.toml")
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            [server]
            hostname = "{name}.example.test"
            data_dir = "var"

            [smtp]
            listen = "127.0.0.1:{smtp_port}"

            [admin]
            listen = "127.0.0.1:{admin_port}"

            [[postoffice]]
            name = "local"
            domains = ["{name}.example.test"]
            transport = "maildir"
            path = "var/postoffices/local"

            [[postoffice]]
            name = "to_{other}"
            domains = ["{other}.example.test"]
            transport = "smtp"
            address = "127.0.0.1:{other_port}"
            probe_timeout = "5s"
            """) + RETRIES)
    return path


class NdrLoop(unittest.TestCase):
    def start_node(self, name, smtp_port, admin_port, other, other_port):
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        make_postoffice(os.path.join(holder.name, "var/postoffices/local"), "someone")
        server = Server(holder.name, node_config(holder.name, name, smtp_port, admin_port,
                                                 other, other_port))
        self.addCleanup(server.__exit__)
        self.addCleanup(server.stop)
        server.wait_for_log("serving on")
        return server

    def queue_total(self, admin_port):
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/queue",
                                    timeout=10) as reply:
            return json.load(reply)["total"]

    def test_an_undeliverable_ndr_is_dropped_not_bounced_back(self):
        a_port, b_port, a_admin, b_admin = free_port(), free_port(), free_port(), free_port()
        a = self.start_node("a", a_port, a_admin, "b", b_port)
        b = self.start_node("b", b_port, b_admin, "a", a_port)
        with smtplib.SMTP("127.0.0.1", a_port) as client:
            client.sendmail("ghost@a.example.test", ["nobody@b.example.test"],
                            b"Subject: into the void\r\n\r\nanyone?\r\n")
        b.wait_for_log("DSN queued")
        a.wait_for_log("double bounce dropped")
        deadline = time.monotonic() + 10
        while self.queue_total(a_admin) or self.queue_total(b_admin):
            self.assertLess(time.monotonic(), deadline, "the queues do not drain")
            time.sleep(0.1)
        time.sleep(2)  # a loop would show more traffic by now
        a.stop()
        b.stop()
        self.assertEqual(a.log.count("queued as"), 2, a.log)  # the original, B's NDR
        self.assertEqual(b.log.count("queued as"), 1, b.log)  # the original only
        self.assertEqual(a.log.count("DSN queued"), 0, a.log)
        self.assertEqual(b.log.count("DSN queued"), 1, b.log)


if __name__ == "__main__":
    unittest.main()
