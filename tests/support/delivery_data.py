"""A population register (人口库) owned by a police sub-bureau, and files that deliver it."""

import calendar
import csv
import io
import json
from datetime import date, timedelta
from typing import Any

import polars as pl
from openpyxl import Workbook

from broker import demo

POPULATION = demo.population_dataset()
COLUMNS = [i["code"] for i in POPULATION["items"]]
NAMES = {i["code"]: i["name"] for i in POPULATION["items"]}
STREETS = next(i["enum"] for i in POPULATION["items"] if i["code"] == "RK-JD")


def person(n: int) -> dict[str, str]:
    born = date(1950, 1, 1) + timedelta(days=n // 10_000)
    return {
        "RK-SFZH": f"310101{born:%Y%m%d}{n % 10_000:04d}",
        "RK-XM": f"居民{n}",
        "RK-SJHM": f"138{n:08d}",
        "RK-ZZ": f"城关街道幸福路{n}号",
        "RK-FWBM": f"FW{n:08d}",
        "RK-JD": STREETS[n % 3],
        "RK-NL": str(20 + n % 60),
        "RK-DJRQ": "2026-10-31",
    }


def people(count: int) -> list[dict[str, str]]:
    return [person(n) for n in range(1, count + 1)]


def month(year: int, number: int) -> dict[str, str]:
    """The form fields of a release covering one calendar month."""
    last = calendar.monthrange(year, number)[1]
    return {
        "period_start": date(year, number, 1).isoformat(),
        "period_end": date(year, number, last).isoformat(),
    }


def as_csv(rows: list[dict[str, Any]], *, headers: str = "codes", encoding: str = "utf-8") -> bytes:
    fields = list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([NAMES.get(f, f) if headers == "names" else f for f in fields])
    writer.writerows([[row[f] for f in fields] for row in rows])
    return buffer.getvalue().encode(encoding)


def as_xlsx(rows: list[dict[str, Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    fields = list(rows[0])
    sheet.append(fields)
    for row in rows:
        sheet.append([row[f] for f in fields])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def as_parquet(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(rows).write_parquet(buffer)
    return buffer.getvalue()


def as_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


ENCODERS = {"csv": as_csv, "xlsx": as_xlsx, "parquet": as_parquet, "jsonl": as_jsonl}
