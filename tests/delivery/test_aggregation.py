"""Items declare how they aggregate (汇总方式); a grant that aggregates rows to a level combines
each column by it, and rates, percentages, averages and prices are never summed (issue 15)."""

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import polars as pl
import pytest

from broker.demo.samples import last_month
from catalog.datasets.freshness import SHANGHAI
from core.time import utcnow
from support import catalog_data
from support.identities import Identities
from support.workflow import DECLARATION

PROBLEM = "application/problem+json"
_START, _END = last_month(utcnow().astimezone(SHANGHAI).date())
PERIOD = {"period_start": _START.isoformat(), "period_end": _END.isoformat()}


def item(code: str, name: str, data_type: str = "decimal", **declared: Any) -> dict[str, Any]:
    return {"code": code, "name": name, "data_type": data_type, **declared}


DISTRICTS = ["东湖区", "西湖区"]
ITEMS = [
    item("TJ-QX", "区县", "string", nullable=False, enum=DISTRICTS),
    item("TJ-YF", "月份", "string", nullable=False),
    item("TJ-GDP", "地区生产总值", unit="亿元"),
    item("TJ-SYL", "城镇调查失业率", unit="%", aggregation="mean"),
    item("TJ-ZDGZ", "最低工资标准", unit="元", aggregation="min"),
    item("TJ-ZGQW", "最高气温", unit="℃", aggregation="max"),
    item("TJ-CYRY", "期末从业人员", "integer", unit="人", aggregation="last"),
    item("TJ-CPI", "居民消费价格指数"),
    item("TJ-PM", "全市排名", "integer", aggregation="none"),
]
DATASET = {
    "code": "TJ-QXJJ",
    "title": "分区县主要经济指标",
    "category": "departmental",
    "share_type": "conditional",
    "share_condition": "用于经济运行监测",
    "update_cycle": "monthly",
    "status": "published",
    "items": ITEMS,
}
HEADER = [i["code"] for i in ITEMS]
ROWS = [
    ["东湖区", "2026-01", 10.5, 4.0, 2100, 30, 1000, 101.2, 1],
    ["西湖区", "2026-01", 20.0, 5.0, 2000, 28, 2000, 100.8, 2],
    ["东湖区", "2026-02", 11.5, 5.0, 2200, 33, 1100, 102.0, 1],
    ["西湖区", "2026-02", 21.0, 6.5, 2050, 27, 2100, 99.9, 2],
    ["东湖区", "2026-03", 12.0, 6.0, 2150, 31, 1050, 101.5, 1],
]
COMBINED = ["TJ-QX", "TJ-GDP", "TJ-SYL", "TJ-ZDGZ", "TJ-ZGQW", "TJ-CYRY"]


def as_csv(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode()


@dataclass
class Indicators:
    client: httpx.AsyncClient
    steward: dict[str, str]
    requester: dict[str, str]

    async def line(self) -> dict[str, Any]:
        """A submitted request line for the indicators, waiting for the statistics bureau."""
        created = await self.client.post(
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "分区县经济指标需求",
                "purpose": "经济运行监测",
                "usage_start": date.today().isoformat(),
                "usage_end": (date.today() + timedelta(days=180)).isoformat(),
                "lines": [{"dataset_code": DATASET["code"]}],
            },
            headers=self.requester,
        )
        assert created.status_code == 201, created.text
        submitted = await self.client.post(
            f"/v1/requests/{created.json()['id']}/submit", headers=self.requester
        )
        line: dict[str, Any] = submitted.json()["lines"][0]
        assert line["state"] == "pending_owner", line
        return line

    async def decide(self, line: dict[str, Any], conditions: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"/v1/lines/{line['id']}/decisions",
            json={
                "decision": "approve_with_conditions",
                "declaration": DECLARATION,
                "conditions": conditions,
            },
            headers=self.steward,
        )

    async def grant(self, conditions: dict[str, Any]) -> dict[str, Any]:
        line = await self.line()
        decided = await self.decide(line, conditions)
        assert decided.status_code == 200, decided.text
        accepted = await self.client.post(f"/v1/lines/{line['id']}/accept", headers=self.requester)
        assert accepted.status_code == 200, accepted.text
        grants = (await self.client.get("/v1/grants", headers=self.requester)).json()["items"]
        found: dict[str, Any] = next(g for g in grants if g["line_id"] == line["id"])
        return found

    async def download(self, grant: dict[str, Any]) -> httpx.Response:
        return await self.client.get(
            f"/v1/grants/{grant['id']}/data", params={"format": "parquet"}, headers=self.requester
        )


