"""End-to-end tests of SMTP ingress: the real `postconn serve`, real
clients (Python's smtplib, raw sockets for pipelining and hostile input,
swaks), and the queue database read back afterwards."""
import os
import re
import resource
import shutil
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from postconn_process import POSTCONN, Server, make_certificate, temp_workdir, write_config
from test_delivery import make_postoffice, wait_for_files

LIMITS = """
max_message_size = 20000
max_recipients = 3
idle_timeout = "2s"
"""


def queued_id(reply_text):
    match = re.search(r"queued as ([0-9a-f]{16})", reply_text)
    assert match, reply_text
    return match.group(1)


class Client:
    """A raw SMTP connection: send bytes, read replies."""

    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(source, 0))
        self.buffer = b""
        self.greeting = self.reply()

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """One whole reply (all continuation lines): (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed; got %r" % self.buffer)
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(l[4:] for l in lines)

    def command(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self):
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


class SmtpServerTest(unittest.TestCase):
    smtp_config = LIMITS
    server_config = ""
    extra_config = ""

    def setUp(self):
        self.workdir_holder = temp_workdir()
        self.workdir = self.workdir_holder.name
        self.config = self.write_config()
        self.server = self.start()

    def write_config(self, server_config=None):
        return write_config(self.workdir, smtp=self.smtp_config,
                            extra=self.extra_config,
                            server=self.server_config if server_config is None
                            else server_config)

    def start(self, **popen):
        server = Server(self.workdir, self.config, **popen)
        server.wait_for_log("serving on")
        # It listens on ports it picked (port 0), new ones at each start.
        self.port, self.admin_port = server.smtp_port, server.admin_port
        return server

    def client(self, source="127.0.0.1"):
        c = Client(self.port, source)
        self.addCleanup(c.close)
        return c

    def client_in_data(self, helo):
        """A client past EHLO `helo`, MAIL from ann and RCPT to bob at
        sales, answered 354 to DATA."""
        c = self.client()
        c.command("EHLO " + helo)
        self.assertEqual(c.command("MAIL FROM:<ann@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@sales.example.test>")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        return c

    def tearDown(self):
        self.server.stop()
        self.server.__exit__()
        self.workdir_holder.cleanup()

    def mail_from(self, c, wanted):
        """MAIL FROM until the answer is `wanted`: the queue's state travels
        from the supervisor to the sessions as a message, so a MAIL sent at
        the moment it changes may still get the old answer."""
        deadline = time.monotonic() + 5
        while True:
            code, text = c.command("MAIL FROM:<ann@example.org>")
            if code == wanted or time.monotonic() > deadline:
                return code, text
            if code == 250:
                c.command("RSET")
            time.sleep(0.1)

    def db(self):
        return sqlite3.connect(os.path.join(self.workdir, "var", "queue.db"))

    def stored(self, queue_id):
        """(sender, content bytes) of a queued message, or None."""
        with self.db() as db:
            return db.execute("SELECT sender, content FROM messages WHERE id = ?",
                              (int(queue_id, 16),)).fetchone()

    def deliveries(self, queue_id):
        """(postoffice, recipients) of each delivery of a message. Delivery
        starts at once, so their states are not checked here."""
        with self.db() as db:
            return db.execute(
                "SELECT postoffice, recipients FROM deliveries"
                " WHERE message_id = ? ORDER BY postoffice", (int(queue_id, 16),)).fetchall()

    def message_count(self):
        with self.db() as db:
            return db.execute("SELECT count(*) FROM messages").fetchone()[0]

    def content_after_received(self, queue_id):
        sender, content = self.stored(queue_id)
        self.assertTrue(content.startswith(b"Received: from "), content[:80])
        # The Received header is the first header; its folded lines start with a tab.
        end = 0
        while True:
            end = content.index(b"\r\n", end) + 2
            if content[end:end + 1] != b"\t":
                return sender, content[end:]


class Acceptance(SmtpServerTest):
    def test_smtplib_message_to_two_postoffices(self):
        body = b"Subject: two postoffices\r\n\r\nHello.\r\n"
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            client.ehlo("client.example.org")
            self.assertTrue(client.has_extn("pipelining"))
            self.assertEqual(client.esmtp_features["size"], "20000")
            self.assertTrue(client.has_extn("8bitmime"))
            self.assertTrue(client.has_extn("enhancedstatuscodes"))
            refused = client.sendmail("ann@example.org",
                                      ["bob@sales.example.test", "Eve@Sales.Example.Test",
                                       "carol@support.example.test"], body)
            self.assertEqual(refused, {})
            code, text = client.noop()
            self.assertEqual(code, 250)
        log = self.server.wait_for_log("queued as")
        queue_id = re.search(r"queued as ([0-9a-f]{16})", log).group(1)
        sender, content = self.content_after_received(queue_id)
        self.assertEqual(sender, "ann@example.org")
        self.assertEqual(content, body)
        self.assertEqual(self.deliveries(queue_id), [
            ("sales", "bob@sales.example.test\nEve@Sales.Example.Test"),
            ("support", "carol@support.example.test")])

    def test_pipelined_transaction_dot_stuffing_and_8bit_body(self):
        c = self.client()
        self.assertEqual(c.greeting[0], 220)
        c.send(b"EHLO pipeliner.example.org\r\n"
               b"MAIL FROM:<ann@example.org> BODY=8BITMIME SIZE=500\r\n"
               b"RCPT TO:<bob@sales.example.test>\r\n"
               b"RCPT TO:<alice@sales.example.test>\r\n"
               b"RCPT TO:<carol@support.example.test>\r\n"
               b"DATA\r\n")
        self.assertEqual(c.reply()[0], 250)
        for expected in (("250", "2.1.0"), ("250", "2.1.5"), ("250", "2.1.5"), ("250", "2.1.5")):
            code, text = c.reply()
            self.assertEqual(str(code), expected[0])
            self.assertTrue(text.startswith(expected[1]), text)
        self.assertEqual(c.reply()[0], 354)
        wire = (b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
                b"..leading dot\r\n"
                b"...two dots\r\n"
                b"caf\xc3\xa9 \xe2\x82\xac 8-bit\r\n"
                b". \r\n"
                b".\r\n")
        expected = (b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
                    b".leading dot\r\n"
                    b"..two dots\r\n"
                    b"caf\xc3\xa9 \xe2\x82\xac 8-bit\r\n"
                    b" \r\n")
        c.send(wire + b"QUIT\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        queue_id = queued_id(text)
        self.assertEqual(c.reply()[0], 221)
        self.assertTrue(c.closed())
        c.close()
        _, content = self.content_after_received(queue_id)
        self.assertEqual(content, expected)
        self.assertEqual([d[0] for d in self.deliveries(queue_id)], ["sales", "support"])

    def test_null_sender_and_two_messages_in_one_session(self):
        c = self.client()
        c.command("HELO old.example.org")
        ids = []
        for sender in ("<>", "<ann@example.org>"):
            self.assertEqual(c.command("MAIL FROM:" + sender)[0], 250)
            self.assertEqual(c.command("RCPT TO:<bob@sales.example.test>")[0], 250)
            self.assertEqual(c.command("DATA")[0], 354)
            c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            code, text = c.reply()
            self.assertEqual(code, 250, text)
            ids.append(queued_id(text))
        c.close()
        self.assertEqual(self.stored(ids[0])[0], "")
        self.assertEqual(self.stored(ids[1])[0], "ann@example.org")

    def test_swaks(self):
        swaks = shutil.which("swaks")
        self.assertIsNotNone(swaks, "swaks is installed by ./build.sh test")
        done = subprocess.run(
            [swaks, "--server", "127.0.0.1:%d" % self.port, "--pipeline",
             "--from", "ann@example.org", "--to", "bob@sales.example.test",
             "--helo", "swaks.example.org", "--header", "Subject: from swaks"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        queue_id = queued_id(done.stdout)
        _, content = self.stored(queue_id)
        self.assertIn(b"Subject: from swaks", content)

    def test_a_client_that_sees_250_can_kill_the_server_at_once(self):
        c = self.client_in_data("k.example.org")
        c.send(b"Subject: durable\r\n\r\nsurvives kill -9\r\n.\r\n")
        code, text = c.reply()
        self.server.proc.send_signal(signal.SIGKILL)
        self.assertEqual(code, 250, text)
        queue_id = queued_id(text)
        self.server.stop()
        self.server.__exit__()
        c.close()
        _, content = self.content_after_received(queue_id)
        self.assertEqual(content, b"Subject: durable\r\n\r\nsurvives kill -9\r\n")
        self.assertEqual(self.deliveries(queue_id),
                         [("sales", "bob@sales.example.test")])
        self.server = self.start()
        self.assertIn("queue: 1 unfinished deliveries", self.server.log)


class BadInput(SmtpServerTest):
    def transaction(self, c, *recipients):
        c.command("EHLO bad.example.org")
        self.assertEqual(c.command("MAIL FROM:<ann@example.org>")[0], 250)
        for rcpt in recipients or ("bob@sales.example.test",):
            self.assertEqual(c.command("RCPT TO:<%s>" % rcpt)[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)

    def assert_refused_and_nothing_stored(self, c, data, code, status):
        self.transaction(c)
        c.send(data)
        got_code, text = c.reply()
        self.assertEqual((got_code, text[:len(status)]), (code, status), text)
        self.assertEqual(self.message_count(), 0)
        # The session goes on: a new transaction works.
        self.assertEqual(c.command("RSET")[0], 250)
        self.assertEqual(c.command("NOOP")[0], 250)

    def test_overlong_command_line(self):
        c = self.client()
        code, text = c.command("NOOP " + "x" * 600)
        self.assertEqual((code, text[:5]), (500, "5.5.2"))
        self.assertEqual(c.command("NOOP")[0], 250)

    def test_overlong_text_line(self):
        c = self.client()
        self.assert_refused_and_nothing_stored(
            c, b"Subject: long\r\n\r\n" + b"y" * 1200 + b"\r\n.\r\n", 500, "5.5.2")

    def test_message_over_the_size_limit(self):
        c = self.client()
        line = b"z" * 998 + b"\r\n"
        self.assert_refused_and_nothing_stored(
            c, b"Subject: big\r\n\r\n" + line * 30 + b".\r\n", 552, "5.3.4")

    def test_declared_size_over_the_limit(self):
        c = self.client()
        c.command("EHLO bad.example.org")
        code, text = c.command("MAIL FROM:<ann@example.org> SIZE=999999")
        self.assertEqual((code, text[:5]), (552, "5.3.4"))

    def test_too_many_recipients(self):
        c = self.client()
        c.command("EHLO bad.example.org")
        c.command("MAIL FROM:<ann@example.org>")
        for i in range(3):
            self.assertEqual(c.command("RCPT TO:<u%d@sales.example.test>" % i)[0], 250)
        code, text = c.command("RCPT TO:<u9@sales.example.test>")
        self.assertEqual((code, text[:5]), (452, "4.5.3"))

    def test_commands_out_of_order(self):
        c = self.client()
        code, text = c.command("MAIL FROM:<ann@example.org>")
        self.assertEqual((code, text[:5]), (503, "5.5.1"))
        c.command("EHLO bad.example.org")
        code, text = c.command("RCPT TO:<bob@sales.example.test>")
        self.assertEqual((code, text[:5]), (503, "5.5.1"))
        code, text = c.command("DATA")
        self.assertEqual((code, text[:5]), (503, "5.5.1"))
        c.command("MAIL FROM:<ann@example.org>")
        code, text = c.command("MAIL FROM:<ann@example.org>")
        self.assertEqual((code, text[:5]), (503, "5.5.1"))

    def test_unknown_domain_and_bad_mailbox_name(self):
        c = self.client()
        c.command("EHLO bad.example.org")
        c.command("MAIL FROM:<ann@example.org>")
        code, text = c.command("RCPT TO:<bob@elsewhere.example.net>")
        self.assertEqual((code, text[:5]), (550, "5.1.2"))
        for local_part in ("a/b", "%2e%2e", "{x}"):
            code, text = c.command("RCPT TO:<%s@sales.example.test>" % local_part)
            self.assertEqual((code, text[:5]), (553, "5.1.3"), local_part)
        code, text = c.command("RCPT TO:<../../etc@sales.example.test>")
        self.assertEqual((code, text[:5]), (501, "5.1.3"))
        code, text = c.command("DATA")
        self.assertEqual(code // 100, 5)
        c.command("QUIT")
        # What a Postfix admin greps: the client, each refusal with its
        # envelope and reply, and the commands it sent.
        log = self.server.wait_for_log("disconnect: client=127.0.0.1")
        self.assertIn("connect: client=127.0.0.1\n", log)
        self.assertIn("reject: client=127.0.0.1, command=RCPT, from=<ann@example.org>, "
                      "to=<bob@elsewhere.example.net>, helo=bad.example.org (550 5.1.2 ", log)
        self.assertIn("reject: client=127.0.0.1, command=DATA, from=<ann@example.org>, "
                      "helo=bad.example.org (554 5.5.1 ", log)
        self.assertIn("disconnect: client=127.0.0.1, data=1, ehlo=1, mail=1, quit=1, rcpt=5, "
                      "commands=9\n", log)

    def test_idle_timeout(self):
        c = self.client()
        c.command("EHLO idle.example.org")
        started = time.monotonic()
        code, text = c.reply()
        self.assertEqual((code, text[:5]), (421, "4.4.2"))
        self.assertGreaterEqual(time.monotonic() - started, 1.5)
        self.assertTrue(c.closed())

    def test_bare_lf_in_data(self):
        c = self.client()
        self.assert_refused_and_nothing_stored(
            c, b"Subject: lf\r\n\r\nbare\nline\r\n.\r\n", 550, "5.6.0")

    def test_bare_cr_in_data(self):
        c = self.client()
        self.assert_refused_and_nothing_stored(
            c, b"Subject: cr\r\n\r\nbare\rline\r\n.\r\n", 550, "5.6.0")

    def test_no_smtp_smuggling(self):
        c = self.client()
        self.transaction(c)
        # "\n.\n" and "\r\n.\n" do not end DATA, so the smuggled transaction is
        # part of the message, which is refused for its bare LFs.
        c.send(b"Subject: smuggle\r\n\r\nhi\n.\n"
               b"MAIL FROM:<evil@example.org>\r\n"
               b"RCPT TO:<bob@sales.example.test>\r\n"
               b"DATA\r\n"
               b"Subject: smuggled\r\n\r\nsmuggled\r\n.\n"
               b"more\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual((code, text[:5]), (550, "5.6.0"), text)
        self.assertEqual(c.command("NOOP")[0], 250)
        self.assertEqual(self.message_count(), 0)


CATCHALL = """
[[postoffice]]
name = "catchall"
default = true
transport = "maildir"
path = "var/postoffices/catchall"
"""


class NoStartTls(SmtpServerTest):
    def test_without_a_certificate_starttls_is_not_offered(self):
        c = self.client()
        code, text = c.command("EHLO plain.example.org")
        self.assertNotIn("STARTTLS", text)
        self.assertEqual(c.command("STARTTLS"), (502, "5.5.1 Command not implemented"))
        self.assertEqual(c.command("NOOP")[0], 250)


class NoRelay(SmtpServerTest):
    """A client outside relay_networks (here from a second loopback address)
    reaches only the domains postoffices name; the default postoffice's
    catch-all is for relay clients."""
    smtp_config = 'relay_networks = ["127.0.0.1/32"]\n'
    extra_config = CATCHALL

    def test_only_named_domains_from_outside_relay_networks(self):
        c = self.client(source="127.0.0.2")
        c.command("EHLO outside.example.org")
        c.command("MAIL FROM:<ann@example.org>")
        self.assertEqual(c.command("RCPT TO:<bob@sales.example.test>")[0], 250)
        for foreign in ("someone@elsewhere.example.net", "someone@127.0.0.1",
                        "someone@[127.0.0.1]", "bob%sales.example.test@elsewhere.example.net"):
            code, text = c.command(f"RCPT TO:<{foreign}>")
            self.assertIn(code, (501, 550, 553, 554), (foreign, text))
        self.assertEqual(c.command("DATA")[0], 354)
        c.send(b"Subject: outside\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(self.deliveries(queued_id(text)),
                         [("sales", "bob@sales.example.test")])
        inside = self.client(source="127.0.0.1")
        inside.command("EHLO inside.example.org")
        inside.command("MAIL FROM:<ann@example.org>")
        self.assertEqual(inside.command("RCPT TO:<someone@elsewhere.example.net>")[0], 250)


class Relay(SmtpServerTest):
    smtp_config = 'relay_networks = ["127.0.0.0/8"]\n'
    extra_config = CATCHALL

    def test_a_relay_client_reaches_the_default_postoffice(self):
        c = self.client()
        c.command("EHLO inside.example.org")
        c.command("MAIL FROM:<ann@example.org>")
        self.assertEqual(c.command("RCPT TO:<someone@elsewhere.example.net>")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send(b"Subject: relayed\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(self.deliveries(queued_id(text)),
                         [("catchall", "someone@elsewhere.example.net")])


class ConnectionLimitTest(SmtpServerTest):
    """One connection over smtp.max_connections_per_client, or over
    smtp.max_connections, is answered 421 4.7.0 and closed; once one closes,
    the next is served."""

    def refused(self):
        c = self.client()
        self.assertTrue(c.closed(), "the refused connection stays open")
        return c.greeting

    def wait_until_served(self):
        deadline = time.monotonic() + 10
        while True:
            c = self.client()
            if c.greeting[0] == 220:
                return c
            self.assertLess(time.monotonic(), deadline, "no 220 after a session closed")
            time.sleep(0.05)


class PerClientConnectionLimit(ConnectionLimitTest):
    # A long idle_timeout: the kept session must outlive a thousand
    # reconnections however loaded the machine is.
    smtp_config = 'max_connections_per_client = 2\nidle_timeout = "5m"\n'

    def test_a_third_connection_from_one_address_is_refused(self):
        first, second = self.client(), self.client()
        self.assertEqual(first.greeting[0], 220)
        code, text = self.refused()
        self.assertEqual((code, text[:5]), (421, "4.7.0"), text)
        self.assertIn("Too many connections from your address", text)
        self.assertEqual(second.command("NOOP")[0], 250)
        self.assertEqual(first.command("QUIT")[0], 221)
        self.assertEqual(self.wait_until_served().command("EHLO again.example.org")[0], 250)
        self.server.wait_for_log("(smtp.max_connections_per_client)")

    def test_a_client_at_its_limit_reconnecting_right_after_quit_is_served(self):
        # The session that said 221 has ended before the client can connect
        # again, so its place is free: never 421 (the listener looks twice).
        kept, current = self.client(), self.client()
        for _ in range(1000):
            self.assertEqual(current.command("QUIT")[0], 221)
            current = self.client()
            self.assertEqual(current.greeting[0], 220, current.greeting)
        self.assertEqual(kept.command("NOOP")[0], 250)


class TotalConnectionLimit(ConnectionLimitTest):
    smtp_config = LIMITS + "max_connections = 1\n"

    def test_a_second_connection_is_refused(self):
        first = self.client()
        code, text = self.refused()
        self.assertEqual((code, text[:5]), (421, "4.7.0"), text)
        self.assertNotIn("your address", text)
        self.assertEqual(first.command("QUIT")[0], 221)
        self.assertEqual(self.wait_until_served().command("NOOP")[0], 250)
        self.server.wait_for_log("(smtp.max_connections)")


class SlowClients(SmtpServerTest):
    """A client that trickles bytes is never idle, but one command line may
    take idle_timeout at most and the whole DATA phase data_timeout: then
    421 4.4.2, the connection closed, nothing queued."""
    smtp_config = LIMITS + 'data_timeout = "3s"\n'

    def test_a_command_line_sent_byte_by_byte(self):
        c = self.client()
        started = time.monotonic()
        for byte in b"EHLO " + b"x" * 20:
            try:
                c.send(bytes([byte]))
            except OSError:  # already closed: the reply is in the buffer
                break
            time.sleep(0.25)
            if time.monotonic() - started > 2.5:
                break
        code, text = c.reply()
        self.assertEqual((code, text[:5]), (421, "4.4.2"), text)
        self.assertTrue(c.closed())
        self.server.wait_for_log("command line not finished in time")

    def test_data_sent_line_by_line(self):
        c = self.client_in_data("slow.example.org")
        started = time.monotonic()
        for _ in range(40):
            try:
                c.send(b"line\r\n")
            except OSError:
                break
            time.sleep(0.25)
            if time.monotonic() - started > 3.5:
                break
        code, text = c.reply()
        self.assertEqual((code, text[:5]), (421, "4.4.2"), text)
        self.assertGreaterEqual(time.monotonic() - started, 2.5)
        self.assertTrue(c.closed())
        self.server.wait_for_log("DATA not finished in time")
        self.assertEqual(self.message_count(), 0)
        quick = self.client_in_data("quick.example.org")
        quick.send(b"Subject: quick\r\n\r\nx\r\n.\r\n")
        self.assertEqual(quick.reply()[0], 250)


class ClientLeavingDuringCommit(SmtpServerTest):
    """A client that hangs up after the final dot while the store still
    commits, or one told 451 because the commit outlasted data_timeout: the
    message is committed all the same, so it is delivered, not left in the
    queue until the next restart."""
    smtp_config = LIMITS + 'data_timeout = "2s"\n'

    def start(self, **popen):
        make_postoffice(os.path.join(self.workdir, "var/postoffices/sales"), "bob")
        return super().start(**popen)

    def test_mail_committed_after_the_client_left_is_delivered(self):
        c = self.client_in_data("leaving.example.org")
        with self.db() as locker:
            locker.execute("BEGIN EXCLUSIVE")  # the store's commit waits (busy_timeout)
            # The hang-up (FIN) reaches the server after the final dot, as
            # TCP keeps order: the session is waiting for the commit when it
            # sees the client leave.
            c.send(b"Subject: left early\r\n\r\nbody\r\n.\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            # The server closes its end once it has seen the hang-up: only
            # then may the commit go on.
            c.sock.settimeout(10)
            self.assertEqual(c.sock.recv(1), b"")
            c.close()
            locker.rollback()
        delivered = wait_for_files(
            os.path.join(self.workdir, "var/postoffices/sales/bob/new"), timeout=15)
        self.assertEqual(len(delivered), 1)
        self.server.wait_for_log("after the client left")

    def test_a_commit_slower_than_data_timeout_gets_451_and_is_delivered_anyway(self):
        c = self.client_in_data("patient.example.org")
        with self.db() as locker:
            locker.execute("BEGIN EXCLUSIVE")  # the store waits up to busy_timeout (5 s)
            c.send(b"Subject: slow queue\r\n\r\nbody\r\n.\r\n")
            c.sock.settimeout(10)
            code, text = c.reply()
            self.assertEqual((code, text[:5]), (451, "4.3.0"), text)
            self.assertTrue(c.closed())
            locker.rollback()
        delivered = wait_for_files(
            os.path.join(self.workdir, "var/postoffices/sales/bob/new"), timeout=15)
        self.assertEqual(len(delivered), 1)
        self.server.wait_for_log("did not answer within data_timeout")
        self.server.wait_for_log("after the client left or was told 451")


class BoundedSessionMemory(SmtpServerTest):
    """While the store commits, a client that keeps sending is not read past
    a bound (TCP holds the rest); its input is handled once the store
    answers."""

    def test_input_pipelined_during_a_commit_waits_in_the_socket(self):
        c = self.client_in_data("flood.example.org")
        flood = b"NOOP " + b"x" * (32 << 20)  # one 32 MiB line: refused as too long
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        with self.db() as locker:
            locker.execute("BEGIN EXCLUSIVE")  # the store's commit waits (busy_timeout)
            c.send(b"Subject: flood\r\n\r\nx\r\n.\r\n")
            c.sock.settimeout(0.5)
            sent = 0
            try:
                while sent < len(flood):
                    sent += c.sock.send(flood[sent:sent + 65536])
            except socket.timeout:
                pass  # the server stopped reading: the socket buffers are full
            self.server.wait_for_log("bytes waiting, reading paused")
            self.assertLess(sent, len(flood))
            locker.rollback()
        c.sock.settimeout(10)
        c.sock.sendall(flood[sent:] + b"\r\nNOOP\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertIn("queued as", text)
        self.assertEqual(c.reply(), (500, "5.5.2 Error: line too long"))
        self.assertEqual(c.reply()[0], 250)


    def test_a_client_that_does_not_read_its_replies_is_not_read_either(self):
        c = self.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        count = 600_000
        commands = b"NOOP\r\n" * count  # 3.6 MB of commands, 8.4 MB of replies
        c.sock.settimeout(0.5)
        sent = 0
        try:
            while sent < len(commands):
                sent += c.sock.send(commands[sent:sent + 65536])
        except socket.timeout:
            pass
        self.server.wait_for_log("bytes of replies not taken, reading paused")
        self.assertLess(sent, len(commands))
        c.sock.settimeout(30)
        replies = []
        reader = threading.Thread(target=lambda: replies.extend(
            c.reply()[0] for _ in range(count + 1)))
        reader.start()
        c.sock.sendall(commands[sent:] + b"QUIT\r\n")
        reader.join(60)
        self.assertEqual(len(replies), count + 1)
        self.assertEqual(set(replies[:-1]), {250})
        self.assertEqual(replies[-1], 221)


class QueueBackPressure(SmtpServerTest):
    """Above smtp.queue_high_water unfinished deliveries MAIL FROM is
    answered 452 4.3.1, also in sessions already open; once deliveries drain
    under 90 % of the mark, mail is accepted again."""
    smtp_config = LIMITS + "queue_high_water = 2\n"
    extra_config = """
