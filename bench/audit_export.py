"""Benchmark the audit export: throughput against a plain streamed SELECT, and peak memory.

    python bench/audit_export.py [--database-url URL] [--sizes 100000 1000000] [--repeats 3]
    python bench/audit_export.py --quick          # CI smoke: small sizes, one repeat

Issue 17's goal: the export of 1M events runs at >= 0.8x the events/s of a plain streamed SELECT
written as JSONL (resp. CSV). At the default sizes one SQLite run takes about ten minutes on the
2-core machine (most of it seeding and the 1M-event runs); PostgreSQL takes longer.

Without --database-url the events go to a temporary SQLite file. With a PostgreSQL URL that URL
is used only as an administrator: a scratch database is created next to it, migrated, seeded and
dropped at the end.

The chain is seeded fast but genuinely (every hash computed with broker.audit.chain over
AuditEvent objects, rows inserted in batches), growing from one size to the next. At each size,
every measurement runs in a child process of its own, so its peak RSS (VmHWM) is its alone:

* baseline jsonl  a plain `SELECT * FROM audit_event ORDER BY seq` through the same async
                  driver, fetched in batches, one json.dumps per row, written to /dev/null;
* export jsonl    broker.audit.export.export_chunks on a read-only session, to /dev/null;
* baseline csv    the same plain SELECT, each batch written with csv.writer.writerows;
* export csv      export_chunks in CSV.

The four runs are interleaved (baseline, export, baseline, export, ...) --repeats times and the
median events/s of each is compared. (Verify has its own bench: bench/audit_verify.py.)

Memory must not grow with the count: the "peak at largest / peak at smallest" ratio is ~1.0 when
the export streams. The script exits 1 if an export is incomplete, that ratio goes over
--max-memory-ratio for an export, or an export's ratio at the largest size is under --goal.
"""

import argparse
import asyncio
import csv
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import Engine, Table, create_engine, insert, select, text
from sqlalchemy.engine import make_url

from broker import demo, migrations
from broker.audit.chain import GENESIS_HASH, compute_hash, event_document
from broker.audit.models import AuditEvent
from broker.config import Settings
from servers import json_child, scratch_database, status_kib, sync_url

DEFAULT_SIZES = (100_000, 1_000_000)
QUICK_SIZES = (2_000, 10_000)
SEED_BATCH = 5_000
FETCH_BATCH = 1_000
RUNS = ("baseline jsonl", "export jsonl", "baseline csv", "export csv")
GOAL = 0.8
CHILD_TIMEOUT_SECONDS = 3_600
START_TIME = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)

# --- realistic events ---------------------------------------------------------------------------

DEPARTMENTS = [(d.code, d.name) for d in demo.district()]
ROLE_SETS = [
    ["requester"],
    ["requester", "steward"],
    ["steward"],
    ["leader"],
    ["auditor"],
    ["platform_admin"],
]
ROUTES = [
    ("GET", "/v1/accounts", "list_accounts"),
    ("POST", "/v1/departments", "create_department"),
    ("GET", "/v1/audit/events", "list_audit_events"),
    ("GET", "/v1/audit/export", "export_audit_events"),
    ("PATCH", "/v1/departments/tax", "update_department"),
]


@dataclass(frozen=True)
class Caller:
    subject: str
    department: str
    roles: list[str]
    client: str


def make_callers(rng: random.Random) -> list[Caller]:
    callers = []
    for index in range(60):
        code, _name = DEPARTMENTS[index % len(DEPARTMENTS)]
        callers.append(
            Caller(
                subject=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                department=code,
                roles=sorted(ROLE_SETS[index % len(ROLE_SETS)]),
                client=f"{code}-client-{index:02d}",
            )
        )
    return callers


