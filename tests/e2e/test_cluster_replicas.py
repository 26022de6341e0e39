"""End-to-end replicated acceptance (cluster.replicas = 2): a real etcd and
three real `postconn serve` nodes sharing seven maildir postoffices, all
unreachable while mail flows, so mail waits in the queues. A node
killed with kill -9 and its data directory deleted loses nothing: once it
has been gone from etcd for adopt_after, the nodes holding the replicas of
its deliveries adopt them, and every message that got 250 from any node is
delivered exactly once. The node started again on an empty queue starts
afresh; started on its old queue after an adoption, it learns from the
adopters which of its deliveries they took and delivers none of them
again. `postconn cluster forget NODE` adopts at once, and refuses a node
that is a member. A node left alone refuses mail with 451 4.3.0."""
import os
import re
import shutil
import signal
import smtplib
import threading
import time

from postconn_process import run
from test_cluster import NODES, POSTOFFICES
from test_cluster_etcd import EtcdNodes


def set_reachable(shared, postoffices, reachable):
    """A maildir postoffice is reachable while its marker file exists."""
    for po in postoffices:
        marker = os.path.join(shared, po, ".postoffice")
        if reachable:
            open(marker, "w").close()
        elif os.path.exists(marker):
            os.remove(marker)


class ReplicatedCluster(EtcdNodes):
    cluster_keys = 'replicas = 2\nadopt_after = "4s"\n'

    def send_while(self, senders, keep_going, accepted, unanswered):
        """Sends one message after another through `senders` in turn, to
        every postoffice in turn, while keep_going() holds; the tags that
        got 250 go to `accepted`, the others to `unanswered` (a message
        whose 250 was lost with its node may still be delivered, once)."""
        count = 0
        while keep_going():
            via = senders[count % len(senders)]
            po = POSTOFFICES[count % len(POSTOFFICES)]
            tag = "flow-%d-%s-%s" % (count, via, po)
            (accepted if self.nodes[via].send(po, tag) else unanswered).append(tag)
            count += 1

    def flow_and_kill(self, wipe):
        """Mail flows through every node, waiting in the queues (no
        postoffice is reachable); the node other than a that owns the most
        postoffices is killed (its data directory deleted with `wipe`)
        mid-flow. Returns it, the tags that got 250 and those that did not."""
        owners = list(self.wait_for_owners(NODES, NODES).values())
        victim = max(("b", "c"), key=owners.count)
        set_reachable(self.shared, POSTOFFICES, False)
        stop = threading.Event()
        accepted, unanswered = [], []
        sender = threading.Thread(target=lambda: self.send_while(
            NODES, lambda: not stop.is_set(), accepted, unanswered))
        sender.start()
        self.wait_for("mail queued on %s" % victim,
                      lambda: self.nodes[victim].admin("/queue")["total"] >= 10)
        self.nodes[victim].stop(signal.SIGKILL)
        if wipe:
            shutil.rmtree(os.path.join(self.nodes[victim].workdir, "var"))
        time.sleep(1)
        stop.set()
        sender.join()
        self.assertGreater(len(accepted), 20)
        return victim, accepted, unanswered

    def survivors(self, victim):
        return [n for n in NODES if n != victim]

    def wait_for_adoption(self, victim):
        """Until both survivors adopted what they held of `victim`'s; how
        many deliveries they adopted in all."""
        pattern = re.compile(r"adopted (\d+) deliveries of node %s from the replicas" % victim)
        counts = [self.wait_for("%s adopted %s's replicas" % (name, victim),
                                lambda: pattern.search(self.nodes[name].log()))
                  for name in self.survivors(victim)]
        return sum(int(found.group(1)) for found in counts)

    def test_a_node_killed_with_its_disk_loses_no_accepted_mail(self):
        victim, accepted, unanswered = self.flow_and_kill(wipe=True)
        survivors = self.survivors(victim)
        self.assertGreater(self.wait_for_adoption(victim), 0)
        set_reachable(self.shared, POSTOFFICES, True)
        self.assert_each_delivered_once(accepted, unanswered)
        self.wait_for("the survivors' queues empty",
                      lambda: sum(self.nodes[n].admin("/queue")["total"]
                                  for n in survivors) == 0, timeout=60)
        # Back on an empty queue, the node starts afresh and takes mail again.
        self.start_serving(self.nodes[victim])
        self.assertIn("its queue is empty, it starts afresh", self.nodes[victim].log())
        self.wait_for_owners(NODES, NODES)
        more = self.send_all(victim, POSTOFFICES, "after")
        self.assert_each_delivered_once(accepted + more, unanswered)

    def read_all_mail(self):
        """Moves every delivered file from new/ to cur/, as a mail reader
        does: a message delivered again after that shows in new/."""
        for root, _, files in os.walk(self.shared):
            if os.path.basename(root) == "new":
                for name in files:
                    os.rename(os.path.join(root, name),
                              os.path.join(os.path.dirname(root), "cur", name + ":2,S"))

    def test_a_node_back_on_its_old_queue_learns_what_was_adopted_and_delivers_it_not_again(self):
        victim, accepted, unanswered = self.flow_and_kill(wipe=False)
        adopted = self.wait_for_adoption(victim)
        self.assertGreater(adopted, 0)
        set_reachable(self.shared, POSTOFFICES, True)
        self.assert_each_delivered_once(accepted, unanswered)
        before = set(self.delivered())
        self.read_all_mail()
        node = self.nodes[victim]
        self.start_serving(node)
        self.wait_for("%s learnt from both adopters" % victim,
                      lambda: len(re.findall(r"of them were still queued here and are finished",
                                             node.log())) == 2)
        learnt = re.findall(r"node [abc] adopted (\d+) deliveries of node %s while it was gone; "
                            r"(\d+) of them were still queued here" % victim, node.log())
        # A replica whose delivery the adopter already held (handed over
        # just before the loss) is not queued twice, but its key is listed.
        self.assertGreaterEqual(sum(int(n) for n, _ in learnt), adopted)
        self.assertGreater(sum(int(finished) for _, finished in learnt), 0)
        self.wait_for_owners(NODES, NODES)
        self.wait_for("%s's queue empty" % victim, lambda: node.admin("/queue")["total"] == 0)
        time.sleep(2)
        # Only a message the node committed as it was killed, unanswered and
        # without a replica elsewhere, goes out now: for the first time.
        since = self.delivered()
        self.assertEqual({tag: n for tag, n in since.items() if n != 1}, {})
        self.assertLessEqual(set(since), set(unanswered) - before)
        # Maildir would refuse a second copy of a message already read
        # (its key is in cur/): not even that was tried.
        self.assertEqual([line for line in node.log().splitlines()
                          if "already delivered to" in line], [])


