#!/usr/bin/env python3
"""The SQLite floor for a create, with no HTTP and no actors: Ledgerline's `transactions` and
`events` schema and pragmas (WAL, synchronous=FULL, foreign keys, 64 MiB cache), driven from
Python's sqlite3. Each create is one transaction row plus two event rows of ~500 bytes; B creates
(one per user, 64 users) share a database transaction, as the writer's group commit does at 64
connections. docs/benchmarks.md quotes it.

    B=64 python3 bench/sqlite_floor.py base 64000    # 64 creates per commit
    B=1  python3 bench/sqlite_floor.py base 20000    # one create per commit (one connection)

Variants (the first argument, combinable): nofk (foreign keys off), noev / oneev (no or one event
row per create), noacc / noud (without the account or user-date index), smallcache (8 MiB),
nockpt (never checkpoint: the WAL keeps every commit's frames, and they are counted per B-tree),
evsmall (20-byte envelopes), evid (events in one global rowid order, (user_id, seq) in a separate
index), evchain (global order, no per-user index: each event points at its user's previous one and a
small table holds each user's latest; add nohead to leave that table out), evnum (events keyed by
a small integer per user, as the server has done since session 10), udnum (the same for the
transactions' user column), ps1024/ps2048/ps8192 (page size), txwr / evwr (WITHOUT
ROWID tables). The database goes to $TMPDIR (default /tmp).
"""
import sqlite3, os, time, uuid, sys, random, json
variant = sys.argv[1]
path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ledgerline-floor-{variant}.db")
for s in ["", "-wal", "-shm"]:
    try: os.remove(path+s)
    except FileNotFoundError: pass
c = sqlite3.connect(path, isolation_level=None)
import re as _re
m = _re.search(r"ps(\d+)", variant)
if m: c.execute(f"PRAGMA page_size={m.group(1)}")
c.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=%s;" % ("OFF" if "nofk" in variant else "ON") + " PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=0;")
c.executescript("""
CREATE TABLE users (id TEXT PRIMARY KEY NOT NULL, email TEXT);
CREATE TABLE accounts (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users(id));
""")
wr = " WITHOUT ROWID" if "evwr" in variant else ""
twr = " WITHOUT ROWID" if "txwr" in variant else ""
ddl = f"""
CREATE TABLE transactions (
    id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE, amount BIGINT NOT NULL, currency TEXT NOT NULL,
    date DATE NOT NULL, occurred_at TIMESTAMP, description TEXT NOT NULL DEFAULT '', merchant TEXT NOT NULL DEFAULT '',
    category_id TEXT, category_source TEXT NOT NULL DEFAULT 'none', confidence DOUBLE PRECISION,
    tags TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '', transfer_id TEXT, foreign_amount BIGINT,
    foreign_currency TEXT, source TEXT NOT NULL DEFAULT 'api', external_id TEXT, created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL, version BIGINT NOT NULL DEFAULT 1){twr};
CREATE INDEX transactions_user_date_idx ON transactions (user_id, date, id);
--ACC
CREATE INDEX transactions_account_idx ON transactions (account_id, date);
CREATE INDEX transactions_category_idx ON transactions (category_id) WHERE category_id IS NOT NULL;
CREATE INDEX transactions_transfer_idx ON transactions (transfer_id) WHERE transfer_id IS NOT NULL;
CREATE UNIQUE INDEX transactions_external_key ON transactions (account_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX transactions_user_labels ON transactions (user_id, updated_at) WHERE category_source = 'user';
CREATE TABLE events (user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE, seq BIGINT NOT NULL,
    message_id TEXT NOT NULL, kind TEXT NOT NULL, envelope TEXT NOT NULL, created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, seq)){wr};
"""
if "evid" in variant:
    # events appended in one global rowid order; (user_id, seq) only in a narrow index
    ddl = ddl.replace("CREATE TABLE events (user_id", "CREATE TABLE events (id INTEGER PRIMARY KEY, user_id").replace(
        "PRIMARY KEY (user_id, seq)){wr};".format(wr=wr), "UNIQUE (user_id, seq));")
if "evchain" in variant:
    # events appended in one global order, each pointing at its user's previous one; a one-row-per-user head
    ddl = ddl.replace("CREATE TABLE events (user_id", "CREATE TABLE events (id INTEGER PRIMARY KEY, prev_id INTEGER, user_id").replace(
        "PRIMARY KEY (user_id, seq)){wr};".format(wr=wr), "CHECK (seq > 0)); CREATE TABLE event_heads (user_id TEXT PRIMARY KEY NOT NULL, last_seq BIGINT NOT NULL, last_id INTEGER NOT NULL) WITHOUT ROWID;")
