"""A real SMTP server for the notification tests (aiosmtpd, PyPI).

Writes every accepted message as one file into a directory: the envelope first
(`X-Envelope-From:`, one `X-Envelope-To:` per recipient), then the message as received.
Recipients whose local part starts with `refuse` get `550` (permanent), those starting
with `busy` get `451` (transient), so the tests can check both outcomes.

Usage: python3 tests/smtp_sink.py DIRECTORY PORT
"""

import asyncio
import os
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("refuse"):
            return "550 5.1.1 <%s>: mailbox unavailable (refused by the test server)" % address
        if local.startswith("busy"):
            return "451 4.3.0 <%s>: try again later (test server is busy)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%d-%06d.eml" % (time.time_ns(), self.count)
        head = "X-Envelope-From: %s\r\n" % envelope.mail_from
        head += "".join("X-Envelope-To: %s\r\n" % to for to in envelope.rcpt_tos)
        tmp = os.path.join(self.directory, "." + name)
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
