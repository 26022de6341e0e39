"""Soak test: the real `postconn serve` under load, kill -9 and share outages.

For a fixed time, a few SMTP clients send mail at a steady rate while a
seeded chaos loop kills the server with SIGKILL and restarts it on the same
queue, and takes maildir postoffices away (renames the folder, as when a
network share vanishes) for a short or a long while. Then the chaos stops,
every postoffice comes back, the load stops, and the queue is left to
drain. Reconciliation checks the durability contract of DESIGN.md
against what is on disk:

- every recipient of a message that got `250` has exactly one outcome:
  one copy in its mailbox, or one NDR to the sender naming it;
- an NDR is due only to an outage: its postoffice was away, after the
  message was sent, for longer than the retry budget (open retries times
  the open interval); an NDR for the sender's postoffice, which never goes
  away, or for one whose outages were all short, is a failure;
- at least MIN_DELIVERED_SHARE of the accepted recipients are delivered;
- a message or recipient that was refused (an error reply) is never reached;
- a message whose session broke before the reply (the server died under
  it) may have been committed, so it reaches each recipient at most once;
- no copy lands in a mailbox its message was not addressed to;
- no delivery is left unfinished in the queue.

Every message carries a unique token (`soak-<seed>-<client>-<n>`) in its
subject and body, so a copy in a mailbox, or the original headers quoted in
an NDR, say which message it is. The sender, ann@support.example.test, is on
the one postoffice that never goes away, so NDRs always reach her mailbox.

    soak.py --postconn build/postconn --duration 600 --clients 8 --seed 1

prints the figures and exits 0 only when nothing was lost, duplicated,
misdelivered or left unresolved. The work directory, kept when the run fails
or with --keep, holds the server's log (`server.log`) and what was sent with
the server's answer (`sent.tsv`: token, outcome, recipients, accepted ones).
"""
import argparse
import collections
import dataclasses
import email
import email.policy
import itertools
import os
import random
import re
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import postconn_process  # noqa: E402  (found through the path set just above)

SENDER = "ann@support.example.test"
SENDER_MAILBOX = ("support", "ann")
# Mailboxes that receive the load, per postoffice.
RECIPIENT_MAILBOXES = {
    "sales": ("bob", "carol"),
    "support": ("dave", "eve"),
    "ops": ("frank", "grace"),
}
# The postoffices whose share the chaos takes away; never the sender's.
FLAKY_POSTOFFICES = ("sales", "ops")

# write_config() brings sales and support; ops and short retries come here.
# An outage of a few seconds recovers; a longer one exceeds the open retries
# (about five seconds) and bounces what was due.
CONFIG_EXTRA = """
[[postoffice]]
name = "ops"
domains = ["ops.example.test"]
transport = "maildir"
path = "var/postoffices/ops"

[retry]
max_open_retries = 4
open_interval = "1s"
max_transfer_retries = 1
transfer_interval = "1s"
"""


def duration_seconds(duration):
    """A config duration ("1s", "5m", "2h", "1d" or plain seconds) in seconds."""
    text = str(duration)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


RETRY = tomllib.loads(CONFIG_EXTRA)["retry"]
OPEN_INTERVAL = duration_seconds(RETRY["open_interval"])
# A delivery bounces for its postoffice's absence once it has failed to open
# max_open_retries + 1 times, each attempt open_interval after the last.
RETRY_BUDGET = RETRY["max_open_retries"] * OPEN_INTERVAL
# Ledger times are whole seconds, so an attempt due "in one interval" may come
# up to one interval early; an outage shorter than the budget by more than
# that cannot bounce anything.
RETRY_BUDGET_TOLERANCE = OPEN_INTERVAL
# The share of accepted recipients that must be delivered. About a third of
# the recipients are on support, which never goes away; on sales and ops only
# mail that meets an outage longer than the retry budget may bounce. Runs of
# 20 s with seeds 1 to 10 delivered 77 to 95 %: 60 % leaves room for an
# unlucky seed, and a server that bounced mail its outages did not explain
# (or bounced all mail of sales and ops) falls under it.
MIN_DELIVERED_SHARE = 0.6

