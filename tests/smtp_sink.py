"""A real SMTP server for the notification tests (aiosmtpd, PyPI).

Writes every accepted message as one file into a directory: the envelope first
(`X-Envelope-From:`, one `X-Envelope-To:` per recipient), then the message as received.
Recipients whose local part starts with `refuse` get `550` (permanent), those starting
with `busy` get `451` (transient), so the tests can check both outcomes.

Usage: python3 tests/smtp_sink.py DIRECTORY PORT [TLS_DIR STARTTLS_PORT TLS_PORT PASSWORD_FILE]

With the TLS arguments it also listens on STARTTLS_PORT (STARTTLS required) and TLS_PORT
(implicit TLS), both with `TLS_DIR/server.pem` + `server.key` and requiring AUTH as user
`gatehouse` with the password in PASSWORD_FILE.
"""

import asyncio
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


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
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            head += "X-Authenticated-As: %s\r\n" % session.auth_data.login.decode()
        if session.ssl:
            head += "X-Transport: tls\r\n"
        tmp = os.path.join(self.directory, "." + name)
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


class Authenticator:
    def __init__(self, password):
        self.password = password

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"gatehouse"
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(directory, exist_ok=True)
    handler = Sink(directory)
    controllers = [Controller(handler, hostname="127.0.0.1", port=port)]
    if len(sys.argv) >= 7:
        tls_dir, starttls_port, tls_port, password_file = sys.argv[3:7]
        with open(password_file, "rb") as f:
            password = f.read().strip()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            os.path.join(tls_dir, "server.pem"), os.path.join(tls_dir, "server.key")
        )
        auth = Authenticator(password)
        controllers.append(
            Controller(
                handler,
                hostname="127.0.0.1",
                port=int(starttls_port),
                tls_context=context,
                require_starttls=True,
                authenticator=auth,
                auth_required=True,
            )
        )
        controllers.append(
            Controller(
                handler,
                hostname="127.0.0.1",
                port=int(tls_port),
                ssl_context=context,
                authenticator=auth,
                auth_required=True,
                auth_require_tls=False,
                server_hostname="localhost",
            )
        )
    for controller in controllers:
        controller.start()
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for controller in controllers:
            controller.stop()


if __name__ == "__main__":
    main()
