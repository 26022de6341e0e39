"""End-to-end delivery from an smtp postoffice to aiosmtpd, an SMTP server
postconn's authors did not write: the mail must arrive once with its envelope
and content intact, a recipient the server refuses must bounce alone while
the ledger keeps who received it and who was refused, a server that keeps
answering 4xx must bounce by the transfer limit with the NDR, the ledger
and the log counting the same attempts, and STARTTLS must be used,
verified or refused as the postoffice's `tls` says.
aiosmtpd offers no PIPELINING, so this drives postconn's lock-step client.

aiosmtpd runs in its own process (aiosmtpd_peer.py) on Debian's interpreter,
the one that imports the packaged python3-aiosmtpd."""
import json
import os
import re
import select
import smtplib
import subprocess
import time
import unittest
import urllib.request

from postconn_process import make_certificate, run, temp_workdir
from test_delivery import RETRIES, DeliveryTest, established_connections_to

DEBIAN_PYTHON = "/usr/bin/python3"
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aiosmtpd_peer.py")
SENDER = "ann@support.example.test"
# The one header postconn adds on the way: its own, at SMTP ingress.
POSTCONN_RECEIVED_HEADER = re.compile(
    rb"\AReceived: from \S+ \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby connector\.example\.test \(postconn\) with ESMTP; [^\r\n]+\r\n\Z")


class AiosmtpdPeerTest(DeliveryTest):
    """postconn with an smtp postoffice "aiosmtpd" for aiosmtpd.example.test,
    served by the peer; NDRs go to ann on the maildir postoffice support."""

    def start(self, *peer_options, postoffice_keys=""):
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        self.spool = os.path.join(holder.name, "spool")
        port = self.peer_port = self.start_peer(holder.name, peer_options)
        self.start_server(RETRIES + f"""
[[postoffice]]
name = "aiosmtpd"
domains = ["aiosmtpd.example.test"]
transport = "smtp"
address = "127.0.0.1:{port}"
probe_timeout = "5s"
{postoffice_keys}""")

    def start_peer(self, directory, options, timeout=20):
        """Starts the peer on a free port and waits for its "ready PORT"
        line; the port. A peer that cannot start (aiosmtpd not installed)
        fails the test with its stderr."""
        log_path = os.path.join(directory, "peer.log")
        with open(log_path, "wb") as log:
            peer = subprocess.Popen(
                [DEBIAN_PYTHON, PEER, "--port", "0", "--spool", self.spool, *options],
                stdout=subprocess.PIPE, stderr=log)
        self.addCleanup(peer.stdout.close)
        self.addCleanup(self.stop_peer, peer)
        ready, _, _ = select.select([peer.stdout], [], [], timeout)
        line = peer.stdout.readline().split() if ready else []
        if len(line) != 2 or line[0] != b"ready":
            peer.kill()
            peer.wait()
            with open(log_path, errors="replace") as log:
                self.fail(f"aiosmtpd peer did not start (exit {peer.returncode}):\n"
                          f"{log.read()}")
        return int(line[1])

    @staticmethod
    def stop_peer(peer):
        peer.terminate()
        try:
            peer.wait(10)
        except subprocess.TimeoutExpired:
            peer.kill()
            peer.wait()

    def stop_server(self):
        """Stops postconn cleanly, so whatever it was going to send is sent."""
        self.assertEqual(self.server.stop(), 0, self.server.log)

    def spooled(self, with_tls=False):
        """Every message the peer accepted, in arrival order:
        [(sender, recipients, content)], with whether it came over TLS last
        when `with_tls`."""
        directory = os.path.join(self.spool, "new")
        messages = []
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name), "rb") as f:
                envelope, content = f.read().split(b"\n", 1)
            envelope = json.loads(envelope)
            messages.append((envelope["sender"], envelope["recipients"], content)
                            + ((envelope["tls"],) if with_tls else ()))
        return messages

    def client_ports(self):
        """The client port of each message the peer accepted, in arrival order."""
        directory = os.path.join(self.spool, "new")
        ports = []
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name), "rb") as f:
                ports.append(json.loads(f.readline())["client_port"])
        return ports

    def ndr_count(self):
        return len(os.listdir(os.path.join(self.support, "ann/new")))

    def send_for_id(self, rcpts):
        """Sends a message; its queue id, from the server's 250 to DATA."""
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            client.ehlo()
            self.assertEqual(client.mail(SENDER)[0], 250)
            for rcpt in rcpts:
                self.assertEqual(client.rcpt(rcpt)[0], 250)
            code, reply = client.data(b"Subject: hello\r\n\r\nline one\r\n")
        self.assertEqual(code, 250, reply)
        return re.search(rb"queued as ([0-9a-f]+)", reply).group(1).decode()

    def ledger(self, message_id):
        """`postconn ledger ID`: its text, and the admin API's JSON."""
        url = self.server.admin_url
        code, out, err = run("ledger", message_id, "--admin", url)
        self.assertEqual(code, 0, err)
        code, raw, err = run("ledger", message_id, "--admin", url, "--json")
        self.assertEqual(code, 0, err)
        return out, json.loads(raw)


