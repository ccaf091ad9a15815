"""
The measurements of docs/scale.md, on the scratch tables of docs/scale/build.sql:
`ev` (one table) and `evp` (the same rows, partitioned by month).

    .venv/bin/python docs/scale/measure.py postgres://postgres@127.0.0.1:5432/agencyhandy_h_scale

Each query runs on both tables in turn (A/B in one run, so the shared machine's noise
falls on both), ROUNDS times after a warm-up, under EXPLAIN (ANALYZE, BUFFERS): the
figures are medians of its planning time, execution time and shared buffers touched.
Values are bound client-side, as Django binds them, so the planner sees constants and
prunes partitions when planning. Nothing is left changed: writes are rolled back, and
the partitions and table it adds for a measurement are dropped after it (the pageinspect
extension, for B-tree depths, stays).
Standalone (psycopg only): not part of the product or of `python -m bench`.
"""

import datetime
import json
import statistics
import sys
import time

import psycopg

ROUNDS = 11
TABLES = ("ev", "evp")

COLUMNS = "e.id, e.occurred_at, e.event_type, e.email, e.ip, e.user_agent, e.browser, e.os, e.session_ref, e.reason"
# The tab's rows: each session_expired row looks up the login it closes (selectors._with_session_start).
SESSION_LOGIN = """CASE WHEN e.event_type = 'session_expired' THEN (
    SELECT l.id FROM {t} l WHERE NOT l.session_ref = '' AND l.session_ref = e.session_ref
    AND l.event_type = 'login' {login_bound} LIMIT 1) END AS session_login_id"""
# A login precedes its expiry by at most PORTAL_SESSION_MAX_AGE (12 h) plus the cron's lag.
LOGIN_BOUND = "AND l.occurred_at <= e.occurred_at AND l.occurred_at >= e.occurred_at - interval '1 day'"


def page(where: str = "", login_bound: str = "", limit: int = 51) -> str:
    return (f"SELECT {COLUMNS}, {SESSION_LOGIN.format(t='{t}', login_bound=login_bound)} FROM {{t}} e "
            f"WHERE e.client_id = %(client)s {where} ORDER BY e.occurred_at DESC, e.id DESC LIMIT {limit}")


