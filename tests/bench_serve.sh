#!/usr/bin/env bash
# Measures `gatehouse serve` with N idle consoles opened by the real OpenSSH client in tmux:
# the server's resident memory per console, its CPU over an idle period, and the bytes it sends
# to the clients over that period (from the kernel's per-socket counters, `ss -ti`).
# Usage: tests/bench_serve.sh [SESSIONS=20] [IDLE_SECONDS=60]   (needs tmux, ssh, ss; builds nothing:
#        set GATEHOUSE_BIN, default target/release/gatehouse)
set -euo pipefail

SESSIONS="${1:-20}"
IDLE="${2:-60}"
BIN="${GATEHOUSE_BIN:-$(dirname "$0")/../target/release/gatehouse}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
DIR="$(mktemp -d)"
PORT=$((20000 + RANDOM % 20000))
SOCK="gh-bench-serve-$$"
export GATEHOUSE_DATABASE_URL="sqlite:$DIR/gatehouse.db" GATEHOUSE_LOG_FILE="$DIR/gatehouse.log"
SERVER=""

cleanup() {
    tmux -L "$SOCK" kill-server 2>/dev/null || true
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
sent_bytes() { # bytes the server's sockets have sent (sum over its connections)
    ss -tinH state established "( sport = :$PORT )" | grep -o 'bytes_sent:[0-9]*' | cut -d: -f2 | awk '{s += $1} END {print s + 0}'
}
consoles() { grep -o 'consoles=[0-9]*' "$GATEHOUSE_LOG_FILE" | tail -n 1 | cut -d= -f2; }

"$BIN" operator add "$(id -un)" --role admin >/dev/null
"$BIN" operator add bench --role approver >/dev/null
ssh-keygen -q -t ed25519 -N '' -C bench -f "$DIR/key"
"$BIN" operator key add bench "$DIR/key.pub" >/dev/null
"$BIN" serve --ssh "127.0.0.1:$PORT" --host-key "$DIR/host_key" --max-sessions-per-key "$SESSIONS" \
    >"$DIR/serve.out" 2>&1 &
SERVER=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
sleep 1
RSS0=$(rss_kb "$SERVER")

SSH="ssh -tt -i $DIR/key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p $PORT bench@127.0.0.1"
tmux -L "$SOCK" -f /dev/null new-session -d -s s0 -x 120 -y 40 "$SSH"
for i in $(seq 1 $((SESSIONS - 1))); do
    tmux -L "$SOCK" new-session -d -s "s$i" -x 120 -y 40 "$SSH"
done
for _ in $(seq 300); do [ "$(consoles)" = "$SESSIONS" ] && break; sleep 0.1; done
[ "$(consoles)" = "$SESSIONS" ] || { echo "only $(consoles) of $SESSIONS consoles opened" >&2; exit 1; }
sleep 3 # first frames sent and loads finished
RSS1=$(rss_kb "$SERVER")
CPU1=$(cpu_ticks "$SERVER"); SENT1=$(sent_bytes)
sleep "$IDLE"
CPU2=$(cpu_ticks "$SERVER"); SENT2=$(sent_bytes); RSS2=$(rss_kb "$SERVER")
HZ=$(getconf CLK_TCK)

echo "sessions:                 $SESSIONS (120x40, overview, nothing changing)"
echo "server RSS:               ${RSS0} kB with none, ${RSS1} kB with $SESSIONS, ${RSS2} kB after ${IDLE}s idle"
awk -v a="$RSS0" -v b="$RSS1" -v n="$SESSIONS" 'BEGIN { printf "RSS per session:          %.0f kB\n", (b - a) / n }'
awk -v t=$((CPU2 - CPU1)) -v hz="$HZ" -v s="$IDLE" 'BEGIN { printf "server CPU while idle:    %.2f%% of one core (%d ticks in %d s)\n", 100 * t / hz / s, t, s }'
echo "bytes sent while idle:    $((SENT2 - SENT1)) in ${IDLE}s, all $SESSIONS sessions together"
