"""The wheel works on its own: installed without `-e`, away from the source tree.

The Docker image installs the wheel, so anything the package reads at run time (the Alembic
migrations above all) must be inside it. Building a wheel and a virtualenv takes tens of seconds
and says nothing about the database, so this runs once, on the SQLite pass only.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from support.database import ON_POSTGRES
from support.processes import REPO_ROOT, SECRET_PREFIX

pytestmark = pytest.mark.skipif(
    ON_POSTGRES, reason="packaging does not depend on the database; it runs on the SQLite pass"
)
LEFT_OUT = shutil.ignore_patterns(
    ".*", "__pycache__", "*.egg-info", "build", "dist", "tests", "bench", "openapi", "*.db*"
)


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the wheel installed (not editable); its dependencies come from ours."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    # Built from a copy, so the build leaves no build/ or egg-info behind in the checkout.
    shutil.copytree(REPO_ROOT, source, ignore=LEFT_OUT)
    wheels = work / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, ".", cwd=source)
    (wheel,) = wheels.glob("data_resource_broker-*.whl")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    purelib = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work
        ).strip()
    )
    # Only the path is added: .pth files there (our own editable install's among them) are not run.
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", wheel, cwd=work)
    return venv


def test_the_installed_wheel_migrates_and_bootstraps_outside_the_source_tree(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "PYTHON"))}
    env["BROKER_DATABASE_URL"] = f"sqlite+aiosqlite:///{elsewhere / 'broker.db'}"
    imported = run(
        installed / "bin" / "python",
        "-c",
        "import broker; print(broker.__file__)",
        cwd=elsewhere,
        env=env,
    )
    assert Path(imported.strip()).is_relative_to(installed), imported
    broker = installed / "bin" / "broker"
    assert "upgraded to head" in run(broker, "db", "upgrade", cwd=elsewhere, env=env)
    created = run(broker, "accounts", "bootstrap", cwd=elsewhere, env=env)
    assert SECRET_PREFIX in created
    assert (elsewhere / "broker.db").exists()
    assert list(elsewhere.iterdir()) == [elsewhere / "broker.db"]
