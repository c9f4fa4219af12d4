"""Benchmark delivery: a population register uploaded, validated and downloaded through a grant.

    python bench/delivery.py [--rows 1000000] [--repeat 3] [--keep]

The bench generates a population-housing file (公民身份号码, 姓名, 手机号码, 居住地址, 房屋编码,
所属街道, 年龄, 登记日期) with polars expressions: valid, unique 18-digit ID numbers with their
GB 11643 check digit, ages that agree with them, people sharing households' addresses and house
ids. It is written as UTF-8 CSV in a temporary directory.

A real server then runs: `broker db upgrade` on an SQLite file in that directory and
`uvicorn broker.app:create_app --factory`, release files stored beside it. Over HTTP the police
steward declares the dataset and the development-and-reform requester obtains a grant with
masking (ID number and phone partial, name hashed, address nulled). Each measurement is repeated
and its median reported:

* upload            the CSV streamed to POST /v1/datasets/{code}/releases, validated, stored;
* download csv      GET /v1/grants/{id}/data?format=csv streamed to a file, masked on the way;
* download parquet  the same as Parquet.

Baselines run in the same run on the same files, each in a child process of its own (so its peak
RSS is its alone): polars `read_csv` (typed as declared) + `write_parquet` for the upload, and
`read_parquet` of the stored release + `write_csv` / `write_parquet` for the downloads: the least
work either direction could do. Ratios are broker time / baseline time. The server's RSS is read
when each step starts and its peak (VmHWM) when it ends, reset in between through
/proc/<pid>/clear_refs when allowed, so a step's peak is its own (memory it merely kept from the
step before shows as its start).

The downloads are checked to be masked, and the same file with two bad cells near its end must be
refused (422) with both rows named. The script exits 1 when anything fails. Benchmarks never run
in the test suite.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from broker import demo
from servers import (
    BenchError,
    Caller,
    Server,
    bootstrap_admin,
    broker,
    create_client,
    exit_status,
    expect,
    json_child,
    server_environment,
    start_server,
    status_kib,
)

REQUEST_TIMEOUT_SECONDS = 3_600.0
CHILD_TIMEOUT_SECONDS = 3_600.0
CHUNK = 1024 * 1024
SEED = 20_261_031

PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
AS_OF = date(2026, 10, 31)
DECLARATION = {"update_cycle": "monthly", "publication_lag_days": 10, "sensitivity": "L3"}
MASKS = {"RK-SFZH": "partial", "RK-SJHM": "partial", "RK-XM": "hash", "RK-ZZ": "null"}
BASELINES = ("read_csv+write_parquet", "read_parquet+write_csv", "read_parquet+write_parquet")


# --- the dataset: the population register the delivery tests upload too ------------------------

POPULATION = demo.population_dataset()
STREETS: list[str] = next(i["enum"] for i in POPULATION["items"] if i["code"] == "RK-JD")
COLUMNS = [i["code"] for i in POPULATION["items"]]
DECLARED_DTYPES: dict[str, pl.DataType] = {
    **{code: pl.String() for code in COLUMNS},
    "RK-NL": pl.Int64(),
    "RK-DJRQ": pl.Date(),
}

# --- realistic people -------------------------------------------------------------------------

# where ID numbers were issued: the district itself, the city, and provinces people move from
AREAS = re.findall(
    r"\d{6}",
    "310101 310104 310105 310106 310107 310109 310110 310112 310113 310115 320102 320583 "
    "330102 340104 342401 360102 410105 411302 420102 430104 510104 522601 612401 130104",
)
SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌鹏辉宇浩然子轩梓涵欣怡雨泽俊"
)
PHONE_PREFIXES = re.findall(
    r"\d{3}",
    "130 131 132 133 135 136 137 138 139 150 151 152 155 156 158 159 166 176 177 180 181 186 "
    "187 188 189 199",
)
ROADS = {
    "城关街道": ["解放路", "人民路", "中山路", "府前街", "文庙巷"],
    "东湖街道": ["东湖路", "滨湖大道", "青年路", "和平路"],
    "西山街道": ["西山路", "建设路", "幸福路", "工业大道", "学府路", "桃园路"],
}
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
CENTURY_DAYS = 36_500


def population(rows: int) -> pl.DataFrame:
    """`rows` residents; ID numbers unique, every value within the declared checks."""

    def draw(seed: int, modulus: int) -> pl.Expr:
        hashed = pl.int_range(0, rows, dtype=pl.Int64).hash(seed=SEED + seed)
        return (hashed % modulus).cast(pl.Int64)

    def pick(seed: int, values: Sequence[str]) -> pl.Expr:
        return pl.lit(pl.Series(values)).gather(draw(seed, len(values)))

    households = max(1, rows * 10 // 26)  # 2.6 people per household
    streets_roads = [(s, r) for s in STREETS for r in ROADS[s]]
    frame = pl.select(
        area=pick(0, AREAS),
        born=pl.lit(AS_OF) - pl.duration(days=draw(1, CENTURY_DAYS)),
        sex=draw(11, 2),
        surname=pick(2, SURNAMES),
        given=pick(3, GIVEN) + pl.when(draw(4, 3) > 0).then(pick(5, GIVEN)).otherwise(pl.lit("")),
        phone_prefix=pick(6, PHONE_PREFIXES),
        phone_number=draw(7, 100_000_000),
        phone_missing=draw(8, 40) == 0,
        household=draw(9, households),
    )
    # the sequence counts people of one area and birthday, so ID numbers are unique
    ordinal = pl.int_range(pl.len(), dtype=pl.Int64).over("area", "born")
    frame = frame.with_columns(sequence=ordinal * 2 + pl.col("sex") + 1)
    base = (
        pl.col("area")
        + pl.col("born").dt.strftime("%Y%m%d")
        + pl.col("sequence").cast(pl.String).str.zfill(3)
    )
    frame = frame.with_columns(base=base)
    total = pl.sum_horizontal(
        pl.col("base").str.slice(i, 1).cast(pl.Int64) * w for i, w in enumerate(ID_WEIGHTS)
    )
    age = (
        pl.lit(AS_OF.year)
        - pl.col("born").dt.year()
        - (
            pl.col("born").dt.month() * 100 + pl.col("born").dt.day()
            > AS_OF.month * 100 + AS_OF.day
        )
    ).cast(pl.Int64)
    # a household's street, road, number and flat all follow from its number
    h = pl.col("household")
    place = h % len(streets_roads)
    street = pl.lit(pl.Series([s for s, _ in streets_roads])).gather(place)
    road = pl.lit(pl.Series([r for _, r in streets_roads])).gather(place)
    number = (h // len(streets_roads)) % 280 + 1
    building = (h // (len(streets_roads) * 280)) % 24 + 1
    flat = (h // (len(streets_roads) * 280 * 24)) % 6 * 100 + (h * 7) % 4 + 101
    registered_from = pl.max_horizontal(pl.col("born"), pl.lit(date(2000, 1, 1)))
    span = (pl.lit(AS_OF) - registered_from).dt.total_days() + 1
    return frame.select(
        (pl.col("base") + pl.lit(pl.Series(list(ID_CHECK))).gather(total % 11)).alias("RK-SFZH"),
        (pl.col("surname") + pl.col("given")).alias("RK-XM"),
        pl.when(pl.col("phone_missing") | (age < 12))
        .then(None)
        .otherwise(pl.col("phone_prefix") + pl.col("phone_number").cast(pl.String).str.zfill(8))
        .alias("RK-SJHM"),
        (
            street
            + road
            + number.cast(pl.String)
            + "号"
            + building.cast(pl.String)
            + "栋"
            + flat.cast(pl.String)
            + "室"
        ).alias("RK-ZZ"),
        (
            pl.lit("FW3101")
            + place.cast(pl.String).str.zfill(2)
            + number.cast(pl.String).str.zfill(3)
            + building.cast(pl.String).str.zfill(2)
            + flat.cast(pl.String).str.zfill(4)
        ).alias("RK-FWBM"),
        street.alias("RK-JD"),
        age.alias("RK-NL"),
        (registered_from + pl.duration(days=draw(10, 1 << 30) % span)).alias("RK-DJRQ"),
    )


# --- baselines, each in a child process ---------------------------------------------------------


def run_child(kind: str, source: Path, target: Path) -> dict[str, Any]:
    started = time.perf_counter()
    if kind == "read_csv+write_parquet":
        frame = pl.read_csv(source, schema=DECLARED_DTYPES)
        frame.write_parquet(target, compression="zstd")
    elif kind == "read_parquet+write_csv":
        frame = pl.read_parquet(source)
        frame.write_csv(target)
    else:
        frame = pl.read_parquet(source)
        frame.write_parquet(target, compression="zstd")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": frame.height, "peak_kib": status_kib("VmHWM")}


def baseline(kind: str, source: Path, target: Path) -> dict[str, Any]:
    args = [__file__, "--child", kind, str(source), str(target)]
    result = json_child(args, f"baseline {kind}", CHILD_TIMEOUT_SECONDS)
    target.unlink(missing_ok=True)
    return result


# --- the parties -------------------------------------------------------------------------------


@dataclass
class Parties:
    steward: Caller
    requester: Caller
    grant_id: str


def set_up(http: httpx.Client, env: dict[str, str]) -> Parties:
    """Departments, accounts, the dataset and a masking grant, all through the API."""
    admin = bootstrap_admin(http, env)
    for code, name in (("police", "区公安分局"), ("drc", "区发展和改革委员会")):
        body = {"code": code, "name": name, "kind": "bureau"}
        expect(http.post("/v1/departments", json=body, headers=admin.headers()), 201)
    steward = create_client(admin, "police-steward", "police", "steward")
    requester = create_client(admin, "drc-requester", "drc", "requester")
    expect(http.post("/v1/datasets", json=POPULATION, headers=steward.headers()), 201)
    scenario = {"code": "econ", "name": "经济运行监测"}
    expect(http.post("/v1/scenarios", json=scenario, headers=requester.headers()), 201)
    request = {
        "scenario_code": "econ",
        "title": "人口数据需求",
        "purpose": "常住人口与经济运行关联分析",
        "usage_start": date.today().isoformat(),
        "usage_end": (date.today() + timedelta(days=180)).isoformat(),
        "lines": [{"dataset_code": POPULATION["code"]}],
    }
    created = expect(http.post("/v1/requests", json=request, headers=requester.headers()), 201)
    submitted = expect(
        http.post(f"/v1/requests/{created['id']}/submit", headers=requester.headers()), 200
    )
    line_id = submitted["lines"][0]["id"]
    decision = {
        "decision": "approve_with_conditions",
        "declaration": DECLARATION,
        "conditions": {"masking": MASKS},
    }
    decided = http.post(f"/v1/lines/{line_id}/decisions", json=decision, headers=steward.headers())
    expect(decided, 200)
    expect(http.post(f"/v1/lines/{line_id}/accept", headers=requester.headers()), 200)
    grants = expect(http.get("/v1/grants", headers=requester.headers()), 200)
    grant_ids = [g["id"] for g in grants["items"] if g["line_id"] == line_id]
    if len(grant_ids) != 1:
        raise BenchError(f"no single grant for line {line_id}: {grants}")
    return Parties(steward, requester, grant_ids[0])


# --- measurements -------------------------------------------------------------------------------


@dataclass
class Timings:
    seconds: list[float] = field(default_factory=list)
    peak_kib: int | None = None
    start_kib: int | None = None
    size_bytes: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def upload(http: httpx.Client, parties: Parties, source: Path, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    with source.open("rb") as handle:
        response = http.post(
            f"/v1/datasets/{POPULATION['code']}/releases",
            files={"file": ("人口.csv", handle, "text/csv")},
            data=PERIOD,
            headers=parties.steward.headers(),
        )
    elapsed = time.perf_counter() - started
    release = expect(response, 201)
    if release["status"] != "accepted" or release["row_count"] != rows:
        raise BenchError(f"the release is not {rows} accepted rows: {release}")
    release["seconds"] = elapsed
    return release


def rejected(
    http: httpx.Client, parties: Parties, original: pl.DataFrame, target: Path
) -> tuple[float, str]:
    """Upload the file with a bad phone in its last row and its first ID number repeated in the
    one before: the whole file must be read and both rows named (422), nothing accepted."""
    rows = original.height
    row = pl.int_range(pl.len())
    broken = original.with_columns(
        pl.when(row == rows - 2)
        .then(pl.col("RK-SFZH").first())
        .otherwise(pl.col("RK-SFZH"))
        .alias("RK-SFZH"),
        pl.when(row == rows - 1).then(pl.lit("1380013800")).otherwise("RK-SJHM").alias("RK-SJHM"),
    )
    broken.write_csv(target)
    started = time.perf_counter()
    with target.open("rb") as handle:
        response = http.post(
            f"/v1/datasets/{POPULATION['code']}/releases",
            files={"file": ("人口.csv", handle, "text/csv")},
            data=PERIOD,
            headers=parties.steward.headers(),
        )
    elapsed = time.perf_counter() - started
    target.unlink()
    problem = expect(response, 422)
    found = {
        (c["column"], c["check"]): [e["row"] for e in c["examples"]]
        for c in problem["report"]["checks"]
    }
    wanted = {("RK-SFZH", "unique_key"): [1, rows - 1], ("RK-SJHM", "pattern"): [rows]}
    if found != wanted:
        raise BenchError(f"the broken file's report is {found}, not {wanted}")
    named = "; ".join(f"{column} {check} at row(s) {at}" for (column, check), at in found.items())
    return elapsed, named


def download(
    http: httpx.Client, parties: Parties, file_format: str, target: Path, rows: int
) -> float:
    started = time.perf_counter()
    with http.stream(
        "GET",
        f"/v1/grants/{parties.grant_id}/data",
        params={"format": file_format},
        headers=parties.requester.headers(),
    ) as response:
        if response.status_code != 200:
            response.read()
            expect(response, 200)
        with target.open("wb") as sink:
            for chunk in response.iter_bytes(CHUNK):
                sink.write(chunk)
    elapsed = time.perf_counter() - started
    if int(response.headers["x-row-count"]) != rows:
        raise BenchError(f"{file_format} download says {response.headers['x-row-count']} rows")
    return elapsed


ID_MASKED = r"^\d{3}\*{11}\d{3}[\dX]$"
PHONE_MASKED = r"^1\d{2}\*{4}\d{4}$"
HASHED = r"^[0-9a-f]{32}$"


def check_masked(downloaded: pl.DataFrame, original: pl.DataFrame, file_format: str) -> None:
    """Every row masked as granted; the first rows' kept ends and unmasked columns unchanged."""
    problems = []
    if downloaded.columns != COLUMNS or downloaded.height != original.height:
        problems.append(f"shape {downloaded.columns} x {downloaded.height}")
    else:
        phones = downloaded["RK-SJHM"].drop_nulls()
        if not downloaded["RK-SFZH"].str.contains(ID_MASKED).all():
            problems.append("an ID number is not partially masked")
        if phones.len() == 0 or not phones.str.contains(PHONE_MASKED).all():
            problems.append("a phone number is not partially masked")
        if downloaded["RK-SJHM"].null_count() != original["RK-SJHM"].null_count():
            problems.append("masking changed which phone numbers are missing")
        if downloaded["RK-ZZ"].null_count() != downloaded.height:
            problems.append("an address was delivered")
        if not downloaded["RK-XM"].str.contains(HASHED).all():
            problems.append("a name is not hashed")
        for got, was in zip(
            downloaded.head(5).iter_rows(named=True),
            original.head(5).iter_rows(named=True),
            strict=True,
        ):
            if got["RK-SFZH"] != was["RK-SFZH"][:3] + "*" * 11 + was["RK-SFZH"][-4:]:
                problems.append(f"ID {got['RK-SFZH']} is not {was['RK-SFZH']} masked")
            if got["RK-XM"] == was["RK-XM"]:
                problems.append("a name came out in clear")
            for code in ("RK-FWBM", "RK-JD", "RK-NL", "RK-DJRQ"):
                if str(got[code]) != str(was[code]):
                    problems.append(f"{code} {got[code]!r} is not {was[code]!r}")
    if problems:
        raise BenchError(f"the {file_format} download is wrong: " + "; ".join(problems[:5]))


