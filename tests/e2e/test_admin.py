"""End-to-end admin API: the real server's /queue, /messages/ID,
/postoffices, hold, release, flush, run-time faults and /metrics, read with
an HTTP client as a dashboard or a script would. A held message is not
delivered until it is released; /metrics parses with the Prometheus
project's own text-format parser."""
import json
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from postconn_process import Server, refusing_port, run, temp_workdir, write_config
from test_delivery import RETRIES, DeliveryTest, make_postoffice, wait_for_files


def metrics_families(text):
    """Parses Prometheus text with prometheus_client (Debian's
    python3-prometheus-client, for Debian's interpreter): {name: {labels
    as a sorted tuple: value}}."""
    script = (
        "import json, sys\n"
        "from prometheus_client.parser import text_string_to_metric_families\n"
        "out = {}\n"
        "for family in text_string_to_metric_families(sys.stdin.read()):\n"
        "    for s in family.samples:\n"
        "        out.setdefault(s.name, []).append([sorted(s.labels.items()), s.value])\n"
        "print(json.dumps(out))\n")
    done = subprocess.run(["/usr/bin/python3", "-c", script], input=text,
                          capture_output=True, text=True)
    assert done.returncode == 0, "not valid Prometheus text:\n" + done.stderr
    return {name: {tuple(map(tuple, labels)): value for labels, value in samples}
            for name, samples in json.loads(done.stdout).items()}