def event_fields(seq: int, rng: random.Random, callers: list[Caller]) -> dict[str, Any]:
    """Everything of one event but its chain links, drawn like a working day's traffic."""
    caller = rng.choice(callers)
    draw = rng.random()
    outcome = "success"
    if draw < 0.35:
        code, name = rng.choice(DEPARTMENTS)
        version = rng.randint(1, 400)
        new_name = f"{name}（第{version}次调整）" if rng.random() < 0.98 else f"=HYPERLINK({name})"
        action, object_type, object_id = "department.updated", "department", code
        details: dict[str, Any] = {
            "before": {"name": name, "version": version},
            "after": {"name": new_name, "version": version + 1},
        }
    elif draw < 0.65:
        action, object_type, object_id = "token.issued", "account", caller.client
        details = {"expires_in": 1800, "grant_type": "client_credentials", "scope": caller.roles}
    elif draw < 0.78:
        method, path, operation = rng.choice(ROUTES)
        action, object_type, object_id = "access.denied", "route", f"{method} {path}"
        outcome = "denied"
        details = {
            "operation": operation,
            "reason": "This action needs one of the roles: platform_admin.",
        }
    elif draw < 0.86:
        action, object_type, object_id = "token.refused", "account", caller.client
        outcome = "denied"
        details = {"reason": "The client id or secret is wrong."}
    elif draw < 0.93:
        code, name = rng.choice(DEPARTMENTS)
        action, object_type, object_id = "account.created", "account", f"{code}-user-{seq}"
        details = {
            "after": {
                "kind": "person",
                "department": code,
                "roles": ["requester"],
                "disabled": False,
            }
        }
    elif draw < 0.97:
        action, object_type, object_id = "audit.exported", "audit_log", None
        details = {
            "format": rng.choice(["jsonl", "csv"]),
            "filters": {"since": "2026-01-01T00:00:00+00:00", "department": caller.department},
        }
    else:
        action, object_type, object_id = "account.roles_changed", "account", caller.client
        details = {"before": {"roles": ["requester"]}, "after": {"roles": caller.roles}}
    return {
        "seq": seq,
        "id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "time": START_TIME + timedelta(milliseconds=37 * seq + rng.randint(0, 30)),
        "actor_subject": caller.subject,
        "actor_department": caller.department,
        "actor_roles": caller.roles,
        "actor_client": caller.client,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
        "request_id": f"{rng.getrandbits(128):032x}",
        "client_address": f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "details": details,
    }


# --- databases ----------------------------------------------------------------------------------


@dataclass
class SeedTiming:
    events: int = 0
    hash_seconds: float = 0.0
    insert_seconds: float = 0.0


def chain_head(engine: Engine) -> tuple[int, str]:
    with engine.connect() as connection:
        row = connection.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def seed(engine: Engine, target: int, timing: SeedTiming) -> None:
    """Append valid chained events until the chain holds `target` of them."""
    seq, prev_hash = chain_head(engine)
    rng = random.Random(seq)
    callers = make_callers(random.Random(0))
    columns = [column.name for column in AuditEvent.__table__.columns]
    table = cast(Table, AuditEvent.__table__)
    while seq < target:
        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        for next_seq in range(seq + 1, min(seq + SEED_BATCH, target) + 1):
            event = AuditEvent(**event_fields(next_seq, rng, callers), prev_hash=prev_hash)
            event.hash = compute_hash(prev_hash, event_document(event))
            rows.append({name: getattr(event, name) for name in columns})
            prev_hash = event.hash
        hashed = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
        timing.hash_seconds += hashed - started
        timing.insert_seconds += time.perf_counter() - hashed
        timing.events += len(rows)
        seq = rows[-1]["seq"]
        if seq % 100_000 < SEED_BATCH:
            print(f"  seeded {seq:>9,} events", file=sys.stderr, flush=True)


# --- measurements (each in a child process) -----------------------------------------------------


def _status_kib(field: str) -> int:
    kib = status_kib(field)
    if kib is None:
        raise RuntimeError(f"{field} is not in /proc/self/status")
    return kib


def _trailer_count(last_chunk: str, export_format: str) -> int:
    last_line = last_chunk.rstrip("\r\n").rsplit("\n", 1)[-1]
    if export_format == "jsonl":
        return int(json.loads(last_line)["trailer"]["count"])
    row = next(csv.reader(io.StringIO(last_line)))
    return int(json.loads(row[13])["count"])


