"""Items declare how they leave under a grant (默认脱敏方式) and what personal information they
hold (个人信息类型), in the JSON API and in the 目录 sheet (issue 14)."""

import csv
import io
from typing import Any

import httpx
import pytest

from support import catalog_data

PROBLEM = "application/problem+json"


@pytest.fixture
async def district(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    await catalog_data.seed_district(admin_client)
    return admin_client


def dataset(code: str, sensitivity: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": code,
        "title": "人员信息",
        "owner_department_code": "stats",
        "category": "departmental",
        "share_type": "conditional",
        "share_condition": "脱敏后提供",
        "sensitivity": sensitivity,
        "update_cycle": "monthly",
        "status": "published",
        "items": items,
    }


def string_item(code: str, **declared: str) -> dict[str, Any]:
    return {"code": code, "name": code, "data_type": "string", **declared}


async def test_items_show_what_they_declare_and_how_they_leave(
    district: httpx.AsyncClient,
) -> None:
    created = await district.post(
        "/v1/datasets",
        json=dataset(
            "RY-L3",
            "L3",
            [
                string_item("RY-SFZH", default_protection="hash", personal_info="id_number"),
                string_item("RY-SJHM", default_protection="partial", personal_info="phone"),
                string_item("RY-XM", personal_info="name"),
                string_item("RY-BZ", sensitivity="L4"),
            ],
        ),
    )
    assert created.status_code == 201, created.text
    items = {i["code"]: i for i in created.json()["items"]}
    shown = {
        code: (i["default_protection"], i["personal_info"], i["effective_protection"])
        for code, i in items.items()
    }
    assert shown == {
        "RY-SFZH": ("hash", "id_number", "hash"),
        "RY-SJHM": ("partial", "phone", "partial"),
        "RY-XM": (None, "name", "none"),
        "RY-BZ": (None, None, "hash"),
    }, "below L4 nothing declared leaves in clear; an L4 item declaring nothing is hashed"

    sensitive = await district.post(
        "/v1/datasets",
        json=dataset(
            "RY-L4",
            "L4",
            [string_item("RY4-A"), string_item("RY4-B", default_protection="none")],
        ),
    )
    assert [i["effective_protection"] for i in sensitive.json()["items"]] == ["hash", "none"]

    replaced = await district.put(
        "/v1/datasets/RY-L3/items",
        json={"items": [string_item("RY-SFZH", default_protection="null")]},
        headers={"If-Match": created.headers["etag"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["items"][0]["default_protection"] == "null"
    assert replaced.json()["items"][0]["personal_info"] is None


async def test_an_unknown_protection_is_refused_naming_the_item(
    district: httpx.AsyncClient,
) -> None:
    refused = await district.post(
        "/v1/datasets",
        json=dataset("RY-X", "L3", [string_item("RY-X-1", default_protection="scramble")]),
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["location"] == "body.items.0.default_protection"


HEADER = ["资源代码", "资源名称", "提供单位", "资源分类", "信息项编码", "信息项名称", "数据类型"]
HEADER += ["共享类型", "共享条件", "更新周期", "敏感级别", "默认脱敏方式", "个人信息类型"]
DATASET = ["RK-1", "人口", "区统计局", "部门"]
TERMS = ["有条件共享", "脱敏后提供", "每月", "较敏感"]


def row(item: str, name: str, protection: str, kind: str) -> list[str]:
    return [*DATASET, item, name, "字符型", *TERMS, protection, kind]


def sheet(*rows: list[str], header: list[str] = HEADER) -> bytes:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


async def upload(
    client: httpx.AsyncClient, data: bytes, *, dry_run: bool = False
) -> httpx.Response:
    return await client.post(
        "/v1/catalog/import",
        params={"dry_run": str(dry_run).lower()},
        files={"file": ("目录.csv", data, "text/csv")},
    )


PEOPLE = sheet(
    row("RK-1-SFZH", "身份证号", "哈希", "身份证"),
    row("RK-1-SJHM", "手机号码", "掩码", "手机号码"),
    row("RK-1-XM", "姓名", "null", "name"),
    row("RK-1-JD", "街道", "不脱敏", ""),
    row("RK-1-BZ", "备注", "", ""),
)


async def test_a_sheet_declares_protection_by_label_alias_or_code_and_round_trips(
    district: httpx.AsyncClient,
) -> None:
    imported = await upload(district, PEOPLE)
    assert imported.status_code == 200, imported.text
    items = (await district.get("/v1/datasets/RK-1")).json()["items"]
    assert [(i["default_protection"], i["personal_info"]) for i in items] == [
        ("hash", "id_number"),
        ("partial", "phone"),
        ("null", "name"),
        ("none", None),
        (None, None),
    ]

    exported = await district.get("/v1/catalog/export", params={"format": "csv"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    written = [(r["默认脱敏方式"], r["个人信息类型"]) for r in rows if r["资源代码"] == "RK-1"]
    assert written == [
        ("哈希", "身份证号"),
        ("部分遮盖", "手机号码"),
        ("置空", "姓名"),
        ("不脱敏", ""),
        ("", ""),
    ]
    again = await upload(district, exported.content, dry_run=True)
    assert again.status_code == 200, again.text
    assert again.json()["updated"] == {}, "export and import agree on every declaration"

    loosened = PEOPLE.decode().replace("哈希,身份证", "不脱敏,身份证").encode()
    changed = await upload(district, loosened, dry_run=True)
    assert changed.json()["updated"] == {"RK-1": ["items"]}


async def test_an_old_sheet_without_the_columns_still_imports(district: httpx.AsyncClient) -> None:
    old = sheet(
        [*DATASET, "RK-1-SFZH", "身份证号", "字符型", *TERMS],
        header=HEADER[:-2],
    )
    imported = await upload(district, old)
    assert imported.status_code == 200, imported.text
    item = (await district.get("/v1/datasets/RK-1")).json()["items"][0]
    assert (item["default_protection"], item["effective_protection"]) == (None, "none")


@pytest.mark.parametrize(
    ("bad", "location", "allowed"),
    [
        (row("RK-1-SFZH", "身份证号", "打码", ""), "row 2, 默认脱敏方式", "partial (部分遮盖)"),
        (
            row("RK-1-SFZH", "身份证号", "哈希", "护照"),
            "row 2, 个人信息类型",
            "id_number (身份证号)",
        ),
    ],
)
async def test_an_unknown_declaration_names_its_cell_and_imports_nothing(
    district: httpx.AsyncClient, bad: list[str], location: str, allowed: str
) -> None:
    refused = await upload(district, sheet(bad))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    errors = refused.json()["errors"]
    assert [e["location"] for e in errors] == [location]
    assert allowed in errors[0]["message"]
    assert (await district.get("/v1/datasets/RK-1")).status_code == 404
