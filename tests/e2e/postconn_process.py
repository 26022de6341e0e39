"""Starts the real `postconn serve` for end-to-end tests.

A test writes a config into a fresh temporary directory (the server's working
directory, so `var/` and the postoffices live there), starts the binary named
by $POSTCONN, and reads its log from stderr.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time

POSTCONN = os.environ.get("POSTCONN", "postconn")
SOURCE_DIR = os.environ.get("POSTCONN_SOURCE_DIR", ".")


def free_port():
    """A port that was free a moment ago. Another process (a test running in
    parallel) may take it before it is used, so postconn itself listens on
    port 0 and names its ports in the log; this is only for what must know a
    port in advance: servers that cannot report the port they got
    (smtp-sink, Dovecot) and the cluster's seed lists."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refusing_port():
    """A bound socket that does not listen, and its port: connections to it
    are refused for as long as the socket stays open, and no other process
    can take the port meanwhile."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


LISTENING = re.compile(r"(smtp|admin): listening on (\S+):(\d+)")


def listening_port(log, listener):
    """The port the last "smtp: listening on" (or "admin: ...") line of
    `log` names."""
    ports = [int(m.group(3)) for m in LISTENING.finditer(log) if m.group(1) == listener]
    if not ports:
        raise AssertionError(f"no {listener!r} listening line in the log:\n{log}")
    return ports[-1]


def write_config(directory, smtp_port=0, admin_port=0, extra="", smtp="", server=""):
    """A minimal valid config with two maildir postoffices; `server` and
    `smtp` add keys to the [server] and [smtp] tables, `extra` appends whole
    tables. Port 0 (the default) lets the server pick free ports, which
    Server.smtp_port and Server.admin_port read from its log."""
    path = os.path.join(directory, "postconn.toml")
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            [server]
            hostname = "connector.example.test"
            data_dir = "var"
            {{server}}
            [smtp]
            listen = "127.0.0.1:{smtp_port}"
            {{smtp}}
            [admin]
            listen = "127.0.0.1:{admin_port}"

            [[postoffice]]
            name = "sales"
            domains = ["sales.example.test"]
            transport = "maildir"
            path = "var/postoffices/sales"

            [[postoffice]]
            name = "support"
            domains = ["support.example.test"]
            transport = "maildir"
            path = "var/postoffices/support"
            """).replace("{smtp}", textwrap.dedent(smtp))
                .replace("{server}", textwrap.dedent(server)) + extra)
    return path


class Server:
    """A running `postconn serve`; use as a context manager. A thread reads
    its stderr all the time: the server logs synchronously, so a pipe left
    full (a thousand connections log two thousand lines) would stop it."""

    def __init__(self, workdir, config, *args, **popen):
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [POSTCONN, "serve", "--config", config, *args],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            **popen)
        self.log = ""
        self._read = []
        self._lock = threading.Lock()
        self._ended = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        try:
            while chunk := os.read(self.proc.stderr.fileno(), 65536):
                with self._lock:
                    self._read.append(chunk)
        except (OSError, ValueError):  # closed by __exit__
            pass
        self._ended.set()

    def read_log(self, timeout):
        """Appends what stderr gave within `timeout`; False at end of file."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                chunks, self._read = self._read, []
            if chunks:
                self.log += b"".join(chunks).decode(errors="replace")
                return True
            if self._ended.is_set():
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.01)

    @property
    def smtp_port(self):
        """The SMTP port the server logged (call after "serving on")."""
        return listening_port(self.log, "smtp")

    @property
    def admin_port(self):
        """The admin API's port the server logged."""
        return listening_port(self.log, "admin")

    @property
    def admin_url(self):
        """For `--admin` of the admin verbs."""
        return f"http://127.0.0.1:{self.admin_port}"

    def wait_for_log(self, needle, timeout=20, count=1):
        """Reads stderr until `needle` shows up (`count` times); fails if the
        server exits."""
        deadline = time.monotonic() + timeout
        while self.log.count(needle) < count:
            if time.monotonic() > deadline:
                self.proc.kill()  # a failed start must not leave a server behind
                raise AssertionError(f"no {needle!r} in the log after {timeout}s:\n{self.log}")
            if not self.read_log(0.1):
                self.proc.wait()
                raise AssertionError(
                    f"server exited ({self.proc.returncode}) before {needle!r}:\n{self.log}")
        return self.log

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Sends `sig`, waits for the exit, and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        while not self.proc.stderr.closed and self.read_log(1):
            pass
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


def run(*args, cwd=None):
    """Runs postconn to completion: (exit code, stdout, stderr)."""
    done = subprocess.run([POSTCONN, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def temp_workdir():
    return tempfile.TemporaryDirectory(prefix="postconn-e2e-")


def make_certificate(directory, name="connector.example.test", alt_names=()):
    """A self-signed certificate and its key, made by Debian's openssl;
    `alt_names` such as "IP:127.0.0.1" go into subjectAltName."""
    certificate = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    extensions = ["-addext", "subjectAltName=" + ",".join(alt_names)] if alt_names else []
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=" + name,
                    *extensions, "-keyout", key, "-out", certificate],
                   check=True, capture_output=True)
    return certificate, key
