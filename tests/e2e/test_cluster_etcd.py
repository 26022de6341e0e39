"""End-to-end cluster with membership from etcd: a real etcd on a free
loopback port and three real `postconn serve` nodes sharing seven maildir
postoffices (lease_ttl 2 s). The nodes agree on the members and owners etcd
holds; a node hung (SIGSTOP) longer than its lease loses its postoffices to
the others and, resumed, takes no handoff it can no longer prove it may
take, registers again and owns its share again after the join wait, with
every message in exactly one maildir file; a node cut off from etcd alone
(its relay to etcd cut, its links to the other nodes up) stops delivering
and taking mail while the others take its postoffices, and nothing is
delivered twice; with etcd itself hung every node stops delivering and
answers 452 4.3.0, and delivers again once etcd is back; etcd killed and
started again loses and doubles nothing; a node that cannot reach etcd at
start says so in one line and exits."""
import os
import re
import signal
import smtplib
import time
import unittest

from etcd_process import Etcd, TcpProxy
from postconn_process import free_port, refusing_port, run, temp_workdir
from test_cluster import NODES, POSTOFFICES, Node, cluster_node_config, wait_until
from test_delivery import make_postoffice

LEASE_TTL = 2


def node_config(node, cluster_port, etcd_endpoints, shared, more_keys=""):
    endpoints = ", ".join('"%s"' % e for e in etcd_endpoints)
    return cluster_node_config(node, cluster_port,
                               f'etcd = [{endpoints}]\nlease_ttl = "{LEASE_TTL}s"\n' + more_keys,
                               shared)


def lines_between(log, start, end):
    """The lines of `log` after the first line holding `start` up to the first
    later one holding `end`."""
    lines = log.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next(i for i in range(first + 1, len(lines)) if end in lines[i])
    return lines[first + 1:last]


class EtcdNodes(unittest.TestCase):
    """A real etcd and three nodes, each reaching etcd through a relay of
    its own; the [cluster] keys of `cluster_keys` besides etcd's."""
    cluster_keys = ""

    def setUp(self):
        holder = temp_workdir()
        self.addCleanup(holder.cleanup)
        self.etcd = Etcd()
        self.addCleanup(self.etcd.__exit__)
        self.shared = os.path.join(holder.name, "postoffices")
        for po in POSTOFFICES:
            make_postoffice(os.path.join(self.shared, po))
        self.nodes = {}
        # Each node reaches etcd through a relay of its own, which a test
        # cuts to cut that node off from etcd alone.
        self.relays = {}
        for name in NODES:
            self.relays[name] = TcpProxy(self.etcd.endpoint)
            self.addCleanup(self.relays[name].close)
            workdir = os.path.join(holder.name, name)
            os.makedirs(workdir)
            self.nodes[name] = Node(name, workdir)
            self.addCleanup(self.nodes[name].stop, signal.SIGKILL)
        for node in self.nodes.values():
            self.start_serving(node)

    def start_serving(self, node, tries=3):
        """Starts `node` on a free cluster port until it serves: a port free
        a moment ago may be taken by a test running in parallel before the
        node binds it (the node then exits, naming it)."""
        for _ in range(tries):
            with open(os.path.join(node.workdir, "postconn.toml"), "w") as f:
                f.write(node_config(node.name, free_port(), [self.relays[node.name].endpoint],
                                    self.shared, self.cluster_keys))
            node.start()
            wait_until("%s serving or exited" % node.name,
                       lambda: node.log().count("serving on") >= node.starts
                       or node.proc.poll() is not None)
            if node.proc.poll() is None:
                node.wait_serving()
                return
        raise AssertionError("%s did not start:\n%s" % (node.name, self.log_tails()))

    def report(self, node):
        return self.nodes[node].admin("/cluster")

    def wait_for(self, what, check, timeout=30):
        try:
            return wait_until(what, check, timeout)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.log_tails())) from None

    def wait_for_owners(self, names, members):
        """Until every node in `names` sees `members` and they agree on the
        owners, each one of `members`; returns the owners."""
        def agreed():
            reports = [self.report(n) for n in names]
            owners = reports[0]["owners"]
            if all(sorted(m["node"] for m in r["members"]) == members and r["owners"] == owners
                   for r in reports) and owners and set(owners.values()) <= set(members):
                return owners
            return None
        return self.wait_for("%s agree on owners among %s" % (names, members), agreed)

    def log_tails(self):
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

    def queued(self):
        return sum(node.admin("/queue")["total"] for node in self.nodes.values())

    def send_all(self, via, postoffices, prefix):
        tags = []
        for po in postoffices:
            tag = "%s-%s-%s" % (prefix, via, po)
            self.assertTrue(self.nodes[via].send(po, tag), tag)
            tags.append(tag)
        return tags

    def assert_each_delivered_once(self, tags, maybe=()):
        """Every message of `tags` delivered once, and no other, but those
        of `maybe` (sent without an answer: killed mid-transaction) at most
        once."""
        delivered = self.wait_for("every accepted message delivered",
                                  lambda: (lambda d: d if set(tags) <= set(d) else None)(
                                      self.delivered()))
        self.assertEqual({tag: n for tag, n in delivered.items() if n != 1}, {})
        self.assertLessEqual(set(delivered), set(tags) | set(maybe))