class AiosmtpdPostoffice(AiosmtpdPeerTest):
    """Plaintext deliveries: envelope and content intact, a refused
    recipient, a server that keeps answering 4xx."""

    def test_mail_arrives_once_with_its_envelope_and_content(self):
        self.start()
        original = (b"Subject: via aiosmtpd\r\nMessage-ID: <one@support.example.test>\r\n"
                    b"\r\n.leading dot\r\nline two\r\n")
        self.send(["x@aiosmtpd.example.test", "y@aiosmtpd.example.test"], original)
        self.server.wait_for_log("postoffice aiosmtpd: delivered")
        self.stop_server()
        [(sender, recipients, content)] = self.spooled()
        self.assertEqual(sender, SENDER)
        self.assertEqual(recipients, ["x@aiosmtpd.example.test", "y@aiosmtpd.example.test"])
        self.assertTrue(content.endswith(original), content)
        self.assertRegex(content[:-len(original)], POSTCONN_RECEIVED_HEADER)
        self.assertEqual(self.ndr_count(), 0)

    def test_a_connection_is_kept_for_the_next_batch_and_closed_when_idle(self):
        """Each message is its own batch (the last was delivered before the
        next came): those within 2 s of the last batch go over the kept
        connection (RSET first), the one after the idle limit over a new one.
        No idle probe comes meanwhile (open_interval 1h): its connection
        would be counted."""
        self.start(postoffice_keys='[postoffice.retry]\nopen_interval = "1h"\n')
        for n in range(3):
            self.send(["x@aiosmtpd.example.test"], b"Subject: %d\r\n\r\nbody\r\n" % n)
            self.server.wait_for_log("postoffice aiosmtpd: delivered", count=n + 1)
        self.assertEqual(established_connections_to(self.peer_port), 1)
        time.sleep(3.5)
        self.assertEqual(established_connections_to(self.peer_port), 0)  # closed by the timer
        self.send(["x@aiosmtpd.example.test"], b"Subject: 3\r\n\r\nbody\r\n")
        self.server.wait_for_log("postoffice aiosmtpd: delivered", count=4)
        self.stop_server()
        ports = self.client_ports()
        self.assertEqual(len(ports), 4)
        self.assertEqual(len(set(ports[:3])), 1, ports)
        self.assertNotEqual(ports[3], ports[0], ports)

    def test_a_refused_recipient_bounces_alone(self):
        self.start("--refuse-rcpt", "b@aiosmtpd.example.test")
        self.send(["a@aiosmtpd.example.test", "b@aiosmtpd.example.test",
                   "c@aiosmtpd.example.test"])
        _, folded_status = self.ndr()
        status = re.sub(r"\n(?=[ \t])", "", folded_status)  # unfolds Diagnostic-Code
        self.assertIn("Final-Recipient: rfc822; b@aiosmtpd.example.test", status)
        self.assertNotIn("a@aiosmtpd.example.test", status)
        self.assertNotIn("c@aiosmtpd.example.test", status)
        self.assertIn("Status: 5.1.1", status)
        self.assertIn("Diagnostic-Code: smtp; 550 5.1.1 <b@aiosmtpd.example.test>: "
                      "Recipient address rejected: User unknown", status)
        self.stop_server()
        [(sender, recipients, _)] = self.spooled()
        self.assertEqual(sender, SENDER)
        self.assertEqual(recipients, ["a@aiosmtpd.example.test", "c@aiosmtpd.example.test"])
        self.assertEqual(self.ndr_count(), 1)

    def test_the_ledger_keeps_who_received_it_and_who_was_refused(self):
        self.start("--refuse-rcpt", "b@aiosmtpd.example.test")
        message_id = self.send_for_id(["a@aiosmtpd.example.test", "b@aiosmtpd.example.test"])
        self.ndr()  # the bounce is committed with the outcomes
        text, ledger = self.ledger(message_id)
        [delivery] = [d for d in ledger["deliveries"] if d["postoffice"] == "aiosmtpd"]
        self.assertEqual(delivery["state"], "delivered")
        self.assertEqual(delivery["recipients"], [])
        self.assertEqual(delivery["attempts_made"], 1)
        outcomes = {o["recipient"]: o for o in delivery["recipient_outcomes"]}
        self.assertEqual(sorted(outcomes), ["a@aiosmtpd.example.test", "b@aiosmtpd.example.test"])
        accepted, refused = outcomes["a@aiosmtpd.example.test"], outcomes["b@aiosmtpd.example.test"]
        self.assertEqual((accepted["status"], accepted["code"]), ("delivered", "2.0.0"))
        self.assertEqual(accepted["text"], "250 2.0.0 OK: message accepted")
        self.assertEqual((refused["status"], refused["code"]), ("bounced", "5.1.1"))
        self.assertEqual(refused["text"], "550 5.1.1 <b@aiosmtpd.example.test>: "
                                          "Recipient address rejected: User unknown")
        self.assertGreater(accepted["at"], 0)
        # The table: both recipients with their statuses and whole replies.
        self.assertIn("recipients    1 delivered, 1 bounced", text)
        self.assertRegex(text, r"\n +a@aiosmtpd\.example\.test +delivered +2\.0\.0 +\S+ \S+ +"
                               r"250 2\.0\.0 OK: message accepted\n")
        self.assertRegex(text, r"\n +b@aiosmtpd\.example\.test +bounced +5\.1\.1 +\S+ \S+ +"
                               r"550 5\.1\.1 <b@aiosmtpd\.example\.test>: "
                               r"Recipient address rejected: User unknown\n")
        self.assertIn("attempts      1\n", text)

    def test_4xx_until_the_transfer_limit(self):
        self.start("--tempfail")
        self.send(["a@aiosmtpd.example.test"])
        _, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; a@aiosmtpd.example.test", status)
        self.assertIn("Status: 5.3.0", status)
        self.assertIn("Diagnostic-Code: smtp; 451 4.3.0 "
                      "Temporarily unable to accept the message", status)
        # Two attempts: the first and one retry; the count at its limit.
        self.assertIn("2 attempts were made", self.ndr()[0].get_body(("plain",)).get_content())
        self.stop_server()
        self.assertIn("attempts=2 open_retries=0/2 transfer_retries=1/1 state=bounced",
                      self.server.log)
        self.assertEqual(self.spooled(), [])
        self.assertEqual(self.ndr_count(), 1)


