"""Onboarding a district in bulk (issue 16): department and account lists, by CLI and over HTTP.

All or nothing, every problem named by the row the sheet shows; a re-run changes nothing; the
secrets of new system accounts are written once, to a file only the caller can read (CLI), or
returned once (HTTP).
"""

import csv
import io
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import Workbook
from sqlalchemy import func, select

from broker.accounts.onboarding import ACCOUNT_COLUMNS
from broker.auth.models import Account
from broker.demo import DATA, district
from broker.departments.onboarding import DEPARTMENT_COLUMNS, ListColumn
from catalog.departments.models import Department
from support.audit_helpers import actions_after, events, head
from support.identities import Identities
from support.processes import BROKER_SCRIPT, REPO_ROOT, bootstrap_admin, environment, run_broker

DISTRICT = DATA / "district.csv"
ACCOUNTS = DATA / "accounts.csv"
CSV = "text/csv"


async def count(app: FastAPI, model: type[Department] | type[Account]) -> int:
    async with app.state.session_factory() as session:
        total = await session.scalar(select(func.count()).select_from(model))
        await session.commit()
        return int(total or 0)


def broker_fails(database_url: str, *args: str) -> str:
    """Run `broker` expecting it to refuse; what it printed."""
    done = subprocess.run(
        [BROKER_SCRIPT, *args],
        env=environment(database_url),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout + done.stderr


def secrets_in(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["client_id"]: row["client_secret"] for row in csv.DictReader(handle)}


async def test_the_cli_onboards_the_demo_district_from_its_files(
    database_url: str, app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    bootstrap_admin(database_url)
    departments_before = await count(app, Department)

    checked = run_broker(database_url, "departments", "import", str(DISTRICT), "--dry-run")
    assert "would create 13 department(s)" in checked
    assert await count(app, Department) == departments_before, "a dry run changes nothing"

    bad = tmp_path / "district-with-a-bad-row.csv"
    lines = DISTRICT.read_text(encoding="utf-8").splitlines()
    lines[5] = "commerce,区商务委员会,ministry"  # the sheet's row 6
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = broker_fails(database_url, "departments", "import", str(bad))
    assert "nothing was imported" in refused
    assert "row 6: kind 'ministry' is not a kind of department" in refused
    assert await count(app, Department) == departments_before, "one bad row changes nothing"

    imported = run_broker(database_url, "departments", "import", str(DISTRICT))
    assert "created 13 department(s)" in imported
    assert "unchanged 1: platform" in imported
    assert await count(app, Department) == len(district())
    again = run_broker(database_url, "departments", "import", str(DISTRICT))
    assert f"unchanged {len(district())}" in again, "a re-run changes nothing"

    accounts_before = await count(app, Account)
    without = broker_fails(database_url, "accounts", "import", str(ACCOUNTS))
    assert "--secrets-file" in without
    assert await count(app, Account) == accounts_before

    secrets = tmp_path / "secrets.csv"
    created = run_broker(
        database_url, "accounts", "import", str(ACCOUNTS), "--secrets-file", str(secrets)
    )
    assert "created 18 account(s)" in created
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600, "readable by the caller only"
    written = secrets_in(secrets)
    assert len(written) == 18
    assert not [s for s in written.values() if s in created], "secrets are never printed"
    token = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("tax-steward", written["tax-steward"]),
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "steward"

    kept = secrets.read_bytes()
    overwrite = broker_fails(
        database_url, "accounts", "import", str(ACCOUNTS), "--secrets-file", str(secrets)
    )
    assert "already exists" in overwrite
    assert secrets.read_bytes() == kept, "a secrets file is never overwritten"
    unchanged = run_broker(database_url, "accounts", "import", str(ACCOUNTS))
    assert "unchanged 18" in unchanged


async def test_the_http_import_plans_a_dry_run_and_then_creates_the_same(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    files = {"file": ("district.csv", DISTRICT.read_bytes(), CSV)}
    before = await count(app, Department)
    planned = await admin_client.post(
        "/v1/imports/departments", files=files, params={"dry_run": "true"}
    )
    assert planned.status_code == 200, planned.text
    assert planned.json()["dry_run"] is True
    assert await count(app, Department) == before

    done = await admin_client.post("/v1/imports/departments", files=files)
    assert done.status_code == 200, done.text
    plan = done.json()
    assert plan["created"] == planned.json()["created"] == [d.code for d in district()[1:]]
    # the test's platform department is named 'platform'; the list names it in full
    assert plan["updated"] == {"platform": ["name"]}
    assert await count(app, Department) == len(district())
    department = await admin_client.get("/v1/departments/platform")
    assert department.json()["name"] == "区城市运行管理中心"

    seq = await head(app)
    again = (await admin_client.post("/v1/imports/departments", files=files)).json()
    assert (again["created"], again["updated"]) == ([], {})
    assert len(again["unchanged"]) == len(district())
    assert await actions_after(app, seq) == ["departments.imported"]


async def test_new_system_accounts_get_their_secret_once_in_the_answer(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    departments = {"file": ("district.csv", DISTRICT.read_bytes(), CSV)}
    assert (await admin_client.post("/v1/imports/departments", files=departments)).is_success
    accounts = {"file": ("accounts.csv", ACCOUNTS.read_bytes(), CSV)}

    planned = await admin_client.post(
        "/v1/imports/accounts", files=accounts, params={"dry_run": "true"}
    )
    assert planned.status_code == 200, planned.text
    assert len(planned.json()["new_clients"]) == 18
    assert planned.json()["client_secrets"] == {}, "a dry run creates no secret"

    seq = await head(app)
    done = await admin_client.post("/v1/imports/accounts", files=accounts)
    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store"
    secrets = done.json()["client_secrets"]
    assert set(secrets) == set(done.json()["created"]) == set(planned.json()["new_clients"])
    token = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("deputy-head", secrets["deputy-head"]),
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "leader"
    recorded = [e for e in await events(app) if e.seq > seq]
    assert [e.action for e in recorded].count("account.created") == 18
    assert [e.action for e in recorded][-2:] == ["accounts.imported", "token.issued"]
    assert not [e for e in recorded if any(s in str(e.details) for s in secrets.values())]

    again = (await admin_client.post("/v1/imports/accounts", files=accounts)).json()
    assert (again["created"], again["client_secrets"]) == ([], {})
    assert len(again["unchanged"]) == 18


async def test_one_bad_row_refuses_the_whole_list_naming_each_row_as_the_sheet_shows_it(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    listing = (
        "某区部门清单（2026年）\n"
        "\n"
        "序号,*部门编码,部门名称,部门类型,上级部门\n"
        "1,stats,区统计局,委办局,\n"
        "2,ｊｄ１,某街道办事处,街道,统计局\n"  # full-width code, parent by short name: fine
        "3,bad code,坏,委办局,\n"
        "4,ghost,幽灵,委办局,区统记局\n"
        "5,stats,again,委办局,\n"
        "注：部门类型填委办局、街镇、企业或平台\n"
    )
    before = await count(app, Department)
    refused = await admin_client.post(
        "/v1/imports/departments", files={"file": ("list.csv", listing.encode("gbk"), CSV)}
    )
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert [e["location"] for e in errors] == ["row 6", "row 7", "row 8"]
    assert "'bad code' is not a code" in errors[0]["message"]
    assert "did you mean 区统计局 (stats)?" in errors[1]["message"]
    assert "also on row 4" in errors[2]["message"]
    assert await count(app, Department) == before

    fixed = listing.replace("3,bad code,坏,委办局,\n", "").replace("区统记局", "stats")
    fixed = fixed.replace("5,stats,again,委办局,\n", "")
    done = await admin_client.post(
        "/v1/imports/departments", files={"file": ("list.csv", fixed.encode("gbk"), CSV)}
    )
    assert done.status_code == 200, done.text
    assert done.json()["created"] == ["stats", "jd1", "ghost"], "parents before children"
    assert any("序号" in w for w in done.json()["warnings"]), "unknown columns are ignored"
    street = (await admin_client.get("/v1/departments/jd1")).json()
    assert (street["kind"], street["parent_code"]) == ("street", "stats")


def workbook(*rows: list[str]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    sheet.merge_cells("A1:E1")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def test_an_xlsx_account_list_updates_roles_and_refuses_moves_and_kind_changes(
    admin_client: httpx.AsyncClient,
) -> None:
    for code, name in (("stats", "区统计局"), ("tax", "区税务局")):
        await admin_client.post(
            "/v1/departments", json={"code": code, "name": name, "kind": "bureau"}
        )
    header = ["账号", "显示名", "类型", "所属部门", "角色"]
    first = workbook(
        ["某区账号清单"],
        header,
        ["li.si", "李四", "人员", "统计局", "数据专员"],
        ["wang.wu", "王五", "人员", "区税务局", "需求方"],
    )
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    done = await admin_client.post(
        "/v1/imports/accounts", files={"file": ("accounts.xlsx", first, xlsx)}
    )
    assert done.status_code == 200, done.text
    assert done.json()["created"] == ["li.si", "wang.wu"]
    assert done.json()["client_secrets"] == {}, "people have no secret"

    second = workbook(
        ["某区账号清单"],
        header,
        ["li.si", "李四", "人员", "stats", "数据专员、需求方"],
        ["wang.wu", "王五", "系统", "stats", "需求方"],
    )
    refused = await admin_client.post(
        "/v1/imports/accounts", files={"file": ("accounts.xlsx", second, xlsx)}
    )
    assert refused.status_code == 422, refused.text
    [moved] = refused.json()["errors"]
    assert moved["location"] == "row 4"
    assert "belongs to 'tax', not 'stats'" in moved["message"]
    li = (await admin_client.get("/v1/accounts/li.si")).json()
    assert li["roles"] == ["steward"], "nothing of a refused list is written"

    third = workbook(
        ["某区账号清单"],
        header,
        ["li.si", "李四（统计局）", "人员", "stats", "数据专员、需求方"],
        ["wang.wu", "王五", "人员", "tax", "需求方"],
    )
    updated = await admin_client.post(
        "/v1/imports/accounts", files={"file": ("accounts.xlsx", third, xlsx)}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["updated"] == {"li.si": ["roles", "display_name"]}
    assert updated.json()["unchanged"] == ["wang.wu"]
    li = (await admin_client.get("/v1/accounts/li.si")).json()
    assert (li["roles"], li["display_name"]) == (["requester", "steward"], "李四（统计局）")


async def test_a_list_may_not_take_the_last_platform_admin_away(
    admin_client: httpx.AsyncClient,
) -> None:
    listing = "账号,类型,部门,角色\nadmin,人员,platform,审计员\n"
    refused = await admin_client.post(
        "/v1/imports/accounts", files={"file": ("a.csv", listing.encode(), CSV)}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["location"] == "row 2"
    assert "no active platform admin" in refused.json()["errors"][0]["message"]


@pytest.mark.parametrize("path", ["/v1/imports/departments", "/v1/imports/accounts"])
async def test_only_the_platform_admin_imports_lists(
    client: httpx.AsyncClient, identities: Identities, app: FastAPI, path: str
) -> None:
    headers = await identities.headers(
        "tax-steward", department="tax", department_kind="bureau", roles=("steward",)
    )
    before = (await count(app, Department), await count(app, Account))
    listing = DISTRICT if path.startswith("/v1/departments") else ACCOUNTS
    refused = await client.post(
        path, headers=headers, files={"file": (listing.name, listing.read_bytes(), CSV)}
    )
    assert refused.status_code == 403, refused.text
    assert (await count(app, Department), await count(app, Account)) == before


def test_the_cli_exports_the_catalog_as_a_sheet_that_reimports_unchanged(
    database_url: str, tmp_path: Path
) -> None:
    bootstrap_admin(database_url)
    run_broker(database_url, "departments", "import", str(DISTRICT))
    run_broker(database_url, "catalog", "import", str(DATA / "economic_indicators_95.csv"))

    printed = subprocess.run(
        [BROKER_SCRIPT, "catalog", "export"],
        env=environment(database_url),
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    assert printed.startswith(b"\xef\xbb\xbf"), "a BOM, so that Excel reads it as UTF-8"
    rows = list(csv.reader(io.StringIO(printed.decode("utf-8-sig"))))
    assert len(rows) == 1 + 95
    binary = broker_fails(database_url, "catalog", "export", "--format", "xlsx")
    assert "give --output FILE.xlsx" in binary

    workbook_file = tmp_path / "catalog.xlsx"
    written = run_broker(
        database_url, "catalog", "export", "--format", "xlsx", "-o", str(workbook_file)
    )
    assert f"exported 95 items to {workbook_file}" in written
    checked = run_broker(database_url, "catalog", "import", str(workbook_file), "--dry-run")
    assert "would create 0, would update 0, unchanged 30" in checked

    annotated = tmp_path / "目录_备注.csv"
    header, *lines = (DATA / "economic_indicators_95.csv").read_text(encoding="utf-8").splitlines()
    annotated.write_text("\n".join([f"{header},备注"] + [f"{line}," for line in lines]), "utf-8")
    warned = run_broker(database_url, "catalog", "import", str(annotated), "--dry-run")
    assert "unchanged 30" in warned
    assert "warning:" in warned, warned
    assert "备注" in warned, warned


@pytest.mark.parametrize(
    ("table", "columns"), [("department", DEPARTMENT_COLUMNS), ("account", ACCOUNT_COLUMNS)]
)
def test_the_readme_lists_every_header_a_list_may_use(
    table: str, columns: tuple[ListColumn, ...]
) -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Onboarding a district") : readme.index("The rules:")]
    rows = section[section.index(f"| {table} column |") :].split("\n\n")[0].splitlines()[2:]
    documented = {
        cells[0]: cells[1].split(", ")
        for line in rows
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert documented == {
        f"{c.key}{' (required)' if c.required else ''}": [*c.headers, c.key] for c in columns
    }
