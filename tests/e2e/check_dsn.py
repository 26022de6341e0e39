"""Checks one DSN read from stdin the way a mail client would: Python's
`email` package must see a multipart/report (report-type=delivery-status)
of exactly three parts, text/plain, message/delivery-status with per-
recipient blocks, and text/rfc822-headers; every line must end in CRLF, be
ASCII and at most 998 octets. Prints what it found as JSON and exits 0, or
prints the reason and exits 1.

    python3 check_dsn.py < message.eml
    python3 check_dsn.py --maildir < new/file   (LF line endings, as a
                                                 maildir file has them)
"""
import email
import email.policy
import json
import re
import sys

SINGLE_HEADERS = ("From", "To", "Subject", "Date", "Message-ID",
                  "Auto-Submitted", "MIME-Version", "Content-Type")
STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


class Invalid(Exception):
    pass


def require(condition, reason):
    if not condition:
        raise Invalid(reason)


def check_lines(data):
    require(data.endswith(b"\r\n"), "message does not end in CRLF")
    for number, line in enumerate(data[:-2].split(b"\r\n"), 1):
        require(b"\r" not in line and b"\n" not in line,
                f"line {number}: bare CR or LF")
        require(len(line) <= 998, f"line {number}: {len(line)} octets")
        require(line.isascii(), f"line {number}: not ASCII")


def check_headers(message):
    for name in SINGLE_HEADERS:
        count = len(message.get_all(name, []))
        require(count == 1, f"{name} appears {count} times")
    require(message.get_content_type() == "multipart/report",
            f"top level is {message.get_content_type()}")
    require(message.get_param("report-type") == "delivery-status",
            "report-type is not delivery-status")
    require(message["Auto-Submitted"] == "auto-replied", "Auto-Submitted")


def recipient_fields(block):
    final = block.get("Final-Recipient", "")
    require(final.lower().startswith("rfc822;"), f"Final-Recipient {final!r}")
    action = block.get("Action", "")
    status = block.get("Status", "")
    require(action in ("failed", "delayed"), f"Action {action!r}")
    require(STATUS.fullmatch(status), f"Status {status!r}")
    require(status[0] == ("5" if action == "failed" else "4"),
            f"Status {status} with Action {action}")
    return {"recipient": final.split(";", 1)[1].strip(), "action": action,
            "status": status, "diagnostic": block.get("Diagnostic-Code")}


def check_parts(message):
    parts = message.get_payload()
    require(isinstance(parts, list) and len(parts) == 3,
            f"{len(parts) if isinstance(parts, list) else 'no'} parts, not 3")
    types = [part.get_content_type() for part in parts]
    require(types == ["text/plain", "message/delivery-status", "text/rfc822-headers"],
            f"part types {types}")
    blocks = parts[1].get_payload()
    require(len(blocks) >= 2, "no per-recipient block")
    require(blocks[0].get("Reporting-MTA", "").startswith("dns;"), "Reporting-MTA")
    require(blocks[0].get("Arrival-Date"), "Arrival-Date")
    return [recipient_fields(block) for block in blocks[1:]]


def check(data):
    check_lines(data)
    message = email.message_from_bytes(data, policy=email.policy.default)
    require(not message.defects, f"defects {message.defects}")
    check_headers(message)
    recipients = check_parts(message)
    return {"to": str(message["To"]), "subject": str(message["Subject"]),
            "queue_id": message["X-Postconn-Queue-Id"], "recipients": recipients}


def main():
    data = sys.stdin.buffer.read()
    if sys.argv[1:] == ["--maildir"]:
        # A maildir file stores lines with LF; on the wire they are CRLF.
        require_lf = b"\r" not in data
        if not require_lf:
            print("not a valid maildir file: CR in it")
            return 1
        data = data.replace(b"\n", b"\r\n")
    try:
        found = check(data)
    except Invalid as reason:
        print(f"not a valid DSN: {reason}")
        return 1
    print(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
