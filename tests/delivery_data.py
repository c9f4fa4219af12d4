"""A population register (人口库) owned by a police sub-bureau, and files that deliver it."""

import csv
import io
import json
from datetime import date, timedelta
from typing import Any

import polars as pl
from openpyxl import Workbook

from catalog_data import item

POPULATION = {
    "code": "GA-RKJBXX",
    "title": "实有人口基本信息",
    "description": "辖区实有人口登记信息",
    "owner_department_code": "police",
    "category": "base",
    "base_kind": "population",
    "share_type": "conditional",
    "share_condition": "用于经济运行分析，需脱敏",
    "open_type": "not_open",
    "data_grade": "general",
    "sensitivity": "L3",
    "update_cycle": "monthly",
    "publication_lag_days": 10,
    "aggregated": False,
    "status": "published",
    "items": [
        item(
            "RK-SFZH",
            "公民身份号码",
            "string",
            nullable=False,
            is_key=True,
            pattern=r"^\d{17}[\dX]$",
        ),
        item("RK-XM", "姓名", "string", nullable=False),
        item("RK-SJHM", "手机号码", "string", pattern=r"^1\d{10}$"),
        item("RK-ZZ", "居住地址", "string"),
        item("RK-FWBM", "房屋编码", "string"),
        item("RK-JD", "所属街道", "string", enum=["城关街道", "东湖街道", "西山街道"]),
        item("RK-NL", "年龄", "integer", unit="岁", minimum=0, maximum=150),
        item("RK-DJRQ", "登记日期", "date"),
    ],
}
COLUMNS = [i["code"] for i in POPULATION["items"]]
NAMES = {i["code"]: i["name"] for i in POPULATION["items"]}
STREETS = ["城关街道", "东湖街道", "西山街道"]


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
