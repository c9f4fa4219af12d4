"""Benchmark event-loop latency: /healthz while CPU-heavy work runs in the same server.

    python bench/loop_latency.py [--xlsx-kib 600] [--csv-rows 200000] [--release-rows 1000000]
                                 [--idle-probes 300] [--keep]

A real server runs (`broker db upgrade` on an SQLite file in a temporary directory, then
`uvicorn broker.app:create_app --factory`, one process). A prober thread sends GET /healthz one
after another, 10 ms apart, and records each latency:

* idle          the baseline, measured in this run: nothing else is running;
* xlsx import   a 目录 sheet of about --xlsx-kib KiB written by openpyxl (within the XLSX bomb
                limits: it unpacks to under 200 times its size), POST /v1/catalog/import?dry_run;
* csv import    a --csv-rows-row 目录 CSV, the same preview;
* upload        a --release-rows-row population register CSV, POST /v1/datasets/{code}/releases
                (staged, parsed, validated by pandera, written as Parquet).

Each load is one request from a second thread; the prober runs until it returns, and the load
must succeed (200 or 201 with the expected row count). Figures are p50 / p95 / max of the probes
and the ratio of each load's p95 to the idle p95.

Goal, and exit status 1 when a load misses it: p95 under load at most 25 times the idle p95 or
100 ms, whichever is larger, and at most 250 ms in any case; and no probe over 1 s. Why these
numbers: work left in the server's own threads (polars and pandera validating a release, small
sheets) still takes the GIL from time to time, and the loop waits for it (CPython hands it over
every 5 ms, `sys.getswitchinterval()`) at each of the few points a request gives it up: tens of
milliseconds, against the tens of seconds the loop lost when sheets were parsed on it. The ratio
alone would be too strict where the idle p95 is 1 ms, hence the 100 ms floor; the 1 s ceiling is
the default timeout of a Kubernetes probe and catches the full garbage collections (about 1 s
each) that a large sheet parsed in a thread of the server caused. Benchmarks never run in the
test suite.
"""

import argparse
import csv
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from openpyxl import Workbook

from broker.demo import ECONOMIC_INDICATORS_SHEET
from delivery import PERIOD, POPULATION, population
from servers import (
    BenchError,
    Caller,
    bootstrap_admin,
    broker,
    create_client,
    exit_status,
    expect,
    percentile,
    server_environment,
    start_server,
)

PROBE_PAUSE_SECONDS = 0.01
PROBE_TIMEOUT_SECONDS = 120.0
LOAD_TIMEOUT_SECONDS = 3_600.0
GOAL_RATIO = 25.0
GOAL_FLOOR_MS = 100.0
GOAL_CEILING_MS = 250.0
GOAL_MAX_MS = 1000.0
MAX_XLSX_RATIO = 200  # catalog/uploads.py refuses more
ITEMS_PER_DATASET = 2000  # the most one dataset may declare
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# the 目录 headers, as the demo's economic indicators sheet has them (bench never imports the
# service's code)
with ECONOMIC_INDICATORS_SHEET.open(encoding="utf-8", newline="") as _sheet:
    HEADERS = next(csv.reader(_sheet))
UNITS = ["亿元", "万元", "%", "人", "户", "家", "个"]


def sheet_rows(count: int) -> list[list[str]]:
    """`count` items of statistics datasets, as a 目录 sheet lists them: one row per item."""
    rows = []
    for n in range(count):
        dataset = n // ITEMS_PER_DATASET
        code = f"TJ-ZB-{dataset:04d}"
        rows.append([
            code, f"统计指标第{dataset}组", "全区分行业、分街道统计指标月度数据", "stats",
            "部门", "", f"{code}-{n:07d}", f"统计指标{n}", "decimal",
            UNITS[n % len(UNITS)], "是", "有条件共享", "用于经济运行分析", "",
            "接口、文件下载", "不予开放", "每月", "20", "一般", "L2", "否",
        ])  # fmt: skip
    return rows