QUERIES = {
    # name: (sql with {t}, params key)
    "first page, small client": (page(), "small"),
    "first page, median client": (page(), "median"),
    "first page, whale": (page(), "whale"),
    "first page, small client, login lookup bounded": (page(login_bound=LOGIN_BOUND), "small"),
    "first page, whale, login lookup bounded": (page(login_bound=LOGIN_BOUND), "whale"),
    "first page, small client, 1-month hint + bounded lookup": (
        page("AND e.occurred_at >= %(now)s::timestamptz - interval '1 month'", LOGIN_BOUND), "small"),
    "first page, whale, 1-month hint + bounded lookup": (
        page("AND e.occurred_at >= %(now)s::timestamptz - interval '1 month'", LOGIN_BOUND), "whale"),
    "first page, small client, 1-month hint, lookup bounded by the same constant": (
        page("AND e.occurred_at >= %(now)s::timestamptz - interval '1 month'",
             "AND l.occurred_at >= %(now)s::timestamptz - interval '1 month 1 day'"), "small"),
    "first page, whale, 1-month hint, lookup bounded by the same constant": (
        page("AND e.occurred_at >= %(now)s::timestamptz - interval '1 month'",
             "AND l.occurred_at >= %(now)s::timestamptz - interval '1 month 1 day'"), "whale"),
    "Load older, whale, 60 % of its history back": (
        f"SELECT {COLUMNS} FROM {{t}} e WHERE e.client_id = %(client)s AND e.occurred_at <= %(cursor_at)s "
        "AND (e.occurred_at < %(cursor_at)s OR e.id < %(cursor_id)s) ORDER BY e.occurred_at DESC, e.id DESC LIMIT 51",
        "whale"),
    "summary: logins in 7/30 days, whale": (
        "SELECT count(occurred_at), count(occurred_at) FILTER (WHERE occurred_at >= %(now)s::timestamptz - "
        "interval '7 days') FROM {t} WHERE client_id = %(client)s AND event_type = 'login' "
        "AND occurred_at >= %(now)s::timestamptz - interval '30 days'", "whale"),
    "summary: last login, small client": (
        "SELECT occurred_at FROM {t} WHERE client_id = %(client)s AND event_type = 'login' "
        "ORDER BY occurred_at DESC LIMIT 1", "small"),
    "chain head (ORDER BY seq DESC LIMIT 1), whale": (
        "SELECT seq, hash FROM {t} WHERE client_id = %(client)s ORDER BY seq DESC LIMIT 1", "whale"),
    "chain head (ORDER BY seq DESC LIMIT 1), small client": (
        "SELECT seq, hash FROM {t} WHERE client_id = %(client)s ORDER BY seq DESC LIMIT 1", "small"),
    "resync (id > last seen), whale": (
        f"SELECT {COLUMNS} FROM {{t}} e WHERE e.client_id = %(client)s AND e.id > %(after_id)s "
        "ORDER BY e.occurred_at DESC, e.id DESC LIMIT 100", "whale"),
    "admin: unfiltered list": (
        f"SELECT {COLUMNS} FROM {{t}} e ORDER BY e.occurred_at DESC, e.id DESC LIMIT 100", "none"),
    "admin: one agency": (
        f"SELECT {COLUMNS} FROM {{t}} e WHERE e.agency_id = %(agency)s "
        "ORDER BY e.occurred_at DESC, e.id DESC LIMIT 100", "agency"),
    "admin: search (events of 3 users)": (
        f"SELECT {COLUMNS} FROM {{t}} e WHERE e.user_id = ANY(%(users)s) ORDER BY e.occurred_at DESC, e.id DESC "
        "LIMIT 100", "users"),
    "verify --since-anchor: anchored event of every client (seq = n)": (
        "SELECT a.client_id, e.id, e.hash FROM unnest(%(anchor_clients)s::bigint[], %(anchor_seqs)s::bigint[]) "
        "AS a(client_id, n) CROSS JOIN LATERAL (SELECT id, hash FROM {t} WHERE client_id = a.client_id "
        "AND seq = a.n) e", "anchor"),
    "verify --since-anchor: same, anchor also keeps occurred_at": (
        "SELECT a.client_id, e.id, e.hash FROM unnest(%(anchor_clients)s::bigint[], %(anchor_seqs)s::bigint[], "
        "%(anchor_times)s::timestamptz[]) AS a(client_id, n, at) CROSS JOIN LATERAL (SELECT id, hash FROM {t} "
        "WHERE client_id = a.client_id AND seq = a.n AND occurred_at = a.at) e", "anchor"),
    "verify --since-anchor: count up to the anchor (seq <= n)": (
        "SELECT a.client_id, e.n FROM unnest(%(anchor_clients)s::bigint[], %(anchor_seqs)s::bigint[]) "
        "AS a(client_id, n) CROSS JOIN LATERAL (SELECT count(*) AS n FROM {t} WHERE client_id = a.client_id "
        "AND seq <= a.n) e", "anchor"),
    "verify --since-anchor: new events (seq > n), last 2 days": (
        "SELECT a.client_id, e.id FROM unnest(%(anchor_clients)s::bigint[], %(anchor_seqs)s::bigint[]) "
        "AS a(client_id, n) CROSS JOIN LATERAL (SELECT id FROM {t} WHERE client_id = a.client_id "
        "AND seq > a.n ORDER BY seq) e", "anchor"),
    "verify --since-anchor: new events, with occurred_at >= anchor - grace": (
        "SELECT a.client_id, e.id FROM unnest(%(anchor_clients)s::bigint[], %(anchor_seqs)s::bigint[]) "
        "AS a(client_id, n) CROSS JOIN LATERAL (SELECT id FROM {t} WHERE client_id = a.client_id "
        "AND seq > a.n AND occurred_at >= %(anchor_at)s::timestamptz - interval '1 day' ORDER BY seq) e", "anchor"),
}


