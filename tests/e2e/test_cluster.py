"""End-to-end cluster: three real `postconn serve` nodes on loopback share
seven maildir postoffices (po0 is a's by its `owner` key, the rest go by
hashing). Mail sent to every node for postoffices the other nodes own is
handed to the owner and arrives exactly once. One node is killed with
kill -9 while mail flows: the survivors take over its postoffices and go on
accepting and delivering; mail stranded in its own queue (its postoffice was
unreachable then) waits for it; when it starts again it rejoins, takes its
postoffices back, and delivers what was left in its own queue. In the end
every message that was accepted (250) is in exactly one maildir file. A node
that hangs (SIGSTOP) is lost by its missing heartbeats and rejoins when it
resumes."""
import json
import os
import signal
import smtplib
import subprocess
import textwrap
import threading
import time
import unittest
import urllib.request

from postconn_process import POSTCONN, free_port, listening_port, run, temp_workdir
from test_delivery import make_postoffice

NODES = ["a", "b", "c"]
# Hashing gives b po1-po3, c po4 and po5, a po6; po0 is a's by its owner key.
POSTOFFICES = ["po%d" % i for i in range(7)]


def node_config(node, cluster_ports, shared):
    """A node of the heartbeat cluster: every node is a seed."""
    seeds = ", ".join('"127.0.0.1:%d"' % cluster_ports[n] for n in NODES)
    return cluster_node_config(node, cluster_ports[node], "seeds = [%s]" % seeds, shared)


def cluster_node_config(node, cluster_port, membership, shared):
    """A node's config: ports the node picks (its log names them), quick
    retries, its [cluster] with `membership` (how it finds the others) and
    the seven maildir postoffices under `shared`, po0 owned by a."""
    text = textwrap.dedent(f"""\
        [server]
        hostname = "{node}.example.test"
        data_dir = "var"

        [smtp]
        listen = "127.0.0.1:0"

        [admin]
        listen = "127.0.0.1:0"

        [retry]
        open_interval = "1s"
        transfer_interval = "1s"
        max_open_retries = 1000

        [cluster]
        node = "{node}"
        listen = "127.0.0.1:{cluster_port}"
        reconnect_interval = "1s"
        peer_timeout = "3s"
        """) + membership + "\n"
    for po in POSTOFFICES:
        text += textwrap.dedent(f"""
            [[postoffice]]
            name = "{po}"
            domains = ["{po}.example.test"]
            transport = "maildir"
            path = "{shared}/{po}"
            create_mailboxes = true
            """)
        if po == "po0":
            text += 'owner = "a"\n'
    return text


