"""The economic-operation indicators case (经济运行指标监测), played over the real HTTP API.

Every step a person takes is an HTTP call to the application in-process (httpx over ASGI), so
the audit chain records the story exactly as production would. Only the first platform
administrator comes from the bootstrap function `broker accounts bootstrap` uses, because no one
exists yet who could create it.
"""

import asyncio
import csv
import io
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from alembic import command

from broker import migrations
from broker.accounts import onboarding
from broker.accounts import service as accounts
from broker.app import create_app
from broker.audit.service import Actor
from broker.config import Settings
from broker.demo import (
    DATA,
    DISTRICT_SHEET,
    ECONOMIC_INDICATORS_SHEET,
    PLATFORM_BASE_SHEET,
    district,
    samples,
)
from broker.demo import board as boards

DATABASE_FILE = "broker.db"
RELEASES_DIR = "releases"
AUDIT_EXPORT_FILE = "audit.jsonl"
AGENDA_FILE = "coordination-agenda.md"
ACCOUNT_LIST = DATA / "accounts.csv"
SCENARIO = "econ"
POPULATION_SCENARIO = "population"
DEMO_ACTOR = Actor.system("demo")
Out = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot start here, or a step got an answer it did not expect."""


@dataclass(frozen=True)
class Person:
    name: str
    display_name: str
    department: str
    roles: tuple[str, ...]


@dataclass
class Credentials:
    """A demo account: its client secret (for fresh tokens) and a token it obtained."""

    name: str
    display_name: str
    department: str
    roles: tuple[str, ...]
    client_secret: str
    access_token: str = ""


@dataclass
class Demo:
    """What the play leaves behind, for the CLI to point at and the tests to check."""

    directory: Path
    settings: Settings
    credentials: dict[str, Credentials]
    before: dict[str, Any]
    after: dict[str, Any]
    verification: dict[str, Any]
    audit_export: Path
    agenda: Path
    grants: dict[str, str] = field(default_factory=dict)
    downloads: dict[str, str] = field(default_factory=dict)


ADMIN = Person("admin", "Platform administrator", "platform", ("platform_admin",))


def people() -> list[Person]:
    """The accounts the administrator creates, as the district's account list (accounts.csv)
    names them: a data steward per department, plus those the case needs around them."""
    listing = onboarding.read_accounts(ACCOUNT_LIST.read_bytes(), filename=ACCOUNT_LIST.name)
    return [
        Person(
            row.values["name"],
            row.values["display_name"],
            row.values["department"],
            tuple(role.value for role in onboarding.named_roles(row.values["roles"])[0]),
        )
        for row in listing.rows
    ]


def settings_for(directory: Path) -> Settings:
    """The embedded default, kept inside the demo directory; tokens last the longest allowed."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{directory / DATABASE_FILE}",
        storage_root=str(directory / RELEASES_DIR),
        token_ttl_seconds=3600,
    )


def environment(settings: Settings) -> dict[str, str]:
    """The BROKER_* variables under which `broker serve` finds the demo's state."""
    return {
        "BROKER_DATABASE_URL": settings.database_url,
        "BROKER_STORAGE_ROOT": settings.storage_root,
        "BROKER_TOKEN_TTL_SECONDS": str(settings.token_ttl_seconds),
    }


