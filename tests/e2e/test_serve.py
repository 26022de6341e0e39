"""End-to-end tests of the command line: `postconn --version`,
`postconn check-config` and `postconn serve` start-up checks and shutdown,
run against the real binary."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import unittest
import urllib.request

from postconn_process import (POSTCONN, SOURCE_DIR, Server, free_port, run,
                              temp_workdir, write_config)


def wait_for_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class CommandLine(unittest.TestCase):
    def test_version(self):
        code, out, _ = run("--version")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"^postconn \d+\.\d+\.\d+")

    def test_example_config_is_valid(self):
        code, out, err = run("check-config", os.path.join(SOURCE_DIR, "conf/postconn.toml"))
        self.assertEqual(code, 0, err)
        self.assertIn("ok (2 postoffices)", out)

    def test_bad_config_names_every_problem_key(self):
        with temp_workdir() as d:
            config = write_config(d, extra="""
[retry]
open_interval = "10 minutes"

[[postoffice]]
name = "sales"
domains = ["other.example.test"]
transport = "maildir"
path = "var/postoffices/other"
colour = "blue"
""")
            code, out, err = run("check-config", config)
        self.assertNotEqual(code, 0)
        self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertTrue(any("retry.open_interval:" in l for l in lines), err)
        self.assertTrue(any("postoffice[2].name:" in l and "sales" in l for l in lines), err)
        self.assertTrue(any("postoffice[2].colour:" in l for l in lines), err)

    def test_missing_config_file(self):
        code, _, err = run("check-config", "/nonexistent/postconn.toml")
        self.assertNotEqual(code, 0)
        self.assertIn("cannot read", err)


class Serve(unittest.TestCase):
    def test_starts_creates_the_queue_and_stops_cleanly_on_sigterm(self):
        with temp_workdir() as d:
            with Server(d, write_config(d)) as server:
                server.wait_for_log("serving on")
                self.assertIn("serving on 127.0.0.1:%d " % server.smtp_port, server.log)
                self.assertEqual(server.stop(signal.SIGTERM), 0)
                self.assertIn("shutdown: clean", server.log)
            db = sqlite3.connect(os.path.join(d, "var", "queue.db"))
            self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            self.assertGreaterEqual(db.execute("PRAGMA user_version").fetchone()[0], 1)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            self.assertLessEqual({"messages", "deliveries", "attempts"}, tables)
            db.close()

    def test_port_0_binds_free_ports_and_the_log_names_them(self):
        with temp_workdir() as d:
            config = write_config(d)
            self.assertEqual(run("check-config", config)[0], 0)
            with Server(d, config) as server:
                server.wait_for_log("serving on")
                self.assertRegex(server.log, r"smtp: listening on 127\.0\.0\.1:[1-9]\d*\n")
                self.assertRegex(server.log, r"admin: listening on 127\.0\.0\.1:[1-9]\d*\n")
                with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=10) as c:
                    self.assertTrue(c.recv(512).startswith(b"220 "))
                code, out, err = run("queue", "--admin", server.admin_url)
                self.assertEqual((code, out.strip()), (0, "queue is empty"), err)
                self.assertEqual(server.stop(), 0)

    def test_sigint_also_stops_cleanly_and_a_restart_reopens_the_queue(self):
        with temp_workdir() as d:
            config = write_config(d)
            for _ in range(2):
                with Server(d, config) as server:
                    server.wait_for_log("queue: 0 unfinished deliveries")
                    self.assertEqual(server.stop(signal.SIGINT), 0)

    def test_log_level_option_overrides_the_config(self):
        with temp_workdir() as d:
            # At warn level no line names the port: one chosen in advance.
            port = free_port()
            with Server(d, write_config(d, port), "--log-level", "warn") as server:
                wait_for_port(port)
                self.assertEqual(server.stop(), 0)
            # At warn level the start-up info lines are not printed.
            self.assertNotIn("serving on", server.log)

    def test_json_log_lines(self):
        with temp_workdir() as d:
            with Server(d, write_config(d), "--log-format", "json") as server:
                server.wait_for_log("serving on")
                self.assertEqual(server.stop(), 0)
            lines = [json.loads(line) for line in server.log.splitlines()]
            messages = [line["message"] for line in lines]
            for started in ("smtp: listening on", "admin: listening on", "serving on"):
                self.assertTrue(any(started in m for m in messages), (started, messages))
            self.assertLessEqual({line["level"] for line in lines}, {"info", "warn"})
            self.assertRegex(lines[0]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_journal_lines_under_systemd(self):
        with temp_workdir() as d, open(os.path.join(d, "stderr"), "w+") as err:
            info = os.fstat(err.fileno())
            env = dict(os.environ, JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}")
            proc = subprocess.Popen([POSTCONN, "serve", "--config", write_config(d)],
                                    cwd=d, stdout=subprocess.DEVNULL, stderr=err, env=env)
            deadline = time.monotonic() + 20
            while "serving on" not in open(err.name).read():
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(20), 0)
            lines = open(err.name).read().splitlines()
            self.assertTrue(lines[0].startswith("<6>queue: "), lines)
            self.assertTrue(all(line.startswith("<") for line in lines), lines)

    def test_the_systemd_unit_verifies(self):
        with temp_workdir() as d:
            with open(os.path.join(SOURCE_DIR, "conf/postconn.service")) as f:
                unit = f.read().replace("/usr/local/bin/postconn", os.path.abspath(POSTCONN))
            # The unit's user exists on a real install only.
            unit = unit.replace("User=postconn", "User=root").replace("Group=postconn",
                                                                      "Group=root")
            path = os.path.join(d, "postconn.service")
            with open(path, "w") as f:
                f.write(unit)
            done = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                                  text=True)
            self.assertEqual((done.returncode, done.stderr), (0, ""))

    def test_refuses_an_invalid_config(self):
        with temp_workdir() as d:
            config = write_config(d, extra='\n[smtp2]\nx = 1\n')
            with Server(d, config) as server:
                code = server.proc.wait(20)
                server.stop()
            self.assertNotEqual(code, 0)
            self.assertIn("smtp2: unknown key", server.log)
            self.assertIn("not started", server.log)
            self.assertFalse(os.path.exists(os.path.join(d, "var", "queue.db")))

    def test_refuses_a_taken_port(self):
        with temp_workdir() as d, socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with Server(d, write_config(d, port)) as server:
                code = server.proc.wait(20)
                server.stop()
            self.assertEqual(code, 1)
            self.assertIn("smtp.listen: cannot listen on 127.0.0.1:%d" % port, server.log)
            self.assertIn("in use", server.log)

    def test_refuses_a_taken_admin_port(self):
        with temp_workdir() as d, socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with Server(d, write_config(d, admin_port=port)) as server:
                code = server.proc.wait(20)
                server.stop()
            self.assertEqual(code, 1)
            self.assertIn("admin.listen: cannot listen on 127.0.0.1:%d" % port, server.log)

    def test_a_second_server_on_the_same_admin_address_stops_and_the_first_keeps_it(self):
        # Each has its own data_dir and SMTP port: only the admin address is
        # shared. cpp-httplib's own socket options would let both listen.
        with temp_workdir() as d1, temp_workdir() as d2:
            with Server(d1, write_config(d1)) as first:
                first.wait_for_log("serving on")
                port = first.admin_port
                with Server(d2, write_config(d2, admin_port=port)) as second:
                    try:
                        code = second.proc.wait(20)
                    except subprocess.TimeoutExpired:
                        code = None
                    second.stop()
                self.assertEqual(code, 1, "the second server did not stop:\n" + second.log)
                [line] = [l for l in second.log.splitlines() if "admin.listen" in l]
                self.assertIn("not started: admin.listen: cannot listen on 127.0.0.1:%d" % port,
                              line)
                self.assertIn("in use", line)
                # The first still answers on its address.
                for _ in range(10):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/postoffices",
                                                timeout=10) as reply:
                        self.assertEqual(reply.status, 200)
                code, out, _ = run("queue", "--admin", f"http://127.0.0.1:{port}")
                self.assertEqual(code, 0, out)
                self.assertEqual(first.stop(), 0)

    def test_refuses_a_data_dir_it_cannot_create(self):
        with temp_workdir() as d:
            with open(os.path.join(d, "var"), "w") as f:
                f.write("a file, not a directory\n")
            with Server(d, write_config(d)) as server:
                code = server.proc.wait(20)
                server.stop()
            self.assertEqual(code, 1)
            self.assertIn("server.data_dir: cannot create var", server.log)

    def test_refuses_a_ledger_it_cannot_read(self):
        with temp_workdir() as d:
            config = write_config(d)
            with Server(d, config) as server:
                server.wait_for_log("serving on")
                self.assertEqual(server.stop(), 0)
            db = sqlite3.connect(os.path.join(d, "var", "queue.db"))
            db.execute("PRAGMA ignore_check_constraints = ON")
            db.execute("INSERT INTO messages (id, sender, received_at, size, content)"
                       " VALUES (1, 'a@b.test', 0, 0, x'')")
            db.execute("INSERT INTO deliveries (message_id, postoffice, recipients, state,"
                       " queued_at, next_attempt_at) VALUES (1, 'sales', 'x@y', 'lost', 0, 0)")
            db.commit()
            db.close()
            with Server(d, config) as server:
                code = server.proc.wait(20)
                server.stop()
            self.assertEqual(code, 1)
            self.assertIn("queue: cannot read the ledger", server.log)
            self.assertIn("unknown state lost", server.log)

    def test_refuses_a_data_dir_used_by_another_server(self):
        with temp_workdir() as d:
            with Server(d, write_config(d)) as first:
                first.wait_for_log("serving on")
                second_config = write_config(d)
                with Server(d, second_config) as second:
                    code = second.proc.wait(20)
                    second.stop()
                self.assertEqual(code, 1)
                self.assertIn("in use by another postconn server", second.log)
                self.assertEqual(first.stop(), 0)


if __name__ == "__main__":
    unittest.main()
