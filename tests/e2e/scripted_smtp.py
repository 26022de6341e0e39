"""A scripted SMTP/LMTP server for end-to-end tests of smtp and lmtp
postoffices: it answers each recipient as a test says (accept, 4xx, 5xx), can
stall before its greeting, hold its reply to the end of the data until a
test releases it, and records what it received.

    server = ScriptedServer(rcpt_replies={"bad@x": "550 5.1.1 no such user"})
    server.start(); ...; server.messages  # [(sender, [recipients], data bytes)]
"""
import socket
import threading


class ScriptedServer:
    def __init__(self, rcpt_replies=None, stall=False, lmtp=False, hold_data_reply=False):
        self.rcpt_replies = rcpt_replies or {}
        self.stall = stall
        self.lmtp = lmtp
        # With hold_data_reply, the reply to the end of the data waits for
        # `release_data_reply`; `data_received` is set when the data is in.
        self.hold_data_reply = hold_data_reply
        self.data_received = threading.Event()
        self.release_data_reply = threading.Event()
        self.messages = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.stopping = False

    def start(self):
        threading.Thread(target=self.accept_loop, daemon=True).start()
        return self

    def stop(self):
        self.stopping = True
        self.listener.close()

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        with conn, conn.makefile("rb") as reader:
            if self.stall:
                reader.read()  # never greets; waits until the client gives up
                return
            conn.sendall(b"220 scripted ESMTP\r\n")
            sender, rcpts = None, []
            for line in reader:
                command = line.rstrip(b"\r\n").decode(errors="replace")
                verb = command[:4].upper()
                if verb in ("EHLO", "LHLO"):
                    conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n")
                elif verb == "MAIL":
                    sender, rcpts = command.split(":", 1)[1].strip(), []
                    conn.sendall(b"250 2.1.0 ok\r\n")
                elif verb == "RCPT":
                    rcpt = command.split(":", 1)[1].strip().strip("<>")
                    reply = self.rcpt_replies.get(rcpt, "250 2.1.5 ok")
                    if reply.startswith("250"):
                        rcpts.append(rcpt)
                    conn.sendall(reply.encode() + b"\r\n")
                elif verb == "DATA":
                    if not rcpts:
                        conn.sendall(b"554 5.5.1 no valid recipients\r\n")
                        continue
                    conn.sendall(b"354 go ahead\r\n")
                    data = b""
                    for body_line in reader:
                        if body_line == b".\r\n":
                            break
                        data += body_line
                    else:
                        return  # cut off before the end of the data: no message
                    self.messages.append((sender, rcpts, data))
                    self.data_received.set()
                    if self.hold_data_reply:
                        self.release_data_reply.wait()
                    replies = len(rcpts) if self.lmtp else 1
                    conn.sendall(b"250 2.0.0 queued\r\n" * replies)
                elif verb == "RSET":
                    sender, rcpts = None, []
                    conn.sendall(b"250 2.0.0 ok\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 2.0.0 bye\r\n")
                    return
                else:
                    conn.sendall(b"502 5.5.1 unknown\r\n")
