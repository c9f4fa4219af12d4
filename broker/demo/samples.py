"""Files the demo's owners deliver: plausible, deterministic and entirely synthetic.

No real person is in here: identity numbers carry a made-up area code (310199) with a valid
GB 11643 check digit, so they look and validate like real ones without belonging to anyone.
"""

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from catalog.datasets.freshness import SHANGHAI

AREA_CODE = "310199"
STREETS = ("城东街道", "城西街道", "新华街道", "滨江街道", "高新园区", "临湖镇")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "婷", "雪", "涛", "明")
KINDS = ("户籍人口", "户籍人口", "户籍人口", "流动人口", "流动人口", "境外人员")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Sample:
    dataset_code: str
    filename: str
    content: bytes
    period_start: date
    period_end: date


def _csv(header: list[str], rows: list[list[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def last_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def check_digit(first17: str) -> str:
    """GB 11643-1999 (ISO 7064 MOD 11-2) check character of a citizen identity number."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def _identity(rng: random.Random, born: date, male: bool) -> str:
    sequence = rng.randrange(0, 500) * 2 + (1 if male else 0)
    first17 = f"{AREA_CODE}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_digit(first17)


def industry_monthly(today: date) -> Sample:
    """区统计局's monthly industrial figures, headed by item names as an officer's sheet is."""
    start, end = last_month(today)
    header = [
        "规模以上工业总产值",
        "规模以上工业增加值增速",
        "规模以上工业营业收入",
        "规模以上工业利润总额",
        "工业产品产销率",
        "规模以上工业企业数",
    ]
    return Sample(
        "TJ-GYQY-M",
        f"规上工业_{end:%Y%m}.csv",
        _csv(header, [[168.42, 5.3, 172.95, 9.86, 98.7, 412]]),
        start,
        end,
    )


def tax_monthly(today: date) -> Sample:
    """区税务局's monthly tax revenue, headed by item codes."""
    start, end = last_month(today)
    header = ["SW-SSSR", "SW-ZZS", "SW-QYSDS", "SW-GRSDS", "SW-QJSS", "SW-SSZS"]
    return Sample(
        "SW-SSSR-M",
        f"税收收入月报_{end:%Y%m}.csv",
        _csv(header, [[38.62, 15.07, 9.41, 4.88, 12.35, 4.6]]),
        start,
        end,
    )


def retail_monthly(today: date) -> Sample:
    """区商务委员会's monthly retail figures."""
    start, end = last_month(today)
    header = ["SWW-SHLSZE", "SWW-SHLSZS", "SWW-XEPL", "SWW-WLLS"]
    return Sample(
        "SWW-XFLS-M",
        f"社零_{end:%Y%m}.csv",
        _csv(header, [[96.31, 3.8, 402.7, 31.52]]),
        start,
        end,
    )


POPULATION_HEADER = [
    "PT-GMSFHM",
    "PT-XM",
    "PT-XB",
    "PT-CSRQ",
    "PT-SJHM",
    "PT-JZJD",
    "PT-RKLX",
]


def population_rows(count: int = 24, seed: int = 2026) -> list[list[object]]:
    """People of the platform's 实有人口明细库, one row each."""
    rng = random.Random(seed)  # noqa: S311 - synthetic sample data, not security
    rows: list[list[object]] = []
    for _ in range(count):
        male = rng.random() < 0.5
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        phone = f"1{rng.choice('3456789')}{rng.randrange(0, 10**9):09d}"
        rows.append(
            [
                _identity(rng, born, male),
                name,
                "男" if male else "女",
                born.isoformat(),
                phone if rng.random() < 0.9 else "",
                rng.choice(STREETS),
                rng.choice(KINDS),
            ]
        )
    return rows


def population_daily(today: date) -> Sample:
    """Yesterday's extract of the population register."""
    day = today - timedelta(days=1)
    return Sample(
        "PT-RKMX-D",
        f"实有人口明细_{day:%Y%m%d}.csv",
        _csv(POPULATION_HEADER, population_rows()),
        day,
        day,
    )


def population_daily_with_mistakes(today: date) -> Sample:
    """The same extract as an export gone wrong: truncated ids, a short phone, a bad sex code."""
    rows = population_rows()
    rows[2][0] = str(rows[2][0])[:17]
    rows[7][0] = str(rows[7][0])[:-1] + "Y"
    rows[4][4] = "1380013800"
    rows[9][2] = "M"
    good = population_daily(today)
    return Sample(
        good.dataset_code,
        good.filename,
        _csv(POPULATION_HEADER, rows),
        good.period_start,
        good.period_end,
    )


def district_today() -> date:
    """Today in the district: freshness runs on Asia/Shanghai days, whatever the host's zone."""
    return datetime.now(SHANGHAI).date()


def latest_full_period(cycle: str, today: date) -> tuple[date, date]:
    """The last complete period of an update cycle before `today`: what an owner publishes next.

    Daily and real-time data: yesterday; weekly: the last Monday-to-Sunday week; dekads (旬): the
    last complete 1-10, 11-20 or 21-end; calendar cycles: the last complete month, quarter, half
    or year. Irregular data is treated as monthly.
    """
    if cycle in ("daily", "realtime"):
        yesterday = today - timedelta(days=1)
        return yesterday, yesterday
    if cycle == "weekly":
        end = today - timedelta(days=today.weekday() + 1)
        return end - timedelta(days=6), end
    if cycle == "dekad":
        if today.day > 20:
            return today.replace(day=11), today.replace(day=20)
        if today.day > 10:
            return today.replace(day=1), today.replace(day=10)
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=21), end
    months = {"quarterly": 3, "semiannual": 6, "annual": 12}.get(cycle, 1)
    first_of_current = (today.month - 1) // months * months + 1
    end = today.replace(month=first_of_current, day=1) - timedelta(days=1)
    start_month = end.month - months + 1
    return end.replace(month=start_month, day=1), end


def months_back(end: date, count: int) -> list[tuple[date, date]]:
    """`count` calendar months ending with the month of `end`, oldest first."""
    periods: list[tuple[date, date]] = []
    month_end = end.replace(day=1) + timedelta(days=31)
    for _ in range(count):
        month_end = month_end.replace(day=1) - timedelta(days=1)
        periods.append((month_end.replace(day=1), month_end))
    return periods[::-1]


def indicator_file(
    dataset_code: str, items: list[tuple[str, str]], period: tuple[date, date]
) -> Sample:
    """One row of plausible figures for each (item code, data type) of a dataset, for `period`.

    The figures depend only on the dataset and the period, so a demo run is reproducible.
    """
    rng = random.Random(f"{dataset_code}/{period[0]:%Y%m%d}")  # noqa: S311 - synthetic figures
    values: list[object] = []
    for _code, data_type in items:
        if data_type == "integer":
            values.append(rng.randrange(10, 5000))
        elif data_type == "decimal":
            values.append(round(rng.uniform(1, 500), 2))
        elif data_type == "boolean":
            values.append("true")
        elif data_type == "date":
            values.append(period[1].isoformat())
        else:
            values.append(f"{dataset_code}-{period[1]:%Y%m%d}")
    return Sample(
        dataset_code,
        f"{dataset_code}_{period[1]:%Y%m%d}.csv",
        _csv([code for code, _ in items], [values]),
        period[0],
        period[1],
    )