def write_csv_sheet(rows: int, target: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows(sheet_rows(rows))
    target.write_bytes(buffer.getvalue().encode("utf-8-sig"))


def xlsx_sheet(rows: int) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("目录")
    sheet.append(HEADERS)
    for row in sheet_rows(rows):
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write_xlsx_sheet(kib: int, target: Path) -> int:
    """An XLSX of about `kib` KiB (rows scaled from a sample); returns its row count."""
    sample_rows = 2000
    per_row = len(xlsx_sheet(sample_rows)) / sample_rows
    rows = max(10, int(kib * 1024 / per_row))
    data = xlsx_sheet(rows)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_XLSX_RATIO * len(data):
        raise BenchError(f"the sheet unpacks {unpacked / len(data):.0f}x: a bomb, refused")
    target.write_bytes(data)
    return rows


# --- the server and its parties -----------------------------------------------------------------


@dataclass
class Parties:
    admin: Caller
    steward: Caller


def set_up(http: httpx.Client, env: dict[str, str]) -> Parties:
    """The platform admin, the statistics and police departments, the police steward and the
    population dataset, all through the API."""
    admin = bootstrap_admin(http, env)
    for code, name in (("stats", "区统计局"), ("police", "区公安分局")):
        body = {"code": code, "name": name, "kind": "bureau"}
        expect(http.post("/v1/departments", json=body, headers=admin.headers()), 201)
    steward = create_client(admin, "police-steward", "police", "steward")
    expect(http.post("/v1/datasets", json=POPULATION, headers=steward.headers()), 201)
    return Parties(admin, steward)


# --- measurements -------------------------------------------------------------------------------


@dataclass
class Probes:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    load_seconds: float = 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95(self) -> float:
        return percentile(self.latencies_ms, 0.95)


def probe(base_url: str, probes: Probes, stop: Callable[[], bool]) -> None:
    """GET /healthz, one after another with a short pause, until `stop()` says so."""
    with httpx.Client(base_url=base_url, timeout=PROBE_TIMEOUT_SECONDS) as http:
        while not stop():
            started = time.perf_counter()
            response = http.get("/healthz")
            probes.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise BenchError(f"/healthz answered {response.status_code}")
            time.sleep(PROBE_PAUSE_SECONDS)


def idle(base_url: str, count: int) -> Probes:
    probes = Probes("idle")
    probe(base_url, probes, lambda: len(probes.latencies_ms) >= count)
    return probes


def under_load(base_url: str, name: str, load: Callable[[], None]) -> Probes:
    """Probe /healthz for as long as `load()` runs in another thread."""
    probes = Probes(name)
    done = threading.Event()
    failure: list[BaseException] = []

    def run_load() -> None:
        started = time.perf_counter()
        try:
            load()
        except BaseException as exc:  # reported in the main thread
            failure.append(exc)
        finally:
            probes.load_seconds = time.perf_counter() - started
            done.set()

    loader = threading.Thread(target=run_load, name=name)
    loader.start()
    probe(base_url, probes, done.is_set)
    loader.join()
    if failure:
        raise failure[0]
    if len(probes.latencies_ms) < 5:
        raise BenchError(f"{name} finished after only {len(probes.latencies_ms)} probes")
    print(
        f"  {name}: {probes.load_seconds:.1f} s, {len(probes.latencies_ms)} probes, "
        f"p95 {probes.p95:.1f} ms",
        flush=True,
    )
    return probes


def import_sheet(http: httpx.Client, parties: Parties, source: Path, media: str, rows: int) -> None:
    with source.open("rb") as handle:
        response = http.post(
            "/v1/catalog/import",
            params={"dry_run": "true"},
            files={"file": (source.name, handle, media)},
            headers=parties.admin.headers(),
        )
    plan = expect(response, 200)
    if plan["rows"] != rows:
        raise BenchError(f"the import read {plan['rows']} rows, not {rows}")


def upload(http: httpx.Client, parties: Parties, source: Path, rows: int) -> None:
    with source.open("rb") as handle:
        response = http.post(
            f"/v1/datasets/{POPULATION['code']}/releases",
            files={"file": ("人口.csv", handle, "text/csv")},
            data=PERIOD,
            headers=parties.steward.headers(),
        )
    release = expect(response, 201)
    if release["row_count"] != rows:
        raise BenchError(f"the release holds {release['row_count']} rows, not {rows}")


# --- the run ------------------------------------------------------------------------------------


def goal_ms(idle_p95: float) -> float:
    return min(max(GOAL_RATIO * idle_p95, GOAL_FLOOR_MS), GOAL_CEILING_MS)


def report(base: Probes, loads: list[Probes]) -> bool:
    limit = goal_ms(base.p95)
    print(
        f"\n{'load':<14}{'seconds':>9}{'probes':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
        f"{'p95/idle':>10}  goal: p95 <= {limit:.0f} ms, max <= {GOAL_MAX_MS:.0f} ms"
    )
    met = True
    for row in [base, *loads]:
        ratio = row.p95 / base.p95
        ok = row is base or (row.p95 <= limit and max(row.latencies_ms) <= GOAL_MAX_MS)
        met = met and ok
        seconds = f"{row.load_seconds:.1f}" if row is not base else "-"
        print(
            f"{row.name:<14}{seconds:>9}{len(row.latencies_ms):>8}{row.p50:>9.1f}"
            f"{row.p95:>9.1f}{max(row.latencies_ms):>9.1f}{ratio:>10.1f}  "
            + ("" if row is base else ("met" if ok else "MISSED"))
        )
    return met


def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    try:
        print(
            f"loop latency benchmark: SQLite; Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, switch interval {sys.getswitchinterval() * 1000:.0f} ms",
            flush=True,
        )
        started = time.perf_counter()
        xlsx, csv_sheet, release = (
            workdir / "目录.xlsx",
            workdir / "目录.csv",
            workdir / "population.csv",
        )
        xlsx_rows = write_xlsx_sheet(args.xlsx_kib, xlsx)
        write_csv_sheet(args.csv_rows, csv_sheet)
        population(args.release_rows).write_csv(release)
        print(
            f"generated a {xlsx.stat().st_size / 1024:.0f} KiB XLSX of {xlsx_rows:,} rows, a "
            f"{csv_sheet.stat().st_size / 1024**2:.1f} MiB CSV sheet of {args.csv_rows:,} rows "
            f"and a {release.stat().st_size / 1024**2:.1f} MiB release of "
            f"{args.release_rows:,} rows in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        env = server_environment(workdir)
        env["BROKER_MAX_IMPORT_BYTES"] = str(max(csv_sheet.stat().st_size * 2, 20 * 1024**2))
        broker(env, "db", "upgrade")
        server = start_server("broker", env, workdir)
        try:
            with httpx.Client(base_url=server.base_url, timeout=LOAD_TIMEOUT_SECONDS) as http:
                parties = set_up(http, env)
                for caller in (parties.admin, parties.steward):
                    caller.headers()  # mint the tokens before measuring
                base = idle(server.base_url, args.idle_probes)
                print(f"  idle: {len(base.latencies_ms)} probes, p95 {base.p95:.2f} ms")
                loads = [
                    under_load(
                        server.base_url,
                        "xlsx import",
                        partial(import_sheet, http, parties, xlsx, XLSX_MEDIA, xlsx_rows),
                    ),
                    under_load(
                        server.base_url,
                        "csv import",
                        partial(import_sheet, http, parties, csv_sheet, "text/csv", args.csv_rows),
                    ),
                    under_load(
                        server.base_url,
                        "upload",
                        partial(upload, http, parties, release, args.release_rows),
                    ),
                ]
            log_tail = server.log_tail()
        finally:
            server.stop()
        met = report(base, loads)
        if "Traceback" in log_tail:
            print(f"\nserver log tail:\n{log_tail}")
        if not met:
            raise BenchError("/healthz p95 under load missed the goal")
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--xlsx-kib", type=int, default=600)
    parser.add_argument("--csv-rows", type=int, default=200_000)
    parser.add_argument("--release-rows", type=int, default=1_000_000)
    parser.add_argument("--idle-probes", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if min(args.xlsx_kib, args.csv_rows, args.release_rows, args.idle_probes) < 10:
        parser.error("every size must be at least 10")
    return exit_status(partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