class ForgetAndAlone(EtcdNodes):
    cluster_keys = 'replicas = 2\nadopt_after = "10m"\n'

    def forget(self, via, node):
        admin = "http://127.0.0.1:%d" % self.nodes[via].ports["admin"]
        return run("cluster", "forget", node, "--admin", admin)

    def test_cluster_forget_adopts_at_once_and_refuses_a_member(self):
        self.wait_for_owners(NODES, NODES)
        code, out, err = self.forget("a", "b")
        self.assertEqual(code, 1, out + err)
        self.assertIn("node b holds its etcd lease: it is a member", out + err)
        set_reachable(self.shared, POSTOFFICES, False)
        tags = []
        for name in NODES:
            tags += self.send_all(name, POSTOFFICES, "before")
        self.nodes["b"].stop(signal.SIGKILL)
        shutil.rmtree(os.path.join(self.nodes["b"].workdir, "var"))
        self.wait_for_owners(["a", "c"], ["a", "c"])
        code, out, err = self.forget("a", "b")
        self.assertEqual(code, 0, out + err)
        self.assertRegex(out, r"node b forgotten: \d+ deliveries adopted")
        set_reachable(self.shared, POSTOFFICES, True)
        self.assert_each_delivered_once(tags)

    def test_a_node_left_alone_refuses_mail_with_451(self):
        self.wait_for_owners(NODES, NODES)
        for name in ("b", "c"):
            self.nodes[name].stop(signal.SIGKILL)
        self.wait_for("a alone", lambda: [m["node"] for m in self.report("a")["members"]] == ["a"])
        self.wait_for("a owning", lambda: self.report("a")["state"] == "owning")
        body = b"Subject: alone\r\n\r\nhello\r\n"
        with smtplib.SMTP("127.0.0.1", self.nodes["a"].ports["smtp"], timeout=10) as client:
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                client.sendmail("tester@example.org", ["m@po0.example.test"], body)
        self.assertEqual(refused.exception.smtp_code, 451)
        self.assertIn(b"4.3.0", refused.exception.smtp_error)
        self.assertIn(b"no second node to hold a replica", refused.exception.smtp_error)
        self.assertEqual(self.nodes["a"].admin("/queue")["total"], 0)
