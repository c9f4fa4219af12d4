"""The 95-item case through the generated Python client, against a live server over real HTTP.

`broker openapi client` generates the `broker_client` package from the committed
openapi/openapi.json once per session; every API call below goes through it, from the catalog
upload to a release published and downloaded through a grant, so an operation or a type the
generator gets wrong (an upload, a download, a problem answer, a page) fails here. The package is
imported from the generated project directory, which is what installing it would put on the path:
it is pure Python and needs only httpx and attrs, which the dev environment has, whereas a
`pip install` would need setuptools' wheel builder or the network for an isolated build.
"""

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pytest

from broker.demo import ECONOMIC_INDICATORS_SHEET, bureaus
from support.processes import (
    BROKER_SCRIPT,
    CLI_TIMEOUT_SECONDS,
    REPO_ROOT,
    SECRET_PREFIX,
    run_broker,
    start_api,
    wait_until_ready,
)
from support.workflow import DECLARATION, all_item_codes

T = TypeVar("T")

# Who acts in the play, by department and role; each is a client account of its department.
CAST = {
    "tax-steward": ("tax", "steward"),
    "commerce-steward": ("commerce", "steward"),
    "stats-steward": ("stats", "steward"),
    "hrss-steward": ("hrss", "steward"),
    "platform-steward": ("platform", "steward"),
    "platform-steward2": ("platform", "steward"),
    "drc-requester": ("drc", "requester"),
    "leader": ("platform", "leader"),
}


@pytest.fixture(scope="session")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated client project, made once per session by the documented command."""
    output = tmp_path_factory.mktemp("generated") / "python"
    done = subprocess.run(
        [BROKER_SCRIPT, "openapi", "client", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"broker openapi client failed:\n{done.stdout}\n{done.stderr}"
    assert (output / "broker_client" / "py.typed").is_file()
    return output


@pytest.fixture
def broker_client(generated_client: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`broker_client` importable from the generated project, as an installed package would be."""
    monkeypatch.syspath_prepend(str(generated_client))
    yield
    for name in [n for n in sys.modules if n == "broker_client" or n.startswith("broker_client.")]:
        del sys.modules[name]


@pytest.fixture
def base_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A uvicorn process serving the app on this test's database."""
    with ExitStack() as stack:
        api = start_api(database_url, tmp_path / "api.log", stack)
        wait_until_ready(api)
        yield api.base_url


def expect(response: Any, status: int, kind: type[T]) -> T:
    """The parsed body of a generated client's detailed response, checked for status and type."""
    assert response.status_code == status, response.content.decode()
    assert isinstance(response.parsed, kind), response.parsed
    return response.parsed