def prepare(directory: Path | None) -> Path:
    """A new temporary directory, or the given one if it holds no demo database yet.

    Refusing an existing database keeps two runs from mixing into one confusing audit log.
    """
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="broker-demo-")).resolve()
    directory = directory.expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise DemoError(f"{directory} is a file; give --dir a directory.")
    if (directory / DATABASE_FILE).exists():
        raise DemoError(
            f"{directory / DATABASE_FILE} already exists: the demo starts from an empty "
            "database. Choose another --dir, or delete that directory first."
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def migrate(settings: Settings) -> None:
    """What `broker serve` does on the embedded default, without alembic's log lines."""
    config = migrations.alembic_config(settings)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def run(directory: Path | None = None, out: Out = print) -> Demo:
    """Seed the district, play the case and write the files; the one entry point of the demo."""
    directory = prepare(directory)
    settings = settings_for(directory)
    migrate(settings)
    return asyncio.run(play(directory=directory, settings=settings, out=out))


class Api:
    """The HTTP API as the demo's people use it, each with the token they obtained."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.tokens: dict[str, str] = {}

    async def sign_in(self, name: str, secret: str) -> str:
        response = await self.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(name, secret)
        )
        self._expect(response, 200, f"sign in as {name}")
        token: str = response.json()["access_token"]
        self.tokens[name] = token
        return token

    async def call(
        self, who: str, method: str, path: str, *, expect: int = 200, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kwargs.pop("headers", {})}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        self._expect(response, expect, f"{method} {path} as {who}")
        return response

    async def json(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(who, method, path, **kwargs)).json()

    @staticmethod
    def _expect(response: httpx.Response, status: int, what: str) -> None:
        if response.status_code != status:
            raise DemoError(
                f"{what}: expected {status}, got {response.status_code}: {response.text[:2000]}"
            )


class Narrator:
    """Numbered one-line steps: who did what."""

    def __init__(self, out: Out, departments: Mapping[str, str], cast: Mapping[str, Person]):
        self.out = out
        self.departments = departments
        self.cast = cast
        self.count = 0

    def step(self, who: str, text: str) -> None:
        self.count += 1
        department = self.departments[self.cast[who].department]
        self.out(f"{self.count:>3}. {department} {who}: {text}")

    def say(self, text: str = "") -> None:
        self.out(text)


def _sheet_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _names(lines: Iterable[Mapping[str, Any]]) -> str:
    return "、".join(str(line["item_name"]) for line in lines)


@dataclass
class Case:
    """The state the play carries from one step to the next."""

    api: Api
    narrator: Narrator
    directory: Path
    today: date
    usage_end: date
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    grants: dict[str, str] = field(default_factory=dict)
    downloads: dict[str, str] = field(default_factory=dict)


async def play(*, directory: Path, settings: Settings, out: Out = print) -> Demo:
    """The whole case, from an empty migrated database to the audit export."""
    app = create_app(settings)
    departments = {d.code: d.name for d in district()}
    cast = {p.name: p for p in [ADMIN, *people()]}
    narrator = Narrator(out, departments, cast)
    narrator.say(
        "Data Resource Broker demo: 经济运行指标监测 (the economic-operation indicators case)"
    )
    narrator.say(f"directory: {directory}")
    narrator.say(f"database:  {settings.database_url}")
    narrator.say()
    async with app.router.lifespan_context(app):
        async with app.state.session_factory() as session:
            admin_secret = await accounts.bootstrap(
                session=session,
                actor=DEMO_ACTOR,
                name="admin",
                department_code="platform",
                department_name=departments["platform"],
            )
            # As `broker accounts bootstrap` does: the service flushes, its caller commits once.
            await session.commit()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=settings.public_base_url
        ) as http:
            api = Api(http)
            today = date.today()
            case = Case(api, narrator, directory, today, today + timedelta(days=365))
            narrator.step(
                "admin", "bootstrapped the platform department and its first administrator"
            )
            credentials = await seed_district(case, admin_secret)
            await import_catalog(case)
            before = await file_request(case)
            narrator.say()
            narrator.say("Readiness board right after submit (GET /v1/scenarios/econ/readiness):")
            narrator.say(boards.render(before))
            narrator.say()
            await owners_decide(case)
            agenda = await coordinate(case)
            await request_population_extract(case)
            await deliver_releases(case)
            await deliver_platform_copies(case)
            await download_series(case)
            after = await api.json("drc-requester", "GET", f"/v1/scenarios/{SCENARIO}/readiness")
            narrator.say()
            narrator.say("Readiness board at the end:")
            narrator.say(boards.render(after))
            await check_downloads(case, after)
            narrator.say()
            verification, export = await close_audit(case)
    narrator.say()
    narrator.say("Files:")
    narrator.say(f"  audit export (JSON Lines): {export}")
    narrator.say(f"  coordination agenda (Markdown): {agenda}")
    narrator.say(f"  database: {directory / DATABASE_FILE}")
    return Demo(
        directory=directory,
        settings=settings,
        credentials=credentials,
        before=before,
        after=after,
        verification=verification,
        audit_export=export,
        agenda=agenda,
        grants=case.grants,
        downloads=case.downloads,
    )


async def seed_district(case: Case, admin_secret: str) -> dict[str, Credentials]:
    """The bureaus and everyone's accounts, imported by the platform administrator from the
    district's two lists (POST /v1/imports/departments and /v1/imports/accounts, the service
    `broker departments import` and `broker accounts import` run)."""
    api = case.api
    admin = Credentials(ADMIN.name, ADMIN.display_name, ADMIN.department, ADMIN.roles, admin_secret)
    admin.access_token = await api.sign_in(admin.name, admin_secret)
    registered = await api.json(
        "admin",
        "POST",
        "/v1/imports/departments",
        files={"file": (DISTRICT_SHEET.name, DISTRICT_SHEET.read_bytes(), "text/csv")},
    )
    names = {d.code: d.name for d in district()}
    case.narrator.step(
        "admin",
        f"imported the district's department list ({DISTRICT_SHEET.name}): registered its "
        f"{len(registered['created'])} bureaus: "
        + "、".join(names[code].removeprefix("区") for code in registered["created"]),
    )
    imported = await api.json(
        "admin",
        "POST",
        "/v1/imports/accounts",
        files={"file": (ACCOUNT_LIST.name, ACCOUNT_LIST.read_bytes(), "text/csv")},
    )
    secrets: dict[str, str] = imported["client_secrets"]
    credentials = {admin.name: admin}
    for person in people():
        credentials[person.name] = Credentials(
            person.name, person.display_name, person.department, person.roles, secrets[person.name]
        )
    for entry in credentials.values():
        if not entry.access_token:
            entry.access_token = await api.sign_in(entry.name, entry.client_secret)
    case.narrator.step(
        "admin",
        f"imported the account list ({ACCOUNT_LIST.name}): {len(imported['created'])} client "
        "accounts (a data steward per department, a second platform steward for four-eyes, the "
        "发改委 requester, the deputy district head, an auditor), their secrets returned once; "
        "each got its token from /oauth/token",
    )
    return credentials


async def import_catalog(case: Case) -> None:
    """The platform's base data, then the 95-item sheet agreed at the kick-off meeting."""
    for sheet, what in (
        (
            PLATFORM_BASE_SHEET,
            "the platform's base data (map layers, housing, population, legal entities)",
        ),
        (ECONOMIC_INDICATORS_SHEET, "the economic indicators sheet (目录)"),
    ):
        result = await case.api.json(
            "admin",
            "POST",
            "/v1/catalog/import",
            files={"file": (sheet.name, sheet.read_bytes(), "text/csv")},
        )
        rows = _sheet_rows(sheet)
        owners = {row["提供单位"] for row in rows}
        copies = sum(1 for row in rows if row["是否已归集"] == "是")
        case.narrator.step(
            "admin",
            f"imported {what}: {result['rows']} items in {len(result['created'])} datasets "
            f"from {len(owners)} department(s), {copies} items already copied to the platform",
        )


