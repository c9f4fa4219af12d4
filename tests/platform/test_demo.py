"""`broker demo` and `broker serve --demo`: the economic case a newcomer runs first.

The demo always uses the embedded SQLite default in its own directory, so these tests ignore
BROKER_TEST_DATABASE_URL.
"""

import codecs
import csv
import io
import json
import os
import re
import subprocess
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import httpx
import pytest

from broker.audit.chain import GENESIS_HASH, compute_hash
from broker.demo import samples, scenario
from support.processes import BROKER_SCRIPT, READY_TIMEOUT_SECONDS, free_port, stop

# department code -> (items, granted, delivered, fresh, available, approved, pending, escalated,
# rejected, withdrawn)
AFTER = {
    "stats": (22, 22, 20, 20, 20, 2, 0, 0, 0, 0),
    "commerce": (12, 12, 4, 4, 0, 12, 0, 0, 0, 0),
    "tax": (10, 9, 8, 8, 2, 7, 0, 0, 1, 0),
    "finance": (6, 6, 6, 6, 6, 0, 0, 0, 0, 0),
    "market": (6, 6, 6, 6, 6, 0, 0, 0, 0, 0),
    "housing": (5, 5, 5, 5, 5, 0, 0, 0, 0, 0),
    "hrss": (5, 5, 3, 3, 3, 2, 0, 0, 0, 0),
    "platform": (5, 5, 5, 5, 3, 2, 0, 0, 0, 0),
    "scitech": (5, 5, 5, 5, 5, 0, 0, 0, 0, 0),
    "culture": (4, 4, 4, 4, 4, 0, 0, 0, 0, 0),
    "drc": (4, 4, 4, 4, 4, 0, 0, 0, 0, 0),
    "finsvc": (4, 4, 4, 4, 4, 0, 0, 0, 0, 0),
    "invest": (4, 4, 4, 4, 4, 0, 0, 0, 0, 0),
    "planning": (3, 3, 3, 3, 3, 0, 0, 0, 0, 0),
}
ROW = re.compile(r"^\s+(?P<name>\S.*?) \((?P<code>[a-z]+)\)\s+(?P<counts>\d+(?:\s+\d+){9})$")
TOTAL = re.compile(
    r"^\s+合计 TOTAL \((?P<departments>\d+) departments\)\s+(?P<counts>\d+(?:\s+\d+){9})$"
)


def printed_boards(output: str) -> list[dict[str, tuple[int, ...]]]:
    """Each readiness table in the output: department code -> its counts, plus 'TOTAL'."""
    boards: list[dict[str, tuple[int, ...]]] = []
    for line in output.splitlines():
        if line.strip().startswith("部门 department"):
            boards.append({})
        elif boards and (row := ROW.match(line)):
            boards[-1][row["code"]] = tuple(int(n) for n in row["counts"].split())
        elif boards and (total := TOTAL.match(line)):
            boards[-1]["TOTAL"] = tuple(int(n) for n in total["counts"].split())
            assert int(total["departments"]) == len(boards[-1]) - 1
    return boards


def verified_export(path: Path) -> int:
    """Recompute the exported hash chain from the file alone; the number of events."""
    *events, last = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    previous = GENESIS_HASH
    for event in events:
        assert event["prev_hash"] == previous, event["seq"]
        document = {k: v for k, v in event.items() if k != "hash"}
        assert compute_hash(previous, document) == event["hash"], event["seq"]
        previous = event["hash"]
    trailer = last["trailer"]
    assert (trailer["count"], trailer["last_hash"]) == (len(events), previous)
    return len(events)