TOKEN = re.compile(rb"soak-\d+-\d+-\d+")
CLIENT_TIMEOUT = 10          # seconds an SMTP client waits for a reply
SERVER_START_TIMEOUT = 20    # seconds until a (re)started server must listen
DRAIN_TIMEOUT = 90           # seconds the queue gets to finish after the load
STOP_TIMEOUT = 20            # seconds a SIGTERM'd server gets to exit

DEFAULT_RATE = 20            # messages a second per client, on average

ACCEPTED, REFUSED, INTERRUPTED = "accepted", "refused", "interrupted"


def postoffice_root(workdir, postoffice):
    return os.path.join(workdir, "var", "postoffices", postoffice)


def address(postoffice, mailbox):
    return f"{mailbox}@{postoffice}.example.test"


def make_postoffices(workdir):
    """Each postoffice folder with its `.postoffice` marker and mailboxes."""
    mailboxes = {po: list(boxes) for po, boxes in RECIPIENT_MAILBOXES.items()}
    mailboxes[SENDER_MAILBOX[0]].append(SENDER_MAILBOX[1])
    for po, boxes in mailboxes.items():
        root = postoffice_root(workdir, po)
        os.makedirs(root)
        open(os.path.join(root, ".postoffice"), "w").close()
        for mailbox in boxes:
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(root, mailbox, sub))


# -- the server ---------------------------------------------------------------

class ServerFailure(Exception):
    """The server did something the soak cannot go on from."""


class ServerUnderTest:
    """`postconn serve` in the work directory, killed and restarted at will;
    every incarnation's stderr is appended to `server.log`."""

    def __init__(self, workdir, config):
        self.workdir = workdir
        self.config = config
        self.log_file = open(os.path.join(workdir, "server.log"), "a")
        self.server = None
        self.log_reader = None
        self.starts = 0
        self.port = None

    def start(self):
        self.starts += 1
        self.log_file.write(f"=== soak: server start {self.starts}\n")
        self.log_reader = None
        self.server = postconn_process.Server(self.workdir, self.config)
        try:
            self.server.wait_for_log("serving on", timeout=SERVER_START_TIMEOUT)
            self.port = self.server.smtp_port
        except AssertionError as failure:
            raise ServerFailure(f"start {self.starts} failed: {failure}") from None
        finally:
            self.log_file.write(self.server.log)
            self.server.log = ""
        if self.starts == 1:
            # The first start picked a free port (port 0); the clients keep
            # connecting to it, so every restart listens on it again.
            with open(self.config) as f:
                text = f.read()
            with open(self.config, "w") as f:
                f.write(text.replace('listen = "127.0.0.1:0"',
                                     f'listen = "127.0.0.1:{self.port}"', 1))
        self.log_reader = threading.Thread(target=self._copy_log, args=(self.server,),
                                           daemon=True)
        self.log_reader.start()

    def _copy_log(self, server):
        while server.read_log(1.0):
            self.log_file.write(server.log)
            server.log = ""
        self.log_file.flush()

    def exited_on_its_own(self):
        """The exit code when the server has died without being told to."""
        return self.server.proc.poll()

    def _reap(self):
        self.server.proc.wait()
        if self.log_reader:
            self.log_reader.join()
        self.server.proc.stderr.close()

    def kill(self):
        self.server.proc.kill()
        self._reap()

    def stop(self):
        """SIGTERM, and the exit code (None when it had to be killed)."""
        self.server.proc.send_signal(signal.SIGTERM)
        try:
            code = self.server.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.server.proc.kill()
            code = None
        self._reap()
        return code

    def close(self):
        if self.server and self.server.proc.poll() is None:
            self.kill()
        self.log_file.close()


# -- the load -----------------------------------------------------------------

