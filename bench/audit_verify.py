"""Benchmark audit verify against the plain driver doing the same hashing over the same rows.

    python bench/audit_verify.py [--database-url URL] [--size 1000000] [--repeats 3]
    python bench/audit_verify.py --quick          # CI smoke: 10,000 events, one repeat

Issue 17's goal: broker.audit.service.verify_chain runs at >= 0.5x the events/s of

* baseline  a plain `SELECT ... FROM audit_event ORDER BY seq` through the same async driver
            (no ORM, no SQLAlchemy types), fetched in batches; per row the event document is
            rebuilt from the driver's values (json.loads of the JSON columns on SQLite), its
            canonical JSON and chained sha256 computed with broker.audit.chain.compute_hash, and
            the link and the hash compared: the least any verifier has to do;
* verify    verify_chain on a read-only session (must say ok).

The chain is seeded as in bench/audit_export.py. The two runs are interleaved --repeats times,
each in a child process of its own, and the median events/s compared. At the default 1M events
a SQLite run takes about five minutes on the 2-core machine (seeding included). Exits 1 when a
run fails or the ratio is under --goal.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from audit_export import SeedTiming, seed
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from broker import migrations
from broker.audit.chain import GENESIS_HASH, compute_hash, timestamp
from broker.config import Settings
from servers import json_child, scratch_database, sync_url

RUNS = ("baseline", "verify")
GOAL = 0.5
FETCH_BATCH = 2_000
CHILD_TIMEOUT_SECONDS = 3_600
COLUMNS = (
    "seq, id, time, actor_subject, actor_department, actor_roles, actor_client, action, "
    "object_type, object_id, outcome, request_id, client_address, details, prev_hash, hash"
)


async def _baseline(engine: Any) -> dict[str, Any]:
    from broker.db import READ_ONLY_OPTION

    sqlite = engine.dialect.name == "sqlite"
    expected_seq, prev, events, bad = 1, GENESIS_HASH, 0, 0
    query = text(f"SELECT {COLUMNS} FROM audit_event ORDER BY seq")  # noqa: S608
    async with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
        stream = await conn.stream(query.execution_options(yield_per=FETCH_BATCH))
        async for partition in stream.partitions(FETCH_BATCH):
            for row in partition:
                (seq, id_, at, subject, department, roles, client, action, otype, oid) = row[:10]
                outcome, request_id, address, details, prev_hash, hash_ = row[10:]
                if sqlite:  # SQLite hands back the stored text
                    id_, roles, details = uuid.UUID(id_), json.loads(roles), json.loads(details)
                    time_text = at.replace(" ", "T") + "Z"
                else:
                    time_text = timestamp(at)
                document = {
                    "seq": seq,
                    "id": str(id_),
                    "time": time_text,
                    "actor": {
                        "subject": subject,
                        "department": department,
                        "roles": roles,
                        "client_id": client,
                    },
                    "action": action,
                    "object": {"type": otype, "id": oid},
                    "outcome": outcome,
                    "request_id": request_id,
                    "client_address": address,
                    "details": details,
                    "prev_hash": prev_hash,
                }
                if (
                    seq != expected_seq
                    or prev_hash != prev
                    or compute_hash(prev, document) != hash_
                ):
                    bad += 1
                expected_seq, prev, events = seq + 1, hash_, events + 1
    return {"ok": bad == 0, "events": events, "problem": f"{bad} events did not check"}


async def _run_child(kind: str, database_url: str) -> dict[str, Any]:
    from broker.audit.service import verify_chain
    from broker.db import make_engine, make_read_session_factory

    engine = make_engine(Settings(database_url=database_url))
    started = time.perf_counter()
    try:
        if kind == "baseline":
            result = await _baseline(engine)
        else:
            async with make_read_session_factory(engine)() as session:
                verification = await verify_chain(session=session)
            result = {
                "ok": verification.ok,
                "events": verification.count,
                "problem": f"{verification.problem}: {verification.explanation}",
            }
    finally:
        await engine.dispose()
    result["seconds"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        help="SQLite URL, or a PostgreSQL URL used to create and drop a scratch database "
        "(default: a temporary SQLite file).",
    )
    parser.add_argument("--size", type=int, default=None, help="events (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="CI smoke: 10,000 events, 1 repeat")
    parser.add_argument("--goal", type=float, default=GOAL, help="minimum verify/baseline ratio")
    parser.add_argument("--child", choices=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(asyncio.run(_run_child(args.child, args.database_url))))
        return 0

    size = args.size or (10_000 if args.quick else 1_000_000)
    repeats = args.repeats or (1 if args.quick else 3)
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in RUNS}
    timing = SeedTiming()
    with (
        tempfile.TemporaryDirectory(prefix="audit-verify-bench-") as workdir,
        scratch_database(args.database_url, Path(workdir), "broker_bench") as database_url,
    ):
        migrations.upgrade(Settings(database_url=database_url))
        label = make_url(database_url).get_backend_name()
        engine = create_engine(sync_url(database_url))
        try:
            seed(engine, size, timing)
        finally:
            engine.dispose()
        for repeat in range(repeats):
            for kind in RUNS:
                print(f"  {kind} ({repeat + 1}/{repeats}) ...", file=sys.stderr, flush=True)
                args_ = [__file__, "--child", kind, "--database-url", database_url]
                results[kind].append(json_child(args_, kind, CHILD_TIMEOUT_SECONDS))

    problems: list[str] = []
    rates = {kind: [r["events"] / r["seconds"] for r in results[kind]] for kind in RUNS}
    print(f"\n=== {label}: verify of {size:,} events (median of {repeats}, interleaved) ===")
    print(f"seed: {timing.hash_seconds + timing.insert_seconds:.1f}s")
    print(f"{'run':<10} {'events/s':>10} {'runs':>30}")
    for kind in RUNS:
        runs = " ".join(f"{rate:,.0f}" for rate in rates[kind])
        print(f"{kind:<10} {statistics.median(rates[kind]):>10,.0f} {runs:>30}")
        for run in results[kind]:
            if not run["ok"] or run["events"] != size:
                problems.append(f"{kind}: {run['events']:,} events, {run['problem']}")
    ratio = statistics.median(rates["verify"]) / statistics.median(rates["baseline"])
    each = " ".join(f"{v / b:.2f}" for v, b in zip(rates["verify"], rates["baseline"], strict=True))
    print(f"verify / baseline: {ratio:.2f}x (each repeat: {each}; goal >= {args.goal}x)")
    if ratio < args.goal:
        problems.append(f"verify runs at {ratio:.2f}x the plain driver (goal >= {args.goal}x)")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
