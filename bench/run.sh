#!/usr/bin/env bash
# One-command benchmark: build release, start a fresh server, run loadgen against it, report the
# server's peak memory, stop the server and clean up.
#
#   bench/run.sh [--postgres URL] [--keep] [-- LOADGEN ARGS...]
#
#   bench/run.sh -- --scenario create --connections 64 --users 64 --duration 20
#   bench/run.sh --postgres postgres://postgres@127.0.0.1:5432/postgres -- --connections 1 --users 1
#
# SQLite by default, in a new temporary data directory. With --postgres URL a new database is
# created through URL (which must allow CREATE DATABASE), used, and dropped afterwards.
# --keep leaves the data directory (and the PostgreSQL database) in place for inspection.
# loadgen's results go to stdout (one JSON object with `-- --json`); everything else to stderr.
# The exit status is loadgen's.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; }

POSTGRES_URL=""
KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --postgres) [[ $# -ge 2 ]] || { usage; exit 2; }; POSTGRES_URL="$2"; shift 2 ;;
        --postgres=*) POSTGRES_URL="${1#--postgres=}"; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "bench/run.sh: unknown option $1 (loadgen options go after --)" >&2; usage; exit 2 ;;
    esac
done
LOADGEN_ARGS=("$@")

log() { echo "bench: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log "building (cargo build --release --bins)…"
cargo build --release --bins >&2

DATA_DIR="$(mktemp -d -t ledgerline-bench.XXXXXX)"
SERVER_PID=""
DB_NAME=""

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
        log "kept data dir $DATA_DIR${DB_NAME:+ and database $DB_NAME}"
    else
        if [[ -n "$DB_NAME" ]]; then
            psql "$POSTGRES_URL" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >&2 \
                || log "could not drop database $DB_NAME"
        fi
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

if [[ -n "$POSTGRES_URL" ]]; then
    DB_NAME="ledgerline_bench_$(date +%Y%m%d_%H%M%S)_$$"
    log "creating PostgreSQL database $DB_NAME"
    psql "$POSTGRES_URL" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$DB_NAME\"" >&2
    DB_URL="$(python3 - "$POSTGRES_URL" "$DB_NAME" <<'EOF'
import sys
import urllib.parse as u
parts = u.urlsplit(sys.argv[1])
print(u.urlunsplit(parts._replace(path="/" + sys.argv[2])))
EOF
)"
    SERVER_ENV+=("LEDGERLINE_DATABASE_URL=$DB_URL")
    BACKEND="postgres ($DB_NAME)"
else
    BACKEND="sqlite ($DATA_DIR)"
fi

log "starting target/release/ledgerline on $BASE_URL, backend $BACKEND"
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
log "server ready (pid $SERVER_PID): $(curl -fsS -m 2 "$BASE_URL/readyz"); RSS at start $(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status") MiB"

set +e
target/release/loadgen --url "$BASE_URL" --server-pid "$SERVER_PID" "${LOADGEN_ARGS[@]}"
LOADGEN_RC=$?
set -e

if [[ -r "/proc/$SERVER_PID/status" ]]; then
    HWM_KB="$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")"
    RSS_KB="$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")"
    log "server peak RSS (VmHWM): $((HWM_KB / 1024)) MiB ($HWM_KB kB); RSS now $((RSS_KB / 1024)) MiB"
else
    log "the server is gone; no memory figures (its log: $DATA_DIR/server.log)"
fi
if [[ -s "$DATA_DIR/server.log" ]]; then
    WARNINGS="$(grep -c . "$DATA_DIR/server.log" || true)"
    log "server log has $WARNINGS line(s) at warn level or above; the first ones:"
    head -n 5 "$DATA_DIR/server.log" | cut -c1-400 >&2
fi
exit "$LOADGEN_RC"
