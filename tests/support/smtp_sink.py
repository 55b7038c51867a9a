"""A real SMTP server for Tidings' tests, on aiosmtpd.

Every message accepted is appended to --out as one JSON line:
{"from", "to": [...], "subject", "text", "html", "at"} ("at": Unix seconds on arrival).
Recipients whose address contains
--reject get 550 (permanent); those containing --defer get 451 (temporary). --delay-ms
holds each DATA answer that long, so a test can kill the sender mid-batch. --headers-only
records the subject from the raw headers and leaves the bodies out ("text" and "html" are
null): parsing MIME costs Python milliseconds per message, which would make this server, not
the sender, the bottleneck of a throughput benchmark.
"""

import argparse
import asyncio
import json
import os
import signal
import time
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, reject, defer, delay, durable, headers_only):
        self.out = open(out, "a", encoding="utf-8")
        self.headers_only = headers_only
        self.reject = reject
        self.defer = defer
        self.delay = delay
        self.durable = durable

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            return "550 5.1.1 mailbox unavailable"
        if self.defer and self.defer in address:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay / 1000)
        if self.headers_only:
            record = {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "subject": raw_subject(envelope.content),
                "text": None,
                "html": None,
                "at": time.time(),
            }
        else:
            message = BytesParser(policy=policy.default).parsebytes(envelope.content)
            text = message.get_body(preferencelist=("plain",))
            html = message.get_body(preferencelist=("html",))
            record = {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "subject": str(message["subject"] or ""),
                "text": text.get_content() if text is not None else None,
                "html": html.get_content() if html is not None else None,
                "at": time.time(),
            }
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()
        if self.durable:
            # Tests kill processes: what was answered 250 must be on disk.
            os.fsync(self.out.fileno())
        return "250 Message accepted for delivery"


def raw_subject(content):
    """The Subject header as sent (plain ASCII subjects; folded lines joined)."""
    head = content.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    for line in head.split(b"\r\n"):
        if line[:8].lower() == b"subject:":
            return line[8:].strip().decode("utf-8", "replace")
    return ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--reject", default="")
    parser.add_argument("--defer", default="")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--no-fsync", action="store_true", help="for benchmarks")
    parser.add_argument("--headers-only", action="store_true", help="for benchmarks")
    args = parser.parse_args()
    controller = Controller(
        Sink(
            args.out,
            args.reject,
            args.defer,
            args.delay_ms,
            not args.no_fsync,
            args.headers_only,
        ),
        hostname="127.0.0.1",
        port=args.port,
    )
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
