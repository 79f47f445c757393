"""Provider search latency: `GET /providers` over 10,000 providers (with metadata and heartbeats).

Fills a temporary database, then runs the same varied queries (region, max_price, live, min_trust,
every sort and order, pages deep and shallow) through the API app in-process and through the SQL
function alone: with migration 0002's covering indexes on `provider_search`, and as baselines the
same queries on a copy without those indexes, and (SQL only) the straightforward query joining
stakers, provider_meta and liveness that `provider_search` replaces. Prints p50/p99 in
milliseconds; the target is p99 < 10 ms.

    .venv/bin/python benchmarks/provider_search.py [--providers 10000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from eth_utils.crypto import keccak

from indexer import db, queries
from indexer.api import create_app
from indexer.asgiclient import InProcessClient
from indexer.projections import amt

NOW = 1_700_000_000
UNIT = 10**18
REGIONS = ["eu-west", "eu-central", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south"]
REGIONS += ["me-central", "ca-central", "oc-south", "global"]
STAKING = "0x" + "5a" * 20


def address(i: int) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(keccak(text=f"provider {i}")[-20:]))


def fill(path: Path, providers: int, rng: random.Random) -> None:
    conn = db.connect(path)
    db.migrate(conn)
    stakers, meta, live, beats = [], [], [], []
    for i in range(providers + providers // 20):
        who = address(i)
        role = "provider" if i < providers else "verifier"
        price = 0 if rng.random() < 0.05 else rng.randrange(1, 400) * UNIT // 100
        stake = rng.randrange(1_000, 100_000) * UNIT
        cid = f"bafy{i}"
        stakers.append((who, role, amt(stake), amt(0), amt(0), 0, amt(price), cid, amt(0), rng.randrange(1, 10**6)))
        if role != "provider":
            continue
        if rng.random() < 0.95:
            endpoint = f"p{i}.example.net:7443"
            ehash = "0x" + keccak(text=endpoint).hex()
            meta.append((who, cid, endpoint, ehash, rng.choice(REGIONS), rng.choice((100, 1000, 10_000)), NOW, None))
        if rng.random() < 0.6:
            last = NOW - int(rng.expovariate(1 / 120))
            ehash = "0x" + keccak(text=f"p{i}.example.net:7443").hex()
            live.append((who, last // 30, ehash, rng.randrange(0, 10_001), last, last + 0.2))
            for k in range(5):
                ts = last - 5 * k
                beats.append(
                    (who, ts // 30, ehash, rng.randrange(0, 10_001), ts, "0x" + keccak(text=f"{i}/{k}").hex(), ts)
                )
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO stakers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", stakers)
    conn.executemany("INSERT INTO provider_meta VALUES (?, ?, ?, ?, ?, ?, ?, ?)", meta)
    conn.executemany("INSERT INTO liveness VALUES (?, ?, ?, ?, ?, ?)", live)
    conn.executemany("INSERT INTO heartbeats VALUES (?, ?, ?, ?, ?, ?, ?)", beats)
    conn.execute(
        "INSERT INTO meta VALUES ('deployment', ?)",
        (f'{{"chain_id": 31337, "contracts": {{"Staking": "{STAKING}"}}}}',),
    )
    conn.execute("COMMIT")
    conn.close()


def workload(count: int, rng: random.Random) -> list[dict[str, str]]:
    """Varied /providers query strings, the same list for every run."""
    found = []
    for _ in range(count):
        q: dict[str, str] = {}
        if rng.random() < 0.5:
            q["region"] = rng.choice(REGIONS)
        if rng.random() < 0.4:
            q["max_price"] = str(rng.randrange(10, 400) * UNIT // 100)
        live = rng.random()
        if live < 0.4:
            q["live"] = "true"
        elif live < 0.5:
            q["live"] = "false"
        if rng.random() < 0.1:
            q["min_trust"] = "0"
        q["sort"] = rng.choice(("price", "stake", "last_seen"))
        q["order"] = rng.choice(("asc", "desc"))
        q["limit"] = str(rng.choice((10, 20, 50, 100)))
        q["offset"] = str(rng.choice((0, 0, 0, 20, 100, 500)))
        found.append(q)
    return found


def as_query(q: dict[str, str]) -> queries.ProviderQuery:
    live = {"true": True, "false": False}.get(q.get("live", ""))
    return queries.ProviderQuery(
        q.get("region"),
        int(q["max_price"]) if "max_price" in q else None,
        float(q["min_trust"]) if "min_trust" in q else None,
        live,
        q["sort"],
        q["order"],
        int(q["limit"]),
        int(q["offset"]),
    )


def timed(run: Callable[[dict[str, str]], object], work: list[dict[str, str]]) -> list[float]:
    for q in work[:50]:  # warm the page cache and the app
        run(q)
    took = []
    for q in work:
        start = time.perf_counter()
        run(q)
        took.append((time.perf_counter() - start) * 1000)
    return took


def percentiles(took: list[float]) -> str:
    cuts = statistics.quantiles(took, n=100, method="inclusive")
    return f"p50 {cuts[49]:6.2f} ms   p99 {cuts[98]:6.2f} ms   max {max(took):6.2f} ms"


JOINED = (
    "FROM stakers s LEFT JOIN provider_meta m ON m.address = s.address LEFT JOIN liveness l ON l.provider = s.address"
)


def search_joined(conn: sqlite3.Connection, q: queries.ProviderQuery) -> tuple[int, list[object]]:
    """The straightforward search over the indexer's tables (one join per candidate row), for comparison."""
    where, params = ["s.role = 'provider'"], []
    if q.region is not None:
        where.append("m.region = ?")
        params.append(q.region)
    if q.max_price is not None:
        where.append("s.price > ? AND s.price <= ?")
        params += [amt(0), amt(q.max_price)]
    if q.live is not None:
        where.append("COALESCE(l.timestamp, 0) " + (">=" if q.live else "<") + " ?")
        params.append(queries.live_since(NOW))
    key = {"price": "s.price", "stake": "s.active", "last_seen": "COALESCE(l.timestamp, 0)"}[q.sort]
    clause = f"{JOINED} WHERE {' AND '.join(where)}"
    total = conn.execute(f"SELECT COUNT(*) {clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT s.*, m.*, l.* {clause} ORDER BY {key} {q.order}, s.address {q.order} LIMIT ? OFFSET ?",
        [*params, q.limit, q.offset],
    ).fetchall()
    return total, rows


