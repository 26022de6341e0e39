"""A short soak run as a unit test: 20 seconds of four SMTP clients against
the real server while it is killed with SIGKILL and restarted and its
postoffices vanish and come back, then the reconciliation of soak.py.

It passes only when nothing was lost, duplicated or misdelivered and the
queue drained, and only when the run was hard enough to mean something: at
least two kills and more than 50 accepted messages. The seed changes from
run to run and is printed; `soak.py --seed` replays the chaos's choices.
The binary is $POSTCONN, as for the end-to-end tests.
"""
import os
import random
import shutil
import tempfile
import unittest

import soak

DURATION = 20
CLIENTS = 4


class ShortSoak(unittest.TestCase):
    def test_nothing_is_lost_or_duplicated_under_kills_and_outages(self):
        postconn = soak.resolve_binary(os.environ.get("POSTCONN", "postconn"))
        seed = random.randrange(1_000_000)
        workdir = tempfile.mkdtemp(prefix="postconn-soak-")
        result = soak.run(postconn, DURATION, CLIENTS, soak.DEFAULT_RATE, seed, workdir)
        print(result.summary())
        report = f"{result.summary()}\nwork directory kept: {workdir}"
        self.assertEqual(result.server_failure, "", report)
        self.assertGreaterEqual(result.kills, 2, report)
        self.assertGreater(result.accepted, 50, report)
        self.assertEqual(result.lost, 0, report)
        self.assertEqual(result.duplicated, 0, report)
        self.assertEqual(result.reconciliation.unexplained_bounces, 0, report)
        self.assertGreaterEqual(result.reconciliation.delivered_share, soak.MIN_DELIVERED_SHARE,
                                report)
        self.assertTrue(result.passed, report)
        shutil.rmtree(workdir)


if __name__ == "__main__":
    unittest.main()
