"""Runs a real etcd for end-to-end tests: a one-member cluster on free
loopback ports, its data in a temporary directory, killed at the end.

Heartbeat 10 ms and election timeout 100 ms, as tests/runtime/cluster/
etcd_process.hpp does: the member elects itself at once, and etcd's shortest
lease is 1 s, so a cluster.lease_ttl of 2 s is taken as it is."""
import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from postconn_process import free_port


class Etcd:
    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="postconn-etcd-")
        self.proc = None
        for _ in range(5):
            self.client_port, peer_port = free_port(), free_port()
            if self._run(peer_port):
                return
        raise AssertionError("etcd did not start:\n" + self.log())

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.client_port

    def restart(self):
        """Kills etcd (SIGKILL) and starts it again on its ports and data."""
        self.stop()
        if not self._run(self.peer_port):
            raise AssertionError("etcd did not start again:\n" + self.log())

    def _run(self, peer_port):
        self.peer_port = peer_port
        client = "http://" + self.endpoint
        peer = "http://127.0.0.1:%d" % peer_port
        log = open(os.path.join(self._dir.name, "etcd.log"), "a")
        self.proc = subprocess.Popen(
            ["etcd", "--name=default", "--data-dir=" + os.path.join(self._dir.name, "data"),
             "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
             "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
             "--initial-cluster=default=" + peer, "--heartbeat-interval=10",
             "--election-timeout=100", "--logger=zap", "--log-outputs=stderr"],
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(client + "/health", timeout=1) as reply:
                    if json.load(reply).get("health") == "true":
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        return False

    def log(self):
        with open(os.path.join(self._dir.name, "etcd.log"), errors="replace") as f:
            return f.read()

    def members(self):
        """The member keys etcd holds: node -> cluster address."""
        prefix = b"/postconn/members/"
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        request = json.dumps({"key": base64.b64encode(prefix).decode(),
                              "range_end": base64.b64encode(end).decode()}).encode()
        with urllib.request.urlopen("http://%s/v3/kv/range" % self.endpoint, request,
                                    timeout=5) as reply:
            kvs = json.load(reply).get("kvs", [])
        return {base64.b64decode(kv["key"])[len(prefix):].decode():
                base64.b64decode(kv.get("value", "")).decode() for kv in kvs}

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self._dir.cleanup()


class TcpProxy:
    """A loopback TCP relay to `target` (host:port) that a test can cut, as
    a partition would: cut() closes every relayed connection and closes new
    ones at once; mend() relays again."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open = []
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self):
        with self._lock:
            self._cut = True
            for s in self._open:
                self._close(s)
            self._open.clear()

    def mend(self):
        with self._lock:
            self._cut = False

    def close(self):
        self.cut()
        self._close(self._listener)

    @staticmethod
    def _close(s):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._target, timeout=5)
                server.settimeout(None)
            except OSError:
                self._close(client)
                continue
            with self._lock:
                if self._cut:
                    self._close(client)
                    self._close(server)
                    continue
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._close(sink)