async def file_request(case: Case) -> dict[str, Any]:
    """发改委 files one request for the 95 items and submits it; returns the board after submit."""
    api, narrator = case.api, case.narrator
    codes = [row["信息项编码"] for row in _sheet_rows(ECONOMIC_INDICATORS_SHEET)]
    await api.call(
        "drc-requester",
        "POST",
        "/v1/scenarios",
        json={
            "code": SCENARIO,
            "name": "经济运行指标监测",
            "description": "区经济运行监测分析平台：月度、季度经济指标的归集、研判与预警",
            "phase": "development",
            "members": [d.code for d in district()],
        },
        expect=201,
    )
    request = await api.json(
        "drc-requester",
        "POST",
        "/v1/requests",
        json={
            "scenario_code": SCENARIO,
            "title": "经济运行指标数据需求（95项）",
            "purpose": "经济运行监测分析与月度形势研判",
            "legal_basis": "区政府关于建设经济运行监测分析平台的工作方案",
            "usage_start": case.today.isoformat(),
            "usage_end": case.usage_end.isoformat(),
        },
        expect=201,
    )
    pasted = await api.json(
        "drc-requester", "POST", f"/v1/requests/{request['id']}/lines", json={"item_codes": codes}
    )
    if pasted["unknown_codes"]:
        raise DemoError(f"unknown item codes in the sheet: {pasted['unknown_codes']}")
    narrator.step(
        "drc-requester",
        f"created scenario '{SCENARIO}' 经济运行指标监测 and a request pasting {pasted['added']} "
        "item codes",
    )
    submitted = await api.json(
        "drc-requester",
        "POST",
        f"/v1/requests/{request['id']}/submit",
        headers={"Idempotency-Key": f"{SCENARIO}-{case.today.isoformat()}"},
    )
    case.lines = {line["item_code"]: line for line in submitted["lines"]}
    states = Counter(line["state"] for line in submitted["lines"])
    owners = {line["owner_department_code"] for line in submitted["lines"]}
    due = min(line["due_at"] for line in submitted["lines"] if line["due_at"])
    narrator.step(
        "drc-requester",
        f"submitted {len(submitted['lines'])} lines to {len(owners)} departments: "
        f"{states['auto_approved']} auto-approved from platform copies, "
        f"{states['pending_owner']} sent to their owners (reply due {due[:10]}, 10 working "
        f"days), {states['rejected']} refused by law (不予共享)",
    )
    board: dict[str, Any] = await api.json(
        "drc-requester", "GET", f"/v1/scenarios/{SCENARIO}/readiness"
    )
    return board


