"""Benchmark submit: `POST /v1/requests/{id}/submit` of a 95-line bundle against a 1-line one.

    python bench/submit.py [--submits 5] [--rounds 3] [--quick] [--database-url URL] [--keep]

One broker server runs (`broker db upgrade` on a scratch database: an SQLite file, or a database
created next to --database-url / BROKER_DATABASE_URL on PostgreSQL) with the demo district: its
bureaus, the 95-item economic indicators sheet imported by the platform admin, and a requester
of Development and Reform (drc) with the scenario `econ`. Drafts are created beforehand, outside
the timing: one with the sheet's first item, one with all 95 items (auto-approved, waiting for
their owners, or refused, as the routing policy says).

Each round submits --submits 1-line drafts and --submits 95-line drafts, interleaved one after
the other, and takes the median time of each; the figure is the ratio 95-line / 1-line of each
round, and the result the median over --rounds rounds. Line by line, submit read the chain's
head and inserted an event, a history row and a grant per line (597 statements on SQLite); it
now routes in memory and writes each table once.

Goal, and exit status 1 when missed: a 95-line submit takes at most 5 times as long as a 1-line
submit (ratio <= 5). `--quick` is the CI smoke size (1 round of 2 submits each). Benchmarks never
run in the test suite.
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import httpx

from broker import demo
from servers import (
    BenchError,
    Caller,
    bootstrap_admin,
    broker,
    create_client,
    exit_status,
    expect,
    scratch_database,
    server_environment,
    start_server,
)

GOAL_RATIO = 5.0
SHEET = demo.ECONOMIC_INDICATORS_SHEET


def item_codes() -> list[str]:
    import csv

    with SHEET.open(encoding="utf-8", newline="") as handle:
        return [row["信息项编码"] for row in csv.DictReader(handle)]


def set_up(http: httpx.Client, env: dict[str, str]) -> Caller:
    """The district and its catalog, the scenario, and the requester who submits."""
    admin = bootstrap_admin(http, env)
    for department in demo.bureaus():
        body = {"code": department.code, "name": department.name, "kind": "bureau"}
        expect(http.post("/v1/departments", json=body, headers=admin.headers()), 201)
    imported = http.post(
        "/v1/catalog/import",
        files={"file": ("目录.csv", SHEET.read_bytes(), "text/csv")},
        headers=admin.headers(),
    )
    expect(imported, 200)
    requester = create_client(admin, "drc-requester", "drc", "requester")
    scenario = {"code": "econ", "name": "经济运行指标监测", "phase": "development"}
    expect(http.post("/v1/scenarios", json=scenario, headers=requester.headers()), 201)
    return requester


def draft(requester: Caller, codes: list[str]) -> str:
    """A draft request for `codes`; its id."""
    today = date.today()
    body = {
        "scenario_code": "econ",
        "title": "经济运行指标数据需求",
        "purpose": "经济运行监测分析与月度研判",
        "usage_start": today.isoformat(),
        "usage_end": (today + timedelta(days=365)).isoformat(),
    }
    created = expect(
        requester.http.post("/v1/requests", json=body, headers=requester.headers()), 201
    )
    pasted = requester.http.post(
        f"/v1/requests/{created['id']}/lines",
        json={"item_codes": codes},
        headers=requester.headers(),
    )
    if expect(pasted, 200)["added"] != len(codes):
        raise BenchError(f"the draft took {pasted.text}, not {len(codes)} lines")
    return str(created["id"])


def submit(requester: Caller, request_id: str, lines: int) -> float:
    """Seconds one submit took, its answer checked."""
    headers = requester.headers()
    started = time.perf_counter()
    answer = requester.http.post(f"/v1/requests/{request_id}/submit", headers=headers)
    elapsed = time.perf_counter() - started
    body = expect(answer, 200)
    if len(body["lines"]) != lines or any(line["state"] == "draft" for line in body["lines"]):
        raise BenchError(f"the {lines}-line submit did not route every line: {answer.text[:500]}")
    return elapsed


@dataclass
class Round:
    one: float
    many: float

    @property
    def ratio(self) -> float:
        return self.many / self.one


def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    codes = item_codes()
    try:
        with scratch_database(args.database_url, workdir, "bench_submit") as database_url:
            dialect = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
            print(
                f"submit benchmark: {dialect}; Python {platform.python_version()}, "
                f"{os.cpu_count()} CPUs, {args.rounds} rounds of {args.submits} submits of "
                f"1 and of {len(codes)} lines",
                flush=True,
            )
            env = server_environment(workdir)
            env["BROKER_DATABASE_URL"] = database_url
            broker(env, "db", "upgrade")
            server = start_server("broker", env, workdir)
            try:
                with httpx.Client(base_url=server.base_url, timeout=120.0) as http:
                    requester = set_up(http, env)
                    wanted = (args.rounds * args.submits + 1) * 2
                    print(f"  preparing {wanted} drafts", flush=True)
                    ones = [draft(requester, codes[:1]) for _ in range(wanted // 2)]
                    manys = [draft(requester, codes) for _ in range(wanted // 2)]
                    submit(requester, ones.pop(), 1)  # warm up
                    submit(requester, manys.pop(), len(codes))
                    rounds = []
                    for n in range(args.rounds):
                        one, many = [], []
                        for _ in range(args.submits):
                            one.append(submit(requester, ones.pop(), 1))
                            many.append(submit(requester, manys.pop(), len(codes)))
                        done = Round(statistics.median(one), statistics.median(many))
                        rounds.append(done)
                        print(
                            f"  round {n + 1}: 1 line {done.one * 1000:.1f} ms, "
                            f"{len(codes)} lines {done.many * 1000:.1f} ms, ratio {done.ratio:.2f}",
                            flush=True,
                        )
                log_tail = server.log_tail()
            finally:
                server.stop()
        ratio = statistics.median(r.ratio for r in rounds)
        met = ratio <= GOAL_RATIO
        print(
            f"\nsubmit, {dialect}: median of {len(rounds)} rounds 1 line "
            f"{statistics.median(r.one for r in rounds) * 1000:.1f} ms, {len(codes)} lines "
            f"{statistics.median(r.many for r in rounds) * 1000:.1f} ms, ratio {ratio:.2f} "
            f"(goal <= {GOAL_RATIO:g}): {'met' if met else 'MISSED'}"
        )
        if "Traceback" in log_tail:
            print(f"\nserver log tail:\n{log_tail}")
        if not met:
            raise BenchError(
                f"a {len(codes)}-line submit takes {ratio:.2f}x a 1-line one, goal {GOAL_RATIO:g}x"
            )
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=5, help="of each size per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BROKER_DATABASE_URL"),
        help="a PostgreSQL URL to create the scratch database next to (default: SQLite)",
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke: 1 round of 2 submits")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.submits = 1, 2
    if args.rounds < 1 or args.submits < 1:
        parser.error("--rounds and --submits must be positive")
    return exit_status(partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