class AdminServer(DeliveryTest):
    """A server with its admin API (on the port it logged); mail to sales is
    retried every second, up to 50 failed opens."""

    def setUp(self):
        self.start_server(RETRIES.replace("max_open_retries = 2", "max_open_retries = 50"))

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}",
                                         data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                raw = reply.read().decode()
                status = reply.status
        except urllib.error.HTTPError as e:
            raw, status = e.read().decode(), e.code
        content = json.loads(raw) if raw.startswith("{") else raw
        return status, content

    def verb(self, *args):
        """Runs a postconn verb against this server."""
        return run(*args, "--admin", self.server.admin_url)

    def queued_id(self, postoffice="sales"):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            _, queue = self.call("GET", f"/queue?postoffice={postoffice}")
            if queue["deliveries"]:
                return queue["deliveries"][0]["message_id"]
            time.sleep(0.05)
        raise AssertionError("nothing queued for " + postoffice)

    def until_not_busy(self, request):
        """Repeats `request` while the server answers that an attempt is
        under way (409), as an administrator would."""
        deadline = time.monotonic() + 10
        while True:
            result = request()
            if "under way" not in str(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.1)

    def wait_for(self, predicate, what, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.assertLess(time.monotonic(), deadline, what)
            time.sleep(0.05)



class AdminApi(AdminServer):
    def raw_request(self, text):
        """Sends `text` as it is (no Content-Length added); the status line
        and the JSON error of the reply."""
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=10) as conn:
            conn.sendall(text.encode())
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        head, _, body = reply.decode().partition("\r\n\r\n")
        return head.split("\r\n")[0], json.loads(body)["error"]

    def test_errors_say_what_was_wrong_with_the_request(self):
        status, error = self.raw_request("POST /flush HTTP/1.1\r\nHost: x\r\n"
                                         "Connection: close\r\n\r\n")
        self.assertEqual(status, "HTTP/1.1 400 Bad Request")
        self.assertIn("POST /flush has no Content-Length", error)
        status, error = self.raw_request("GET /nothing HTTP/1.1\r\nHost: x\r\n"
                                         "Connection: close\r\n\r\n")
        self.assertEqual(status, "HTTP/1.1 404 Not Found")
        self.assertEqual(error, "no such resource: GET /nothing")
        status, flushed = self.call("POST", "/flush", {})
        self.assertEqual(status, 200, flushed)

    def test_queue_message_and_postoffices_show_a_share_that_is_down(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        message_id = self.queued_id()
        self.wait_for(lambda: self.call("GET", "/queue")[1]["deliveries"][0]["open_retries"] >= 1,
                      "no failed open counted")
        status, queue = self.call("GET", "/queue?state=deferred&postoffice=sales")
        self.assertEqual(status, 200)
        self.assertEqual(queue["total"], 1)
        delivery = queue["deliveries"][0]
        self.assertEqual(delivery["recipients"], ["bob@sales.example.test"])
        self.assertEqual(delivery["max_open_retries"], 50)
        self.assertIn("4.4.1", delivery["last_error"])
        self.assertEqual(self.call("GET", "/queue?postoffice=support")[1]["total"], 0)
        self.assertEqual(self.call("GET", "/queue?limit=x")[0], 400)

        _, offices = self.call("GET", "/postoffices")
        sales = next(p for p in offices["postoffices"] if p["name"] == "sales")
        self.assertEqual(sales["state"], "down")
        self.assertIn("root", sales["problem"])
        self.assertEqual((sales["transport"], sales["queued"] + sales["in_flight"]), ("maildir", 1))
        self.assertGreater(sales["since"], 0)

        status, message = self.call("GET", f"/messages/{message_id}")
        self.assertEqual(status, 200)
        self.assertEqual(message["sender"], "ann@support.example.test")
        [attempts] = [d["attempts"] for d in message["deliveries"]]
        self.assertEqual(attempts[0]["outcome"], "open_failed")
        self.assertEqual(self.call("GET", "/messages/0123456789abcdef")[0], 404)

    def test_a_held_message_waits_for_its_release(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        message_id = self.queued_id()
        # Held just after a failed open has been recorded, a second before the
        # next attempt: a hold that lands during an attempt takes effect
        # when the attempt ends.
        retries = max(self.deferred_open_retries(), 1)
        self.wait_for(lambda: self.deferred_open_retries() > retries, "no next attempt")
        self.assertEqual(self.call("POST", f"/messages/{message_id}/hold"), (200, {"held": 1}))
        os.rename(self.sales + ".gone", self.sales)
        self.wait_for(lambda: self.call("GET", "/queue?state=held")[1]["deliveries"],
                      "the delivery is not held")
        # The flush passes the held delivery over (the server's own count).
        self.assertEqual(self.call("POST", "/flush"), (200, {"flushed": 0}))
        _, queue = self.call("GET", "/queue?state=held")
        [held] = queue["deliveries"]
        self.assertEqual(held["message_id"], message_id)
        # Were it not held, its next attempt would reach the share before a
        # message sent after that time through the same postoffice: once
        # that one has landed, the held one would have too.
        self.wait_for(lambda: time.time() > held["next_attempt_at"] + 1,
                      "its next attempt never came", timeout=120)
        self.send(["bob@sales.example.test"], b"Subject: later\r\n\r\nlater\r\n")
        [later] = wait_for_files(os.path.join(self.sales, "bob/new"), timeout=5)
        with open(later, "rb") as delivered:
            self.assertIn(b"Subject: later", delivered.read())
        _, queue = self.call("GET", "/queue?state=held")
        self.assertEqual([d["message_id"] for d in queue["deliveries"]], [message_id])
        self.assertEqual(self.call("POST", f"/messages/{message_id}/release"),
                         (200, {"released": 1}))
        wait_for_files(os.path.join(self.sales, "bob/new"), count=2, timeout=5)
        # The file is in place before the ledger commits the delivery.
        self.wait_for(lambda: self.call("GET", f"/messages/{message_id}")[1]
                      ["deliveries"][0]["state"] == "delivered", "released mail not delivered")
        _, message = self.call("GET", f"/messages/{message_id}")
        outcomes = [a["outcome"] for a in message["deliveries"][0]["attempts"]]
        # A hold does not wait for an attempt under way: its failed open
        # (the share was still gone) may come after "held", never another.
        after_hold = outcomes[len(outcomes) - 1 - outcomes[::-1].index("held"):]
        self.assertIn(after_hold, (["held", "released", "delivered"],
                                   ["held", "open_failed", "released", "delivered"]))
        self.assertEqual(message["deliveries"][0]["state"], "delivered")

    def test_a_fault_injected_at_run_time_holds_mail_until_lifted(self):
        status, reply = self.call("PUT", "/postoffices/sales/fault", {"mode": "unreachable"})
        self.assertEqual((status, reply), (200, {"postoffice": "sales", "fault": "unreachable"}))
        self.send(["bob@sales.example.test"])
        self.queued_id()
        self.wait_for(lambda: self.call("GET", "/queue")[1]["deliveries"][0]["open_retries"] >= 2,
                      "no failed opens counted")
        self.assertEqual(os.listdir(os.path.join(self.sales, "bob/new")), [])
        self.assertIn("fault injection", self.call("GET", "/queue")[1]["deliveries"][0]["last_error"])
        self.assertEqual(self.call("PUT", "/postoffices/sales/fault", {"mode": "none"})[0], 200)
        self.call("POST", "/flush?postoffice=sales")
        wait_for_files(os.path.join(self.sales, "bob/new"), timeout=5)
        status, reply = self.call("PUT", "/postoffices/sales/fault", {"mode": "explode"})
        self.assertEqual(status, 400)
        self.assertIn("fault.mode: unknown fault \"explode\"", reply["error"])
        self.assertEqual(self.call("PUT", "/postoffices/nowhere/fault", {"mode": "none"})[0], 404)
        self.assertEqual(self.call("POST", "/flush?postoffice=nowhere")[0], 404)

    def test_delete_leaves_no_trace_and_delete_with_ndr_bounces(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        gone = self.queued_id()
        self.server.wait_for_log("open_retries=1/50")
        self.assertEqual(self.until_not_busy(lambda: self.call("DELETE", f"/messages/{gone}")),
                         (200, {"deleted": 1}))
        self.assertEqual(self.call("GET", f"/messages/{gone}")[0], 404)
        self.assertEqual(self.call("DELETE", f"/messages/{gone}")[0], 404)
        self.assertEqual(self.call("GET", "/queue")[1]["total"], 0)
        db = sqlite3.connect(os.path.join(self.dir, "var/queue.db"))
        row = int(gone, 16)
        self.assertEqual(db.execute("SELECT count(*) FROM messages WHERE id = ?", (row,))
                         .fetchone()[0], 0)
        self.assertEqual(db.execute("SELECT count(*) FROM deliveries WHERE message_id = ?",
                                    (row,)).fetchone()[0], 0)
        self.assertEqual(db.execute("SELECT count(*) FROM attempts WHERE delivery_id NOT IN"
                                    " (SELECT id FROM deliveries)").fetchone()[0], 0)
        db.close()
        self.send(["bob@sales.example.test"])
        bounced = self.queued_id()
        code, out, err = self.until_not_busy(
            lambda: run("delete", bounced, "--ndr", "--admin", self.server.admin_url))
        self.assertEqual((code, out), (0, "bounced 1 delivery\n"), err)
        _, status = self.ndr()
        self.assertIn("Status: 5.0.0", status)
        self.assertIn("deleted from the queue by the administrator", " ".join(status.split()))

    def deferred_open_retries(self):
        """The failed opens of the one queued delivery while it waits
        between attempts (-1 while an attempt is under way)."""
        [delivery] = self.call("GET", "/queue")[1]["deliveries"]
        return delivery["open_retries"] if delivery["state"] == "deferred" else -1

    def test_metrics_parse_as_prometheus_text(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        self.queued_id()
        self.wait_for(lambda: next(p for p in self.call("GET", "/postoffices")[1]["postoffices"]
                                   if p["name"] == "sales")["state"] == "down",
                      "sales never went down")
        with socket.create_connection(("127.0.0.1", self.port)) as client:
            client.recv(512)  # the greeting: the session is open
            status, text = self.call("GET", "/metrics")
        self.assertEqual(status, 200)
        families = metrics_families(text)
        self.assertEqual(families["postconn_smtp_sessions"][()], 1)
        up = families["postconn_postoffice_up"]
        self.assertEqual(up[(("postoffice", "sales"),)], 0)
        self.assertEqual(up[(("postoffice", "support"),)], 1)
        state = families["postconn_postoffice_state"]
        self.assertEqual(state[(("postoffice", "sales"), ("state", "down"))], 1)
        self.assertEqual(state[(("postoffice", "sales"), ("state", "unknown"))], 0)
        depth = families["postconn_queue_deliveries"]
        queued = sum(v for labels, v in depth.items() if ("postoffice", "sales") in labels)
        self.assertEqual(queued, 1)
        commits = families["postconn_store_commits_total"][()]
        self.assertGreaterEqual(commits, 1)
        self.assertEqual(families["postconn_messages_received_total"][()], 1)
        attempts = families["postconn_attempts_total"]
        self.assertGreaterEqual(attempts[(("outcome", "open_failed"), ("postoffice", "sales"))], 1)
        # The histogram's buckets are cumulative and end with every commit.
        buckets = families["postconn_store_commit_seconds_bucket"]
        counts = [count for _, count in sorted(
            buckets.items(), key=lambda item: float(dict(item[0])["le"]))]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(counts[-1], families["postconn_store_commit_seconds_count"][()])
        self.assertGreaterEqual(counts[-1], commits)


class PostofficeStateAtStart(unittest.TestCase):
    """A postoffice is unknown until probed and probed as its actor starts:
    after a restart, one whose share went away reads down within seconds,
    never up, though its idle probes are ten minutes apart."""

    def test_a_share_gone_over_a_restart_reads_down_at_once_never_up(self):
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        directory = holder.name
        sales = os.path.join(directory, "var/postoffices/sales")
        make_postoffice(sales, "bob")
        make_postoffice(os.path.join(directory, "var/postoffices/support"), "ann")
        config = write_config(directory, extra='[retry]\nopen_interval = "10m"\n')
        with Server(directory, config) as server:
            server.wait_for_log("serving on")
            self.assertEqual(self.states_until(server.admin_port, "up")[-1], "up")
            self.assertEqual(server.stop(), 0)
        shutil.rmtree(sales)
        with Server(directory, config) as server:
            server.wait_for_log("serving on")
            seen = self.states_until(server.admin_port, "down")
            self.assertNotIn("up", seen)
            self.assertIn("postoffice sales: unreachable", server.wait_for_log("unreachable"))
            with urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/metrics",
                                        timeout=10) as reply:
                families = metrics_families(reply.read().decode())
            self.assertEqual(families["postconn_postoffice_up"][(("postoffice", "sales"),)], 0)
            self.assertEqual(server.stop(), 0)

    def states_until(self, admin_port, wanted, timeout=5):
        """The states sales goes through (each once, in order), read every
        20 ms until it shows `wanted`; fails after `timeout` seconds."""
        seen = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1] != wanted:
            self.assertLess(time.monotonic(), deadline, f"sales is not {wanted}: {seen}")
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/postoffices",
                                        timeout=10) as reply:
                offices = json.loads(reply.read())["postoffices"]
            state = next(p for p in offices if p["name"] == "sales")["state"]
            if not seen or seen[-1] != state:
                seen.append(state)
            time.sleep(0.02)
        return seen


class FinishedMailRetention(AdminServer):
    """server.keep_finished = "1s": delivered mail leaves the queue a second
    or two after its delivery, except the newest message (queue ids continue
    from it after a restart); the mailbox keeps every copy."""

    def setUp(self):
        self.start_server(server='keep_finished = "1s"\n')

    def send_one(self):
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            client.ehlo()
            client.mail("ann@support.example.test")
            client.rcpt("bob@sales.example.test")
            code, reply = client.data(b"Subject: kept for a second\r\n\r\nbody\r\n")
        self.assertEqual(code, 250, reply)
        return reply.decode().rsplit(" ", 1)[1]

    def gone(self, message_id):
        return self.call("GET", f"/messages/{message_id}")[0] == 404

    def test_delivered_mail_leaves_the_queue_after_keep_finished(self):
        first, second = self.send_one(), self.send_one()
        wait_for_files(os.path.join(self.sales, "bob/new"), count=2)
        self.wait_for(lambda: self.gone(first), "the first message stayed", timeout=20)
        self.assertIn("removed 1 finished messages", self.server.wait_for_log("removed"))
        status, shown = self.call("GET", f"/messages/{second}")
        self.assertEqual(status, 200, shown)
        self.assertEqual(metrics_families(self.call("GET", "/metrics")[1])
                         ["postconn_messages_purged_total"][()], 1)
        # With a newer message delivered, the second goes too.
        self.send_one()
        self.wait_for(lambda: self.gone(second), "the second message stayed", timeout=20)
        files = wait_for_files(os.path.join(self.sales, "bob/new"), count=3)
        self.assertEqual(len(files), 3)
        for path in files:
            with open(path, "rb") as f:
                self.assertTrue(f.read().endswith(b"\n\nbody\n"), path)
        with sqlite3.connect(os.path.join(self.dir, "var/queue.db")) as db:
            self.assertEqual(db.execute("SELECT count(*) FROM messages").fetchone()[0], 1)
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")


class UsageErrors(unittest.TestCase):
    """A command line postconn cannot use exits 2 and says why; no server
    is asked."""

    def test_usage_problems_exit_2(self):
        for args in (["hold"], ["queue", "--limit", "five"], ["frobnicate"], ["serve"],
                     ["queue", "--admin"], [], ["release", "--postoffice", ""],
                     ["delete", "0006615ab267c25e", "--state", "deferred"],
                     ["queue", "--all", "--offset", "5"], ["show"]):
            code, out, err = run(*args)
            self.assertEqual(code, 2, (args, out, err))
            self.assertTrue(err.strip(), args)

    def test_help_and_version_exit_0(self):
        for args in (["--help"], ["queue", "--help"], ["--version"]):
            code, out, _ = run(*args)
            self.assertEqual(code, 0, args)
            self.assertTrue(out.strip(), args)


class AdminVerbs(AdminServer):
    """The admin verbs of the command line against the same server."""

    def test_queue_postoffices_ledger_hold_release_and_flush(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        message_id = self.queued_id()
        self.server.wait_for_log("open_retries=1/50")
        code, out, err = self.verb("queue")
        self.assertEqual(code, 0, err)
        self.assertIn(message_id, out)
        self.assertRegex(out, r"sales +(deferred|queued|in_flight) ")
        self.assertIn("1 delivery", out)
        code, out, _ = self.verb("queue", "--postoffice", "support")
        self.assertEqual((code, out.strip()), (0, "queue is empty"))
        code, out, _ = self.verb("queue", "--json")
        self.assertEqual(json.loads(out)["deliveries"][0]["message_id"], message_id)
        code, out, _ = self.verb("postoffices")
        self.assertRegex(out, r"sales +maildir +DOWN")
        self.assertEqual(self.verb("hold", message_id)[:2], (0, "held 1 delivery\n"))
        code, out, _ = self.verb("ledger", message_id)
        self.assertEqual(code, 0)
        self.assertIn("ann@support.example.test", out)
        self.assertIn("held", out)
        os.rename(self.sales + ".gone", self.sales)
        self.assertEqual(self.verb("flush", "sales")[0], 0)
        self.assertEqual(self.verb("release", message_id)[:2], (0, "released 1 delivery\n"))
        [path] = wait_for_files(os.path.join(self.sales, "bob/new"), timeout=5)
        # The ledger keeps who received it, and where the maildir put it.
        outcome = re.compile(r"\n +bob@sales\.example\.test +delivered +2\.0\.0 +\S+ \S+ +"
                             r"delivered to bob/new/" + re.escape(os.path.basename(path)) + "\n")
        self.wait_for(lambda: outcome.search(self.verb("ledger", message_id)[1]),
                      "no outcome of bob in the ledger")
        code, _, err = self.verb("ledger", "0123456789abcdef")
        self.assertEqual(code, 1)
        self.assertIn("no message 0123456789abcdef", err)
        # --config finds the server by its [admin] listen: the server was
        # started on port 0, so a copy of its config names the port it got.
        code, out, _ = run("postoffices", "--config", self.config_with_real_ports())
        self.assertEqual(code, 0)
        self.assertRegex(out, r"sales +maildir +up")

    def test_queue_by_sender_and_requeue_to_another_postoffice(self):
        os.rename(self.sales, self.sales + ".gone")
        make_postoffice(self.support, "bob")
        self.send(["bob@sales.example.test"])
        message_id = self.queued_id()
        self.server.wait_for_log("open_retries=1/50")
        code, out, _ = self.verb("queue", "--sender", "ANN@Support", "--json")
        self.assertEqual([d["message_id"] for d in json.loads(out)["deliveries"]], [message_id])
        code, out, _ = self.verb("queue", "--sender", "carol@")
        self.assertEqual((code, out.strip()), (0, "queue is empty"))
        self.assertEqual(self.call("POST", f"/messages/{message_id}/requeue")[0], 400)
        self.assertEqual(self.call("POST", f"/messages/{message_id}/requeue?postoffice=hr"),
                         (404, {"error": "no postoffice hr"}))
        code, _, err = self.verb("requeue", message_id)
        self.assertEqual(code, 2, err)
        code, out, err = self.until_not_busy(lambda: self.verb("requeue", message_id,
                                                               "--to", "support"))
        self.assertEqual((code, out), (0, "requeued 1 delivery\n"), err)
        [path] = wait_for_files(os.path.join(self.support, "bob/new"))
        with open(path, "rb") as delivered:
            self.assertIn(b"line one", delivered.read())
        # The file is in place before the ledger commits the delivery.
        def delivery():
            [only] = self.call("GET", f"/messages/{message_id}")[1]["deliveries"]
            return only
        self.wait_for(lambda: delivery()["state"] == "delivered", "requeued mail not delivered")
        self.assertEqual(delivery()["postoffice"], "support")
        self.assertIn("requeued from sales to support by the administrator",
                      json.dumps(delivery()["attempts"]))
        self.assertEqual(os.listdir(os.path.join(self.sales + ".gone", "bob/new")), [])

    def config_with_real_ports(self):
        """A copy of the server's config with the admin port it listens on."""
        with open(os.path.join(self.dir, "postconn.toml")) as f:
            text = f.read()
        path = os.path.join(self.dir, "postconn-real-ports.toml")
        with open(path, "w") as f:
            f.write(text.replace('listen = "127.0.0.1:0"\n\n[[postoffice]]',
                                 f'listen = "127.0.0.1:{self.admin_port}"\n\n[[postoffice]]', 1))
        return path

    def test_a_server_that_is_not_there(self):
        # Bound but not listening: refused, and no other server can take it.
        refusing, port = refusing_port()
        self.addCleanup(refusing.close)
        code, _, err = run("queue", "--admin", f"127.0.0.1:{port}")
        self.assertEqual(code, 3)
        self.assertIn("cannot reach the admin API", err)


class AheadOfSchedule(AdminServer):
    """Retries ten minutes apart, a postoffice that is down probed every
    second: mail goes out as soon as the share is back, and attempts made
    ahead of schedule that fail use no retry."""

    def setUp(self):
        self.start_server('[retry]\nmax_open_retries = 50\nopen_interval = "10m"\n'
                          'recovery_probe_interval = "1s"\n')

    def test_deferred_mail_goes_out_within_seconds_of_the_share_coming_back(self):
        os.rename(self.sales, self.sales + ".gone")
        for n in range(3):
            self.send(["bob@sales.example.test"], f"Subject: {n}\r\n\r\nbody\r\n".encode())
        self.server.wait_for_log("open_retries=1/50", count=3)
        os.rename(self.sales + ".gone", self.sales)
        back = time.monotonic()
        wait_for_files(os.path.join(self.sales, "bob/new"), count=3, timeout=10)
        # Ten minutes before their retry time: the probe found the share.
        self.assertLess(time.monotonic() - back, 10)
        self.assertIn("postoffice sales: up again; 3 deferred deliveries due now",
                      self.server.wait_for_log("up again"))

    def test_a_flush_that_fails_uses_no_retry(self):
        os.rename(self.sales, self.sales + ".gone")
        self.send(["bob@sales.example.test"])
        message_id = self.queued_id()
        self.server.wait_for_log("open_retries=1/50")
        self.assertEqual(self.verb("flush", "sales")[:2], (0, "flushed 1 delivery\n"))
        self.server.wait_for_log("(ahead of schedule: no retry used)")
        code, out, err = self.verb("ledger", message_id)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"\n +opens +1/50\n")
        self.assertRegex(out, r"\n +attempts +2 \(1 ahead of schedule failed, no retry used\)\n")
        [delivery] = self.call("GET", f"/messages/{message_id}")[1]["deliveries"]
        self.assertEqual((delivery["attempts_made"], delivery["unscheduled_failures"],
                          delivery["open_retries"]), (2, 1, 1))


class BearerToken(AdminServer):
    """[admin] token_file: every request needs the token, the verbs send it."""

    def setUp(self):
        super().setUp()
        self.token_file = os.path.join(self.dir, "admin.token")
        with open(self.token_file, "w") as f:
            f.write("s3cret-token\n")
        self.config = os.path.join(self.dir, "postconn.toml")
        with open(self.config) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text.replace("[admin]\n", '[admin]\ntoken_file = "admin.token"\n', 1))
        self.assertEqual(self.server.stop(), 0)
        self.server = Server(self.dir, self.config)
        self.addCleanup(self.server.__exit__)
        self.addCleanup(self.server.stop)

    def test_requests_need_the_token_and_the_verbs_send_it(self):
        self.serving()
        status, reply = self.call("GET", "/queue")
        self.assertEqual((status, reply), (401, {"error": "missing or wrong bearer token"}))
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}/queue",
                                         headers={"Authorization": "Bearer s3cret-token"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            self.assertEqual(json.loads(reply.read())["total"], 0)
        code, _, err = run("queue", "--admin", self.server.admin_url)
        self.assertEqual(code, 1)
        self.assertIn("missing or wrong bearer token", err)
        code, out, _ = run("queue", "--admin", self.server.admin_url,
                           "--token-file", self.token_file)
        self.assertEqual((code, out.strip()), (0, "queue is empty"))
        # The token from --config; the address from --admin (the config
        # says port 0).
        code, out, err = run("postoffices", "--config", self.config, "--admin",
                             self.server.admin_url, cwd=self.dir)
        self.assertEqual(code, 0, err)

    def test_a_token_file_that_cannot_be_read_stops_the_start(self):
        self.server.wait_for_log("serving on")
        self.assertEqual(self.server.stop(), 0)
        os.unlink(self.token_file)
        with Server(self.dir, self.config) as server:
            self.assertEqual(server.proc.wait(20), 1)
            server.stop()
        self.assertIn("admin.token_file admin.token: cannot read", server.log)


if __name__ == "__main__":
    unittest.main()