[retry]
open_interval = "1s"
max_open_retries = 1000
"""

    def send(self, c, subject):
        self.assertEqual(self.mail_from(c, 250)[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@sales.example.test>")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send(b"Subject: " + subject + b"\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)

    def test_452_above_the_mark_until_the_queue_drains(self):
        # The sales postoffice has no folder yet: its mail stays queued.
        c = self.client()
        c.command("EHLO busy.example.org")
        self.send(c, b"one")
        self.send(c, b"two")
        self.server.wait_for_log("smtp.queue_high_water 2: new mail gets 452 4.3.1")
        code, text = self.mail_from(c, 452)
        self.assertEqual((code, text[:5]), (452, "4.3.1"), text)
        later = self.client()
        later.command("EHLO later.example.org")
        code, text = later.command("MAIL FROM:<ann@example.org>")
        self.assertEqual((code, text[:5]), (452, "4.3.1"), text)
        sales = os.path.join(self.workdir, "var", "postoffices", "sales")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(sales, "bob", sub))
        open(os.path.join(sales, ".postoffice"), "w").close()
        self.server.wait_for_log("new mail is accepted again")
        # Logged once under 90 % of the mark: the second delivery may still
        # be under way then.
        self.assertEqual(len(wait_for_files(os.path.join(sales, "bob", "new"), count=2)), 2)
        self.send(c, b"three")
        self.send(later, b"four")


class DiskReserve(SmtpServerTest):
    """Below server.min_free_space free bytes on the queue's disk, MAIL FROM
    is answered 452 4.3.1, and a message whose transaction began before the
    disk fell below it is refused at the end of DATA with the same answer
    and not queued; a reload that lowers the reserve takes mail again. No
    disk has 2^60 bytes free, so that reserve is never met."""
    unreachable = "min_free_space = 1152921504606846976\n"

    def metrics(self):
        url = "http://127.0.0.1:%d/metrics" % self.admin_port
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        return {line.split()[0]: float(line.split()[1])
                for line in text.splitlines() if line.startswith("postconn_")}

    def reload(self, server_config, needle):
        self.write_config(server_config)
        self.server.proc.send_signal(signal.SIGHUP)
        return self.server.wait_for_log(needle)

    def test_452_at_mail_from_below_the_reserve_from_the_start_until_a_reload_lowers_it(self):
        self.server.stop()
        self.server.__exit__()
        self.write_config(self.unreachable)
        self.server = self.start()
        self.server.wait_for_log("below server.min_free_space 1099511627776 MiB: "
                                 "new mail gets 452 4.3.1")
        c = self.client()
        c.command("EHLO full.example.org")
        code, text = self.mail_from(c, 452)
        self.assertEqual((code, text), (452, "4.3.1 Insufficient system storage, "
                                             "try again later"))
        self.reload("min_free_space = 0\n", "new mail is accepted again")
        self.assertEqual(self.mail_from(c, 250)[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@sales.example.test>")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send(b"Subject: room again\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertIsNotNone(self.stored(queued_id(text)))
        metrics = self.metrics()
        self.assertGreater(metrics["postconn_queue_disk_free_bytes"], 0)
        self.assertEqual(metrics["postconn_messages_refused_low_space_total"], 0)

    def test_a_message_begun_above_the_reserve_is_refused_at_the_end_of_data(self):
        c = self.client_in_data("full.example.org")
        self.reload(self.unreachable, "new mail gets 452 4.3.1")
        c.send(b"Subject: too late\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual((code, text), (452, "4.3.1 Insufficient system storage, "
                                             "try again later"))
        self.assertIn("not queued: store: low on disk space",
                      self.server.wait_for_log("not queued"))
        with self.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM messages").fetchone()[0], 0)
        self.assertEqual(self.metrics()["postconn_messages_refused_low_space_total"], 1)
        # The session goes on: the next MAIL FROM gets the same answer.
        code, text = self.mail_from(c, 452)
        self.assertEqual((code, text[:5]), (452, "4.3.1"))


class StartTls(SmtpServerTest):
    """RFC 3207 with real clients: smtplib verifying the certificate, swaks
    --tls, and a raw client trying the STARTTLS command injection."""

    @classmethod
    def setUpClass(cls):
        cls.certificates = tempfile.TemporaryDirectory(prefix="postconn-tls-")
        cls.certificate, cls.key = make_certificate(cls.certificates.name)
        cls.smtp_config = LIMITS + f'tls_certificate = "{cls.certificate}"\n' \
                                   f'tls_key = "{cls.key}"\n'

    @classmethod
    def tearDownClass(cls):
        cls.certificates.cleanup()

    def test_smtplib_sends_inside_tls(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.ehlo("tls.example.org")
            self.assertTrue(client.has_extn("starttls"))
            context = ssl.create_default_context(cafile=self.certificate)
            context.check_hostname = False  # the certificate names the host, not 127.0.0.1
            code, _ = client.starttls(context=context)
            self.assertEqual(code, 220)
            client.ehlo("tls.example.org")
            self.assertFalse(client.has_extn("starttls"))
            self.assertEqual(client.sock.version(), "TLSv1.3")
            refused = client.sendmail("ann@example.org", ["bob@sales.example.test"],
                                      b"Subject: secret\r\n\r\nover TLS\r\n")
            self.assertEqual(refused, {})
            code, text = client.docmd("STARTTLS")
            self.assertEqual((code, text[:5]), (503, b"5.5.1"))
        self.server.wait_for_log("TLS started, TLSv1.3 with cipher")
        with self.db() as db:
            content, = db.execute("SELECT content FROM messages").fetchone()
        self.assertIn(b"with ESMTPS", content.split(b"\r\n\r\n")[0])
        self.assertTrue(content.endswith(b"over TLS\r\n"))

    def test_swaks_tls(self):
        done = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{self.port}", "--tls",
             "--from", "ann@example.org", "--to", "bob@sales.example.test",
             "--helo", "swaks.example.org", "--header", "Subject: swaks over TLS"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("<-  220 2.0.0 Ready to start TLS", done.stdout)
        self.assertIn("=== TLS started with cipher TLSv1.3", done.stdout)
        self.assertIn("<~  250 2.0.0 Ok: queued as", done.stdout)
        self.assertEqual(self.message_count(), 1)

    def test_commands_pipelined_with_starttls_are_dropped(self):
        c = self.client()
        c.command("EHLO tls.example.org")
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        self.assertEqual(c.reply()[0], 220)
        context = ssl.create_default_context(cafile=self.certificate)
        context.check_hostname = False
        with context.wrap_socket(c.sock, server_hostname="connector.example.test") as tls:
            tls.sendall(b"EHLO tls.example.org\r\n")
            c.sock, c.buffer = tls, b""
            self.assertEqual(c.reply()[0], 250)
            code, text = c.command("RCPT TO:<bob@sales.example.test>")
            self.assertEqual((code, text), (503, "5.5.1 Error: need MAIL command"))
        self.server.wait_for_log("bytes pipelined after STARTTLS dropped")

    def test_plaintext_instead_of_a_handshake_closes_the_connection(self):
        c = self.client()
        c.command("EHLO tls.example.org")
        self.assertEqual(c.command("STARTTLS")[0], 220)
        c.send(b"MAIL FROM:<ann@example.org>\r\n")
        self.assertTrue(c.closed())
        self.server.wait_for_log("TLS failed, disconnected")

    def peer_name(self):
        c = self.client()
        c.command("EHLO renew.example.org")
        c.command("STARTTLS")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(c.sock, server_hostname="connector.example.test") as tls:
            der = tls.getpeercert(binary_form=True)
        return subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                              input=der, capture_output=True, check=True).stdout.decode()

    def test_sighup_takes_a_renewed_certificate(self):
        self.assertIn("CN = connector.example.test", self.peer_name())
        renewed, renewed_key = make_certificate(self.workdir, "renewed.example.test")
        with open(self.config) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text.replace(self.certificate, renewed).replace(self.key, renewed_key))
        self.server.proc.send_signal(signal.SIGHUP)
        self.server.wait_for_log("reload: " + self.config)
        self.assertIn("CN = renewed.example.test", self.peer_name())

    def test_a_key_that_does_not_match_refuses_to_start(self):
        _, other_key = make_certificate(self.workdir, "other.example.test")
        with temp_workdir() as elsewhere:
            config = write_config(elsewhere, smtp=f'tls_certificate = '
                                  f'"{self.certificate}"\ntls_key = "{other_key}"\n')
            with Server(elsewhere, config) as server:
                code = server.proc.wait(20)
                server.stop()
        self.assertEqual(code, 1)
        self.assertIn(f"smtp.tls_key: {other_key}: the key does not match the certificate",
                      server.log)


class StoreFailure(SmtpServerTest):
    """A queue that cannot grow (RLIMIT_FSIZE, as on a full disk) answers
    451 4.3.0, keeps what it had, and never answers 250 for the refused."""

    def start(self, **popen):
        def limit_file_size():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))
        return super().start(preexec_fn=limit_file_size)

    smtp_config = """
max_message_size = 10000000
"""

    def test_full_disk_gives_451_and_loses_nothing(self):
        c = self.client_in_data("full.example.org")
        c.send(b"Subject: small\r\n\r\nfits\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        kept = queued_id(text)
        c.command("MAIL FROM:<ann@example.org>")
        c.command("RCPT TO:<bob@sales.example.test>")
        c.command("DATA")
        c.send(b"Subject: big\r\n\r\n" + (b"w" * 998 + b"\r\n") * 1000 + b".\r\n")
        code, text = c.reply()
        self.assertEqual((code, text[:5]), (451, "4.3.0"), text)
        self.assertEqual(c.command("NOOP")[0], 250)
        c.close()
        self.server.stop()
        self.assertEqual(self.message_count(), 1)
        self.assertIsNotNone(self.stored(kept))
        with self.db() as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")


if __name__ == "__main__":
    unittest.main()