async def _declaration(case: Case, who: str, dataset_code: str, note: str) -> dict[str, Any]:
    """时效性和保密性说明: what the catalog says of the dataset, confirmed by its steward."""
    dataset = await case.api.json(who, "GET", f"/v1/datasets/{dataset_code}")
    return {
        "update_cycle": dataset["update_cycle"],
        "publication_lag_days": dataset["publication_lag_days"],
        "sensitivity": dataset["sensitivity"],
        "note": note,
    }


def _said(declaration: Mapping[str, Any]) -> str:
    return (
        f"{declaration['update_cycle']}, out {declaration['publication_lag_days']} days after "
        f"the period, {declaration['sensitivity']}"
    )


async def _decide_all(
    case: Case, who: str, codes: list[str], decision: dict[str, Any]
) -> list[dict[str, Any]]:
    applied = await case.api.json(
        who,
        "POST",
        "/v1/decisions",
        json={"line_ids": [case.lines[c]["id"] for c in codes], **decision},
    )
    lines: list[dict[str, Any]] = applied["lines"]
    for line in lines:
        case.lines[line["item_code"]] = line
    return lines


async def _accept_all(case: Case, codes: list[str]) -> None:
    for code in codes:
        case.lines[code] = await case.api.json(
            "drc-requester", "POST", f"/v1/lines/{case.lines[code]['id']}/accept"
        )


def _pending(case: Case, dataset_code: str) -> list[str]:
    return [
        code
        for code, line in case.lines.items()
        if line["dataset_code"] == dataset_code and line["state"] == "pending_owner"
    ]


async def owners_decide(case: Case) -> None:
    """Statistics, Tax, Commerce, HR and the platform decide, each declaring timeliness and
    confidentiality; Tax asks a question first; the L4 population counts need two stewards."""
    api, narrator = case.api, case.narrator
    conditions = {
        "purpose": "经济运行监测分析",
        "no_reshare": True,
        "valid_until": case.usage_end.isoformat(),
    }

    codes = _pending(case, "TJ-FWY-Q")
    declared = await _declaration(case, "stats-steward", "TJ-FWY-Q", "季后45日内提供")
    lines = await _decide_all(
        case, "stats-steward", codes, {"decision": "approve", "declaration": declared}
    )
    narrator.step("stats-steward", f"approved {_names(lines)} ({_said(declared)})")

    growth = case.lines["SW-SSZS"]
    await api.call(
        "tax-steward",
        "POST",
        f"/v1/lines/{growth['id']}/decisions",
        json={"decision": "needs_info", "question": "税收收入增速按可比口径还是现价口径？"},
    )
    narrator.step("tax-steward", "asked about 税收收入增速: 按可比口径还是现价口径？")
    await api.call(
        "drc-requester",
        "POST",
        f"/v1/lines/{growth['id']}/answer",
        json={"answer": "按可比口径，与市局月报一致"},
    )
    narrator.step("drc-requester", "answered: 按可比口径，与市局月报一致 (the clock restarts)")
    codes = _pending(case, "SW-SSSR-M")
    declared = await _declaration(case, "tax-steward", "SW-SSSR-M", "次月15日前提供，不含企业明细")
    lines = await _decide_all(
        case,
        "tax-steward",
        codes,
        {"decision": "approve_with_conditions", "declaration": declared, "conditions": conditions},
    )
    narrator.step(
        "tax-steward",
        f"approved {len(lines)} tax revenue items with conditions (purpose 经济运行监测分析, "
        f"no re-sharing, until {case.usage_end}) ({_said(declared)})",
    )
    await _accept_all(case, codes)
    narrator.step("drc-requester", f"accepted the conditions on {len(codes)} tax items")

    approved = []
    for dataset_code in ("SWW-XFLS-M", "SWW-SQ-M"):
        codes = _pending(case, dataset_code)
        declared = await _declaration(case, "commerce-steward", dataset_code, "按月提供")
        approved += await _decide_all(
            case, "commerce-steward", codes, {"decision": "approve", "declaration": declared}
        )
    narrator.step("commerce-steward", f"approved {_names(approved)} (monthly, L1)")
    codes = _pending(case, "SWW-WM-M")
    declared = await _declaration(
        case, "commerce-steward", "SWW-WM-M", "海关数据按月汇总后提供，不含企业明细"
    )
    lines = await _decide_all(
        case,
        "commerce-steward",
        codes,
        {"decision": "approve_with_conditions", "declaration": declared, "conditions": conditions},
    )
    narrator.step(
        "commerce-steward",
        f"approved {len(lines)} foreign trade and investment items with conditions "
        f"({_said(declared)})",
    )
    await _accept_all(case, codes)
    narrator.step("drc-requester", f"accepted the conditions on {len(codes)} commerce items")

    codes = _pending(case, "RS-SB-M")
    declared = await _declaration(case, "hrss-steward", "RS-SB-M", "汇总数，不含个人明细")
    lines = await _decide_all(
        case, "hrss-steward", codes, {"decision": "approve", "declaration": declared}
    )
    narrator.step("hrss-steward", f"approved {_names(lines)} ({_said(declared)})")

    codes = _pending(case, "PT-RK-D")
    declared = await _declaration(case, "platform-steward", "PT-RK-D", "仅提供汇总数")
    decision = {"decision": "approve", "declaration": declared}
    await _decide_all(case, "platform-steward", codes, decision)
    narrator.step(
        "platform-steward",
        f"approved {_names(case.lines[c] for c in codes)}: first approval; "
        f"{declared['sensitivity']} data needs a second steward",
    )
    lines = await _decide_all(case, "platform-steward2", codes, decision)
    narrator.step(
        "platform-steward2", f"gave the second approval; {len(lines)} population items approved"
    )