def test_95_item_workflow_through_the_generated_client(
    database_url: str, base_url: str, broker_client: None
) -> None:
    from broker_client import AuthenticatedClient, Client
    from broker_client.api.accounts import create_account
    from broker_client.api.audit import verify_audit_chain
    from broker_client.api.catalog import get_dataset, import_catalog_sheet
    from broker_client.api.coordination import coordination_agenda, scenario_readiness
    from broker_client.api.delivery import download_grant_data, publish_release
    from broker_client.api.departments import (
        create_department,
        get_department,
        update_department,
    )
    from broker_client.api.grants import list_grants
    from broker_client.api.oauth import issue_token
    from broker_client.api.requests import (
        accept_line_conditions,
        add_request_lines,
        answer_line_question,
        countersign_leader_decision,
        create_request,
        decide_line,
        decide_lines,
        decline_line_conditions,
        escalate_line,
        get_request,
        settle_escalated_line,
        submit_request,
    )
    from broker_client.api.scenarios import create_scenario
    from broker_client.models import (
        AccessToken,
        AccountCreate,
        AccountCreated,
        Answer,
        BatchDecision,
        ChainVerification,
        Conditions,
        Countersignature,
        DatasetRead,
        DecisionsApplied,
        Declaration,
        DepartmentCreate,
        DepartmentRead,
        DepartmentUpdate,
        GrantPage,
        ImportCatalogSheetForm,
        ImportResult,
        IssueTokenBody,
        LeaderDecision,
        LineRead,
        LinesAdd,
        LinesAdded,
        OwnerDecision,
        Problem,
        PublishReleaseForm,
        ReadinessBoard,
        Reason,
        ReleaseRead,
        RequestCreate,
        RequestRead,
        ScenarioCreate,
        ScenarioRead,
    )
    from broker_client.types import UNSET, File

    anonymous = Client(base_url=base_url)

    def signed_in(client_id: str, secret: str) -> AuthenticatedClient:
        body = IssueTokenBody(
            grant_type="client_credentials", client_id=client_id, client_secret=secret
        )
        token = expect(issue_token.sync_detailed(client=anonymous, body=body), 200, AccessToken)
        return AuthenticatedClient(base_url=base_url, token=token.access_token, timeout=30.0)

    printed = run_broker(database_url, "accounts", "bootstrap", "--name", "admin")
    [secret] = [
        line.removeprefix(SECRET_PREFIX) for line in printed.splitlines() if SECRET_PREFIX in line
    ]
    admin = signed_in("admin", secret.strip())

    for bureau in bureaus():
        body = DepartmentCreate(code=bureau.code, name=bureau.name, kind="bureau")
        expect(create_department.sync_detailed(client=admin, body=body), 201, DepartmentRead)
    platform = get_department.sync_detailed("platform", client=admin)
    renamed = update_department.sync_detailed(
        "platform",
        client=admin,
        body=DepartmentUpdate(name="区城市运行管理中心"),
        if_match=platform.headers["etag"],
    )
    assert expect(renamed, 200, DepartmentRead).name == "区城市运行管理中心"

    sheet = File(
        payload=BytesIO(ECONOMIC_INDICATORS_SHEET.read_bytes()),
        file_name="目录.csv",
        mime_type="text/csv",
    )
    imported = import_catalog_sheet.sync_detailed(
        client=admin, body=ImportCatalogSheetForm(file=sheet)
    )
    result = expect(imported, 200, ImportResult)
    assert (result.rows, result.dry_run, result.updated.additional_properties) == (95, False, {})
    with ECONOMIC_INDICATORS_SHEET.open(encoding="utf-8", newline="") as handle:
        assert sorted(result.created) == sorted({row["资源代码"] for row in csv.DictReader(handle)})

    people: dict[str, AuthenticatedClient] = {}
    for name, (department, role) in CAST.items():
        account = AccountCreate(
            name=name, display_name=name, kind="client", department_code=department, roles=[role]
        )
        created = expect(
            create_account.sync_detailed(client=admin, body=account), 201, AccountCreated
        )
        assert isinstance(created.client_secret, str)
        people[name] = signed_in(name, created.client_secret)
    drc = people["drc-requester"]

    scenario = ScenarioCreate(code="econ", name="经济运行指标监测", phase="development")
    expect(create_scenario.sync_detailed(client=drc, body=scenario), 201, ScenarioRead)
    today = date.today()
    draft = expect(
        create_request.sync_detailed(
            client=drc,
            body=RequestCreate(
                scenario_code="econ",
                title="经济运行指标数据需求",
                purpose="经济运行监测分析与月度研判",
                usage_start=today,
                usage_end=today + timedelta(days=365),
            ),
        ),
        201,
        RequestRead,
    )
    pasted = add_request_lines.sync_detailed(
        draft.id, client=drc, body=LinesAdd(item_codes=all_item_codes())
    )
    assert expect(pasted, 200, LinesAdded).added == 95

    submitted = expect(
        submit_request.sync_detailed(draft.id, client=drc, idempotency_key="econ-1"),
        200,
        RequestRead,
    )
    lines = {line.item_code: line for line in submitted.lines}
    assert len(lines) == 95
    assert len({line.owner_department_code for line in lines.values()}) == 14
    states = [line.state for line in lines.values()]
    assert (
        states.count("auto_approved"),
        states.count("pending_owner"),
        states.count("rejected"),
    ) == (69, 24, 2)
    assert "税收征收管理法" in (lines["SW-YNSE"].route_reason or "")

    declaration = Declaration(**DECLARATION)

    def conditions(**changes: Any) -> Conditions:
        return Conditions(
            **{
                "aggregation_level": "district",
                "purpose": "经济运行监测",
                "no_reshare": True,
                **changes,
            }
        )

    def decide(who: str, code: str, **decision: Any) -> LineRead:
        body = OwnerDecision(**decision)
        response = decide_line.sync_detailed(lines[code].id, client=people[who], body=body)
        return expect(response, 200, LineRead)

    # Tax: conditions accepted on three, plain approval on two, a question round on one.
    for code in ("SW-SSSR", "SW-ZZS", "SW-QYSDS"):
        decided = decide(
            "tax-steward",
            code,
            decision="approve_with_conditions",
            declaration=declaration,
            conditions=conditions(),
        )
        assert decided.state == "approved_with_conditions"
        accepted = expect(
            accept_line_conditions.sync_detailed(lines[code].id, client=drc), 200, LineRead
        )
        assert accepted.state == "approved"
        assert accepted.grant_id
    for code in ("SW-GRSDS", "SW-QJSS"):
        decide("tax-steward", code, decision="approve", declaration=declaration)
    asked = decide(
        "tax-steward", "SW-SSZS", decision="needs_info", question="增速按可比口径还是现价口径？"
    )
    assert asked.state == "needs_info"
    answered = answer_line_question.sync_detailed(
        lines["SW-SSZS"].id, client=drc, body=Answer(answer="可比口径")
    )
    assert expect(answered, 200, LineRead).state == "pending_owner"
    decide("tax-steward", "SW-SSZS", decision="approve", declaration=declaration)

    # Commerce: a batch approval, conditions accepted and declined, a re-route, a refusal.
    batch = decide_lines.sync_detailed(
        client=people["commerce-steward"],
        body=BatchDecision(
            line_ids=[
                lines[c].id
                for c in (
                    "SWW-SHLSZE",
                    "SWW-SHLSZS",
                    "SWW-XEPL",
                    "SWW-WLLS",
                    "SWW-SQKL",
                    "SWW-YJJJ",
                )
            ],
            decision="approve",
            declaration=Declaration(
                update_cycle="monthly", publication_lag_days=20, sensitivity="L1"
            ),
        ),
    )
    assert {line.state for line in expect(batch, 200, DecisionsApplied).lines} == {"approved"}
    for code in ("SWW-JCKZE", "SWW-CKZE", "SWW-JKZE", "SWW-SJWZ"):
        decide(
            "commerce-steward",
            code,
            decision="approve_with_conditions",
            declaration=declaration,
            conditions=conditions(valid_until=date(2026, 12, 31)),
        )
    for code in ("SWW-JCKZE", "SWW-CKZE", "SWW-JKZE"):
        expect(accept_line_conditions.sync_detailed(lines[code].id, client=drc), 200, LineRead)
    declined = decline_line_conditions.sync_detailed(lines["SWW-SJWZ"].id, client=drc)
    assert expect(declined, 200, LineRead).state == "withdrawn"
    rerouted = decide("commerce-steward", "SWW-FWMY", decision="not_held", reroute_to="stats")
    assert (rerouted.owner_department_code, rerouted.state) == ("stats", "pending_owner")
    decide("stats-steward", "SWW-FWMY", decision="approve", declaration=declaration)
    refused = decide(
        "commerce-steward",
        "SWW-KJDS",
        decision="reject",
        reason="跨境电商数据来自海关，本委不持有明细",
        legal_basis="《政务数据共享条例》第十五条",
        declaration=declaration,
    )
    assert refused.state == "rejected"

    # Statistics decides one of two; HR approves both; the platform's L4 line needs two stewards.
    decide("stats-steward", "TJ-FWYSR", decision="approve", declaration=declaration)
    for code in ("RS-YLBX", "RS-SYBX"):
        decide("hrss-steward", code, decision="approve", declaration=declaration)
    l4 = Declaration(update_cycle="monthly", publication_lag_days=15, sensitivity="L4")
    first = decide("platform-steward", "PT-CZRK", decision="approve", declaration=l4)
    assert (first.state, first.awaiting_second_approval) == ("pending_owner", True)
    same = decide_line.sync_detailed(
        lines["PT-CZRK"].id,
        client=people["platform-steward"],
        body=OwnerDecision(decision="approve", declaration=declaration),
    )
    problem = expect(same, 409, Problem)
    assert (problem.status, problem.code) == (409, "conflict")
    assert problem.type_.startswith("https://")
    assert problem.detail
    second = decide("platform-steward2", "PT-CZRK", decision="approve", declaration=l4)
    assert second.state == "approved"
    decide("platform-steward", "PT-HJRK", decision="approve", declaration=declaration)

    # The law-refused tax lines go to coordination; the leader settles them.
    for code in ("SW-YNSE", "SW-NSRSBH"):
        escalated = escalate_line.sync_detailed(
            lines[code].id, client=drc, body=Reason(reason="经济运行监测需要，申请协调")
        )
        assert expect(escalated, 200, LineRead).state == "escalated"
    agenda = expect(coordination_agenda.sync_detailed(client=people["leader"]), 200, ReadinessBoard)
    assert {row.department_code: row.escalated for row in agenda.departments}["tax"] == 2
    settled = settle_escalated_line.sync_detailed(
        lines["SW-YNSE"].id,
        client=people["leader"],
        body=LeaderDecision(
            decision="approve_with_conditions",
            note="按行业汇总后提供，不含企业明细",
            legal_basis="《政务数据共享条例》第十五条",
            meeting_reference="2026年第12次调度会",
            conditions=conditions(aggregation_level="industry"),
        ),
    )
    # Important-grade data settled by the leader waits for a platform steward's countersignature.
    assert expect(settled, 200, LineRead).state == "awaiting_countersignature"
    countersigned = countersign_leader_decision.sync_detailed(
        lines["SW-YNSE"].id,
        client=people["platform-steward"],
        body=Countersignature(decision="countersign", note="已核对调度会纪要"),
    )
    assert expect(countersigned, 200, LineRead).state == "approved"
    final = settle_escalated_line.sync_detailed(
        lines["SW-NSRSBH"].id,
        client=people["leader"],
        body=LeaderDecision(decision="rejected_final", note="纳税人识别号属保密信息"),
    )
    assert expect(final, 200, LineRead).state == "rejected_final"

    board = expect(scenario_readiness.sync_detailed("econ", client=drc), 200, ReadinessBoard)
    assert board.coverage == "90/95 ready"
    expected = {
        # requested, available, approved, pending, unregistered, escalated, rejected, withdrawn
        "commerce": (11, 0, 9, 0, 0, 0, 1, 1),
        "stats": (23, 20, 2, 1, 0, 0, 0, 0),
        "tax": (10, 2, 7, 0, 0, 0, 1, 0),
        "platform": (5, 3, 1, 1, 0, 0, 0, 0),
        "hrss": (5, 3, 2, 0, 0, 0, 0, 0),
        "invest": (4, 4, 0, 0, 0, 0, 0, 0),
        "finance": (6, 6, 0, 0, 0, 0, 0, 0),
        "market": (6, 6, 0, 0, 0, 0, 0, 0),
        "housing": (5, 5, 0, 0, 0, 0, 0, 0),
        "planning": (3, 3, 0, 0, 0, 0, 0, 0),
        "scitech": (5, 5, 0, 0, 0, 0, 0, 0),
        "finsvc": (4, 4, 0, 0, 0, 0, 0, 0),
        "culture": (4, 4, 0, 0, 0, 0, 0, 0),
        "drc": (4, 4, 0, 0, 0, 0, 0, 0),
    }
    assert {
        row.department_code: (
            row.requested,
            row.available,
            row.approved,
            row.pending,
            row.unregistered,
            row.escalated,
            row.rejected,
            row.withdrawn,
        )
        for row in board.departments
    } == expected
    assert {o.item.split()[0] for o in board.outstanding} == {"TJ-FWYLR", "PT-HJRK", "SWW-KJDS"}

    request = expect(get_request.sync_detailed(draft.id, client=drc), 200, RequestRead)
    assert request.status == "in_progress"
    granted = {line.item_code for line in request.lines if line.grant_id}
    assert granted == {
        line.item_code for line in request.lines if line.state in ("approved", "auto_approved")
    }
    assert len(granted) == 90

    grants = []
    cursor: str | None = None
    while True:
        page = expect(
            list_grants.sync_detailed(client=drc, limit=40, cursor=cursor or UNSET), 200, GrantPage
        )
        grants += page.items
        cursor = page.next_cursor if isinstance(page.next_cursor, str) else None
        if not cursor:
            break
    assert len(grants) == len({g.id for g in grants}) == 90
    by_line = {g.line_id: g for g in grants}
    ynse = by_line[lines["SW-YNSE"].id]
    assert ynse.columns == ["SW-YNSE"]
    assert ynse.conditions.aggregation_level == "industry"
    assert by_line[lines["SWW-JCKZE"].id].valid_until.isoformat().startswith("2026-12-31T15:59:59")

    # Tax delivers October's revenue; Development and Reform downloads what its grant allows.
    grant = by_line[lines["SW-GRSDS"].id]
    assert grant.columns == ["SW-GRSDS"]
    tax = people["tax-steward"]
    dataset = expect(get_dataset.sync_detailed(grant.dataset_code, client=tax), 200, DatasetRead)
    columns = [item.code for item in dataset.items]
    assert len(columns) == 6
    rows = [[f"{n + column / 10:.2f}" for column in range(len(columns))] for n in (11, 12, 13)]

    def release_form(rows: list[list[str]]) -> PublishReleaseForm:
        text = "\n".join(",".join(row) for row in [columns, *rows]) + "\n"
        return PublishReleaseForm(
            file=File(payload=BytesIO(text.encode()), file_name="税收收入月报-2026-10.csv"),
            period_start=date(2026, 10, 1),
            period_end=date(2026, 10, 31),
        )

    broken = [rows[0], [*rows[1][:-1], "n/a"]]
    refused = publish_release.sync_detailed(
        grant.dataset_code, client=tax, body=release_form(broken)
    )
    problem = expect(refused, 422, Problem)
    assert problem.code == "validation-failed"
    assert problem["release_id"]
    [check] = problem["report"]["checks"]
    assert (check["column"], check["check"]) == (columns[-1], "data_type")
    assert check["failure_count"] == 1

    published = publish_release.sync_detailed(
        grant.dataset_code, client=tax, body=release_form(rows)
    )
    release = expect(published, 201, ReleaseRead)
    assert (release.status, release.row_count, release.source_format) == ("accepted", 3, "csv")

    granted_values = [float(row[columns.index("SW-GRSDS")]) for row in rows]
    as_csv = download_grant_data.sync_detailed(grant.id, client=drc, format_="csv", bom=False)
    [header, *values] = csv.reader(io.StringIO(expect(as_csv, 200, File).payload.read().decode()))
    assert header == ["SW-GRSDS"]
    assert [float(value) for [value] in values] == granted_values
    as_parquet = download_grant_data.sync_detailed(grant.id, client=drc, format_="parquet")
    frame = pl.read_parquet(expect(as_parquet, 200, File).payload)
    assert frame.columns == ["SW-GRSDS"]
    assert frame["SW-GRSDS"].cast(pl.Float64).to_list() == granted_values
    elsewhere = download_grant_data.sync_detailed(grant.id, client=people["hrss-steward"])
    assert expect(elsewhere, 404, Problem).code == "not-found"

    verified = expect(verify_audit_chain.sync_detailed(client=admin), 200, ChainVerification)
    assert verified.ok is True
    assert verified.count > 100
