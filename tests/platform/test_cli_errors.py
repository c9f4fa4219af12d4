"""Expected failures of the `broker` command: one line saying what went wrong and what to do,
exit 1, no traceback; `broker --debug` shows the traceback (issue 16)."""

import subprocess
from pathlib import Path

import pytest

from broker.demo import DATA
from support.processes import BROKER_SCRIPT, REPO_ROOT, environment, free_port


def broker(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BROKER_SCRIPT, *args],
        env=environment(database_url),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed; fails the test on anything else."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_db_upgrade_in_a_missing_directory_says_to_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    line = one_line_failure(broker(sqlite_url(missing / "broker.db"), "db", "upgrade"))
    assert f"the directory {missing} does not exist" in line
    assert f"mkdir -p {missing}" in line
    assert not missing.exists()


def test_a_database_without_the_schema_says_to_upgrade_it(tmp_path: Path) -> None:
    line = one_line_failure(broker(sqlite_url(tmp_path / "empty.db"), "keys", "list"))
    assert "has no broker schema yet" in line
    assert "run `broker db upgrade`" in line


def test_an_unreachable_postgresql_says_so_without_the_password() -> None:
    url = f"postgresql+psycopg://broker:s3cret@127.0.0.1:{free_port()}/broker"
    line = one_line_failure(broker(url, "keys", "list"))
    assert line.startswith("cannot connect to the database postgresql+psycopg://broker:***@")
    assert "s3cret" not in line


def test_downgrade_to_an_unknown_revision_names_it_and_the_forms_it_takes(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "broker.db")
    assert broker(url, "db", "upgrade").returncode == 0
    line = one_line_failure(broker(url, "db", "downgrade", "banana"))
    assert "'banana'" in line
    assert "relative step such as -1" in line


def test_downgrade_takes_a_relative_step_as_a_revision_not_an_option(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "broker.db")
    assert broker(url, "db", "upgrade").returncode == 0
    done = broker(url, "db", "downgrade", "-1")
    assert done.returncode == 0, done.stderr
    assert "(at head)" not in broker(url, "db", "current").stdout


def test_catalog_import_of_a_missing_file_names_the_file(database_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "目录.xlsx"
    line = one_line_failure(broker(database_url, "catalog", "import", str(missing)))
    assert (
        line == f"{missing}: no such file or directory; check the path (and that its folder exists)"
    )


def test_a_refused_list_prints_its_row_problems_without_a_traceback(
    database_url: str, tmp_path: Path
) -> None:
    listing = tmp_path / "departments.csv"
    listing.write_text("部门编码,部门名称,部门类型\ntax,区税务局,局\nstats,区统计局,部\n")
    done = broker(database_url, "departments", "import", str(listing))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    summary, *rows = done.stderr.strip().splitlines()
    assert "nothing was imported" in summary
    assert rows == [
        "  row 3: 部门类型 '部' is not a kind of department; write platform, bureau, street or "
        "enterprise (平台、委办局、街镇、企业)."
    ]


def test_a_secrets_file_in_a_missing_directory_is_refused_before_anything_is_created(
    database_url: str, tmp_path: Path
) -> None:
    secrets = tmp_path / "missing" / "secrets.csv"
    line = one_line_failure(
        broker(
            database_url,
            "accounts",
            "import",
            str(DATA / "accounts.csv"),
            "--secrets-file",
            str(secrets),
        )
    )
    assert line.startswith(f"{secrets}: no such file or directory")


@pytest.mark.parametrize("debug", [False, True])
def test_debug_shows_the_traceback_that_is_otherwise_hidden(tmp_path: Path, debug: bool) -> None:
    flags = ["--debug"] if debug else []
    done = broker(sqlite_url(tmp_path / "broker.db"), *flags, "db", "downgrade", "banana")
    assert done.returncode == 1
    assert ("Traceback" in done.stderr or "CommandError" in done.stderr) is debug, done.stderr
