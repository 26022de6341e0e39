"""End-to-end delivery: mail sent over SMTP to the real `postconn serve`
lands in the right maildir mailbox or on the right SMTP/LMTP server; a
postoffice whose share disappears, whose server refuses, stalls or rejects,
bounces by its limits, and the sender's mailbox receives one NDR that
Python's email package parses as a multipart/report DSN."""
import email
import email.policy
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
import unittest
import urllib.request

from postconn_process import (Server, free_port, listening_port, make_certificate,
                              refusing_port, temp_workdir, write_config)
from scripted_smtp import ScriptedServer

RETRIES = """
[retry]
max_open_retries = 2
open_interval = "1s"
max_transfer_retries = 1
transfer_interval = "1s"
"""


def make_postoffice(root, *mailboxes):
    os.makedirs(root, exist_ok=True)
    open(os.path.join(root, ".postoffice"), "w").close()
    for mailbox in mailboxes:
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(root, mailbox, sub), exist_ok=True)


def wait_for_files(directory, count=1, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
        if len(names) >= count:
            return [os.path.join(directory, n) for n in names]
        time.sleep(0.05)
    raise AssertionError("no %d file(s) in %s after %ss" % (count, directory, timeout))


class DeliveryTest(unittest.TestCase):
    """A server in a fresh directory with two maildir postoffices, sales
    (mailbox bob) and support (mailbox ann, where NDRs to ann land)."""

    def start_server(self, extra=RETRIES, server="", args=()):
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        self.dir = holder.name
        self.sales = os.path.join(self.dir, "var/postoffices/sales")
        self.support = os.path.join(self.dir, "var/postoffices/support")
        make_postoffice(self.sales, "bob")
        make_postoffice(self.support, "ann")
        self.server = Server(self.dir, write_config(self.dir, extra=extra, server=server), *args)
        self.addCleanup(self.server.__exit__)
        self.addCleanup(self.server.stop)
        self.serving()

    def serving(self):
        """Waits until the server serves; its ports as self.port and
        self.admin_port (it listens on ports it picked)."""
        self.server.wait_for_log("serving on")
        self.port, self.admin_port = self.server.smtp_port, self.server.admin_port

    def send(self, rcpts, body=b"Subject: hello\r\n\r\nline one\r\nline two\r\n"):
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            client.sendmail("ann@support.example.test", rcpts, body)

    def ndr(self):
        """The one NDR in ann's mailbox, checked by check_dsn.py: (message,
        its message/delivery-status part as text)."""
        [path] = wait_for_files(os.path.join(self.support, "ann/new"))
        with open(path, "rb") as f:
            raw = f.read()
        checker = os.path.join(os.path.dirname(__file__), "check_dsn.py")
        checked = subprocess.run([sys.executable, checker, "--maildir"], input=raw,
                                 capture_output=True)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(message.get_content_type(), "multipart/report")
        self.assertEqual(message.get_param("report-type"), "delivery-status")
        status = [p for p in message.walk() if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(status), 1)
        return message, status[0].as_string()


class Delivery(DeliveryTest):
    def setUp(self):
        self.start_server()

    def test_mail_lands_in_the_mailbox(self):
        self.send(["Bob@sales.example.test"])
        [path] = wait_for_files(os.path.join(self.sales, "bob/new"))
        with open(path, "rb") as f:
            content = f.read()
        self.assertTrue(content.startswith(b"Return-Path: <ann@support.example.test>\n"), content)
        self.assertIn(b"\nReceived: by connector.example.test (postconn)", content)
        self.assertTrue(content.endswith(b"Subject: hello\n\nline one\nline two\n"), content)
        self.assertNotIn(b"\r", content)
        self.assertEqual(os.listdir(os.path.join(self.sales, "bob/tmp")), [])
        # The log line a Postfix admin greps for: who got it, where, and the outcome.
        log = self.server.wait_for_log("status=sent")
        self.assertRegex(log, r"\b[0-9a-f]{16}: to=<Bob@sales\.example\.test>, postoffice=sales, "
                              r"relay=var/postoffices/sales, delivery=\d+, delay=\d+, "
                              r"delays=\d+/\d+\.\d\d/\d+\.\d\d, attempts=1, dsn=2\.0\.0, "
                              r"status=sent \(delivered to bob/new/[^)]+\)")

    def test_a_share_that_disappears_bounces_after_its_open_retries(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        message, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; bob@sales.example.test", status)
        self.assertIn("Action: failed", status)
        self.assertIn("Status: 5.4.1", status)
        self.assertEqual(message["To"].addresses[0].addr_spec, "ann@support.example.test")
        self.assertIn("open_failed", self.server.wait_for_log("bounced"))

    def test_an_unknown_mailbox_bounces_at_once_with_5_1_1(self):
        self.send(["nobody@sales.example.test"])
        _, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; nobody@sales.example.test", status)
        self.assertIn("Status: 5.1.1", status)
        # The bounce's line names the NDR's own queue id, whose delivery
        # line says where the NDR went.
        line = self.server.wait_for_log("notification=bounced")
        found = re.search(r"\b([0-9a-f]{16}): delivery=\d+, postoffice=sales, "
                          r"notification=bounced, recipients=nobody@sales\.example\.test=5\.1\.1, "
                          r"dsn_queue_id=([0-9a-f]{16})", line)
        self.assertTrue(found, line)
        self.assertNotEqual(found.group(1), found.group(2))
        self.server.wait_for_log(found.group(2) + ": to=<ann@support.example.test>, "
                                 "postoffice=support, ")


class SmtpPostoffice(DeliveryTest):
    """An smtp postoffice: Postfix's smtp-sink receives the mail; one whose
    server refuses connections bounces after its open retries."""

    def setUp(self):
        # smtp-sink cannot report a port it picked: it gets one free a
        # moment ago.
        sink_port = free_port()
        # Bound but not listening: "gone" refuses connections, and no other
        # server can take its port during the test.
        refusing, refused_port = refusing_port()
        self.addCleanup(refusing.close)
        self.start_server(RETRIES + f"""
[[postoffice]]
name = "relay"
domains = ["relay.example.test"]
transport = "smtp"
address = "127.0.0.1:{sink_port}"
probe_timeout = "5s"

[[postoffice]]
name = "gone"
domains = ["gone.example.test"]
transport = "smtp"
address = "127.0.0.1:{refused_port}"
probe_timeout = "5s"
""")
        # smtp-sink runs as nobody and writes one file per message here.
        self.dumps = os.path.join(self.dir, "sink")
        os.makedirs(self.dumps)
        os.chmod(self.dir, 0o755)
        os.chmod(self.dumps, 0o777)
        sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        self.sink = subprocess.Popen(
            [sink, "-u", "nobody", "-d", os.path.join(self.dumps, "%H%M%S."),
             "127.0.0.1:%d" % sink_port, "10"])
        self.addCleanup(self.sink.wait)
        self.addCleanup(self.sink.terminate)
        deadline = time.monotonic() + 10
        while True:  # mail only goes out once the sink listens
            try:
                socket.create_connection(("127.0.0.1", sink_port), timeout=1).close()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "smtp-sink did not start")
                time.sleep(0.05)

    def test_mail_reaches_the_smtp_server(self):
        self.send(["x@relay.example.test", "y@relay.example.test"],
                  b"Subject: over smtp\r\n\r\n.leading dot\r\nbody\r\n")
        [path] = wait_for_files(self.dumps)
        with open(path, "rb") as f:
            dump = f.read()
        self.assertIn(b"X-Mail-Args: <ann@support.example.test>", dump)
        self.assertIn(b"X-Rcpt-Args: <x@relay.example.test>", dump)
        self.assertIn(b"X-Rcpt-Args: <y@relay.example.test>", dump)
        self.assertIn(b"Subject: over smtp", dump)
        self.assertIn(b"\n.leading dot", dump)
        self.server.wait_for_log("postoffice relay: delivered")

    def test_a_server_that_refuses_connections_bounces_after_its_open_retries(self):
        self.send(["z@gone.example.test"])
        _, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; z@gone.example.test", status)
        self.assertIn("Status: 5.4.1", status)
        self.assertIn("Connection refused", self.server.wait_for_log("Connection refused"))


class MailServerReplies(DeliveryTest):
    """smtp and lmtp postoffices against a scripted server: a 5xx for one
    recipient of three, 4xx until the transfer limit, and a server that
    never greets (the probe timeout is a failed open)."""

    def start(self, transport="smtp", **script):
        self.mail_server = ScriptedServer(lmtp=transport == "lmtp", **script).start()
        self.addCleanup(self.mail_server.stop)
        self.start_server(RETRIES + f"""
[[postoffice]]
name = "remote"
domains = ["remote.example.test"]
transport = "{transport}"
address = "127.0.0.1:{self.mail_server.port}"
probe_timeout = "1s"
""")

    def check_one_of_three_refused(self, transport):
        self.start(transport, rcpt_replies={
            "b@remote.example.test": "550 5.1.1 <b@remote.example.test> no such user"})
        self.send(["a@remote.example.test", "b@remote.example.test", "c@remote.example.test"])
        _, status = self.ndr()
        self.assertIn("Final-Recipient: rfc822; b@remote.example.test", status)
        self.assertNotIn("a@remote.example.test", status)
        self.assertIn("Status: 5.1.1", status)
        self.assertIn("Diagnostic-Code: smtp; 550 5.1.1", status)
        self.assertEqual([m[1] for m in self.mail_server.messages],
                         [["a@remote.example.test", "c@remote.example.test"]])

    def test_smtp_5xx_for_one_recipient_of_three(self):
        self.check_one_of_three_refused("smtp")

    def test_lmtp_5xx_for_one_recipient_of_three(self):
        self.check_one_of_three_refused("lmtp")

    def test_4xx_until_the_transfer_limit(self):
        self.start(rcpt_replies={"a@remote.example.test": "452 4.2.2 mailbox full"})
        self.send(["a@remote.example.test"])
        _, status = self.ndr()
        self.assertIn("Status: 5.2.2", status)
        self.assertIn("452 4.2.2 mailbox full", status)
        self.assertEqual(self.mail_server.messages, [])

    def test_a_server_that_stalls_is_a_failed_open(self):
        self.start(stall=True)
        self.send(["a@remote.example.test"])
        _, status = self.ndr()
        self.assertIn("Status: 5.4.1", status)
        self.assertIn("timeout waiting for the greeting", self.server.wait_for_log("timeout"))


class JsonDeliveryLog(DeliveryTest):
    """--log-format json: a delivery's line carries its fields as keys."""

    def serving(self):
        self.server.wait_for_log("serving on")
        messages = "\n".join(json.loads(line)["message"]
                             for line in self.server.log.splitlines() if line.endswith("}"))
        self.port = listening_port(messages, "smtp")
        self.admin_port = listening_port(messages, "admin")

    def test_a_delivery_line_has_queue_id_recipient_and_status_as_keys(self):
        self.start_server(args=("--log-format", "json"))
        self.send(["bob@sales.example.test", "nobody@sales.example.test"])
        self.server.wait_for_log('"status":"bounced"')
        lines = [json.loads(line) for line in self.server.log.splitlines()]
        outcomes = {line["to"]: line for line in lines if "to" in line}
        sent, bounced = outcomes["bob@sales.example.test"], outcomes["nobody@sales.example.test"]
        self.assertRegex(sent["queue_id"], r"^[0-9a-f]{16}$")
        self.assertEqual((sent["postoffice"], sent["status"], sent["dsn"], sent["attempts"]),
                         ("sales", "sent", "2.0.0", 1))
        self.assertIsInstance(sent["delay"], (int, float))
        self.assertEqual(sent["relay"], "var/postoffices/sales")
        self.assertRegex(sent["delays"], r"^\d+/\d+\.\d\d/\d+\.\d\d$")
        self.assertEqual((bounced["status"], bounced["dsn"][0]), ("bounced", "5"))
        self.assertEqual(bounced["queue_id"], sent["queue_id"])
        # The bounce's line carries the NDR's own queue id.
        self.server.wait_for_log('"notification":"bounced"')
        [report] = [json.loads(line) for line in self.server.log.splitlines()
                    if '"notification"' in line]
        self.assertEqual(report["queue_id"], sent["queue_id"])
        self.assertRegex(report["dsn_queue_id"], r"^[0-9a-f]{16}$")
        self.assertNotEqual(report["dsn_queue_id"], sent["queue_id"])


class PlannedStop(DeliveryTest):
    """SIGTERM while an SMTP delivery is under way: the server takes no new
    mail, lets the delivery end and records it, then exits; restarted, it
    does not send the message again."""

    def start(self, grace):
        self.mail_server = ScriptedServer(hold_data_reply=True).start()
        self.addCleanup(self.mail_server.release_data_reply.set)
        self.addCleanup(self.mail_server.stop)
        self.start_server(f"""
[[postoffice]]
name = "remote"
domains = ["remote.example.test"]
transport = "smtp"
address = "127.0.0.1:{self.mail_server.port}"
""", server=f'shutdown_grace = "{grace}"')
        self.send(["a@remote.example.test"])
        self.assertTrue(self.mail_server.data_received.wait(20))
        self.server.proc.send_signal(signal.SIGTERM)

    def restart(self):
        self.server = Server(self.dir, os.path.join(self.dir, "postconn.toml"))
        self.addCleanup(self.server.__exit__)
        self.addCleanup(self.server.stop)
        self.serving()

    def queue_total(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/queue" % self.admin_port) as reply:
            return json.load(reply)["total"]

    def test_the_delivery_under_way_ends_and_is_recorded_before_the_exit(self):
        self.start("20s")
        self.server.wait_for_log("finishing the attempts under way")
        with self.assertRaises(OSError):  # no new mail while it drains
            self.send(["b@remote.example.test"])
        self.mail_server.release_data_reply.set()
        self.assertEqual(self.server.stop(), 0)
        self.assertIn("every attempt under way ended and is recorded", self.server.log)
        self.restart()
        self.assertEqual(self.queue_total(), 0)
        self.assertEqual(len(self.mail_server.messages), 1)

    def test_after_the_grace_time_the_server_exits_and_the_delivery_is_due_again(self):
        self.start("1s")
        self.assertEqual(self.server.stop(), 0)
        self.assertIn("attempts still under way after server.shutdown_grace 1s", self.server.log)
        self.mail_server.release_data_reply.set()
        self.restart()
        self.server.wait_for_log("postoffice remote: delivered")
        self.assertEqual(len(self.mail_server.messages), 2)  # README: the one duplicate


class ShareComesBack(DeliveryTest):
    """A share that is unmounted (marker gone) and mounted again: the mail
    waits, then lands once, and nobody gets an NDR."""

    def test_mail_waits_for_the_share_and_lands_once(self):
        self.start_server("""
[retry]
max_open_retries = 50
open_interval = "1s"
""")
        marker = os.path.join(self.sales, ".postoffice")
        os.remove(marker)
        self.send(["bob@sales.example.test"])
        self.server.wait_for_log("open_retries=2/50")
        self.assertEqual(os.listdir(os.path.join(self.sales, "bob/new")), [])
        open(marker, "w").close()
        wait_for_files(os.path.join(self.sales, "bob/new"))
        self.server.wait_for_log("postoffice sales: reachable again")
        # Once the ledger says delivered, the supervisor attempts it no more;
        # a repeat already under way would reach the mailbox before a later
        # message through the same postoffice does.
        self.wait_for_ledger([("delivered", 1)])
        self.send(["bob@sales.example.test"], b"Subject: later\r\n\r\nlater\r\n")
        files = wait_for_files(os.path.join(self.sales, "bob/new"), count=2)
        self.assertEqual(len(files), 2)
        subjects = sorted(open(path, "rb").read().split(b"\nSubject: ")[1].split(b"\n")[0]
                          for path in files)
        self.assertEqual(subjects, [b"hello", b"later"])
        self.wait_for_ledger([("delivered", 1), ("delivered", 1)])
        self.assertEqual(os.listdir(os.path.join(self.support, "ann/new")), [])

    def wait_for_ledger(self, wanted, timeout=10):
        """Waits until the queue's deliveries, in order, are `wanted`: (state,
        number of delivered attempts) each."""
        deadline = time.monotonic() + timeout
        while True:
            db = sqlite3.connect(os.path.join(self.dir, "var/queue.db"), timeout=10)
            try:
                ledger = db.execute(
                    "SELECT d.state, (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id"
                    " AND a.outcome = 'delivered') FROM deliveries d ORDER BY d.id").fetchall()
            finally:
                db.close()
            if ledger == wanted or time.monotonic() > deadline:
                self.assertEqual(ledger, wanted)
                return
            time.sleep(0.05)



DOVECOT_CONF = """\
base_dir = {dir}/run
log_path = {dir}/log
protocols = lmtp
{ssl}
listen = 127.0.0.1
first_valid_uid = 1
mail_location = maildir:{dir}/home/%n/Maildir
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={dir}/home/%n
}}
passdb {{
  driver = static
  args = nopassword=y
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


class DovecotLmtp(DeliveryTest):
    """An lmtp postoffice served by Dovecot's LMTP server, in plaintext and
    over STARTTLS with its certificate verified."""

    def start_dovecot(self, ssl="ssl = no"):
        """Dovecot's LMTP on a free port under self.dir/dovecot; its port."""
        self.dovecot_dir = os.path.join(self.dir, "dovecot")
        os.makedirs(os.path.join(self.dovecot_dir, "run"))
        os.makedirs(os.path.join(self.dovecot_dir, "home"))
        os.chmod(self.dir, 0o755)
        os.chmod(self.dovecot_dir, 0o755)
        shutil.chown(os.path.join(self.dovecot_dir, "home"), "dovecot", "dovecot")
        lmtp_port = free_port()  # Dovecot cannot report a port it picked
        conf = os.path.join(self.dovecot_dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF.format(dir=self.dovecot_dir, port=lmtp_port, ssl=ssl))
        dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", conf],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(dovecot.wait)
        self.addCleanup(dovecot.terminate)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", lmtp_port), timeout=1).close()
                return lmtp_port
            except OSError:
                self.assertLess(time.monotonic(), deadline, "dovecot did not start")
                time.sleep(0.05)

    def restart_with_lmtp_postoffice(self, lmtp_port, keys=""):
        """The server reads its config at start: add the lmtp postoffice and restart."""
        self.server.stop()
        with open(os.path.join(self.dir, "postconn.toml"), "a") as f:
            f.write(f"""
[[postoffice]]
name = "lmtp"
domains = ["lmtp.example.test"]
transport = "lmtp"
address = "127.0.0.1:{lmtp_port}"
probe_timeout = "5s"
{keys}""")
        self.server = Server(self.dir, os.path.join(self.dir, "postconn.toml"))
        self.addCleanup(self.server.__exit__)
        self.addCleanup(self.server.stop)
        self.serving()

    def delivered_contents(self):
        """Sends to carol and dave; what lands in each one's Dovecot mailbox."""
        self.send(["carol@lmtp.example.test", "dave@lmtp.example.test"],
                  b"Subject: via lmtp\r\n\r\nhello dovecot\r\n")
        contents = []
        for user in ("carol", "dave"):
            [path] = wait_for_files(os.path.join(self.dovecot_dir, "home", user, "Maildir/new"))
            with open(path, "rb") as f:
                contents.append(f.read())
        # The files can land before the server hears the LMTP replies: wait
        # for its decision, not for the first line about the postoffice.
        self.server.wait_for_log("postoffice lmtp: delivered")
        return contents

    def test_mail_lands_in_the_dovecot_mailbox(self):
        self.start_server(RETRIES)
        self.restart_with_lmtp_postoffice(self.start_dovecot())
        for content in self.delivered_contents():
            self.assertIn(b"hello dovecot", content)
            self.assertIn(b" with LMTP\n", content)

    def test_starttls_with_the_certificate_verified(self):
        self.start_server(RETRIES)
        certificate, key = make_certificate(self.dir, "dovecot.example.test", ["IP:127.0.0.1"])
        port = self.start_dovecot(f"ssl = required\nssl_cert = <{certificate}\n"
                                  f"ssl_key = <{key}")
        self.restart_with_lmtp_postoffice(
            port, f'tls = "verify"\ntls_ca_file = "{certificate}"\n')
        for content in self.delivered_contents():
            self.assertIn(b"hello dovecot", content)
            # Dovecot's trace header says the session ran TLS.
            self.assertIn(b"\t(using TLSv1.", content)
            self.assertIn(b" with LMTPS\n", content)

    def test_a_kept_tls_connection_carries_the_next_batches(self):
        """Three messages, each its own batch, the next sent once the last
        was delivered: the later ones go over the connection kept open
        (RSET through TLS first), and all three land. No idle probe comes
        meanwhile (open_interval 1h): its connection would be counted."""
        self.start_server(RETRIES)
        certificate, key = make_certificate(self.dir, "dovecot.example.test", ["IP:127.0.0.1"])
        port = self.start_dovecot(f"ssl = required\nssl_cert = <{certificate}\n"
                                  f"ssl_key = <{key}")
        self.restart_with_lmtp_postoffice(
            port, f'tls = "verify"\ntls_ca_file = "{certificate}"\n'
                  '[postoffice.retry]\nopen_interval = "1h"\n')
        for n in range(3):
            self.send(["carol@lmtp.example.test"], b"Subject: %d\r\n\r\nkept\r\n" % n)
            self.server.wait_for_log("postoffice lmtp: delivered", count=n + 1)
            self.assertEqual(established_connections_to(port), 1)
        landed = wait_for_files(os.path.join(self.dovecot_dir, "home/carol/Maildir/new"),
                                count=3)
        for path in landed:
            with open(path, "rb") as f:
                self.assertIn(b" with LMTPS\n", f.read())


def established_connections_to(port):
    """TCP connections to `port` on this machine, established (from
    /proc/net/tcp: the client sides, whose remote port it is)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if int(row[2].split(":")[1], 16) == port and row[3] == "01")


if __name__ == "__main__":
    unittest.main()
