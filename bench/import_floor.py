#!/usr/bin/env python3
"""The SQLite floor for an import, with no HTTP, no actors and no diesel: Ledgerline's
`transactions` table and indexes and the writer's pragmas (WAL, synchronous=FULL, foreign keys,
64 MiB cache), N rows of one user and one account in date order, 100,000 rows per transaction as
the server commits an import, each commit followed by a checkpoint. docs/benchmarks.md quotes it.

    python3 bench/import_floor.py base 1000000

Variants (the first argument, combinable): narrow (ids as 16-byte blobs, times as integers),
noacc / nocat (without the account or category index), noidx (no secondary index at all), nofk
(foreign keys off), bigcache (1 GiB cache), mem (an in-memory database: no disk at all), nockpt
(no checkpoints). The database goes to $TMPDIR (default /tmp).
"""
import sqlite3, os, time, uuid, sys, random
variant = sys.argv[1] if len(sys.argv) > 1 else "base"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
CH = 100000
path = ":memory:" if "mem" in variant else os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ledgerline-import-floor-{variant}.db")
for s in ([] if "mem" in variant else ["", "-wal", "-shm"]):
    try: os.remove(path+s)
    except FileNotFoundError: pass
c = sqlite3.connect(path, isolation_level=None)
c.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=%d; PRAGMA wal_autocheckpoint=0;" % (-65536 if "bigcache" not in variant else -1048576))
c.executescript("""
CREATE TABLE users (id TEXT PRIMARY KEY NOT NULL, email TEXT);
CREATE TABLE accounts (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users(id));
CREATE TABLE categories (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users(id));
CREATE TABLE transactions (
    id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE, amount BIGINT NOT NULL, currency TEXT NOT NULL,
    date DATE NOT NULL, occurred_at TIMESTAMP, description TEXT NOT NULL DEFAULT '', merchant TEXT NOT NULL DEFAULT '',
    category_id TEXT REFERENCES categories(id) ON DELETE SET NULL, category_source TEXT NOT NULL DEFAULT 'none', confidence DOUBLE PRECISION,
    tags TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '', transfer_id TEXT, foreign_amount BIGINT,
    foreign_currency TEXT, source TEXT NOT NULL DEFAULT 'api', external_id TEXT, created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL, version BIGINT NOT NULL DEFAULT 1);
CREATE INDEX transactions_user_date_idx ON transactions (user_id, date, id);
CREATE INDEX transactions_account_idx ON transactions (account_id, date);
CREATE INDEX transactions_category_idx ON transactions (category_id) WHERE category_id IS NOT NULL;
CREATE INDEX transactions_transfer_idx ON transactions (transfer_id) WHERE transfer_id IS NOT NULL;
CREATE UNIQUE INDEX transactions_external_key ON transactions (account_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX transactions_user_labels ON transactions (user_id, updated_at) WHERE category_source = 'user';
""")
if "noacc" in variant: c.execute("DROP INDEX transactions_account_idx")
if "nocat" in variant: c.execute("DROP INDEX transactions_category_idx")
if "noidx" in variant:
    for ix in ("transactions_user_date_idx","transactions_account_idx","transactions_category_idx","transactions_transfer_idx","transactions_external_key","transactions_user_labels"): c.execute("DROP INDEX "+ix)
if "nofk" in variant: c.execute("PRAGMA foreign_keys=OFF")
u = str(uuid.uuid4()); a = str(uuid.uuid4()); cats = [str(uuid.uuid4()) for _ in range(8)]
X = (lambda x: uuid.UUID(x).bytes) if "narrow" in variant else (lambda x: x)
c.execute("INSERT INTO users VALUES (?,?)", (X(u), "x"))
c.execute("INSERT INTO accounts VALUES (?,?)", (X(a), X(u)))
for k in cats: c.execute("INSERT INTO categories VALUES (?,?)", (X(k), X(u)))
def v7(i):
    t = 1700000000000 + i
    r = random.getrandbits(74)
    return str(uuid.UUID(int=(t<<80) | (0x7<<76) | ((r>>62)<<64) | (0x2<<62) | (r & ((1<<62)-1))))
rows = []
for i in range(N):
    d = f"2026-{1 + (i % 11):02d}-{1 + (i % 28):02d}"
    rows.append((v7(i), u, a, -1234 - i % 1000, "EUR", d, None, f"Card payment {i}", f"Shop {i % 500}", cats[i % 8], "rule", None, "[]", "", None, None, None, "import", f"h:{d}:{random.getrandbits(128):032x}#1", "2026-11-21 10:00:00.123456", "2026-11-21 10:00:00.123456", 1))
rows.sort(key=lambda r: r[5])
rows = [(v7(i),) + r[1:] for i, r in enumerate(rows)]
if "narrow" in variant:
    B = lambda x: uuid.UUID(x).bytes if x else None
    def nar(r):
        r = list(r)
        for k in (0, 1, 2, 9): r[k] = B(r[k])
        r[19] = r[20] = 1763719200123456
        if "shortext" in variant: r[18] = r[18][:2+11+17]
        return tuple(r)
    rows = [nar(r) for r in rows]

t0 = time.time()
for s in range(0, N, CH):
    t = time.time()
    c.execute("BEGIN")
    c.executemany("INSERT INTO transactions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows[s:s+CH])
    c.execute("COMMIT")
    t2 = time.time()
    r = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone() if "nockpt" not in variant else None
    print(f"chunk {s//CH}: commit {t2-t:.2f}s ckpt {time.time()-t2:.2f}s", r, flush=True)
print(f"{variant}: {N} rows in {time.time()-t0:.2f}s")
if path != ":memory:":
    c.close()
    for s in ["", "-wal", "-shm"]:
        try: os.remove(path+s)
        except FileNotFoundError: pass