async def coordinate(case: Case) -> Path:
    """The requester escalates the refusals; the agenda goes to the dispatch meeting, where the
    deputy district head settles them. Returns the agenda file."""
    api, narrator = case.api, case.narrator
    refused = [code for code, line in case.lines.items() if line["state"] == "rejected"]
    for code in refused:
        case.lines[code] = await api.json(
            "drc-requester",
            "POST",
            f"/v1/lines/{case.lines[code]['id']}/escalate",
            json={"reason": "经济运行监测需要分行业税收数据，申请提交区经济运行调度会协调"},
        )
    basis = case.lines[refused[0]]["route_reason"] or ""
    narrator.step(
        "drc-requester",
        f"escalated {_names(case.lines[c] for c in refused)} ({basis[:40]}…) to coordination",
    )
    agenda_text = (
        await api.call("admin", "GET", "/v1/coordination/agenda", params={"format": "markdown"})
    ).text
    agenda = case.directory / AGENDA_FILE
    agenda.write_text(agenda_text, encoding="utf-8")
    narrator.step("admin", f"wrote the weekly dispatch meeting's agenda to {agenda}")
    amount, identifier = case.lines["SW-YNSE"], case.lines["SW-NSRSBH"]
    case.lines["SW-YNSE"] = await api.json(
        "deputy-head",
        "POST",
        f"/v1/lines/{amount['id']}/leader-decision",
        json={
            "decision": "approve_with_conditions",
            "note": "同意在平台内按行业汇总使用，不得导出企业明细",
            "legal_basis": "《政务数据共享条例》：按行业汇总、不含纳税人明细的税收数据可有条件共享",
            "meeting_reference": "2026年第12次调度会",
            "conditions": {
                "purpose": "分行业税收形势分析",
                "in_platform_only": True,
                "no_reshare": True,
            },
        },
    )
    narrator.step(
        "deputy-head",
        f"settled {amount['item_name']}: approved for in-platform use only, no export "
        "(important-grade data: awaits a platform steward's countersignature)",
    )
    case.lines["SW-YNSE"] = await api.json(
        "platform-steward2",
        "POST",
        f"/v1/lines/{amount['id']}/countersignature",
        json={"decision": "countersign", "note": "已核对调度会纪要与法律依据"},
    )
    narrator.step(
        "platform-steward2",
        f"countersigned the leader's decision on {amount['item_name']}; the grant is issued",
    )
    case.lines["SW-NSRSBH"] = await api.json(
        "deputy-head",
        "POST",
        f"/v1/lines/{identifier['id']}/leader-decision",
        json={"decision": "rejected_final", "note": "纳税人识别号属纳税人保密信息，依法不予提供"},
    )
    narrator.step("deputy-head", f"settled {identifier['item_name']}: refused for good (依法保密)")
    return agenda