def test_demo_plays_95_items_from_14_departments_to_a_verified_audit_export(
    tmp_path: Path,
) -> None:
    printed: list[str] = []
    demo = scenario.run(tmp_path / "demo", out=printed.append)
    output = "\n".join(printed)

    before, after = printed_boards(output)
    assert len(before) == len(after) == 15, "14 departments and the total"
    assert before["TOTAL"] == (95, 69, 0, 0, 69, 0, 24, 0, 2, 0), "nothing delivered yet"
    assert "coverage: 69/95 ready" in output
    assert {code: counts for code, counts in after.items() if code != "TOTAL"} == AFTER
    assert after["TOTAL"] == (95, 94, 81, 81, 69, 25, 0, 0, 1, 0)
    assert "tried every grant as the lead: 81 of 94 download" in output
    assert "coverage: 94/95 ready" in output
    assert "区住房和城乡建设管理委员会 (housing)" in output
    assert (demo.before["coverage"], demo.after["coverage"]) == ("69/95 ready", "94/95 ready")

    assert demo.agenda == tmp_path / "demo" / "coordination-agenda.md"
    agenda = demo.agenda.read_text(encoding="utf-8")
    assert "区税务局 (tax)" in agenda
    assert "SW-YNSE 企业应纳税额 | escalated" in agenda
    assert demo.verification["ok"] is True
    assert verified_export(demo.audit_export) == demo.verification["count"] + 1  # + the export
    actions = {json.loads(line).get("action") for line in demo.audit_export.open()}
    assert {
        "line.leader_decide",
        "grant.issued",
        "release.published",
        "release.rejected",
        "data.downloaded",
    } <= actions

    # Neither steward wrote masking: the catalog's defaults masked the extract, shown beforehand.
    assert (
        "saw before accepting what arrives masked: PT-GMSFHM hash (default), "
        "PT-SJHM partial (default)" in output
    )
    assert "masked by catalog default: PT-GMSFHM (hash), PT-SJHM (partial)" in output

    # The bad file was refused with its report; the requester got the good one, masked.
    assert "refused, 3 checks failed" in output
    assert "PT-GMSFHM: pattern x2" in output
    assert "税收收入 through its grant: SW-SSSR = 38.62" in output
    header, *rows = demo.downloads["PT-RKMX-D"].strip().splitlines()
    assert header == "PT-GMSFHM,PT-XB,PT-CSRQ,PT-SJHM,PT-JZJD,PT-RKLX", "no names"
    people = samples.population_rows()
    assert len(rows) == len(people)
    for row, person in zip(rows, people, strict=True):
        identity, _sex, born, phone, *_ = row.split(",")
        assert re.fullmatch(r"[0-9a-f]{32}", identity)
        assert identity != person[0]
        assert born == person[3]
        assert phone == (f"{str(person[4])[:3]}****{str(person[4])[-4:]}" if person[4] else "")
    # A year of monthly industrial output: eleven months from the platform copy, the latest month
    # from the owner's file, each row with its period.
    series = list(csv.DictReader(io.StringIO(demo.downloads["TJ-GYZCZ"].lstrip("\ufeff"))))
    assert [row["period_start"][:7] for row in series] == [
        f"{start:%Y-%m}"
        for start, _ in samples.months_back(date.fromisoformat(series[-1]["period_end"]), 12)
    ]
    assert series[-1]["TJ-GYZCZ"] == "168.42"
    assert (
        "12 monthly rows with period_start/period_end "
        "(11 from the platform copy, 1 from the owner's)" in output
    )

    clear = [str(v) for person in people for v in (person[0], person[4]) if v]
    assert not [value for value in clear if value in output], "nothing printed unmasked"


def test_demo_refuses_a_directory_that_already_holds_a_database(tmp_path: Path) -> None:
    (tmp_path / scenario.DATABASE_FILE).write_bytes(b"")
    with pytest.raises(scenario.DemoError, match="already exists"):
        scenario.run(tmp_path, out=lambda _line: None)
    assert (tmp_path / scenario.DATABASE_FILE).read_bytes() == b"", "left untouched"


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}


def test_broker_demo_command_prints_both_boards_from_any_working_directory(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [BROKER_SCRIPT, "demo", "--dir", str(tmp_path / "demo")],
        env=environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    before, after = printed_boards(done.stdout)
    assert before["TOTAL"][0] == after["TOTAL"][0] == 95
    assert after["TOTAL"][1] == 94
    assert f"audit export (JSON Lines): {tmp_path / 'demo' / 'audit.jsonl'}" in done.stdout
    assert not (tmp_path / "broker.db").exists(), "nothing written outside --dir"

    again = subprocess.run(
        [BROKER_SCRIPT, "demo", "--dir", str(tmp_path / "demo")],
        env=environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_serve_demo_prints_tokens_that_download_masked_data(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with ExitStack() as stack:
        output = stack.enter_context(log.open("wb"))
        process = subprocess.Popen(
            [
                BROKER_SCRIPT,
                "serve",
                "--demo",
                "--dir",
                str(tmp_path / "demo"),
                "--port",
                str(port),
            ],
            env=environment(),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        stack.callback(stop, process)
        base = f"http://127.0.0.1:{port}"

        # seeding comes first, so allow for it on top of the usual start-up time
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS + 90
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        text = log.read_text(encoding="utf-8")
        tokens = dict(re.findall(r"export (\w+_TOKEN)='([^']+)'", text))
        assert set(tokens) == {
            "DRC_TOKEN",
            "STATS_TOKEN",
            "TAX_TOKEN",
            "COMMERCE_TOKEN",
            "LEADER_TOKEN",
            "AUDITOR_TOKEN",
            "ADMIN_TOKEN",
        }
        download = re.search(rf"'({re.escape(base)}/v1/grants/[^']+/data\?format=csv)'", text)
        assert download is not None, text
        data = httpx.get(
            download[1], headers={"Authorization": f"Bearer {tokens['DRC_TOKEN']}"}, timeout=30
        )
        assert data.status_code == 200, data.text
        assert data.content.startswith(codecs.BOM_UTF8 + b"PT-GMSFHM,PT-XB,"), "opens in Excel"
        assert "****" in data.text
        refused = httpx.get(
            download[1], headers={"Authorization": f"Bearer {tokens['TAX_TOKEN']}"}, timeout=30
        )
        assert refused.status_code in (403, 404), "only the grantee department downloads"
        board = httpx.get(
            f"{base}/v1/scenarios/econ/readiness",
            headers={"Authorization": f"Bearer {tokens['LEADER_TOKEN']}"},
            timeout=30,
        )
        assert board.json()["coverage"] == "94/95 ready"
