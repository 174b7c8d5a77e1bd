"""The local stand-in for SES: an SMTP server on loopback that files every message.

Each message becomes one `.eml` file in the mail directory (named by arrival time and a
counter, so a directory listing is in arrival order). Nothing is relayed.

Run: python -m pds_aws.local.smtp_sink --port PORT --mail-dir DIR
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MailDirHandler:
    """aiosmtpd handler: writes each received message to its own file."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self._counter):05d}.eml"
        partial = self.mail_dir / f".{name}.partial"
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.mail_dir / name)  # readers never see half a message
        return "250 Message accepted for delivery"


def read_messages(mail_dir: Path) -> list[Message]:
    """Every message the sink has filed, oldest first."""
    return [message_from_bytes(p.read_bytes()) for p in sorted(mail_dir.glob("*.eml"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pds_aws.local.smtp_sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mail-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.mail_dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(MailDirHandler(args.mail_dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(
        f"smtp sink listening on 127.0.0.1:{args.port}, filing mail in {args.mail_dir}", flush=True
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