async def request_population_extract(case: Case) -> None:
    """A second, small request: person-level population data, granted only masked."""
    api, narrator = case.api, case.narrator
    await api.call(
        "drc-requester",
        "POST",
        "/v1/scenarios",
        json={
            "code": POPULATION_SCENARIO,
            "name": "人口发展监测",
            "description": "常住人口结构、分布与流动监测，支撑人口发展规划",
            "phase": "development",
            "members": ["drc", "platform"],
        },
        expect=201,
    )
    request = await api.json(
        "drc-requester",
        "POST",
        "/v1/requests",
        json={
            "scenario_code": POPULATION_SCENARIO,
            "title": "实有人口明细数据需求",
            "purpose": "分街镇、分年龄段人口结构分析",
            "usage_start": case.today.isoformat(),
            "usage_end": case.usage_end.isoformat(),
            "lines": [{"dataset_code": "PT-RKMX-D"}],
        },
        expect=201,
    )
    submitted = await api.json("drc-requester", "POST", f"/v1/requests/{request['id']}/submit")
    line = submitted["lines"][0]
    narrator.step(
        "drc-requester",
        f"requested {line['dataset_title']} (PT-RKMX-D) for scenario '{POPULATION_SCENARIO}': "
        f"{line['state']}",
    )
    declared = await _declaration(case, "platform-steward", "PT-RKMX-D", "每日更新，次日提供")
    # No masking written: the catalog declares how ID numbers and phones leave (默认脱敏方式).
    conditions: dict[str, Any] = {
        "columns": ["PT-GMSFHM", "PT-XB", "PT-CSRQ", "PT-SJHM", "PT-JZJD", "PT-RKLX"],
        "purpose": "人口结构统计分析",
        "no_reshare": True,
    }
    decision = {
        "decision": "approve_with_conditions",
        "declaration": declared,
        "conditions": conditions,
    }
    for who in ("platform-steward", "platform-steward2"):
        await api.call(who, "POST", f"/v1/lines/{line['id']}/decisions", json=decision)
    narrator.step(
        "platform-steward2",
        "second approval with conditions: no names, no re-sharing; neither steward wrote masking",
    )
    seen = await api.json("drc-requester", "GET", f"/v1/requests/{request['id']}")
    shown = ", ".join(
        f"{m['column']} {m['method']} ({m['source']})" for m in seen["lines"][0]["masked_columns"]
    )
    narrator.step("drc-requester", f"saw before accepting what arrives masked: {shown}")
    accepted = await api.json("drc-requester", "POST", f"/v1/lines/{line['id']}/accept")
    case.grants["PT-RKMX-D"] = str(accepted["grant_id"])
    grant = await api.json("drc-requester", "GET", f"/v1/grants/{accepted['grant_id']}")
    asked = conditions.get("masking", {})
    unasked = {c: m for c, m in grant["conditions"]["masking"].items() if c not in asked}
    narrator.step("drc-requester", f"accepted the conditions; grant {accepted['grant_id']} issued")
    narrator.say(
        "       masked by catalog default: "
        + ", ".join(f"{column} ({method})" for column, method in unasked.items())
        + "; neither steward asked for it"
    )


async def deliver_releases(case: Case) -> None:
    """Owners upload this period's files; a bad one is refused with its report; the requester
    downloads through its grants, masked as granted."""
    api, narrator = case.api, case.narrator
    for who, sample in (
        ("stats-steward", samples.industry_monthly(case.today)),
        ("tax-steward", samples.tax_monthly(case.today)),
        ("commerce-steward", samples.retail_monthly(case.today)),
    ):
        release = await _upload(case, who, sample, expect=201)
        narrator.step(
            who,
            f"delivered {sample.filename} for {sample.dataset_code} "
            f"({sample.period_start:%Y-%m}): {release['status']}, {release['row_count']} row(s)",
        )

    bad = samples.population_daily_with_mistakes(case.today)
    problem = await _upload(case, "platform-steward", bad, expect=422)
    narrator.step(
        "platform-steward",
        f"uploaded {bad.filename} for PT-RKMX-D: refused, {len(problem['report']['checks'])} "
        f"checks failed (release {problem['release_id']} kept as rejected):",
    )
    for check in problem["report"]["checks"]:
        examples = ", ".join(f"row {e['row']}: {e['value']!r}" for e in check["examples"][:3])
        narrator.say(
            f"       {check['column']}: {check['check']} x{check['failure_count']} ({examples})"
        )
    good = samples.population_daily(case.today)
    release = await _upload(case, "platform-steward", good, expect=201)
    narrator.step(
        "platform-steward",
        f"uploaded the corrected file: {release['status']}, {release['row_count']} rows",
    )

    case.grants["SW-SSSR"] = str(case.lines["SW-SSSR"]["grant_id"])
    tax = await api.call(
        "drc-requester",
        "GET",
        f"/v1/grants/{case.grants['SW-SSSR']}/data",
        params={"format": "csv"},
    )
    # CSV downloads start with a byte order mark, for Excel; utf-8-sig reads past it.
    case.downloads["SW-SSSR"] = tax.content.decode("utf-8-sig")
    narrator.step(
        "drc-requester",
        f"downloaded 税收收入 through its grant: {_pairs(case.downloads['SW-SSSR'])}",
    )
    masked = await api.call(
        "drc-requester",
        "GET",
        f"/v1/grants/{case.grants['PT-RKMX-D']}/data",
        params={"format": "csv"},
    )
    case.downloads["PT-RKMX-D"] = masked.content.decode("utf-8-sig")
    rows = case.downloads["PT-RKMX-D"].strip().splitlines()
    narrator.step(
        "drc-requester",
        f"downloaded the population extract through its grant: {len(rows) - 1} rows, "
        "masked; the first ones:",
    )
    for row in rows[:4]:
        narrator.say(f"       {row}")


