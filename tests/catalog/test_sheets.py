import io
import zipfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF

from broker.demo import ECONOMIC_INDICATORS_SHEET as SHEET
from catalog.sheets.layout import COLUMNS, IGNORED
from catalog.vocab import DataType, UpdateCycle, parse
from support import catalog_data
from support.audit_helpers import events
from support.identities import Identities

PROBLEM = "application/problem+json"
CSV = "text/csv"


async def upload(
    client: httpx.AsyncClient,
    data: bytes,
    *,
    dry_run: bool = False,
    name: str = "目录.csv",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/catalog/import",
        params={"dry_run": str(dry_run).lower()},
        files={"file": (name, data, CSV)},
        headers=headers,
    )


@pytest.fixture
async def district(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    await catalog_data.seed_district(admin_client)
    return admin_client


async def test_95_item_sheet_imports_and_round_trips_with_no_changes(
    district: httpx.AsyncClient, app: FastAPI
) -> None:
    data = SHEET.read_bytes()
    dry = await upload(district, data, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert len(dry.json()["created"]) == 30
    assert (await district.get("/v1/datasets")).json()["total"] == 0, "a dry run writes nothing"

    real = await upload(district, data)
    assert real.status_code == 200, real.text
    assert real.json()["rows"] == 95
    assert len(real.json()["created"]) == 30
    items = (await district.get("/v1/items", params={"q": "规模以上工业总产值"})).json()["items"]
    assert items[0]["owner_department_code"] == "stats"
    assert items[0]["update_cycle"] == "monthly"
    assert items[0]["publication_lag_days"] == 20
    tax_detail = (await district.get("/v1/datasets/SW-QYNS-D")).json()
    assert (tax_detail["share_type"], tax_detail["sensitivity"]) == ("none", "L4")
    assert tax_detail["legal_basis"].startswith("《中华人民共和国税收征收管理法》")
    assert [e.action for e in await events(app)].count("catalog.imported") == 1

    again = await upload(district, data)
    assert again.json()["unchanged"] == real.json()["created"]
    assert again.json()["updated"] == {}

    for fmt, name in (("csv", "export.csv"), ("xlsx", "export.xlsx")):
        exported = await district.get("/v1/catalog/export", params={"format": fmt})
        assert exported.status_code == 200
        reimport = await upload(district, exported.content, dry_run=True, name=name)
        assert reimport.status_code == 200, reimport.text
        assert reimport.json()["created"] == []
        assert reimport.json()["updated"] == {}
        assert len(reimport.json()["unchanged"]) == 30


async def test_a_gbk_csv_imports_with_its_chinese_intact(district: httpx.AsyncClient) -> None:
    gbk = SHEET.read_text(encoding="utf-8").encode("gbk")
    response = await upload(district, gbk)
    assert response.status_code == 200, response.text
    dataset = (await district.get("/v1/datasets/RS-JY-M")).json()
    assert dataset["title"] == "就业与工资"
    assert dataset["owner_department_name"] == "区人力资源和社会保障局"
    assert [i["unit"] for i in dataset["items"]] == ["人", "%", "元"]


async def test_a_changed_sheet_reports_exactly_what_changes(district: httpx.AsyncClient) -> None:
    await upload(district, SHEET.read_bytes())
    changed = (
        SHEET.read_text(encoding="utf-8")
        .replace(
            "商标注册统计,商标注册量,区市场监督管理局", "商标注册统计,商标注册量,区市场监督管理局"
        )
        .replace("SJ-SBZC,商标注册量,整数型,件", "SJ-SBZC,商标注册量,整数型,万件")
    )
    response = await upload(district, changed.encode(), dry_run=True)
    assert response.json()["updated"] == {"SJ-SB-Q": ["items"]}


def sheet(*rows: list[str], header: list[str] | None = None) -> bytes:
    head = header or [
        "资源代码",
        "资源名称",
        "提供单位",
        "资源分类",
        "信息项编码",
        "信息项名称",
        "数据类型",
        "共享类型",
        "更新周期",
        "共享条件",
    ]
    lines = [",".join(head)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


GOOD = ["A-1", "甲", "区统计局", "部门", "A-1-1", "指标一", "数值型", "无条件共享", "每月", ""]


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        (sheet(GOOD, header=["资源代码", "资源名称"]), "row 1", "提供单位"),
        (sheet([*GOOD[:8], "每两周", ""]), "row 2, 更新周期", "monthly (每月)"),
        (sheet([*GOOD[:7], "有条件共享", "每月", ""]), "row 2, 共享条件", "condition"),
        (sheet([*GOOD[:2], "不存在局", *GOOD[3:]]), "row 2, 提供单位", "registered department"),
        (sheet(GOOD, [*GOOD[:4], "A-1-1", *GOOD[5:]]), "row 3, 信息项编码", "unique"),
        (sheet(GOOD, ["A-1", "乙", *GOOD[2:4], "A-1-2", *GOOD[5:]]), "row 3, 资源名称", "row 2"),
        (sheet([*GOOD[:6], "二进制", *GOOD[7:]]), "row 2, 数据类型", "string"),
        (b"", "file", "Upload"),
        (sheet(), "row 2", "Add rows"),
        (b"\x81\x30\xff\xfe\x00\x81", "file", "UTF-8"),
    ],
    ids=[
        "missing column",
        "unknown cycle",
        "conditional without condition",
        "unknown department",
        "duplicate item",
        "dataset rows disagree",
        "unknown data type",
        "empty file",
        "header only",
        "undecodable",
    ],
)
async def test_bad_sheets_name_row_column_and_fix_and_import_nothing(
    district: httpx.AsyncClient, data: bytes, location: str, message: str
) -> None:
    response = await upload(district, data)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    assert any(e["location"] == location and message in e["message"] for e in errors), errors
    assert (await district.get("/v1/datasets")).json()["total"] == 0


async def test_one_bad_row_leaves_the_good_ones_unimported(district: httpx.AsyncClient) -> None:
    bad = [*GOOD[:8], "每两周", ""]
    bad[0], bad[4] = "B-1", "B-1-1"
    response = await upload(district, sheet(GOOD, bad))
    assert response.status_code == 422
    assert (await district.get("/v1/datasets/A-1")).status_code == 404


async def test_steward_imports_own_rows_but_not_other_departments(
    district: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> None:
    steward = await identities.headers(
        "stats-steward", department="stats", department_kind="bureau", roles=("steward",)
    )
    own = await upload(client, sheet(GOOD), headers=steward)
    assert own.status_code == 200, own.text
    foreign_row = [
        "C-1",
        "丙",
        "区税务局",
        "部门",
        "C-1-1",
        "指标",
        "数值型",
        "无条件共享",
        "每月",
        "",
    ]
    foreign = await upload(client, sheet(foreign_row), headers=steward)
    assert foreign.status_code == 403
    assert foreign.json()["errors"][0]["location"] == "row 2, 提供单位"
    requester = await identities.headers(
        "stats-requester", department="stats", department_kind="bureau", roles=("requester",)
    )
    assert (await upload(client, sheet(GOOD), headers=requester)).status_code == 403


async def test_oversized_and_bomb_uploads_are_refused(
    district: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_import_bytes
    huge = await upload(district, b"x" * (limit + 1))
    assert huge.status_code == 413
    assert huge.headers["content-type"] == PROBLEM
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * 300_000_000)
    bomb = await upload(district, buffer.getvalue(), name="bomb.xlsx")
    assert bomb.status_code == 422
    assert "zip bomb" in bomb.json()["detail"]


async def test_dcat_export_is_json_ld_with_dcat_ap_vocabulary(district: httpx.AsyncClient) -> None:
    await upload(district, SHEET.read_bytes())
    response = await district.get("/v1/catalog/dcat")
    assert response.headers["content-type"].startswith("application/ld+json")
    graph = Graph().parse(data=response.text, format="json-ld")
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == 30
    frequency = Namespace("http://publications.europa.eu/resource/authority/frequency/")
    access = Namespace("http://publications.europa.eu/resource/authority/access-right/")
    industry = next(s for s in datasets if str(s).endswith("/v1/datasets/TJ-GYQY-M"))
    assert graph.value(industry, DCTERMS.accrualPeriodicity) == frequency.MONTHLY
    assert graph.value(industry, DCTERMS.accessRights) == access.NON_PUBLIC
    assert graph.value(industry, DCTERMS.identifier) == Literal("TJ-GYQY-M")
    publisher = graph.value(industry, DCTERMS.publisher)
    assert graph.value(publisher, FOAF.name) == Literal("区统计局", lang="zh")
    open_data = next(s for s in datasets if str(s).endswith("/v1/datasets/SJ-ZT-M"))
    assert graph.value(open_data, DCTERMS.accessRights) == access.PUBLIC
    quarterly = next(s for s in datasets if str(s).endswith("/v1/datasets/TJ-GDP-Q"))
    assert graph.value(quarterly, DCTERMS.accrualPeriodicity) == frequency.QUARTERLY
    catalogs = list(graph.subjects(RDF.type, DCAT.Catalog))
    assert len(catalogs) == 1
    assert isinstance(catalogs[0], URIRef)
    assert len(list(graph.objects(catalogs[0], DCAT.dataset))) == 30


@pytest.mark.parametrize("written", ["男|女|未知", "男、女、未知", "男；女；未知", "男;女;未知"])
async def test_allowed_values_split_on_the_separators_people_write(
    district: httpx.AsyncClient, written: str
) -> None:
    header = ["资源代码", "资源名称", "提供单位", "资源分类", "信息项编码", "信息项名称"]
    header += ["数据类型", "共享类型", "更新周期", "取值范围"]
    row = ["RK-1", "人口", "区统计局", "部门", "RK-1-XB", "性别", "字符型", "无条件共享", "每月"]
    response = await upload(district, sheet([*row, written], header=header))
    assert response.status_code == 200, response.text
    item = (await district.get("/v1/datasets/RK-1")).json()["items"][0]
    assert item["constraints"]["enum"] == ["男", "女", "未知"]


def test_readme_lists_every_accepted_header_and_ignored_column() -> None:
    """The README's sheet section is the importer's documentation: its table must be the layout."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### 目录 sheets") : readme.index("**Per-item columns.**")]
    table = {
        cells[0]: cells
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| column")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert set(table) == {c.header for c in COLUMNS}
    for column in COLUMNS:
        _header, aliases, per, required = table[column.header]
        assert aliases.split(", ") == list(column.aliases), column.header
        assert per.startswith("dataset" if column.dataset_level else "item"), column.header
        assert required.startswith("yes") == column.required, column.header
    for name in IGNORED:
        assert name in section, name


@pytest.mark.parametrize(
    ("kind", "words", "code"),
    [
        (UpdateCycle, "月度 每月 月 按月 ＭＯＮＴＨＬＹ", "monthly"),
        (UpdateCycle, "季度 每季 每季度 季", "quarterly"),
        (UpdateCycle, "年度 每年 年 每年度", "annual"),
        (UpdateCycle, "半年 每半年 半年度", "semiannual"),
        (UpdateCycle, "每半月 半月 旬 每旬", "dekad"),
        (UpdateCycle, "周 每周", "weekly"),
        (UpdateCycle, "日 每日 每天", "daily"),
        (UpdateCycle, "实时", "realtime"),
        (UpdateCycle, "不定期 其他", "irregular"),
        (DataType, "数字 数值 数值型 N 货币型", "decimal"),
        (DataType, "文本 字符 字符型 字符串 C", "string"),
        (DataType, "整数 整型 整数型 I", "integer"),
        (DataType, "日期 日期型 D", "date"),
        (DataType, "日期时间 日期时间型 T", "datetime"),
        (DataType, "布尔 逻辑型 L", "boolean"),
    ],
)
def test_everyday_and_full_width_words_read_as_the_vocabulary(
    kind: type[UpdateCycle] | type[DataType], words: str, code: str
) -> None:
    for word in words.split():
        assert parse(kind, word, location="x").value == code, word


async def test_a_bare_year_is_refused_as_a_date_not_read_as_an_excel_serial(
    district: httpx.AsyncClient,
) -> None:
    header = ["资源代码", "资源名称", "提供单位", "资源分类", "信息项编码", "信息项名称"]
    header += ["数据类型", "共享类型", "更新周期", "共享条件", "数据起始日期"]
    response = await upload(district, sheet([*GOOD, "2024"], header=header))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["location"] == "row 2, 数据起始日期"
    assert "2024年1月31日" in error["message"]