class StartTlsToPostoffice(AiosmtpdPeerTest):
    """STARTTLS towards the postoffice by its `tls` key: `verify` takes only
    a server whose certificate chains to `tls_ca_file` and names its address
    (the peer's certificate is for IP 127.0.0.1); `may` takes any, and goes
    on in plaintext without STARTTLS; a failed `verify` is a failed open, and
    nothing is sent in plaintext."""

    def setUp(self):
        certificates = temp_workdir()
        self.addCleanup(certificates.cleanup)
        self.peer_tls = ("--tls", *make_certificate(certificates.name, "aiosmtpd.example.test",
                                                    ["IP:127.0.0.1"]))
        self.stranger, _ = make_certificate(certificates.name, "stranger.example.test",
                                            ["IP:127.0.0.1"])

    def delivered_over(self, *peer_options, postoffice_keys):
        """Whether the mail reached the peer over TLS; checks GET /postoffices
        and the log say the same."""
        self.start(*peer_options, postoffice_keys=postoffice_keys)
        self.send(["x@aiosmtpd.example.test"])
        self.server.wait_for_log("postoffice aiosmtpd: delivered")
        url = f"http://127.0.0.1:{self.admin_port}/postoffices"
        with urllib.request.urlopen(url, timeout=10) as r:
            [report] = [p for p in json.load(r)["postoffices"] if p["name"] == "aiosmtpd"]
        self.stop_server()
        [(sender, recipients, _, tls)] = self.spooled(with_tls=True)
        self.assertEqual((sender, recipients), (SENDER, ["x@aiosmtpd.example.test"]))
        if tls:
            self.assertRegex(report["tls"], r"^TLSv1\.[23] with cipher \S+$")
            self.assertIn("postoffice aiosmtpd: sessions run over TLSv1.", self.server.log)
        else:
            self.assertEqual(report["tls"], "")
            self.assertNotIn("postoffice aiosmtpd: sessions run", self.server.log)
        return tls

    def refused_open(self, *peer_options, postoffice_keys, why):
        self.start(*peer_options, postoffice_keys=postoffice_keys)
        self.send(["x@aiosmtpd.example.test"])
        log = self.server.wait_for_log("open_retries=2/")
        self.assertIn(f"postoffice aiosmtpd: open_failed ({why}", log)
        self.stop_server()
        self.assertEqual(self.spooled(), [])

    def test_verify_with_the_servers_ca_delivers_over_tls(self):
        certificate = self.peer_tls[1]
        self.assertTrue(self.delivered_over(*self.peer_tls, postoffice_keys=f"""
tls = "verify"
tls_ca_file = "{certificate}"
"""))

    def test_verify_refuses_a_certificate_of_another_ca(self):
        self.refused_open(*self.peer_tls, postoffice_keys=f"""
tls = "verify"
tls_ca_file = "{self.stranger}"
""", why="4.7.5 TLS handshake failed: certificate verification failed: self-signed certificate")

    def test_verify_refuses_a_server_without_starttls(self):
        self.refused_open(postoffice_keys='tls = "verify"\n',
                          why='4.7.10 TLS required (tls = "verify") but the server does '
                              'not offer STARTTLS')

    def test_may_takes_any_certificate_or_plaintext(self):
        self.assertTrue(self.delivered_over(*self.peer_tls, postoffice_keys='tls = "may"\n'))

    def test_may_goes_on_in_plaintext_without_starttls(self):
        self.assertFalse(self.delivered_over(postoffice_keys='tls = "may"\n'))

    def test_none_stays_in_plaintext_although_offered(self):
        self.assertFalse(self.delivered_over(*self.peer_tls, postoffice_keys=""))


if __name__ == "__main__":
    unittest.main()
