#!/usr/bin/env python3
"""Runs Postfix's smtp-sink and notes when it has received COUNT messages.

    sink.py COUNT STAMP SMTP_SINK [SMTP_SINK_ARGS...]

Starts `SMTP_SINK -c SMTP_SINK_ARGS...` and reads its running counters
("sess=S quit=Q mesg=M", one per event, each ended by CR) from a pipe. smtp-sink
counts a message when it reads the "." that ends its DATA. The first time M
reaches COUNT, the wall-clock time (seconds since the epoch, like bash's
$EPOCHREALTIME) is written to STAMP; the latest M is written to STAMP.count
at most twice a second and at the end, for progress and diagnosis. SIGTERM
or SIGINT stops smtp-sink and this program.
"""
import os
import re
import signal
import subprocess
import sys
import time

COUNTER = re.compile(rb"mesg=(\d+)")


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    count, stamp, sink = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    proc = subprocess.Popen([sink, "-c", *sys.argv[4:]], stdout=subprocess.PIPE, bufsize=0)

    def stop(*_):
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    received, reached, noted, tail = 0, False, 0.0, b""
    fd = proc.stdout.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        # Only the newest complete counter matters; keep a partial one.
        tail = (tail + chunk)[-256:]
        complete = tail[: tail.rfind(b"\r") + 1]
        found = COUNTER.findall(complete)
        if found:
            received = int(found[-1])
        now = time.time()
        if not reached and received >= count:
            reached = True
            write_atomically(stamp, "%.6f\n" % now)
        if now - noted >= 0.5:
            noted = now
            write_atomically(stamp + ".count", "%d\n" % received)
    write_atomically(stamp + ".count", "%d\n" % received)
    proc.wait()


if __name__ == "__main__":
    main()