@pytest.fixture
async def ind(client: httpx.AsyncClient, identities: Identities) -> Indicators:
    steward = await identities.headers(
        "stats-steward", department="stats", department_kind="bureau", roles=("steward",)
    )
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    created = await client.post("/v1/datasets", json=DATASET, headers=steward)
    assert created.status_code == 201, created.text
    uploaded = await client.post(
        f"/v1/datasets/{DATASET['code']}/releases",
        files={"file": ("指标.csv", as_csv(ROWS), "text/csv")},
        data=PERIOD,
        headers=steward,
    )
    assert uploaded.json()["status"] == "accepted", uploaded.text
    scenario = await client.post(
        "/v1/scenarios", json={"code": "econ", "name": "经济运行监测"}, headers=requester
    )
    assert scenario.status_code == 201, scenario.text
    return Indicators(client, steward, requester)


async def test_each_column_combines_by_its_declared_aggregation(ind: Indicators) -> None:
    grant = await ind.grant({"columns": COMBINED, "aggregation_level": "TJ-QX"})
    downloaded = await ind.download(grant)
    assert downloaded.status_code == 200, downloaded.text
    frame = pl.read_parquet(downloaded.content)
    assert frame.columns == ["TJ-QX", "row_count", *COMBINED[1:]]
    assert frame.rows() == [
        # row_count, GDP summed, the rate's mean, min wage, max temperature, last headcount
        ("东湖区", 3, 34.0, 5.0, 2100.0, 33.0, 1050),
        ("西湖区", 2, 41.0, 5.75, 2000.0, 28.0, 2100),
    ]


async def test_a_rate_without_a_declaration_or_an_item_declared_none_is_refused_at_approval(
    ind: Indicators,
) -> None:
    line = await ind.line()
    attempts: list[tuple[dict[str, Any], list[str]]] = [
        ({"aggregation_level": "TJ-QX"}, ["TJ-CPI", "TJ-PM"]),
        ({"columns": ["TJ-QX", "TJ-GDP", "TJ-CPI"], "aggregation_level": "TJ-QX"}, ["TJ-CPI"]),
        ({"columns": ["TJ-QX", "TJ-PM"], "aggregation_level": "TJ-QX"}, ["TJ-PM"]),
    ]
    for conditions, named in attempts:
        refused = await ind.decide(line, conditions)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == PROBLEM
        (error,) = refused.json()["errors"]
        assert error["location"] == "body.conditions.aggregation_level"
        assert [c for c in ("TJ-CPI", "TJ-PM", "TJ-GDP") if c in error["message"]] == named

    as_released = await ind.decide(line, {"aggregation_level": "district"})
    assert as_released.status_code == 200, "refusals left the line pending; a level word passes"


async def test_a_column_that_can_no_longer_be_aggregated_refuses_the_download(
    ind: Indicators,
) -> None:
    grant = await ind.grant({"columns": ["TJ-QX", "TJ-GDP"], "aggregation_level": "TJ-QX"})
    dataset = await ind.client.get(f"/v1/datasets/{DATASET['code']}", headers=ind.steward)
    items = [i | {"aggregation": "none"} if i["code"] == "TJ-GDP" else i for i in ITEMS]
    redeclared = await ind.client.put(
        f"/v1/datasets/{DATASET['code']}/items",
        json={"items": items},
        headers=ind.steward | {"If-Match": dataset.headers["etag"]},
    )
    assert redeclared.status_code == 200, redeclared.text
    refused = await ind.download(grant)
    assert refused.status_code == 409, refused.text
    assert "TJ-GDP" in refused.json()["detail"]


async def test_items_show_their_effective_aggregation(ind: Indicators) -> None:
    dataset = (await ind.client.get(f"/v1/datasets/{DATASET['code']}", headers=ind.steward)).json()
    shown = {i["code"]: (i["aggregation"], i["effective_aggregation"]) for i in dataset["items"]}
    assert shown == {
        "TJ-QX": (None, "none"),
        "TJ-YF": (None, "none"),
        "TJ-GDP": (None, "sum"),
        "TJ-SYL": ("mean", "mean"),
        "TJ-ZDGZ": ("min", "min"),
        "TJ-ZGQW": ("max", "max"),
        "TJ-CYRY": ("last", "last"),
        "TJ-CPI": (None, "none"),
        "TJ-PM": ("none", "none"),
    }