class EtcdCluster(EtcdNodes):
    def test_members_and_owners_come_from_etcd(self):
        owners = self.wait_for_owners(NODES, NODES)
        self.assertEqual([self.report(n)["state"] for n in NODES], ["owning"] * 3)
        # The same owners as rendezvous hashing gives over the heartbeat
        # cluster (test_cluster.py): po0 is a's by its owner key.
        self.assertEqual(owners, {"po0": "a", "po1": "b", "po2": "b", "po3": "b",
                                  "po4": "c", "po5": "c", "po6": "a"})
        holds = self.etcd.members()
        self.assertEqual(sorted(holds), NODES)
        for member in self.report("a")["members"]:
            self.assertEqual(holds[member["node"]], member["address"])
        for name in NODES:
            self.assertIn("cluster: node %s registered in etcd at http://%s (lease "
                          % (name, self.relays[name].endpoint), self.nodes[name].log())
        tags = []
        for name in NODES:
            tags += self.send_all(name, POSTOFFICES, "first")
        self.assert_each_delivered_once(tags)
        self.wait_for("every queue empty", lambda: self.queued() == 0)
        # A planned stop revokes the lease: the others take over at once,
        # not a lease TTL later.
        self.nodes["b"].stop()
        self.assertEqual(self.nodes["b"].proc.returncode, 0, self.nodes["b"].log()[-3000:])
        self.assertIn("cluster: node b left etcd (lease", self.nodes["b"].log())
        self.assertEqual(sorted(self.etcd.members()), ["a", "c"])
        survivors = self.wait_for_owners(["a", "c"], ["a", "c"])
        self.assertEqual({po: o for po, o in survivors.items() if owners[po] != "b"},
                         {po: o for po, o in owners.items() if o != "b"})

    def test_a_node_hung_past_its_lease_is_fenced_and_delivers_nothing_twice(self):
        owners = self.wait_for_owners(NODES, NODES)
        b_postoffices = [po for po in POSTOFFICES if owners[po] == "b"]
        b = self.nodes["b"]
        b.proc.send_signal(signal.SIGSTOP)
        # Sent at once, before a sees b's key go: a hands these to b, whose
        # kernel takes the bytes while b hangs.
        tags = self.send_all("a", b_postoffices, "during")
        # etcd expires b's lease: a and c share b's postoffices.
        moved = self.wait_for_owners(["a", "c"], ["a", "c"])
        for po in b_postoffices:
            self.assertIn(moved[po], ["a", "c"])
        tags += self.send_all("c", b_postoffices, "moved")
        self.wait_for("mail for b's postoffices delivered while b hangs",
                      lambda: set(tags) <= set(self.delivered()))
        b.proc.send_signal(signal.SIGCONT)
        # b finds its fence fallen, registers again, and owns its share
        # again only a lease TTL after that.
        self.wait_for("b lost its lease", lambda: "node b lost its etcd lease" in b.log())
        self.wait_for("b holds a lease again",
                      lambda: "node b holds an etcd lease again" in b.log())
        self.assertEqual(self.wait_for_owners(NODES, NODES), owners)
        fenced = lines_between(b.log(), "node b lost its etcd lease",
                               "node b holds an etcd lease again")
        self.assertEqual([line for line in fenced if "status=sent" in line], [])
        # Handoffs b took after it resumed came after its new lease.
        tags += self.send_all("a", b_postoffices, "after")
        self.assert_each_delivered_once(tags)
        self.wait_for("every queue empty", lambda: self.queued() == 0)
        self.assert_each_delivered_once(tags)
        for node in self.nodes.values():
            node.stop()
            self.assertEqual(node.proc.returncode, 0, node.log()[-3000:])

    def test_with_etcd_hung_every_node_stops_and_answers_452_then_resumes(self):
        owners = self.wait_for_owners(NODES, NODES)
        self.etcd.signal(signal.SIGSTOP)
        try:
            for name in NODES:
                self.wait_for("%s fenced" % name,
                              lambda: "node %s lost its etcd lease" % name
                                      in self.nodes[name].log())
            client = smtplib.SMTP("127.0.0.1", self.nodes["a"].ports["smtp"], timeout=10)
            client.ehlo("tester.example.org")
            client.mail("tester@example.org")
            code, text = client.rcpt("m@po1.example.test")
            client.quit()
            self.assertEqual(code, 452, text)
            self.assertIn(b"4.3.0", text)
            self.assertEqual(self.report("a")["owners"], {po: "" for po in POSTOFFICES})
            self.assertEqual(self.report("a")["state"], "fenced")
        finally:
            self.etcd.signal(signal.SIGCONT)
        self.assertEqual(self.wait_for_owners(NODES, NODES), owners)
        tags = []
        for name in NODES:
            tags += self.send_all(name, POSTOFFICES, "back")
        self.assert_each_delivered_once(tags)


    def test_a_node_cut_from_etcd_stops_delivering_and_nothing_is_delivered_twice(self):
        owners = self.wait_for_owners(NODES, NODES)
        c_postoffices = [po for po in POSTOFFICES if owners[po] == "c"]
        c = self.nodes["c"]
        tags = self.send_all("a", POSTOFFICES, "before")
        self.assert_each_delivered_once(tags)
        self.relays["c"].cut()
        # c, still connected to a and b, proves no lease: it stops; etcd
        # expires its key and a and b share its postoffices.
        self.wait_for("c fenced", lambda: "node c lost its etcd lease" in c.log())
        moved = self.wait_for_owners(["a", "b"], ["a", "b"])
        for po in c_postoffices:
            self.assertIn(moved[po], ["a", "b"])
        client = smtplib.SMTP("127.0.0.1", c.ports["smtp"], timeout=10)
        client.ehlo("tester.example.org")
        client.mail("tester@example.org")
        self.assertEqual(client.rcpt("m@%s.example.test" % c_postoffices[0])[0], 452)
        client.quit()
        tags += self.send_all("b", POSTOFFICES, "cut")
        self.assert_each_delivered_once(tags)
        self.relays["c"].mend()
        self.wait_for("c holds a lease again",
                      lambda: "node c holds an etcd lease again" in c.log())
        self.assertEqual(self.wait_for_owners(NODES, NODES), owners)
        fenced = lines_between(c.log(), "node c lost its etcd lease",
                               "node c holds an etcd lease again")
        self.assertEqual([line for line in fenced if "status=sent" in line], [])
        tags += self.send_all("c", POSTOFFICES, "mended")
        self.assert_each_delivered_once(tags)
        self.wait_for("every queue empty", lambda: self.queued() == 0)

    def test_etcd_killed_and_restarted_loses_and_doubles_nothing(self):
        owners = self.wait_for_owners(NODES, NODES)
        tags = []
        for name in NODES:
            tags += self.send_all(name, POSTOFFICES, "before")
        self.etcd.signal(signal.SIGKILL)
        for name in NODES:
            self.wait_for("%s fenced" % name,
                          lambda: "node %s lost its etcd lease" % name in self.nodes[name].log())
        self.etcd.restart()
        self.assertEqual(self.wait_for_owners(NODES, NODES), owners)
        for name in NODES:
            tags += self.send_all(name, POSTOFFICES, "after")
        self.assert_each_delivered_once(tags)
        self.wait_for("every queue empty", lambda: self.queued() == 0)


