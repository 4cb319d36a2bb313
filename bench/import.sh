#!/usr/bin/env bash
# Import benchmark: a fresh release server, one user, a generated CSV of N rows (default 1,000,000)
# imported into one account through POST /api/v1/imports, then GET /api/v1/reports/summary over
# those rows measured on one keep-alive connection.
#
#   bench/import.sh [ROWS] [--postgres URL]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROWS="${1:-1000000}"
POSTGRES_URL=""
if [[ "${2:-}" == "--postgres" ]]; then POSTGRES_URL="${3:?URL}"; fi

log() { echo "bench: $*" >&2; }
# BENCH_BIN=path runs that binary instead of building this checkout (to compare two builds).
BIN="${BENCH_BIN:-target/release/ledgerline}"
if [[ -z "${BENCH_BIN:-}" ]]; then
    log "building (cargo build --release)…"
    cargo build --release --bin ledgerline >&2
fi

DATA_DIR="$(mktemp -d -t ledgerline-import.XXXXXX)"
DB_NAME=""
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    [[ -n "$DB_NAME" ]] && psql "$POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >&2 || true
    [[ -n "${BENCH_KEEP_LOG:-}" ]] && cp "$DATA_DIR/server.log" "$BENCH_KEEP_LOG"; rm -rf "$DATA_DIR"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ENV=("LEDGERLINE_DATA_DIR=$DATA_DIR" "LEDGERLINE_LISTEN=127.0.0.1:$PORT" "LEDGERLINE_RATE_LIMIT_API_PER_USER=1000000/1s" "LEDGERLINE_LOG_LEVEL=${BENCH_LOG:-warn}")
if [[ -n "$POSTGRES_URL" ]]; then
    DB_NAME="ledgerline_import_$$"
    psql "$POSTGRES_URL" -qc "CREATE DATABASE \"$DB_NAME\"" >&2
    ENV+=("LEDGERLINE_DATABASE_URL=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$POSTGRES_URL" "$DB_NAME")")
fi
env "${ENV[@]}" "$BIN" serve >"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$PORT" "$ROWS" "$DATA_DIR" "$SERVER_PID" <<'PY'
import http.client, json, random, sys, time, urllib.parse
port, rows, data_dir, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def call(conn, method, path, body=None, token=None, ctype="application/json"):
    headers = {"content-type": ctype}
    if token: headers["authorization"] = "Bearer " + token
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse(); data = r.read()
    return r.status, data
# The file first: generating it takes seconds, longer than the server keeps an idle connection.
rnd = random.Random(42)
cats = ["Groceries", "Restaurants", "Coffee", "Fuel", "Rent", "Salary", "Utilities", "Clothing"]
lines = ["Date,Amount,Description,Payee,Category"]
for i in range(rows):
    d = f"2026-{1 + (i % 11):02d}-{1 + (i % 28):02d}"
    cents = rnd.randrange(100, 50000)
    amt = f"-{cents // 100}.{cents % 100:02d}" if i % 10 else f"{cents // 10}.{cents % 100:02d}"
    lines.append(f"{d},{amt},Card payment {i},Shop {i % 500},{cats[i % len(cats)]}")
body = ("\n".join(lines) + "\n").encode()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
s, b = call(c, "POST", "/api/v1/auth/register", json.dumps({"email": "bench@example.org", "password": "bench password", "base_currency": "EUR"}))
token = json.loads(b)["access_token"]
s, b = call(c, "POST", "/api/v1/accounts", json.dumps({"name": "Main", "kind": "checking", "currency": "EUR"}), token)
account = json.loads(b)["id"]
mapping = urllib.parse.quote(json.dumps({"date": "Date", "amount": "Amount", "description": "Description", "payee": "Payee", "category": "Category"}))
def cpu_by_thread():
    """CPU seconds so far of each of the server's threads, summed by thread name."""
    import glob, os
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = open(f"{task}/comm").read().strip()
            fields = open(f"{task}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out
cpu0 = cpu_by_thread()
t0 = time.perf_counter()
s, b = call(c, "POST", f"/api/v1/imports?format=csv&account_id={account}&mapping={mapping}", body, token, "text/csv")
elapsed = time.perf_counter() - t0
report = json.loads(b)
print(f"import: {rows} rows, {len(body) / 1e6:.1f} MB, HTTP {s}, created {report.get('created')}, "
      f"failed {len(report.get('failed', []))}: {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s)")
cpu1 = cpu_by_thread()
used = {k: v - cpu0.get(k, 0.0) for k, v in cpu1.items()}
print("server CPU during the import: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.05))
lat = []
for i in range(300):
    t = time.perf_counter()
    s, b = call(c, "GET", "/api/v1/reports/summary?from=2026-01-01&to=2026-12-31", None, token)
    lat.append((time.perf_counter() - t) * 1000)
    assert s == 200, b
lat.sort()
summary = json.loads(b)
print(f"summary over {summary['transactions']} transactions: p50 {lat[149]:.2f} ms, p99 {lat[296]:.2f} ms, max {lat[-1]:.2f} ms")
with open(f"/proc/{pid}/status") as f:
    for line in f:
        if line.startswith("VmHWM"): print("server peak RSS:", line.split(":")[1].strip())
PY
