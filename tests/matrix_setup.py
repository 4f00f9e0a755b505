"""Prepares the loopback Synapse of tests/servers.sh for the Matrix tests.

Waits until the homeserver answers /_matrix/client/versions, registers a bot and a reader with
the registration shared secret (Synapse's admin register API), lets the bot create a private
room, invites and joins the reader, and writes the tokens and the room ID into STATE (JSON).
Idempotent: a state whose tokens still work and whose bot and reader are still in the room is
kept; a user that exists already logs in (its password is derived from the shared secret).

Usage: matrix_setup.py URL SHARED_SECRET_FILE STATE_JSON [WAIT_SECONDS]
Standard library only (it runs with Synapse's own venv python, but needs nothing of it).
"""

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def call(url, method="GET", body=None, token=None, timeout=10):
    """Answers (status, JSON) of one client-server API call."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text or b"{}")
        except ValueError:
            return error.code, {"error": text.decode(errors="replace")}


def wait_until_up(base, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, answer = call(base + "/_matrix/client/versions", timeout=2)
            if status == 200 and answer.get("versions"):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit("matrix_setup: Synapse at %s did not answer /_matrix/client/versions within %ss"
                     % (base, seconds))
        time.sleep(0.3)


def password_of(secret, user):
    """The user's password, derived from the shared secret: a lost state can log in again."""
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()


def register_or_login(base, secret, user, password):
    """Access token of `user`: registered with the shared secret, or logged in if it exists."""
    _, nonce = call(base + "/_synapse/admin/v1/register")
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce["nonce"].encode(), user.encode(), password.encode(),
                             b"notadmin"]))
    status, answer = call(base + "/_synapse/admin/v1/register", "POST", {
        "nonce": nonce["nonce"], "username": user, "password": password, "admin": False,
        "mac": mac.hexdigest(),
    })
    if status == 200:
        return answer["access_token"]
    if answer.get("errcode") != "M_USER_IN_USE":
        sys.exit("matrix_setup: registering %s: HTTP %s %s" % (user, status, answer))
    status, answer = call(base + "/_matrix/client/v3/login", "POST", {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    })
    if status != 200:
        sys.exit("matrix_setup: logging in %s: HTTP %s %s" % (user, status, answer))
    return answer["access_token"]


def still_good(base, state):
    """True when both tokens work and both users are members of the room."""
    for key in ("bot_token", "reader_token"):
        status, _ = call(base + "/_matrix/client/v3/account/whoami", token=state.get(key))
        if status != 200:
            return False
        status, answer = call(base + "/_matrix/client/v3/joined_rooms", token=state[key])
        if status != 200 or state.get("room") not in answer.get("joined_rooms", []):
            return False
    return True


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base, secret_file, state_file = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    wait = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    with open(secret_file, encoding="utf-8") as f:
        secret = f.read().strip()
    wait_until_up(base, wait)

    state = {}
    if os.path.exists(state_file):
        with open(state_file, encoding="utf-8") as f:
            state = json.load(f)
        if still_good(base, state):
            return
    state["bot_token"] = register_or_login(base, secret, "gatehouse-bot",
                                           password_of(secret, "gatehouse-bot"))
    state["reader_token"] = register_or_login(base, secret, "gatehouse-reader",
                                              password_of(secret, "gatehouse-reader"))
    status, answer = call(base + "/_matrix/client/v3/createRoom", "POST", {
        "name": "gatehouse tests", "preset": "private_chat",
        "invite": ["@gatehouse-reader:localhost"],
    }, token=state["bot_token"])
    if status != 200:
        sys.exit("matrix_setup: createRoom: HTTP %s %s" % (status, answer))
    state["room"] = answer["room_id"]
    room = urllib.parse.quote(state["room"], safe="")
    status, answer = call(base + "/_matrix/client/v3/join/" + room, "POST", {},
                          token=state["reader_token"])
    if status != 200:
        sys.exit("matrix_setup: the reader joining %s: HTTP %s %s" % (state["room"], status, answer))
    tmp = state_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, state_file)


if __name__ == "__main__":
    main()
