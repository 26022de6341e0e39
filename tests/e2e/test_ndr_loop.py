"""End-to-end: two postconn servers that relay to each other cannot bounce
mail back and forth. Mail from a sender with no mailbox to a recipient with
no mailbox crosses to the other server, bounces there, and its NDR (null
sender) crosses back, fails too, and is dropped as a double bounce: one NDR
in all, both queues empty."""
import json
import os
import re
import smtplib
import textwrap
import time
import unittest
import urllib.request

from postconn_process import Server, free_port, temp_workdir
from test_delivery import RETRIES, make_postoffice


def node_config(directory, name, smtp_port, other, other_port):
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
            listen = "127.0.0.1:0"

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
    def start_node(self, name, smtp_port, other, other_port):
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        make_postoffice(os.path.join(holder.name, "var/postoffices/local"), "someone")
        server = Server(holder.name, node_config(holder.name, name, smtp_port,
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
        # Each names the other's SMTP port in its config: A picks its own
        # (port 0) and is told B's in advance, B is told A's.
        b_port = free_port()
        a = self.start_node("a", 0, "b", b_port)
        b = self.start_node("b", b_port, "a", a.smtp_port)
        # Two messages into the void, one after the other: the traffic of a
        # loop begun by the first would cross between the servers on the
        # path the second takes, ahead of it, and show in the counts by the
        # second one's double bounce.
        for sent in (1, 2):
            with smtplib.SMTP("127.0.0.1", a.smtp_port) as client:
                client.sendmail("ghost@a.example.test", ["nobody@b.example.test"],
                                b"Subject: into the void\r\n\r\nanyone?\r\n")
            b.wait_for_log("dsn_queue_id=", count=sent)
            a.wait_for_log("double bounce dropped", count=sent)
        deadline = time.monotonic() + 10
        while self.queue_total(a.admin_port) or self.queue_total(b.admin_port):
            self.assertLess(time.monotonic(), deadline, "the queues do not drain")
            time.sleep(0.1)
        a.stop()
        b.stop()
        # SMTP acceptances (delivery lines quote the peer's "queued as" too)
        accepted = re.compile(r"smtp \S+: queued as")
        self.assertEqual(len(accepted.findall(a.log)), 4, a.log)  # each original, B's NDR of it
        self.assertEqual(len(accepted.findall(b.log)), 2, b.log)  # the originals only
        self.assertEqual(a.log.count("dsn_queue_id="), 0, a.log)
        self.assertEqual(b.log.count("dsn_queue_id="), 2, b.log)


if __name__ == "__main__":
    unittest.main()