def read_download(path: Path, file_format: str) -> pl.DataFrame:
    if file_format == "csv":
        return pl.read_csv(path, infer_schema=False)
    return pl.read_parquet(path)


# --- report -------------------------------------------------------------------------------------


def mib(kib: int | None) -> str:
    return "?" if kib is None else f"{kib / 1024:,.0f}"


def size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


@dataclass
class Row:
    label: str
    broker: Timings
    baseline_label: str
    baseline: Timings


def print_report(rows: int, results: list[Row], repeat: int, extra: list[str]) -> None:
    print()
    header = (
        f"{'step (median of ' + str(repeat) + ')':<36} {'seconds':>8} {'rows/s':>11} "
        f"{'vs base':>8} {'RSS start MiB':>14} {'peak MiB':>9} {'bytes':>12}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        base_median = row.baseline.median
        print(
            f"{row.label:<36} {row.broker.median:>8.2f} {rows / row.broker.median:>11,.0f} "
            f"{row.broker.median / base_median:>7.2f}x {mib(row.broker.start_kib):>14} "
            f"{mib(row.broker.peak_kib):>9} "
            f"{size(row.broker.size_bytes):>12}"
        )
        print(
            f"{'  polars ' + row.baseline_label:<36} {base_median:>8.2f} "
            f"{rows / base_median:>11,.0f} {'':>8} {'':>14} {mib(row.baseline.peak_kib):>9}"
        )
    print()
    for line in extra:
        print(line)


def repeated(server: Server, name: str, repeat: int, measure: Callable[[], float]) -> Timings:
    """`repeat` runs of one step, and the server's peak RSS during them."""
    timings = Timings(start_kib=server.rss_kib())
    for n in range(repeat):
        timings.seconds.append(measure())
        print(f"  {name} {n + 1}: {timings.seconds[-1]:.2f} s", flush=True)
    timings.peak_kib = server.peak_kib()
    server.reset_peak()
    return timings


def generate(rows: int, source: Path) -> pl.DataFrame:
    started = time.perf_counter()
    original = population(rows)
    original.write_csv(source)
    if original["RK-SFZH"].n_unique() != rows:
        raise BenchError("the generated ID numbers are not unique")
    print(
        f"generated {size(source.stat().st_size)} of CSV in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return original


@dataclass
class Served:
    uploads: Timings
    downloads: dict[str, Timings]
    stored: Path
    setup_peak_kib: int | None
    per_phase: bool
    log_tail: str
    refused: tuple[float, str]
    refused_peak_kib: int | None


def serve(args: argparse.Namespace, workdir: Path, source: Path, original: pl.DataFrame) -> Served:
    """Every broker measurement, against one server started here and stopped before returning."""
    env = server_environment(workdir)
    broker(env, "db", "upgrade")
    server = start_server("broker", env, workdir)
    try:
        with httpx.Client(base_url=server.base_url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
            parties = set_up(http, env)
            setup_peak_kib = server.peak_kib()
            per_phase = server.reset_peak()
            releases: list[dict[str, Any]] = []

            def one_upload() -> float:
                releases.append(upload(http, parties, source, args.rows))
                return float(releases[-1]["seconds"])

            uploads = repeated(server, "upload+validate", args.repeat, one_upload)
            uploads.size_bytes = source.stat().st_size
            digest = releases[-1]["sha256"]
            stored = workdir / "releases" / digest[:2] / f"{digest}.parquet"
            downloads: dict[str, Timings] = {}
            for file_format in ("csv", "parquet"):
                target = workdir / f"download.{file_format}"
                measure = partial(download, http, parties, file_format, target, args.rows)
                timings = repeated(server, f"download {file_format}", args.repeat, measure)
                timings.size_bytes = target.stat().st_size
                check_masked(read_download(target, file_format), original, file_format)
                target.unlink()
                downloads[file_format] = timings
            refused = rejected(http, parties, original, workdir / "broken.csv")
            print(f"  upload of a broken file: 422 in {refused[0]:.2f} s", flush=True)
        return Served(
            uploads,
            downloads,
            stored,
            setup_peak_kib,
            per_phase,
            server.log_tail(),
            refused,
            server.peak_kib(),
        )
    finally:
        server.stop()


def polars_baselines(
    args: argparse.Namespace, workdir: Path, source: Path, stored: Path
) -> dict[str, Timings]:
    bases: dict[str, Timings] = {}
    for kind, input_path in zip(BASELINES, (source, stored, stored), strict=True):
        timings = bases[kind] = Timings()
        for n in range(args.repeat):
            result = baseline(kind, input_path, workdir / "baseline.out")
            if result["rows"] != args.rows:
                raise BenchError(f"baseline {kind} read {result['rows']} rows")
            timings.seconds.append(result["seconds"])
            timings.peak_kib = max(timings.peak_kib or 0, result["peak_kib"] or 0)
            print(f"  polars {kind} {n + 1}: {result['seconds']:.2f} s", flush=True)
    return bases


def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    try:
        print(
            f"delivery benchmark: {args.rows:,} rows, {args.repeat} runs each; SQLite; "
            f"polars {pl.__version__}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        source = workdir / "population.csv"
        original = generate(args.rows, source)
        served = serve(args, workdir, source, original)
        del original
        bases = polars_baselines(args, workdir, source, served.stored)
        bench_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results = [
            Row("upload+validate csv (HTTP)", served.uploads, BASELINES[0], bases[BASELINES[0]]),
            Row(
                "download csv, masked (HTTP)",
                served.downloads["csv"],
                BASELINES[1],
                bases[BASELINES[1]],
            ),
            Row(
                "download parquet, masked (HTTP)",
                served.downloads["parquet"],
                BASELINES[2],
                bases[BASELINES[2]],
            ),
        ]
        peaks = [
            served.setup_peak_kib,
            *(r.broker.peak_kib for r in results),
            served.refused_peak_kib,
        ]
        known = [p for p in peaks if p is not None]
        extra = [
            f"input CSV {size(source.stat().st_size)}; stored release (Parquet, zstd) "
            f"{size(served.stored.stat().st_size)}",
            f"the same file with 2 bad cells near its end: 422 in {served.refused[0]:.2f} s, "
            f"the report names {served.refused[1]}",
            "server peak RSS (VmHWM), "
            + ("reset per step" if served.per_phase else "cumulative: clear_refs was refused")
            + f": after setup {mib(served.setup_peak_kib)} MiB, overall "
            f"{mib(max(known) if known else None)} MiB",
            f"bench process peak RSS (generating, HTTP client, checking downloads): "
            f"{mib(bench_peak_kib)} MiB; each polars baseline's is its own child process's",
        ]
        print_report(args.rows, results, args.repeat, extra)
        if "Traceback" in served.log_tail or "ERROR" in served.log_tail:
            print(f"\nserver log tail:\n{served.log_tail}")
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, source, target = args.child
        print(json.dumps(run_child(kind, Path(source), Path(target))))
        return 0
    if args.rows < 10 or args.repeat < 1:
        parser.error("--rows must be at least 10 and --repeat positive")
    return exit_status(partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
