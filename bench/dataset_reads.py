"""Benchmark reads: `GET /v1/datasets/{code}` against a bare FastAPI route with the same body.

    python bench/dataset_reads.py [--seconds 5] [--rounds 3] [--connections 8] [--quick]
                                  [--database-url URL] [--keep]

Two servers run side by side, one uvicorn process each, as production runs them:

* bare     a FastAPI app with one route, `GET /v1/datasets/{code}`, returning the dataset's JSON
           body as a dict (FastAPI encodes it): the framework's floor, no auth, no database;
* broker   the broker (`broker db upgrade` on a scratch database: an SQLite file, or a database
           created next to --database-url / BROKER_DATABASE_URL on PostgreSQL), the population
           register dataset of bench/delivery.py (15 items) created by a steward, read by a
           requester of another department with a bearer token, as a caller would.

Each round loads the bare server, then the broker, for --seconds each with --connections
keep-alive HTTP/1.1 connections sending one request after another (a small asyncio client, so
the client does not cap the rate), and counts the 200 answers. The figure is the throughput
ratio broker / bare of each round; the result is the median over --rounds rounds.

Goal, and exit status 1 when missed: the broker reads at least half as many datasets per second
as the bare route serves the same bytes (ratio >= 0.5). `--quick` is the CI smoke size (short
rounds). Benchmarks never run in the test suite.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from broker import demo
from servers import (
    BenchError,
    bootstrap_admin,
    broker,
    create_client,
    exit_status,
    expect,
    scratch_database,
    server_environment,
    start_server,
    uvicorn_command,
)

GOAL_RATIO = 0.5
BODY_ENV = "BENCH_BARE_BODY"
DATASET = demo.population_dataset()
BENCH_DIR = Path(__file__).resolve().parent


def bare_app() -> Any:
    """The baseline: FastAPI returning the body read from the file BENCH_BARE_BODY names."""
    from fastapi import FastAPI

    body = json.loads(Path(os.environ[BODY_ENV]).read_text(encoding="utf-8"))
    app = FastAPI()

    @app.get("/v1/datasets/{code}")
    async def get_dataset(code: str) -> dict[str, Any]:
        return dict(body)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def bare_command(port: int) -> list[str]:
    return uvicorn_command("dataset_reads:bare_app", port, app_dir=BENCH_DIR)


# --- the load -----------------------------------------------------------------------------------


async def _connection(
    port: int, request: bytes, deadline: float, counts: list[int], expected: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            if status != 200 or len(body) != expected:
                raise BenchError(f"answered {status} with {len(body)} bytes: {body[:500]!r}")
            counts[0] += 1
    finally:
        writer.close()


async def _load(port: int, request: bytes, seconds: float, connections: int, size: int) -> float:
    counts = [0]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_connection(port, request, deadline, counts, size) for _ in range(connections))
    )
    return counts[0] / (time.perf_counter() - started)


def throughput(
    port: int, path: str, token: str | None, seconds: float, connections: int, size: int
) -> float:
    """Requests per second answered 200 with a body of `size` bytes."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Accept: application/json\r\n\r\n"
    return asyncio.run(_load(port, request.encode("ascii"), seconds, connections, size))


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Round:
    bare: float
    broker: float

    @property
    def ratio(self) -> float:
        return self.broker / self.bare


def set_up(http: httpx.Client, env: dict[str, str]) -> str:
    """The dataset, created by a police steward; a requester of statistics reads it. Its token."""
    admin = bootstrap_admin(http, env)
    for code, name in (("stats", "区统计局"), ("police", "区公安分局")):
        body = {"code": code, "name": name, "kind": "bureau"}
        expect(http.post("/v1/departments", json=body, headers=admin.headers()), 201)
    steward = create_client(admin, "police-steward", "police", "steward")
    expect(http.post("/v1/datasets", json=DATASET, headers=steward.headers()), 201)
    reader = create_client(admin, "stats-reader", "stats", "requester")
    headers = reader.headers()
    return headers["Authorization"].removeprefix("Bearer ")


def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    try:
        with scratch_database(args.database_url, workdir, "bench_reads") as database_url:
            dialect = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
            print(
                f"dataset reads benchmark: {dialect}; Python {platform.python_version()}, "
                f"{os.cpu_count()} CPUs, {args.connections} connections, "
                f"{args.rounds} rounds of {args.seconds:g} s per server",
                flush=True,
            )
            env = server_environment(workdir)
            env["BROKER_DATABASE_URL"] = database_url
            broker(env, "db", "upgrade")
            server = start_server("broker", env, workdir)
            try:
                with httpx.Client(base_url=server.base_url, timeout=60.0) as http:
                    token = set_up(http, env)
                    path = f"/v1/datasets/{DATASET['code']}"
                    answer = http.get(path, headers={"Authorization": f"Bearer {token}"})
                    expect(answer, 200)
                body_path = workdir / "body.json"
                body_path.write_bytes(answer.content)
                bare_env = {**env, BODY_ENV: str(body_path)}
                bare = start_server("bare", bare_env, workdir, bare_command)
                try:
                    with httpx.Client(base_url=bare.base_url) as http:
                        check = http.get(path)
                    if check.json() != answer.json():
                        raise BenchError("the bare route's body differs from the broker's")
                    size_bare, size_broker = len(check.content), len(answer.content)
                    load = partial(throughput, seconds=args.seconds, connections=args.connections)
                    load(bare.port, path, None, size=size_bare)  # warm both up
                    load(server.port, path, token, size=size_broker)
                    rounds = []
                    for n in range(args.rounds):
                        done = Round(
                            bare=load(bare.port, path, None, size=size_bare),
                            broker=load(server.port, path, token, size=size_broker),
                        )
                        rounds.append(done)
                        print(
                            f"  round {n + 1}: bare {done.bare:,.0f}/s, broker "
                            f"{done.broker:,.0f}/s, ratio {done.ratio:.2f}",
                            flush=True,
                        )
                finally:
                    bare.stop()
                log_tail = server.log_tail()
            finally:
                server.stop()
        ratio = statistics.median(r.ratio for r in rounds)
        met = ratio >= GOAL_RATIO
        print(
            f"\nGET {path} ({size_broker:,} bytes), {dialect}: median of {len(rounds)} rounds "
            f"bare {statistics.median(r.bare for r in rounds):,.0f}/s, broker "
            f"{statistics.median(r.broker for r in rounds):,.0f}/s, ratio {ratio:.2f} "
            f"(goal >= {GOAL_RATIO}): {'met' if met else 'MISSED'}"
        )
        if "Traceback" in log_tail:
            print(f"\nserver log tail:\n{log_tail}")
        if not met:
            raise BenchError(f"dataset reads at {ratio:.2f}x the bare route, goal {GOAL_RATIO}x")
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per server and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BROKER_DATABASE_URL"),
        help="a PostgreSQL URL to create the scratch database next to (default: SQLite)",
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke: 1 s rounds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 1.0
    if args.seconds <= 0 or args.rounds < 1 or args.connections < 1:
        parser.error("--seconds, --rounds and --connections must be positive")
    return exit_status(partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
