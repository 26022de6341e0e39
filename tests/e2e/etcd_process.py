"""Runs a real etcd for end-to-end tests: a one-member cluster on free
loopback ports, its data in a temporary directory, killed at the end.

Heartbeat 10 ms and election timeout 100 ms, as tests/runtime/cluster/
etcd_process.hpp does: the member elects itself at once, and etcd's shortest
lease is 1 s, so a cluster.lease_ttl of 2 s is taken as it is."""
import base64
import json
import os
import signal
import subprocess
import tempfile
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

    def _run(self, peer_port):
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