async def deliver_platform_copies(case: Case) -> None:
    """The platform delivers its copy (已归集) of every granted dataset no owner delivered, for
    its latest complete period; the owner-held data without a copy waits for its owner."""
    api, narrator = case.api, case.narrator
    some_line = next(iter(case.lines.values()))
    request = await api.json("drc-requester", "GET", f"/v1/requests/{some_line['request_id']}")
    case.lines = {line["item_code"]: line for line in request["lines"]}
    granted = sorted({line["dataset_code"] for line in case.lines.values() if line["grant_id"]})
    delivered = {"TJ-GYQY-M", "SW-SSSR-M", "SWW-XFLS-M", "PT-RKMX-D"}
    copies, waiting = [], []
    for code in granted:
        if code in delivered:
            continue
        dataset = await api.json("platform-steward", "GET", f"/v1/datasets/{code}")
        if not dataset["aggregated"]:
            waiting.append(code)
            continue
        items = [(item["code"], item["data_type"]) for item in dataset["items"]]
        period = samples.latest_full_period(dataset["update_cycle"], samples.district_today())
        await _upload(
            case,
            "platform-steward",
            samples.indicator_file(code, items, period),
            expect=201,
            copy="platform",
        )
        copies.append(code)
    narrator.step(
        "platform-steward",
        f"delivered the platform copies (已归集) of {len(copies)} granted datasets for their "
        f"latest periods; {len(waiting)} without a copy wait for their owners "
        f"({', '.join(waiting)})",
    )


SERIES_ITEM = "TJ-GYZCZ"


async def download_series(case: Case) -> None:
    """Twelve months of 规模以上工业总产值: the platform's copy holds the history, the owner's
    file the latest month, and the grant serves each period from the preferred copy."""
    api, narrator = case.api, case.narrator
    dataset = await api.json("platform-steward", "GET", "/v1/datasets/TJ-GYQY-M")
    items = [(item["code"], item["data_type"]) for item in dataset["items"]]
    latest = samples.latest_full_period("monthly", samples.district_today())
    months = samples.months_back(latest[1], 12)
    for period in months[:-1]:
        sample = samples.indicator_file("TJ-GYQY-M", items, period)
        await _upload(case, "platform-steward", sample, expect=201, copy="platform")
    narrator.step(
        "platform-steward",
        f"delivered the platform copy's history of TJ-GYQY-M: {months[0][0]:%Y-%m} to "
        f"{months[-2][0]:%Y-%m}",
    )
    grant = str(case.lines[SERIES_ITEM]["grant_id"])
    case.grants[SERIES_ITEM] = grant
    series = await api.call(
        "drc-requester",
        "GET",
        f"/v1/grants/{grant}/data",
        params={
            "format": "csv",
            "from": f"{months[0][0]:%Y-%m}",
            "to": f"{months[-1][0]:%Y-%m}",
            "periods": "true",
        },
    )
    case.downloads[SERIES_ITEM] = series.text
    rows = list(csv.DictReader(io.StringIO(series.text.lstrip("\ufeff"))))
    copies = [c.strip() for c in series.headers.get("x-release-copy", "").split(",")]
    narrator.step(
        "drc-requester",
        f"downloaded 规模以上工业总产值 for {months[0][0]:%Y-%m}..{months[-1][0]:%Y-%m}: "
        f"{len(rows)} monthly rows with period_start/period_end "
        f"({copies.count('platform')} from the platform copy, {copies.count('owner')} from the "
        "owner's):",
    )
    narrator.say(
        "       " + "  ".join(f"{row['period_start'][:7]} {row[SERIES_ITEM]}" for row in rows[-4:])
    )