def params(cur) -> dict:
    cur.execute("SELECT built_until + interval '1 hour' FROM scale_meta")
    now = cur.fetchone()[0]
    cur.execute("SELECT client_id, count(*) FROM ev GROUP BY client_id ORDER BY count(*)")
    counts = cur.fetchall()
    median = counts[len(counts) // 2][0]
    cur.execute("SELECT occurred_at, id FROM ev WHERE client_id = 1 ORDER BY occurred_at DESC, id DESC "
                "OFFSET %s LIMIT 1", [dict(counts)[1] * 6 // 10])
    cursor_at, cursor_id = cur.fetchone()
    cur.execute("SELECT max(id) - 50 FROM ev WHERE client_id = 1")
    after_id = cur.fetchone()[0]
    cur.execute("SELECT array_agg(DISTINCT user_id) FROM (SELECT user_id FROM ev WHERE client_id = %s LIMIT 3) u",
                [median])
    users = cur.fetchone()[0]
    # An anchor written two days before "now": each client's head as it was then.
    anchor_at = now - datetime.timedelta(days=2)
    cur.execute("SELECT DISTINCT ON (client_id) client_id, seq, occurred_at FROM ev WHERE occurred_at < %s "
                "ORDER BY client_id, seq DESC", [anchor_at])
    anchor = cur.fetchall()
    base = {"now": now}
    return {
        "base": base,
        "counts": {"small": 2, "median": median, "whale": 1},
        "rows": dict(counts),
        "small": {**base, "client": 2}, "median": {**base, "client": median}, "whale": {
            **base, "client": 1, "cursor_at": cursor_at, "cursor_id": cursor_id, "after_id": after_id},
        "none": base, "agency": {**base, "agency": 2}, "users": {**base, "users": users},
        "anchor": {**base, "anchor_clients": [a[0] for a in anchor], "anchor_seqs": [a[1] for a in anchor],
                   "anchor_times": [a[2] for a in anchor], "anchor_at": anchor_at},
    }


def explain(cur, sql: str, values: dict) -> dict:
    cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, values)
    plan = cur.fetchone()[0][0]
    top = plan["Plan"]
    return {"planning": plan["Planning Time"], "execution": plan["Execution Time"],
            "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
            "read": top.get("Shared Read Blocks", 0), "rows": top["Actual Rows"]}


def text_plan(cur, sql: str, values: dict) -> str:
    cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, values)
    return "\n".join(row[0] for row in cur.fetchall())


def measure_queries(conn, p: dict, plans: dict) -> list[dict]:
    results = []
    with conn.cursor() as cur:
        for name, (template, key) in QUERIES.items():
            samples = {t: [] for t in TABLES}
            # The whole-log verify queries take seconds: fewer rounds.
            for round_ in range((3 if name.startswith("verify") else ROUNDS) + 1):
                for table in TABLES if round_ % 2 else reversed(TABLES):
                    sample = explain(cur, template.format(t=table), p[key])
                    if round_:
                        samples[table].append(sample)
            row = {"query": name}
            for table in TABLES:
                s = samples[table]
                row[table] = {k: statistics.median(x[k] for x in s) for k in ("planning", "execution", "buffers")}
                row[table]["rows"] = s[0]["rows"]
                plans[f"{name} [{table}]"] = text_plan(cur, template.format(t=table), p[key])
            results.append(row)
            print(f"{name}: ev {row['ev']}, evp {row['evp']}", file=sys.stderr)
    return results


def measure_prepared(conn, p: dict, login_bound: str = "") -> dict:
    """The tab's first page as a prepared statement with a generic plan: no planning per query."""
    sql = page(login_bound=login_bound).format(t="evp").replace("%(client)s", "$1")
    out = {}
    with conn.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_generic_plan")
        cur.execute(f"PREPARE first_page(bigint) AS {sql}")
        for key in ("small", "whale"):
            samples = []
            for _ in range(ROUNDS + 1):
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE first_page(%s)" % int(p[key]["client"]))
                plan = cur.fetchone()[0][0]
                hits = plan["Plan"].get("Shared Hit Blocks", 0)
                samples.append((plan["Planning Time"], plan["Execution Time"], hits))
            samples = samples[1:]
            out[key] = {"planning": statistics.median(s[0] for s in samples),
                        "execution": statistics.median(s[1] for s in samples),
                        "buffers": statistics.median(s[2] for s in samples)}
        cur.execute("DEALLOCATE first_page")
        cur.execute("RESET plan_cache_mode")
    return out


def measure_summary_without_explain(conn, p: dict) -> dict:
    """The 30-day summary timed by the client (EXPLAIN ANALYZE's per-row timing inflates an Append)."""
    sql, key = QUERIES["summary: logins in 7/30 days, whale"]
    samples = {t: [] for t in TABLES}
    with conn.cursor() as cur:
        for round_ in range(2 * ROUNDS):
            for table in TABLES if round_ % 2 else reversed(TABLES):
                start = time.perf_counter()
                cur.execute(sql.format(t=table), p[key])
                cur.fetchall()
                samples[table].append((time.perf_counter() - start) * 1000)
    return {t: statistics.median(s[2:]) for t, s in samples.items()}


def measure_anchor_by_partition(conn, p: dict) -> dict:
    """
    The anchored events found with the anchor's occurred_at used to pick the partition:
    one query per month's partition (planned with it, so nothing is pruned at run time),
    against the one table's single query.
    """
    anchor = p["anchor"]
    by_month: dict[str, list[tuple[int, int]]] = {}
    for client_id, seq, at in zip(anchor["anchor_clients"], anchor["anchor_seqs"], anchor["anchor_times"]):
        by_month.setdefault(f"evp_{at.astimezone(datetime.UTC):%Y_%m}", []).append((client_id, seq))
    probe = ("SELECT a.client_id, e.id, e.hash FROM unnest(%s::bigint[], %s::bigint[]) AS a(client_id, n) "
             "CROSS JOIN LATERAL (SELECT id, hash FROM {t} WHERE client_id = a.client_id AND seq = a.n) e")

    def per_partition():
        for part, pairs in by_month.items():
            cur.execute(probe.format(t=part), [[c for c, _ in pairs], [n for _, n in pairs]])
            cur.fetchall()

    def one_table():
        cur.execute(probe.format(t="ev"), [anchor["anchor_clients"], anchor["anchor_seqs"]])
        cur.fetchall()

    with conn.cursor() as cur:
        return {"months": len(by_month), "per partition ms": median_ms(per_partition, 5),
                "one table ms": median_ms(one_table, 5)}


def measure_many_partitions(conn, p: dict, total: int = 120) -> dict:
    """
    Planning with ten years of monthly partitions: ones of a single row added before the
    data (and analysed, as autovacuum would), the queries planned as above, then dropped.
    """
    queries = {"first page, small client": page(), "first page, small client, login lookup bounded": page(
        login_bound=LOGIN_BOUND), "chain head, small client": QUERIES[
        "chain head (ORDER BY seq DESC LIMIT 1), small client"][0]}
    out = {}

    def plan_each(cur) -> dict:
        result = {}
        for name, sql in queries.items():
            samples = [explain(cur, sql.format(t="evp"), p["small"]) for _ in range(ROUNDS + 1)][1:]
            result[name] = {k: statistics.median(x[k] for x in samples) for k in ("planning", "execution", "buffers")}
        result["first page, small client, prepared (generic plan)"] = measure_prepared(conn, p)["small"]
        return result

    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'evp'::regclass")
        have = cur.fetchone()[0]
        out[have] = plan_each(cur)  # the same queries before, for an A/B in one run
        cur.execute("""
            DO $$
            DECLARE first timestamptz := (SELECT date_trunc('month', min(occurred_at), 'UTC') FROM evp);
                    have int := (SELECT count(*) FROM pg_inherits WHERE inhparent = 'evp'::regclass);
                    m timestamptz;
            BEGIN
                FOR n IN 1..%s - have LOOP
                    m := first - n * interval '1 month';
                    EXECUTE format('CREATE TABLE %%I PARTITION OF evp FOR VALUES FROM (%%L) TO (%%L)',
                                   'evp_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM'), m, m + interval '1 month');
                    -- One row each (of a client of its own), so that no partition is empty: the
                    -- planner asks the file system for the size of an empty table and its indexes.
                    INSERT INTO evp SELECT 2000000000 + n, email, event_type, m + interval '1 day', ip, user_agent,
                        browser, os, '', reason, n, prev_hash, hash, agency_id, 999999, user_id, chain_version
                        FROM evp WHERE id = 1;
                END LOOP;
            END $$""" % int(total))
        cur.execute("SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
                    "WHERE h.inhparent = 'evp'::regclass ORDER BY c.relname LIMIT %s", [total - have])
        added = [row[0] for row in cur.fetchall()]
        try:
            for name in added:
                cur.execute(f"ANALYZE {name}")
            out[have + len(added)] = plan_each(cur)
        finally:
            for name in added:
                cur.execute(f"DROP TABLE {name}")
    return out


def measure_head_paths(conn, p: dict, rounds: int = 5, per_round: int = 500) -> dict:
    """
    The write path's first round trip, per event: lock the client row and find the chain's
    head. Today's head query on one table and on the partitions, against a head kept on
    the client row (read with the lock, updated with the insert). Each in a rolled-back
    transaction; `scale_clients` is a scratch stand-in for clients_client.
    """
    lock = "SELECT agency_id FROM scale_clients WHERE id = %s FOR NO KEY UPDATE"
    head = "SELECT seq, hash FROM {t} WHERE client_id = %s ORDER BY seq DESC LIMIT 1"
    paths = {
        "lock + head query, one table": [lock, head.format(t="ev")],
        "lock + head query, partitioned": [lock, head.format(t="evp")],
        "lock returning the head + UPDATE of the client row": [
            "SELECT agency_id, chain_seq, chain_hash FROM scale_clients WHERE id = %s FOR NO KEY UPDATE",
            "UPDATE scale_clients SET chain_seq = chain_seq + 1, chain_hash = md5(chain_hash) || md5(chain_hash) "
            "WHERE id = %s"],
    }
    samples = {name: [] for name in paths}
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS scale_clients")
        cur.execute("CREATE TABLE scale_clients WITH (fillfactor = 90) AS SELECT client_id AS id, min(agency_id) "
                    "AS agency_id, max(seq) AS chain_seq, max(hash) AS chain_hash, repeat('x', 200) AS padding "
                    "FROM ev GROUP BY client_id")
        cur.execute("ALTER TABLE scale_clients ADD PRIMARY KEY (id)")
        cur.execute("VACUUM ANALYZE scale_clients")
        clients = list(p["rows"])
        try:
            for round_ in range(rounds):
                for name in paths if round_ % 2 else reversed(list(paths)):
                    with conn.transaction(force_rollback=True):
                        start = time.perf_counter()
                        for n in range(per_round):
                            client_id = clients[n % len(clients)]
                            for statement in paths[name]:
                                cur.execute(statement, [client_id])
                                cur.fetchall() if cur.description else None
                        samples[name].append((time.perf_counter() - start) * 1e6 / per_round)
        finally:
            cur.execute("DROP TABLE scale_clients")
    return {name: statistics.median(s) for name, s in samples.items()}


def relation_sizes(conn) -> dict:
    with conn.cursor() as cur:
        cur.execute("""
            SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)
            FROM pg_index i WHERE i.indrelid = 'ev'::regclass""")
        plain = dict(cur.fetchall())
        cur.execute("""
            SELECT p.indexrelid::regclass::text, sum(pg_relation_size(c.indexrelid)), count(*),
                   max(pg_relation_size(c.indexrelid))
            FROM pg_index p JOIN pg_inherits h ON h.inhparent = p.indexrelid
            JOIN pg_index c ON c.indexrelid = h.inhrelid
            WHERE p.indrelid = 'evp'::regclass GROUP BY 1""")
        parted = {name: {"total": total, "partitions": n, "largest": largest} for name, total, n, largest in cur}
        cur.execute("SELECT pg_relation_size('ev'), (SELECT sum(pg_relation_size(inhrelid)) FROM pg_inherits "
                    "WHERE inhparent = 'evp'::regclass)")
        heap = cur.fetchone()
        cur.execute("""SELECT c.relname, c.reltuples::bigint, pg_relation_size(c.oid), pg_indexes_size(c.oid)
                       FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
                       WHERE h.inhparent = 'evp'::regclass ORDER BY 1""")
        partitions = cur.fetchall()
        # B-tree depth of the (client, occurred_at, id) index: one table vs a month partition.
        cur.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cur.execute("SELECT level FROM bt_metap('ev_client_time')")
        depth_plain = cur.fetchone()[0]
        cur.execute("""SELECT max(level) FROM pg_inherits h, LATERAL bt_metap(h.inhrelid::regclass::text)
                       WHERE h.inhparent = 'evp_client_time'::regclass""")
        depth_part = cur.fetchone()[0]
    return {"plain": plain, "partitioned": parted, "heap": heap, "partitions": partitions,
            "btree_levels": {"ev_client_time": depth_plain, "evp_client_time partitions (max)": depth_part}}


def median_ms(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure_export(conn, month: str) -> dict:
    """COPY of one month: the partition itself vs a time-filtered query on the one table."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT min(occurred_at), count(*) FROM {month}")
        start, rows = cur.fetchone()
        cur.execute("SELECT date_trunc('month', %s::timestamptz, 'UTC')", [start])
        lower = cur.fetchone()[0]

    def copy(sql: str, values: list):
        def run():
            with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", values) as copy:
                for _ in copy:
                    pass
        return run

    filtered = ("SELECT * FROM ev WHERE occurred_at >= %s AND occurred_at < %s::timestamptz + interval '1 month' "
                "ORDER BY occurred_at, id")
    runs = {
        "COPY partition ORDER BY occurred_at, id": copy(f"SELECT * FROM {month} ORDER BY occurred_at, id", []),
        "COPY partition, physical order": copy(f"SELECT * FROM {month}", []),
        "COPY one table WHERE month ORDER BY occurred_at, id": copy(filtered, [lower, lower]),
    }
    result = {"rows": rows}
    for _ in range(1):  # warm-up
        for run in runs.values():
            run()
    for name, run in runs.items():
        result[name] = median_ms(run, 5)
    return result


def wal_and_time(conn, statements: list[str]) -> tuple[float, int]:
    """Run statements in a transaction that is rolled back: (ms, WAL bytes written)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_current_wal_insert_lsn()")
        before = cur.fetchone()[0]
        start = time.perf_counter()
        with conn.transaction(force_rollback=True):
            for statement in statements:
                cur.execute(statement)
        elapsed = (time.perf_counter() - start) * 1000
        cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [before])
        return elapsed, int(cur.fetchone()[0])


def measure_retention(conn, month: str) -> dict:
    """Removing the oldest month: DELETE from one table vs DETACH + DROP of its partition."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT min(occurred_at), max(occurred_at), count(*) FROM {month}")
        lower, upper, rows = cur.fetchone()
    delete = [f"DELETE FROM ev WHERE occurred_at >= '{lower}' AND occurred_at <= '{upper}'"]
    detach = [f"ALTER TABLE evp DETACH PARTITION {month}", f"DROP TABLE {month}"]
    result = {"rows": rows}
    for name, statements in (("DELETE from one table", delete), ("DETACH + DROP partition", detach)):
        samples = [wal_and_time(conn, statements) for _ in range(3)]
        result[name] = {"ms": statistics.median(s[0] for s in samples),
                        "wal_bytes": statistics.median(s[1] for s in samples)}
    return result


def measure_inserts(conn, rounds: int = 5, per_round: int = 1000) -> dict:
    """Single-row appends (the recording service's INSERT), through the parent, rolled back."""
    sql = ("INSERT INTO {t} (id, email, event_type, occurred_at, ip, user_agent, browser, os, session_ref, reason, "
           "seq, prev_hash, hash, agency_id, client_id, user_id, chain_version) VALUES (%s, 'u@x.example', 'login', "
           "%s::timestamptz + %s * interval '1 ms', '10.0.0.1', 'ua', 'Chrome', 'Windows', md5(%s::text), '', "
           "%s, repeat('a', 64), repeat('b', 64), 5, %s, 15, 2)")
    samples = {t: [] for t in TABLES}
    with conn.cursor() as cur:
        cur.execute("SELECT built_until FROM scale_meta")
        now = cur.fetchone()[0]
        for round_ in range(rounds):
            for table in TABLES if round_ % 2 else reversed(TABLES):
                with conn.transaction(force_rollback=True):
                    start = time.perf_counter()
                    for n in range(per_round):
                        event_id = 10**9 + n
                        cur.execute(sql.format(t=table), [event_id, now, n, f"r{n}", 10**7 + n, 4 + n % 2000])
                    samples[table].append((time.perf_counter() - start) * 1e6 / per_round)
    return {t: statistics.median(s) for t, s in samples.items()}


def main(url: str) -> None:
    plans: dict[str, str] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur:
            p = params(cur)
            cur.execute("SELECT relname FROM pg_inherits JOIN pg_class ON oid = inhrelid "
                        "WHERE inhparent = 'evp'::regclass ORDER BY relname")
            months = [r[0] for r in cur.fetchall()]
        full_month = months[6]  # a whole month well inside the data
        out = {
            "clients": {k: {"id": v, "rows": p["rows"].get(v)} for k, v in p["counts"].items()},
            "queries": measure_queries(conn, p, plans),
            "prepared_first_page_evp": measure_prepared(conn, p),
            "prepared_first_page_evp_bounded_lookup": measure_prepared(conn, p, LOGIN_BOUND),
            "summary_without_explain_ms": measure_summary_without_explain(conn, p),
            "anchor_by_partition": measure_anchor_by_partition(conn, p),
            "many_partitions": measure_many_partitions(conn, p),
            "head_paths_us": measure_head_paths(conn, p),
            "sizes": relation_sizes(conn),
            "export": measure_export(conn, full_month),
            "retention": measure_retention(conn, full_month),
            "inserts_us": measure_inserts(conn),
        }
        with conn.cursor() as cur:
            # Rolled-back deletes and inserts leave index entries and clear visibility-map
            # bits (index-only scans then visit the heap): clean up so that a rerun starts
            # from the same state.
            cur.execute("VACUUM ev")
            cur.execute("VACUUM evp")
    json.dump(out, sys.stdout, indent=1, default=str)
    with open("/tmp/scale_plans.txt", "w") as f:
        for name, plan in plans.items():
            f.write(f"### {name}\n{plan}\n\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgres://postgres@127.0.0.1:5432/agencyhandy_h_scale")