class Node:
    """One `postconn serve`, its log in a file (three chatty servers would
    fill unread pipes). Its SMTP and admin ports are the ones its log names
    (port 0 in the config: new ones at each start)."""

    def __init__(self, name, workdir):
        self.name = name
        self.workdir = workdir
        self.ports = {}
        self.starts = 0
        self.proc = None

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.workdir, "log"), "a")
        self.proc = subprocess.Popen(
            [POSTCONN, "serve", "--config", "postconn.toml"], cwd=self.workdir,
            stdout=subprocess.DEVNULL, stderr=log)
        log.close()

    def wait_serving(self):
        """Waits until this start serves; its ports from its log."""
        log = wait_until("%s serving" % self.name,
                         lambda: (lambda text: text if text.count("serving on") >= self.starts
                                  else None)(self.log()))
        self.ports = {"smtp": listening_port(log, "smtp"), "admin": listening_port(log, "admin")}

    def log(self):
        with open(os.path.join(self.workdir, "log"), errors="replace") as f:
            return f.read()

    def admin(self, path):
        url = "http://127.0.0.1:%d%s" % (self.ports["admin"], path)
        with urllib.request.urlopen(url, timeout=5) as reply:
            return json.load(reply)

    def send(self, postoffice, tag):
        """True when the node accepted the message (250)."""
        body = ("Subject: %s\r\nMessage-ID: <%s@test>\r\n\r\nhello\r\n" % (tag, tag)).encode()
        try:
            with smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=10) as client:
                client.sendmail("tester@example.org", ["m@%s.example.test" % postoffice], body)
            return True
        except (OSError, smtplib.SMTPException):
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_until(what, check, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("not after %ss: %s" % (timeout, what))
        time.sleep(0.1)


class Cluster(unittest.TestCase):
    def setUp(self):
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        self.shared = os.path.join(holder.name, "postoffices")
        for po in POSTOFFICES:
            make_postoffice(os.path.join(self.shared, po))
        # The seed lists name every node's cluster port before any starts.
        cluster_ports = {n: free_port() for n in NODES}
        self.nodes = {}
        for name in NODES:
            workdir = os.path.join(holder.name, name)
            os.makedirs(workdir)
            with open(os.path.join(workdir, "postconn.toml"), "w") as f:
                f.write(node_config(name, cluster_ports, self.shared))
            self.nodes[name] = Node(name, workdir)
            self.addCleanup(self.nodes[name].stop, signal.SIGKILL)
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            node.wait_serving()

    def members(self, node):
        return sorted(m["node"] for m in node.admin("/cluster")["members"])

    def owners(self, node):
        return node.admin("/cluster")["owners"]

    def wait_for_members(self, names, expected):
        for name in names:
            try:
                wait_until("%s sees %s" % (name, expected),
                           lambda: self.members(self.nodes[name]) == expected)
            except AssertionError as e:
                raise AssertionError("%s\n%s" % (e, self.log_tails())) from None

    def log_tails(self):
        """The end of every node's log, for a failure's message."""
        return "\n".join("--- %s\n%s" % (name, node.log()[-4000:])
                         for name, node in self.nodes.items())

    def delivered(self):
        """Every maildir file by the tag in its Subject."""
        found = {}
        for root, _, files in os.walk(self.shared):
            if os.path.basename(root) != "new":
                continue
            for name in files:
                with open(os.path.join(root, name), errors="replace") as f:
                    for line in f:
                        if line.startswith("Subject: "):
                            tag = line[len("Subject: "):].strip()
                            found[tag] = found.get(tag, 0) + 1
                            break
        return found

    def queued(self, names):
        return sum(self.nodes[n].admin("/queue")["total"] for n in names)

    def test_handoff_failover_and_return_deliver_every_accepted_message_once(self):
        self.wait_for_members(NODES, NODES)
        owners = wait_until("one owner per postoffice, agreed by all",
                            lambda: all(self.owners(self.nodes[n]) == self.owners(self.nodes["a"])
                                        for n in NODES) and self.owners(self.nodes["a"]))
        self.assertEqual(sorted(owners), POSTOFFICES)
        self.assertEqual(owners, {"po0": "a", "po1": "b", "po2": "b", "po3": "b",
                                  "po4": "c", "po5": "c", "po6": "a"})
        self.assertEqual(self.nodes["a"].admin("/cluster")["state"], "member")
        code, out, err = run("postoffices", "--admin",
                             "http://127.0.0.1:%d" % self.nodes["c"].ports["admin"])
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^cluster: node c; members c \(127.0.0.1:\d+\) "
                                   r"a \(127.0.0.1:\d+\) b \(127.0.0.1:\d+\)$")
        self.assertRegex(lines[1], r"^NAME +OWNER +TRANSPORT")
        self.assertRegex(out, r"\npo1 +b +- ")
        self.assertRegex(out, r"\npo4 +c +maildir +up ")
        self.assertEqual(lines[-1], "7 postoffices, 0 down, 5 owned by other nodes")
        url = "http://127.0.0.1:%d/metrics" % self.nodes["c"].ports["admin"]
        with urllib.request.urlopen(url, timeout=5) as reply:
            metrics = reply.read().decode()
        self.assertIn("\npostconn_cluster_members 3\n", metrics)
        self.assertIn("\npostconn_cluster_postoffices_owned 2\n", metrics)
        accepted, attempted = [], []

        # Every node takes mail for the postoffices the others own.
        for name, node in self.nodes.items():
            for po in POSTOFFICES:
                if owners[po] != name:
                    for i in range(3):
                        tag = "first-%s-%s-%d" % (name, po, i)
                        attempted.append(tag)
                        self.assertTrue(node.send(po, tag), tag)
                        accepted.append(tag)
        wait_until("the first round delivered",
                   lambda: set(accepted) <= set(self.delivered()))

        # po1 (b's) cannot be opened for a while: mail for it waits in b's queue.
        marker = os.path.join(self.shared, "po1", ".postoffice")
        os.rename(marker, marker + ".away")
        stranded = ["stranded-%d" % i for i in range(3)]
        for tag in stranded:
            attempted.append(tag)
            self.assertTrue(self.nodes["b"].send("po1", tag))
            accepted.append(tag)
        wait_until("b failed to open po1", lambda: "open_failed" in self.nodes["b"].log())

        # b dies with kill -9 while a sender keeps all three nodes busy.
        stop_sending = threading.Event()

        def load():
            i = 0
            while not stop_sending.is_set():
                name = NODES[i % 3]
                po = POSTOFFICES[i % len(POSTOFFICES)]
                tag = "load-%s-%d" % (name, i)
                attempted.append(tag)
                if self.nodes[name].send(po, tag):
                    accepted.append(tag)
                i += 1

        sender = threading.Thread(target=load)
        sender.start()
        try:
            wait_until("some load", lambda: len(accepted) > len(owners) * 2 * 3 + 30)
            self.nodes["b"].stop(signal.SIGKILL)
            self.wait_for_members(["a", "c"], ["a", "c"])
            survivors = wait_until("b's postoffices taken over", lambda: (
                lambda o: o if "b" not in o.values() else None)(self.owners(self.nodes["a"])))
            for po, owner in owners.items():
                self.assertEqual(survivors[po], owner if owner != "b" else survivors[po])
                self.assertIn(survivors[po], ["a", "c"])
            # Mail for b's former postoffices is delivered by the survivors.
            os.rename(marker + ".away", marker)
            taken_over = [po for po in POSTOFFICES if owners[po] == "b"]
            for po in taken_over:
                tag = "takeover-%s" % po
                attempted.append(tag)
                self.assertTrue(self.nodes["a"].send(po, tag))
                accepted.append(tag)
            wait_until("takeover mail delivered while b is down",
                       lambda: all("takeover-%s" % po in self.delivered() for po in taken_over))
        finally:
            stop_sending.set()
            sender.join()
        self.assertFalse(set(stranded) & set(self.delivered()))

        # b returns, rejoins and takes its postoffices back.
        self.nodes["b"].start()
        self.nodes["b"].wait_serving()
        self.wait_for_members(NODES, NODES)
        wait_until("b owns its postoffices again",
                   lambda: all(self.owners(self.nodes[n]) == owners for n in NODES))
        wait_until("every queue empty", lambda: self.queued(NODES) == 0, timeout=60)
        delivered = wait_until("every accepted message delivered",
                               lambda: (lambda d: d if set(accepted) <= set(d) else None)(
                                   self.delivered()), timeout=30)
        duplicates = {tag: n for tag, n in delivered.items() if n != 1}
        self.assertEqual(duplicates, {})
        self.assertLessEqual(set(delivered), set(attempted))
        self.assertIn("handed over", self.nodes["a"].log())
        for node in self.nodes.values():
            node.stop()
            self.assertEqual(node.proc.returncode, 0, node.log()[-3000:])

    def test_a_hung_node_is_lost_by_its_silence_and_rejoins_when_it_resumes(self):
        self.wait_for_members(NODES, NODES)
        owners = wait_until("owners", lambda: self.owners(self.nodes["a"]))
        # SIGSTOP keeps b's connections open: only the missing heartbeats
        # (peer_timeout = 3s) tell the others it is gone.
        self.nodes["b"].proc.send_signal(signal.SIGSTOP)
        self.wait_for_members(["a", "c"], ["a", "c"])
        tags = ["hung-%s" % po for po in POSTOFFICES if owners[po] == "b"]
        for tag in tags:
            self.assertTrue(self.nodes["a"].send(tag[len("hung-"):], tag))
        wait_until("b's postoffices served while it hangs",
                   lambda: set(tags) <= set(self.delivered()))
        self.nodes["b"].proc.send_signal(signal.SIGCONT)
        self.wait_for_members(NODES, NODES)
        wait_until("b owns its postoffices again",
                   lambda: all(self.owners(self.nodes[n]) == owners for n in NODES))
        wait_until("every queue empty", lambda: self.queued(NODES) == 0)
        self.assertEqual(self.delivered(), {tag: 1 for tag in tags})


if __name__ == "__main__":
    unittest.main()
