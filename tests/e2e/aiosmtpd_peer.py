"""An SMTP server built on aiosmtpd, an SMTP implementation that owes nothing
to postconn, for end-to-end tests of smtp postoffices: what postconn's client
sends must satisfy a server someone else wrote.

    /usr/bin/python3 aiosmtpd_peer.py --port PORT --spool DIR
        [--refuse-rcpt ADDR]... [--tempfail] [--tls CERT KEY]

It runs on Debian's interpreter, which imports the packaged aiosmtpd, prints
"ready PORT" on stdout once it listens (--port 0: a free port it picked),
and stops on SIGTERM or SIGINT.

  --refuse-rcpt ADDR  RCPT TO ADDR gets 550 5.1.1 (repeatable)
  --tempfail          every message gets 451 4.3.0 at the end of its data
  --tls CERT KEY      offer STARTTLS with this PEM certificate and key

Every accepted message is written to DIR/tmp/ and renamed into DIR/new/, so
a file in new/ is always complete; names sort in arrival order. A file holds
one line of JSON, {"sender": ..., "recipients": [...], "tls": true when the
session had run STARTTLS, "client_port": the port the connection came
from, the same for messages sent over one connection}, then the content
exactly as received (CRLF line ends, dot-stuffing undone).

The EHLO reply is aiosmtpd's own: no PIPELINING and no ENHANCEDSTATUSCODES,
although the refusals here carry enhanced codes, as many servers' do.
"""
import argparse
import itertools
import json
import os
import signal
import ssl
import sys

try:
    from aiosmtpd.controller import Controller
except ImportError as error:
    sys.exit(f"aiosmtpd_peer.py: cannot import aiosmtpd ({error}); "
             "install the Debian package python3-aiosmtpd")


class AnyPortController(Controller):
    """A Controller that may listen on port 0: its start-up check connects
    to the port it got, not to port 0."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SpoolingHandler:
    def __init__(self, spool, refused_recipients, tempfail):
        self.spool = spool
        self.refused_recipients = {address.lower() for address in refused_recipients}
        self.tempfail = tempfail
        self.sequence = itertools.count(1)
        for sub in ("tmp", "new"):
            os.makedirs(os.path.join(spool, sub), exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused_recipients:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.tempfail:
            return "451 4.3.0 Temporarily unable to accept the message"
        self.write(envelope, session.ssl is not None, session.peer[1])
        return "250 2.0.0 OK: message accepted"

    def write(self, envelope, tls, client_port):
        name = "%06d.msg" % next(self.sequence)
        temporary = os.path.join(self.spool, "tmp", name)
        header = json.dumps({"sender": envelope.mail_from, "recipients": envelope.rcpt_tos,
                             "tls": tls, "client_port": client_port})
        with open(temporary, "wb") as f:
            f.write(header.encode() + b"\n" + envelope.original_content)
        os.rename(temporary, os.path.join(self.spool, "new", name))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--refuse-rcpt", action="append", default=[], metavar="ADDR")
    parser.add_argument("--tempfail", action="store_true")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    tls_context = None
    if args.tls:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(*args.tls)
    handler = SpoolingHandler(args.spool, args.refuse_rcpt, args.tempfail)
    # Blocked before the server thread starts, so only sigwait() sees them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    controller = AnyPortController(handler, hostname="127.0.0.1", port=args.port,
                            server_hostname="aiosmtpd.example.test", tls_context=tls_context)
    controller.start()
    print(f"ready {controller.port}", flush=True)
    signal.sigwait(stop_signals)
    controller.stop()


if __name__ == "__main__":
    main()