@dataclasses.dataclass
class SentMessage:
    recipients: tuple
    sent_at: float = 0.0   # time.monotonic() when its session began MAIL
    outcome: str = INTERRUPTED
    accepted_recipients: tuple = ()


class SentLog:
    """What each client sent and what the server answered, by token."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = {}

    def begin(self, token, recipients):
        with self.lock:
            self.messages[token] = SentMessage(tuple(recipients), time.monotonic())

    def accepted(self, token, accepted_recipients):
        with self.lock:
            sent = self.messages[token]
            sent.outcome = ACCEPTED
            sent.accepted_recipients = tuple(accepted_recipients)

    def refused(self, token):
        with self.lock:
            self.messages[token].outcome = REFUSED

    def write(self, path):
        """One line per message: token, outcome, recipients, accepted ones."""
        with self.lock, open(path, "w") as f:
            for token, sent in self.messages.items():
                f.write(f"{token}\t{sent.outcome}\t{','.join(sent.recipients)}"
                        f"\t{','.join(sent.accepted_recipients)}\n")

    def count(self, outcome):
        with self.lock:
            return sum(1 for m in self.messages.values() if m.outcome == outcome)


def choose_recipients(rng):
    """One or two postoffices; mostly one mailbox on each, sometimes both."""
    postoffices = rng.sample(sorted(RECIPIENT_MAILBOXES), rng.choice((1, 1, 2)))
    recipients = []
    for po in postoffices:
        mailboxes = RECIPIENT_MAILBOXES[po]
        chosen = mailboxes if rng.random() < 0.1 else (rng.choice(mailboxes),)
        recipients.extend(address(po, mailbox) for mailbox in chosen)
    return recipients


def message_bytes(token, recipients, rng):
    lines = [f"From: {SENDER}", f"To: {', '.join(recipients)}", f"Subject: {token}",
             f"Message-ID: <{token}@soak.example.test>", ""]
    lines += [f"{token} line {n}" for n in range(rng.randint(1, 60))]
    return ("\r\n".join(lines) + "\r\n").encode()


class Client(threading.Thread):
    """Sends messages over SMTP until told to stop, a few per connection,
    `rate` a second on average, and connects again (until the server is
    back) whenever a connection breaks."""

    def __init__(self, number, seed, rate, port, sent, stop):
        super().__init__(name=f"soak-client-{number}", daemon=True)
        self.number = number
        self.seed = seed
        self.rate = rate
        self.port = port
        self.sent = sent
        self.stop = stop
        self.rng = random.Random(f"{seed}-client-{number}")
        self.sequence = itertools.count()

    def run(self):
        while not self.stop.is_set():
            try:
                connection = smtplib.SMTP("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
            except OSError:  # the server is down or just starting
                self.stop.wait(0.05)
                continue
            try:
                self.send_some(connection)
            finally:
                connection.close()

    def send_some(self, connection):
        for _ in range(self.rng.randint(1, 5)):
            if self.stop.is_set():
                break
            if not self.send_one(connection):
                return
            self.stop.wait(self.rng.expovariate(self.rate))
        try:
            connection.quit()
        except OSError:
            pass  # the server died after the last message: nothing is lost by that

    def send_one(self, connection):
        """Sends one message; False when the connection is no longer usable."""
        token = f"soak-{self.seed}-{self.number}-{next(self.sequence)}"
        recipients = choose_recipients(self.rng)
        self.sent.begin(token, recipients)
        try:
            refused = connection.sendmail(SENDER, recipients,
                                          message_bytes(token, recipients, self.rng))
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
            self.sent.refused(token)
            return False
        except OSError:  # no reply: the server died (smtplib's errors are OSErrors)
            return False
        self.sent.accepted(token, [r for r in recipients if r not in refused])
        return True


# -- the chaos ----------------------------------------------------------------

class Outages:
    """When each postoffice was away and when the server was down (times of
    time.monotonic()), to tell which NDRs an outage explains."""

    def __init__(self):
        self.away = collections.defaultdict(list)   # postoffice -> [(away, back)]
        self.server_down = []                       # [(killed, serving again)]

    def episodes(self, po):
        """The postoffice's outages as (start, end), joined where it was back
        too briefly for a retry to reach it: less than one open interval
        (plus a second for scheduling) while the server was up."""
        joined = []
        for start, end in sorted(self.away[po]):
            if joined and self.up_time(joined[-1][1], start) < OPEN_INTERVAL + 1:
                joined[-1] = (joined[-1][0], max(joined[-1][1], end))
            else:
                joined.append((start, end))
        return joined

    def up_time(self, start, end):
        """Seconds of [start, end] the server was up."""
        down = sum(max(0.0, min(end, d_end) - max(start, d_start))
                   for d_start, d_end in self.server_down)
        return max(0.0, end - start) - down

    def explains_bounce(self, po, sent_at):
        """True when `po` was away, after `sent_at`, long enough for a
        delivery to run out of open retries."""
        return any(end - max(start, sent_at) > RETRY_BUDGET - RETRY_BUDGET_TOLERANCE
                   for start, end in self.episodes(po))


class Chaos(threading.Thread):
    """Kills and restarts the server and takes postoffices away, at seeded
    random times, until stopped; then puts every postoffice back. Records
    each outage and each time the server was down in `outages`."""

    def __init__(self, server, workdir, rng):
        super().__init__(name="soak-chaos", daemon=True)
        self.server = server
        self.workdir = workdir
        self.rng = rng
        self.stop = threading.Event()
        self.failed = threading.Event()
        self.failure = None
        self.kills = 0
        self.outages = 0
        self.postoffices_away = {}   # postoffice -> when it comes back
        self.away_since = {}         # postoffice -> when it went away
        self.outages_seen = Outages()

    def next_kill_after(self):
        # Now and then right after a restart, to hit the start-up path.
        return self.rng.uniform(0.1, 1.0) if self.rng.random() < 0.2 else self.rng.uniform(1.5, 6)

    def run(self):
        now = time.monotonic()
        next_kill = now + self.next_kill_after()
        next_outage = now + self.rng.uniform(0.5, 4)
        try:
            while not self.stop.wait(0.05):
                now = time.monotonic()
                for po, back_at in list(self.postoffices_away.items()):
                    if now >= back_at:
                        self.bring_back(po)
                code = self.server.exited_on_its_own()
                if code is not None:
                    raise ServerFailure(f"the server exited on its own with code {code}")
                if now >= next_kill:
                    killed = time.monotonic()
                    self.server.kill()
                    self.kills += 1
                    try:
                        self.server.start()
                    finally:
                        self.outages_seen.server_down.append((killed, time.monotonic()))
                    next_kill = time.monotonic() + self.next_kill_after()
                if now >= next_outage:
                    present = [po for po in FLAKY_POSTOFFICES if po not in self.postoffices_away]
                    if present:
                        self.take_away(self.rng.choice(present), self.rng.uniform(0.5, 10))
                    next_outage = now + self.rng.uniform(1, 5)
        except (ServerFailure, OSError) as failure:
            self.failure = f"{type(failure).__name__}: {failure}"
            self.failed.set()
        finally:
            for po in list(self.postoffices_away):
                self.bring_back(po)

    def take_away(self, po, seconds):
        root = postoffice_root(self.workdir, po)
        self.away_since[po] = time.monotonic()
        os.rename(root, root + ".away")
        self.postoffices_away[po] = time.monotonic() + seconds
        self.outages += 1

    def bring_back(self, po):
        root = postoffice_root(self.workdir, po)
        os.rename(root + ".away", root)
        self.outages_seen.away[po].append((self.away_since.pop(po), time.monotonic()))
        del self.postoffices_away[po]


# -- draining and reconciliation ---------------------------------------------

def unfinished_deliveries(workdir):
    """Deliveries neither delivered nor bounced, read from the live queue."""
    path = os.path.join(workdir, "var", "queue.db")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        [(count,)] = db.execute(
            "SELECT count(*) FROM deliveries WHERE state NOT IN ('delivered', 'bounced')")
        return count
    finally:
        db.close()


def wait_until_drained(workdir, timeout):
    """The number of unfinished deliveries: 0, or what is left at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = unfinished_deliveries(workdir)
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def outcomes_in_queue(workdir):
    """(token, recipient) -> the state of its unfinished delivery, for every
    recipient whose copy or NDR is still in the queue."""
    path = os.path.join(workdir, "var", "queue.db")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT m.content, d.recipients, d.state FROM deliveries d"
            " JOIN messages m ON m.id = d.message_id"
            " WHERE d.state NOT IN ('delivered', 'bounced')").fetchall()
    finally:
        db.close()
    pending = {}
    for content, recipients, state in rows:
        ndr = read_ndr(content)
        if ndr:
            token, failed = ndr
            pending.update(((token, r), f"{state} (its NDR)") for r in failed)
        else:
            for token in set(TOKEN.findall(content)):
                pending.update(((token.decode(), r.lower()), state)
                               for r in recipients.split("\n"))
    return pending


