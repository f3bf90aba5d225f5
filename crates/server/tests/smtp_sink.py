#!/usr/bin/python3
"""A real SMTP server for the e-mail notification tests (Debian's python3-aiosmtpd).

Usage: smtp_sink.py DIR [CERT KEY]. Listens on a free loopback port, prints `port N` once it accepts
connections, and writes every message it receives to DIR/NNNN.json: the envelope sender and
recipients, the Message-ID and Subject headers and the text body. A message whose Message-ID was
seen before is acknowledged but written as DIR/dup-NNNN.json, so a test sees how often a message
was delivered and that a receiver keyed on the Message-ID shows it once. With CERT and KEY (PEM)
it offers STARTTLS and requires it before MAIL (as a relay that refuses clear text does), and
each record says whether the session was encrypted. Stops on SIGTERM.
"""

import email
import email.policy
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out
        self.seen = set()
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "message_id": msg.get("Message-ID", ""),
            "subject": msg.get("Subject", ""),
            "to": msg.get("To", ""),
            "from": msg.get("From", ""),
            "body": body.get_content() if body is not None else "",
            "tls": bool(session.ssl),
        }
        with self.lock:
            self.n += 1
            dup = record["message_id"] in self.seen
            self.seen.add(record["message_id"])
            name = ("dup-%04d.json" if dup else "%04d.json") % self.n
            tmp = os.path.join(self.out, "." + name)
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(self.out, name))
        return "250 Message accepted for delivery"


def main():
    out = sys.argv[1]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    tls = {}
    if len(sys.argv) > 3:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        tls = {"tls_context": ctx, "require_starttls": True}
        # A refused handshake (the test's untrusted-CA case) is expected: keep its traceback
        # out of the test output.
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, **tls)
    controller.start()
    print("port %d" % port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