def measure(path: Path, work: list[dict[str, str]]) -> tuple[list[float], list[float]]:
    reader = queries.open_reader(path)
    sql = timed(lambda q: queries.search_providers(reader, as_query(q), NOW), work)
    reader.close()
    app = create_app(path, 31337, STAKING, clock=lambda: NOW)

    with InProcessClient(app) as client:

        def request(q: dict[str, str]) -> None:
            response = client.get("/providers?" + urlencode(q))
            assert response.status_code == 200, response.text

        http = timed(request, work)
    app.state.reader.close()
    app.state.store.close()
    return sql, http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=10_000, help="providers in the database (default 10000)")
    parser.add_argument("--queries", type=int, default=2_000, help="queries per run (default 2000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args()
    if args.providers <= 0 or args.queries <= 0:
        parser.error("--providers and --queries must be positive")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        indexed = Path(tmp) / "indexed.db"
        fill(indexed, args.providers, rng)
        plain = Path(tmp) / "baseline.db"
        shutil.copy(indexed, plain)
        conn = db.connect(plain)
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", ("provider_search",)
            )
        ]
        for name in names:
            if not name.startswith("sqlite_autoindex"):
                conn.execute(f"DROP INDEX {name}")
        conn.close()
        work = workload(args.queries, rng)
        print(f"{args.providers} providers, {args.queries} varied /providers queries (times per query)")
        reader = queries.open_reader(indexed)
        joined = timed(lambda q: search_joined(reader, as_query(q)), work)
        reader.close()
        print(f"baseline: joins over stakers/meta/liveness SQL : {percentiles(joined)}")
        base_sql, base_http = measure(plain, work)
        print(f"baseline: provider_search without indexes SQL : {percentiles(base_sql)}")
        print(f"baseline: provider_search without indexes HTTP: {percentiles(base_http)}")
        sql, http = measure(indexed, work)
        print(f"flownet:  provider_search, covering indexes SQL : {percentiles(sql)}")
        print(f"flownet:  provider_search, covering indexes HTTP: {percentiles(http)}")
        p99 = statistics.quantiles(http, n=100, method="inclusive")[98]
        print(f"target p99 < 10 ms through the app: {'met' if p99 < 10 else 'MISSED'} ({p99:.2f} ms)")


if __name__ == "__main__":
    main()