def mailbox_files(workdir, po, mailbox):
    """Every message file in the mailbox (new/ and cur/), as paths."""
    paths = []
    for sub in ("new", "cur"):
        folder = os.path.join(postoffice_root(workdir, po), mailbox, sub)
        paths.extend(os.path.join(folder, name) for name in sorted(os.listdir(folder)))
    return paths


def read_ndr(raw):
    """(token of the bounced message, recipients it reports as failed), or
    None when `raw` is not an NDR."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if message.get_content_type() != "multipart/report":
        return None
    failed, tokens = [], set()
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload():
                if str(block.get("Action", "")).strip().lower() == "failed":
                    failed.append(str(block["Final-Recipient"]).split(";", 1)[1].strip().lower())
        elif part.get_content_type() == "text/rfc822-headers":
            tokens.update(TOKEN.findall(part.get_payload(decode=True)))
    if len(tokens) != 1:
        return None
    return tokens.pop().decode(), failed


@dataclasses.dataclass
class Reconciliation:
    delivered: int = 0
    bounced: int = 0
    lost: int = 0
    duplicated: int = 0
    still_queued: int = 0
    unaccepted_reached: int = 0
    refused_reached: int = 0
    misdelivered: int = 0
    unexplained_bounces: int = 0
    problems: list = dataclasses.field(default_factory=list)

    @property
    def accepted_recipients(self):
        return self.delivered + self.bounced + self.lost + self.still_queued

    @property
    def delivered_share(self):
        """Of the accepted recipients, the share delivered (1 when none)."""
        return self.delivered / self.accepted_recipients if self.accepted_recipients else 1.0


def reconcile(workdir, sent, pending, outages):
    """Counts each recipient's copies and NDRs against what the server said;
    `pending` (from outcomes_in_queue) tells a lost message from one still
    waiting in the queue, `outages` (Outages) which NDRs an outage explains."""
    copies = collections.Counter()   # (token, recipient) -> files in its mailbox
    ndrs = collections.Counter()     # (token, recipient) -> NDRs naming it
    result = Reconciliation()
    for po, mailboxes in RECIPIENT_MAILBOXES.items():
        for mailbox in mailboxes:
            for path in mailbox_files(workdir, po, mailbox):
                with open(path, "rb") as f:
                    tokens = set(TOKEN.findall(f.read()))
                if len(tokens) != 1:
                    result.misdelivered += 1
                    result.problems.append(
                        f"misdelivered: {path} holds tokens {sorted(t.decode() for t in tokens)}")
                    continue
                copies[(tokens.pop().decode(), address(po, mailbox))] += 1
    for path in mailbox_files(workdir, *SENDER_MAILBOX):
        with open(path, "rb") as f:
            ndr = read_ndr(f.read())
        if ndr is None:
            result.misdelivered += 1
            result.problems.append(f"misdelivered: {path} is not an NDR of a soak message")
            continue
        token, failed = ndr
        for recipient in failed:
            ndrs[(token, recipient)] += 1

    for token, message in sorted(sent.messages.items()):
        for recipient in message.recipients:
            delivered, bounced = copies.pop((token, recipient), 0), ndrs.pop((token, recipient), 0)
            outcomes = delivered + bounced
            what = f"{token} to {recipient} ({message.outcome}): {delivered} copies, {bounced} NDRs"
            accepted = recipient in message.accepted_recipients
            refused = message.outcome == REFUSED or (message.outcome == ACCEPTED and not accepted)
            postoffice = recipient.split("@", 1)[1].split(".", 1)[0]
            if bounced and not outages.explains_bounce(postoffice, message.sent_at):
                result.unexplained_bounces += 1
                result.problems.append(f"bounced, yet {postoffice} was never away longer than "
                                       f"the retry budget after it was sent: {what}")
            if outcomes > 1:
                result.duplicated += 1
                result.problems.append(f"duplicated: {what}")
            elif accepted:
                if outcomes == 0 and (token, recipient) in pending:
                    result.still_queued += 1
                    result.problems.append(
                        f"still queued: {what}, delivery {pending[(token, recipient)]}")
                elif outcomes == 0:
                    result.lost += 1
                    result.problems.append(f"lost: {what}")
                elif delivered:
                    result.delivered += 1
                else:
                    result.bounced += 1
            elif outcomes and refused:
                result.refused_reached += 1
                result.problems.append(f"refused yet delivered: {what}")
            elif outcomes:
                result.unaccepted_reached += 1
    for (token, recipient), count in (copies + ndrs).items():
        result.misdelivered += 1
        result.problems.append(f"misdelivered: {count} of {token} for {recipient}, "
                               "which it was not sent to")
    return result


# -- the run ------------------------------------------------------------------

@dataclasses.dataclass
class SoakResult:
    duration: float
    clients: int
    rate: float
    seed: int
    workdir: str
    accepted: int = 0
    refused: int = 0
    interrupted: int = 0
    kills: int = 0
    outages: int = 0
    unfinished: int = 0
    drain_seconds: float = 0.0
    stop_exit_code: object = None
    server_failure: str = ""
    reconciliation: Reconciliation = dataclasses.field(default_factory=Reconciliation)

    @property
    def lost(self):
        return self.reconciliation.lost

    @property
    def duplicated(self):
        return self.reconciliation.duplicated

    @property
    def passed(self):
        r = self.reconciliation
        return (not self.server_failure and self.stop_exit_code == 0 and self.unfinished == 0
                and r.lost == 0 and r.duplicated == 0 and r.misdelivered == 0
                and r.refused_reached == 0 and r.unexplained_bounces == 0
                and r.delivered_share >= MIN_DELIVERED_SHARE)

    def summary(self):
        r = self.reconciliation
        rows = [
            ("messages accepted (250)", self.accepted),
            ("messages refused (error reply)", self.refused),
            ("messages interrupted (no reply)", self.interrupted),
            ("server kills (kill -9 and restart)", self.kills),
            ("postoffice outages", self.outages),
            ("accepted recipients delivered once", r.delivered),
            ("accepted recipients bounced, one NDR", r.bounced),
            (f"delivered share (at least {MIN_DELIVERED_SHARE:.0%})", f"{r.delivered_share:.1%}"),
            (f"NDRs no outage over {RETRY_BUDGET} s explains", r.unexplained_bounces),
            ("lost (no copy, no NDR, not in the queue)", r.lost),
            ("duplicated (more than one outcome)", r.duplicated),
            ("misdelivered", r.misdelivered),
            ("refused yet delivered", r.refused_reached),
            ("interrupted yet delivered once (allowed)", r.unaccepted_reached),
            ("deliveries unfinished in the queue", self.unfinished),
            ("accepted recipients still queued", r.still_queued),
            ("seconds waited for the queue to drain", f"{self.drain_seconds:.1f}"),
            ("server exit code on SIGTERM", self.stop_exit_code),
        ]
        lines = [f"soak: {self.duration:g} s, {self.clients} clients at {self.rate:g} "
                 f"messages/s each, seed {self.seed}"]
        lines += [f"  {label:<42} {value}" for label, value in rows]
        if self.server_failure:
            lines.append(f"  server failure: {self.server_failure}")
        lines += [f"  {problem}" for problem in r.problems[:20]]
        if len(r.problems) > 20:
            lines.append(f"  ... and {len(r.problems) - 20} more problems")
        lines.append(f"soak: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def run(postconn, duration, clients, rate, seed, workdir):
    """One soak run in `workdir` (which must be empty or absent)."""
    postconn_process.POSTCONN = postconn
    os.makedirs(workdir, exist_ok=True)
    if os.listdir(workdir):
        raise SystemExit(f"soak: work directory {workdir} is not empty")
    result = SoakResult(duration, clients, rate, seed, workdir)
    make_postoffices(workdir)
    config = postconn_process.write_config(workdir, extra=CONFIG_EXTRA)
    server = ServerUnderTest(workdir, config)
    sent = SentLog()
    stop_load = threading.Event()
    chaos = Chaos(server, workdir, random.Random(f"{seed}-chaos"))
    try:
        server.start()
        load = [Client(n, seed, rate, server.port, sent, stop_load) for n in range(clients)]
        for client in load:
            client.start()
        chaos.start()
        chaos.failed.wait(duration)
        chaos.stop.set()
        chaos.join()
        stop_load.set()
        for client in load:
            client.join()
        result.kills, result.outages = chaos.kills, chaos.outages
        result.accepted = sent.count(ACCEPTED)
        result.refused = sent.count(REFUSED)
        result.interrupted = sent.count(INTERRUPTED)
        if chaos.failure:
            result.server_failure = chaos.failure
            return result
        drain_started = time.monotonic()
        result.unfinished = wait_until_drained(workdir, DRAIN_TIMEOUT)
        result.drain_seconds = time.monotonic() - drain_started
        result.stop_exit_code = server.stop()
        result.reconciliation = reconcile(workdir, sent, outcomes_in_queue(workdir),
                                          chaos.outages_seen)
        return result
    except ServerFailure as failure:
        result.server_failure = str(failure)
        return result
    finally:
        stop_load.set()
        chaos.stop.set()
        server.close()
        sent.write(os.path.join(workdir, "sent.tsv"))


def resolve_binary(name):
    """An absolute path for `name` (the server runs in the work directory)."""
    return os.path.abspath(shutil.which(name) or name)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Soak the real postconn server under SMTP load, kill -9 and "
                    "postoffice outages, then reconcile every accepted message.")
    parser.add_argument("--postconn", default=os.environ.get("POSTCONN"),
                        help="the postconn binary (default: $POSTCONN)")
    parser.add_argument("--duration", type=float, required=True,
                        help="seconds of load and chaos")
    parser.add_argument("--clients", type=int, default=4, help="SMTP client threads")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="messages a second each client sends, on average "
                             f"(default {DEFAULT_RATE})")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the chaos and of the clients' choices (>= 0)")
    parser.add_argument("--workdir",
                        help="an empty or new directory for the run, always kept "
                             "(default: a temporary one)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary work directory even when the run passes")
    options = parser.parse_args(argv)
    if not options.postconn:
        parser.error("--postconn or $POSTCONN is required")
    if options.seed < 0:
        parser.error("--seed must be >= 0")
    if options.duration <= 0 or options.clients < 1 or options.rate <= 0:
        parser.error("--duration, --clients and --rate must be positive")
    return options


def main(argv=None):
    options = parse_arguments(argv)
    workdir = options.workdir or tempfile.mkdtemp(prefix="postconn-soak-")
    result = run(resolve_binary(options.postconn), options.duration, options.clients,
                 options.rate, options.seed, workdir)
    print(result.summary())
    if options.workdir or options.keep or not result.passed:
        print(f"soak: work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