async def _run_child(kind: str, database_url: str, sink: BinaryIO) -> dict[str, Any]:
    """One measurement; whatever it outputs goes to `sink` (/dev/null)."""
    from broker.audit.export import export_chunks
    from broker.audit.service import EventFilter
    from broker.db import READ_ONLY_OPTION, make_engine, make_read_session_factory

    engine = make_engine(Settings(database_url=database_url))
    result: dict[str, Any] = {"rss_start_kib": _status_kib("VmRSS")}
    written = 0
    started = time.perf_counter()
    try:
        if kind == "baseline csv":
            events = 0
            query = text("SELECT * FROM audit_event ORDER BY seq")
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            async with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
                stream = await conn.stream(query.execution_options(yield_per=FETCH_BATCH))
                writer.writerow(list(stream.keys()))
                async for partition in stream.partitions(FETCH_BATCH):
                    writer.writerows(partition)
                    data = buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
                    sink.write(data)
                    written += len(data)
                    events += len(partition)
            result.update(ok=True, events=events)
        elif kind == "baseline jsonl":
            events = 0
            query = text("SELECT * FROM audit_event ORDER BY seq")
            async with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
                stream = await conn.stream(query.execution_options(yield_per=FETCH_BATCH))
                async for partition in stream.partitions(FETCH_BATCH):
                    for row in partition:
                        line = json.dumps(row._asdict(), default=str, ensure_ascii=False)
                        data = (line + "\n").encode()
                        sink.write(data)
                        written += len(data)
                        events += 1
            result.update(ok=True, events=events)
        else:
            export_format = kind.removeprefix("export ")
            assert export_format in ("jsonl", "csv")
            last_chunk = ""
            async with make_read_session_factory(engine)() as session:
                async for chunk in export_chunks(
                    session=session,
                    filters=EventFilter(),
                    format="jsonl" if export_format == "jsonl" else "csv",
                ):
                    data = chunk.encode()
                    sink.write(data)
                    written += len(data)
                    last_chunk = chunk
            events = _trailer_count(last_chunk, export_format)
            result.update(ok=True, events=events)
    finally:
        await engine.dispose()
    result.update(
        seconds=time.perf_counter() - started,
        bytes=written,
        rss_peak_kib=_status_kib("VmHWM"),
    )
    return result


def measure(kind: str, database_url: str) -> dict[str, Any]:
    args = [__file__, "--child", kind, "--database-url", database_url]
    return json_child(args, kind, CHILD_TIMEOUT_SECONDS)


# --- report -------------------------------------------------------------------------------------