if "evnum" in variant:
    # events keyed by a small per-user integer instead of the 36-character user id
    ddl = ddl.replace("CREATE TABLE events (user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,", "CREATE TABLE events (user_id INTEGER NOT NULL,")
if "udnum" in variant:
    ddl = ddl.replace("id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,", "id TEXT PRIMARY KEY NOT NULL, user_id INTEGER NOT NULL,")
if "noacc" in variant: ddl = ddl.replace("CREATE INDEX transactions_account_idx", "-- ")
if "noud" in variant: ddl = ddl.replace("CREATE INDEX transactions_user_date_idx", "-- ")
c.executescript(ddl)
def u7():
    # time-ordered uuid
    t = int(time.time()*1000)
    r = random.getrandbits(74)
    return str(uuid.UUID(int=(t<<80) | (0x7<<76) | ((r>>62)<<64) | (0x2<<62) | (r & ((1<<62)-1))))
users = [str(uuid.uuid4()) for _ in range(64)]
accts = [u7() for _ in users]
c.execute("BEGIN")
for u,a in zip(users, accts):
    c.execute("INSERT INTO users VALUES (?,?)", (u, u+"@x"))
    c.execute("INSERT INTO accounts VALUES (?,?)", (a, u))
c.execute("COMMIT")
env = json.dumps({"x": "y"*(20 if "evsmall" in variant else 500)})
seq = {u: 0 for u in users}
head = {}
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
B = int(os.environ.get("B", "64"))
t0 = time.time()
done = 0
while done < N:
    c.execute("BEGIN")
    for i in range(B):
        u = users[i]; a = accts[i]
        now = "2026-11-21 10:00:00.123456"
        un = i + 1 if "udnum" in variant else u
        c.execute("INSERT INTO transactions (id,user_id,account_id,amount,currency,date,description,created_at,updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                  (u7(), un, a, -1234, "EUR", "2026-11-%02d" % (1 + done % 28), "loadgen %d" % done, now, now))
        for k in range(0 if "noev" in variant else (1 if "oneev" in variant else 2)):
            seq[u] += 1
            if "evchain" in variant:
                cur = c.execute("INSERT INTO events (prev_id,user_id,seq,message_id,kind,envelope,created_at) VALUES (?,?,?,?,?,?,?)", (head.get(u), u, seq[u], u7(), "transaction.created", env, now))
                head[u] = cur.lastrowid
            else:
                c.execute("INSERT INTO events (user_id,seq,message_id,kind,envelope,created_at) VALUES (?,?,?,?,?,?)", (i + 1 if "evnum" in variant else u, seq[u], u7(), "transaction.created", env, now))
        if "evchain" in variant and "nohead" not in variant:
            c.execute("INSERT INTO event_heads VALUES (?,?,?) ON CONFLICT (user_id) DO UPDATE SET last_seq = excluded.last_seq, last_id = excluded.last_id", (u, seq[u], head[u]))
        done += 1
    c.execute("COMMIT")
    if "nockpt" not in variant and done % 64000 == 0:
        c.execute("PRAGMA wal_checkpoint(PASSIVE)")
dt = time.time() - t0
print(variant, f"{N/dt:.0f} creates/s, {dt/N*1e6:.1f} us/create")
if "nockpt" in variant:
    # Every commit's frames are still in the WAL: count them per B-tree (dbstat names each page's).
    import struct, collections
    wal = open(path + "-wal", "rb").read()
    page = struct.unpack(">I", wal[8:12])[0]
    owner = {r[0]: r[1] for r in c.execute("SELECT pageno, name FROM dbstat")}
    frames = collections.Counter()
    for off in range(32, len(wal) - 24 - page + 1, 24 + page):
        frames[owner.get(struct.unpack(">I", wal[off:off + 4])[0], "(other)")] += 1
    print(f"WAL frames per create: {sum(frames.values())/N:.2f} ({len(wal)/N/1024:.1f} KiB)")
    for name, n in frames.most_common():
        if n / N >= 0.01:
            print(f"  {name:34s} {n/N:.2f}")
for suffix in ["", "-wal", "-shm"]:
    try:
        os.remove(path + suffix)
    except FileNotFoundError:
        pass
