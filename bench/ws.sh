#!/usr/bin/env bash
# WebSocket benchmark: build release, raise the open-file limit, start a fresh server (SQLite in
# a new temporary data directory, the rate-limit overrides of bench/run.sh), run wsbench against
# it with --server-pid, stop the server and clean up.
#
#   bench/ws.sh [--keep] [-- WSBENCH ARGS...]
#
#   bench/ws.sh -- latency --sessions 1000 --users 100 --rate 1000
#   bench/ws.sh -- idle --sessions 10000 --users 100
#   bench/ws.sh -- --json latency --rate 10000
#
# Server settings can be overridden from the environment (e.g. LEDGERLINE_WS_QUEUE=4096).
# --keep leaves the data directory in place for inspection.
# wsbench's results go to stdout (one JSON object with `-- --json`); everything else to stderr.
# The exit status is wsbench's.
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; }

KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "bench/ws.sh: unknown option $1 (wsbench options go after --)" >&2; usage; exit 2 ;;
    esac
done
WSBENCH_ARGS=("$@")

log() { echo "bench: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# 10,000 sockets need 10,000 descriptors on each side (server and client), plus a margin.
WANT_FDS=65536
if ! ulimit -n "$WANT_FDS" 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
log "open-file limit: $(ulimit -n)"

log "building (cargo build --release --bin ledgerline --bin wsbench)…"
cargo build --release --bin ledgerline --bin wsbench >&2
if REV="$(git rev-parse --short HEAD 2>/dev/null)"; then
    [[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || REV="$REV + uncommitted changes"
    log "built from $REV"
fi

DATA_DIR="$(mktemp -d -t ledgerline-wsbench.XXXXXX)"
SERVER_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server did not stop within 10 s; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $KEEP -eq 1 ]]; then
        log "kept data dir $DATA_DIR"
    else
        rm -rf "$DATA_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE_URL="http://127.0.0.1:$PORT"

SERVER_ENV=(
    "LEDGERLINE_DATA_DIR=$DATA_DIR"
    "LEDGERLINE_LISTEN=127.0.0.1:$PORT"
    "LEDGERLINE_LOG_LEVEL=warn"
    "LEDGERLINE_RATE_LIMIT_REGISTER_PER_IP=1000000/1s"
    "LEDGERLINE_RATE_LIMIT_LOGIN_PER_IP=1000000/1s"
    "LEDGERLINE_RATE_LIMIT_REFRESH_PER_IP=1000000/1s"
    "LEDGERLINE_RATE_LIMIT_API_PER_USER=1000000/1s"
)

log "starting target/release/ledgerline on $BASE_URL, backend sqlite ($DATA_DIR)"
env "${SERVER_ENV[@]}" target/release/ledgerline serve >"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!

for i in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server exited during start-up; its log:"
        cat "$DATA_DIR/server.log" >&2
        SERVER_PID=""
        exit 1
    fi
    if curl -fsS -m 2 "$BASE_URL/readyz" >/dev/null 2>&1; then
        break
    fi
    if [[ $i -eq 300 ]]; then
        log "the server was not ready after 30 s; its log:"
        cat "$DATA_DIR/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
log "server ready (pid $SERVER_PID, open-file limit $(awk '/^Max open files/ {print $4}' "/proc/$SERVER_PID/limits"))"

set +e
target/release/wsbench --url "$BASE_URL" --server-pid "$SERVER_PID" "${WSBENCH_ARGS[@]}"
WSBENCH_RC=$?
set -e

if [[ -r "/proc/$SERVER_PID/status" ]]; then
    HWM_KB="$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")"
    RSS_KB="$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")"
    log "server peak RSS (VmHWM): $((HWM_KB / 1024)) MiB ($HWM_KB kB); RSS now $((RSS_KB / 1024)) MiB"
else
    log "the server is gone; no memory figures (its log: $DATA_DIR/server.log)"
    KEEP=1
fi
if [[ -s "$DATA_DIR/server.log" ]]; then
    WARNINGS="$(grep -c . "$DATA_DIR/server.log" || true)"
    log "server log has $WARNINGS line(s) at warn level or above; the first ones:"
    head -n 5 "$DATA_DIR/server.log" | cut -c1-400 >&2
fi
exit "$WSBENCH_RC"