def mib(kib: int) -> float:
    return kib / 1024


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median events/s (the upper median for an even count)."""
    ordered = sorted(runs, key=lambda run: run["events"] / run["seconds"])
    return ordered[len(ordered) // 2]


def print_report(
    label: str,
    results: dict[tuple[int, str], list[dict[str, Any]]],
    seeds: dict[int, SeedTiming],
    max_memory_ratio: float,
    goal: float,
) -> list[str]:
    """Print the table (median of the repeats); return the problems found (empty when fine)."""
    problems: list[str] = []
    sizes = sorted({size for size, _kind in results})
    repeats = len(next(iter(results.values())))
    print(f"\n=== {label} (median of {repeats}, runs interleaved) ===")
    for size in sizes:
        timing = seeds[size]
        total = timing.hash_seconds + timing.insert_seconds
        print(
            f"seed to {size:,}: {timing.events:,} new events in {total:.1f}s "
            f"(hashing {timing.hash_seconds:.1f}s, inserting {timing.insert_seconds:.1f}s)"
        )
    header = (
        f"{'events':>10} {'run':<15} {'seconds':>8} {'events/s':>10} {'vs base':>8} "
        f"{'all ratios':>16} {'out MiB':>8} {'peak RSS MiB':>13} {'growth MiB':>11} {'ok':>3}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        for kind in RUNS:
            runs = results[size, kind]
            run = median_run(runs)
            rate = run["events"] / run["seconds"]
            ratio, ratios = "", ""
            if kind.startswith("export"):
                base = results[size, kind.replace("export", "baseline")]
                base_rate = statistics.median(r["events"] / r["seconds"] for r in base)
                ratio = f"{rate / base_rate:.2f}"
                ratios = " ".join(
                    f"{(r['events'] / r['seconds']) / (b['events'] / b['seconds']):.2f}"
                    for r, b in zip(runs, base, strict=True)
                )
                if size == sizes[-1] and rate / base_rate < goal:
                    problems.append(
                        f"{label}: {kind} at {size:,} runs at {rate / base_rate:.2f}x the plain "
                        f"SELECT (goal >= {goal}x)"
                    )
            growth = mib(run["rss_peak_kib"] - run["rss_start_kib"])
            out = f"{run['bytes'] / 2**20:.0f}" if run["bytes"] else ""
            print(
                f"{size:>10,} {kind:<15} {run['seconds']:>8.1f} {rate:>10,.0f} {ratio:>8} "
                f"{ratios:>16} {out:>8} {mib(run['rss_peak_kib']):>13.1f} {growth:>11.1f} "
                f"{'yes' if run['ok'] else 'NO':>3}"
            )
            for one in runs:
                if not one["ok"]:
                    problems.append(f"{label}: {kind} at {size:,}: {one.get('problem')}")
                if one["events"] != size:
                    problems.append(f"{label}: {kind} at {size:,} saw {one['events']:,} events")
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"peak memory at {large:,} / at {small:,} events:")
        for kind in RUNS:
            peak_large = max(r["rss_peak_kib"] for r in results[large, kind])
            peak_small = max(r["rss_peak_kib"] for r in results[small, kind])
            ratio = peak_large / peak_small
            print(f"  {kind:<15} {ratio:.2f}")
            if kind.startswith("export") and ratio > max_memory_ratio:
                problems.append(f"{label}: {kind} peak memory grew {ratio:.2f}x with the count")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        help="SQLite URL, or a PostgreSQL URL used to create and drop a scratch database "
        "(default: a temporary SQLite file).",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=None, help="interleaved runs (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke test: sizes 2,000 and 10,000, one repeat"
    )
    parser.add_argument("--goal", type=float, default=GOAL, help="minimum export/baseline ratio")
    parser.add_argument(
        "--max-memory-ratio",
        type=float,
        default=1.25,
        help="Fail when an export's peak RSS at the largest size exceeds this many times "
        "its peak at the smallest.",
    )
    parser.add_argument("--child", choices=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        with open(os.devnull, "wb") as sink:
            result = asyncio.run(_run_child(args.child, args.database_url, sink))
        print(json.dumps(result))
        return 0

    sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)))
    repeats = args.repeats or (1 if args.quick else 3)
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    seeds: dict[int, SeedTiming] = {}
    with (
        tempfile.TemporaryDirectory(prefix="audit-bench-") as workdir,
        scratch_database(args.database_url, Path(workdir), "broker_bench") as database_url,
    ):
        migrations.upgrade(Settings(database_url=database_url))
        label = make_url(database_url).get_backend_name()
        print(f"database: {label} (scratch {make_url(database_url).database})", file=sys.stderr)
        engine = create_engine(sync_url(database_url))
        try:
            for size in sizes:
                seeds[size] = SeedTiming()
                seed(engine, size, seeds[size])
                for repeat in range(repeats):
                    for kind in RUNS:
                        print(
                            f"  {kind} at {size:,} ({repeat + 1}/{repeats}) ...",
                            file=sys.stderr,
                            flush=True,
                        )
                        results.setdefault((size, kind), []).append(measure(kind, database_url))
        finally:
            engine.dispose()
    problems = print_report(label, results, seeds, args.max_memory_ratio, args.goal)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