class EtcdUnreachable(unittest.TestCase):
    def test_a_node_that_cannot_reach_etcd_says_so_in_one_line_and_exits(self):
        with temp_workdir() as workdir:
            make_postoffice(os.path.join(workdir, "shared", "po0"))
            first, port = refusing_port()
            second, other_port = refusing_port()
            with first, second:
                endpoints = ["127.0.0.1:%d" % port, "http://127.0.0.1:%d" % other_port]
                config = os.path.join(workdir, "postconn.toml")
                with open(config, "w") as f:
                    f.write(node_config("a", free_port(), endpoints,
                                        os.path.join(workdir, "shared")))
                started = time.monotonic()
                code, _, err = run("serve", "--config", config, cwd=workdir)
            self.assertEqual(code, 1, err)
            self.assertLess(time.monotonic() - started, 10)
            lines = [line for line in err.splitlines() if "etcd" in line]
            self.assertEqual(len(lines), 1, err)
            self.assertRegex(lines[0], r"not started: cluster\.etcd: node a cannot register in "
                                       r"etcd \(http://127\.0\.0\.1:%d, http://127\.0\.0\.1:%d\): "
                                       r"no etcd endpoint answered: " % (port, other_port))
            self.assertIn("http://127.0.0.1:%d: connection refused" % port, lines[0])


if __name__ == "__main__":
    unittest.main()