async def check_downloads(case: Case, board: Mapping[str, Any]) -> None:
    """Try every grant of the scenario as the lead would: what downloads is what the board
    counts as delivered."""
    downloaded = 0
    granted = [line for line in case.lines.values() if line["grant_id"]]
    for line in granted:
        response = await case.api.http.get(
            f"/v1/grants/{line['grant_id']}/data",
            headers={"Authorization": f"Bearer {case.api.tokens['drc-requester']}"},
        )
        if response.status_code not in (200, 403, 404):  # 403: for in-platform use only
            raise DemoError(f"download of {line['item_code']}: {response.status_code}")
        downloaded += response.status_code == 200
    if downloaded != board["delivered"]:
        raise DemoError(f"{downloaded} grants download but the board counts {board['delivered']}")
    case.narrator.say(
        f"  tried every grant as the lead: {downloaded} of {len(granted)} download, "
        "as the board counts them delivered"
    )


def _pairs(text: str) -> str:
    header, *rows = list(csv.reader(io.StringIO(text)))
    return "; ".join(
        ", ".join(f"{name} = {value}" for name, value in zip(header, row, strict=True))
        for row in rows
    )


async def _upload(
    case: Case, who: str, sample: samples.Sample, *, expect: int, copy: str = "owner"
) -> dict[str, Any]:
    response = await case.api.call(
        who,
        "POST",
        f"/v1/datasets/{sample.dataset_code}/releases",
        files={"file": (sample.filename, sample.content, "text/csv")},
        data={
            "period_start": sample.period_start.isoformat(),
            "period_end": sample.period_end.isoformat(),
            "copy": copy,
        },
        expect=expect,
    )
    result: dict[str, Any] = response.json()
    return result


async def close_audit(case: Case) -> tuple[dict[str, Any], Path]:
    """The auditor verifies the hash chain and exports it for safekeeping."""
    api, narrator = case.api, case.narrator
    verification: dict[str, Any] = await api.json("auditor", "GET", "/v1/audit/verify")
    verdict = "intact" if verification["ok"] else f"BROKEN at {verification['first_bad_seq']}"
    narrator.step(
        "auditor",
        f"verified the audit chain: {verdict}, {verification['count']} events, head "
        f"{verification['head_hash'][:16]}…",
    )
    export = case.directory / AUDIT_EXPORT_FILE
    response = await api.call("auditor", "GET", "/v1/audit/export", params={"format": "jsonl"})
    export.write_text(response.text, encoding="utf-8")
    count = response.text.count("\n") - 1
    narrator.step("auditor", f"exported {count} events and the trailer to {export}")
    return verification, export


# (shell variable, account, role as people say it) for `broker serve --demo`
TOKEN_HOLDERS = (
    ("DRC_TOKEN", "drc-requester", "requester"),
    ("STATS_TOKEN", "stats-steward", "steward"),
    ("TAX_TOKEN", "tax-steward", "steward"),
    ("COMMERCE_TOKEN", "commerce-steward", "steward"),
    ("LEADER_TOKEN", "deputy-head", "leader"),
    ("AUDITOR_TOKEN", "auditor", "auditor"),
    ("ADMIN_TOKEN", "admin", "platform admin"),
)


def token_sheet(demo: Demo, base_url: str) -> str:
    """One ready-to-paste token per role, how to renew it, and requests to try."""
    minutes = demo.settings.token_ttl_seconds // 60
    departments = {d.code: d.name for d in district()}
    out = [f"Tokens, one per role (valid {minutes} minutes; paste the export lines into a shell):"]
    for variable, name, role in TOKEN_HOLDERS:
        person = demo.credentials[name]
        out.append(f"  # {role}, {departments[person.department]} ({name})")
        out.append(f"  export {variable}='{person.access_token}'")
        out.append(
            f"  #   renew: curl -s -u '{name}:{person.client_secret}' "
            f"-d grant_type=client_credentials {base_url}/oauth/token"
        )
    bearer = 'curl -s -H "Authorization: Bearer $'
    out += [
        "",
        "Try:",
        f"  {bearer}DRC_TOKEN\" '{base_url}/v1/scenarios/{SCENARIO}/readiness?format=csv'",
        f"  {bearer}DRC_TOKEN\" '{base_url}/v1/grants/{demo.grants['PT-RKMX-D']}/data?format=csv'",
        f"  {bearer}TAX_TOKEN\" '{base_url}/v1/datasets/SW-SSSR-M/releases'",
        f"  {bearer}LEADER_TOKEN\" '{base_url}/v1/coordination/agenda?format=markdown'",
        f"  {bearer}AUDITOR_TOKEN\" '{base_url}/v1/audit/verify'",
        f"Interactive docs: {base_url}/docs (Authorize, then paste a token)",
    ]
    return "\n".join(out)