async def test_rates_prices_and_text_cannot_be_declared_summable(
    client: httpx.AsyncClient, identities: Identities
) -> None:
    steward = await identities.headers(
        "stats-steward", department="stats", department_kind="bureau", roles=("steward",)
    )
    items = [
        item("TJ-X-QX", "区县", "string", aggregation="sum"),
        item("TJ-X-SYL", "城镇调查失业率", unit="%", aggregation="sum"),
        item("TJ-X-MJ", "商品房销售面积", unit="万平方米", aggregation="sum"),
        item("TJ-X-JG", "钢材出厂", unit="元/吨", aggregation="sum"),
        item("TJ-X-DJ", "猪肉零售单价", aggregation="sum"),
        item("TJ-X-ZS", "居民消费价格指数", aggregation="mean"),
    ]
    refused = await client.post(
        "/v1/datasets", json=DATASET | {"code": "TJ-X", "items": items}, headers=steward
    )
    assert refused.status_code == 422, refused.text
    assert [e["location"] for e in refused.json()["errors"]] == [
        "body.items.0.aggregation",
        "body.items.1.aggregation",
        "body.items.3.aggregation",
        "body.items.4.aggregation",
    ]
    assert (await client.get("/v1/datasets/TJ-X", headers=steward)).status_code == 404


# ---------------------------------------------------------------- the 目录 sheet

SHEET_HEADER = ["资源代码", "资源名称", "提供单位", "资源分类", "信息项编码", "信息项名称"]
SHEET_HEADER += ["数据类型", "计量单位", "共享类型", "共享条件", "更新周期", "汇总方式"]
SHEET_DATASET = ["JJ-1", "主要经济指标", "区统计局", "部门"]
SHEET_TERMS = ["有条件共享", "用于经济运行监测", "每月"]


def sheet_row(code: str, name: str, data_type: str, unit: str, aggregation: str) -> str:
    return ",".join([*SHEET_DATASET, code, name, data_type, unit, *SHEET_TERMS, aggregation])


def sheet(*rows: str) -> bytes:
    return ("\r\n".join([",".join(SHEET_HEADER), *rows]) + "\r\n").encode()


ECONOMY = sheet(
    sheet_row("JJ-1-GDP", "地区生产总值", "数值型", "亿元", "求和"),
    sheet_row("JJ-1-SYL", "城镇调查失业率", "数值型", "%", "平均"),
    sheet_row("JJ-1-CYRY", "期末从业人员", "整数型", "人", "last"),
    sheet_row("JJ-1-CPI", "居民消费价格指数", "数值型", "", ""),
)


async def upload_sheet(
    client: httpx.AsyncClient, data: bytes, *, dry_run: bool = False
) -> httpx.Response:
    return await client.post(
        "/v1/catalog/import",
        params={"dry_run": str(dry_run).lower()},
        files={"file": ("目录.csv", data, "text/csv")},
    )


async def test_the_sheet_declares_aggregation_by_label_or_code_and_round_trips(
    admin_client: httpx.AsyncClient,
) -> None:
    await catalog_data.seed_district(admin_client)
    imported = await upload_sheet(admin_client, ECONOMY)
    assert imported.status_code == 200, imported.text
    items = (await admin_client.get("/v1/datasets/JJ-1")).json()["items"]
    assert [(i["aggregation"], i["effective_aggregation"]) for i in items] == [
        ("sum", "sum"),
        ("mean", "mean"),
        ("last", "last"),
        (None, "none"),
    ]

    exported = await admin_client.get("/v1/catalog/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    written = [r["汇总方式"] for r in rows if r["资源代码"] == "JJ-1"]
    assert written == ["求和", "平均", "期末值", ""]
    again = await upload_sheet(admin_client, exported.content, dry_run=True)
    assert again.status_code == 200, again.text
    assert again.json()["updated"] == {}, "export and import agree on every declaration"

    summed_rate = ECONOMY.decode().replace(
        "%,有条件共享,用于经济运行监测,每月,平均", "%,有条件共享,用于经济运行监测,每月,求和"
    )
    refused = await upload_sheet(admin_client, summed_rate.encode())
    assert refused.status_code == 422, refused.text
    assert [e["location"] for e in refused.json()["errors"]] == ["row 3, 汇总方式"]
