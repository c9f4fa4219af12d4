"""The OpenAPI document: refined so generated clients work, rendered the same way every time."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from broker.config import Settings
from broker.migrations import PROJECT_ROOT

OPENAPI_PATH = PROJECT_ROOT / "openapi" / "openapi.json"
CLIENT_CONFIG_PATH = PROJECT_ROOT / "openapi" / "client-config.yml"
CLIENT_PATH = PROJECT_ROOT / "openapi" / "clients" / "python"


def openapi_document() -> dict[str, Any]:
    from broker.app import create_app

    # The document never depends on the database, so any URL will do for building the app.
    app = create_app(Settings(database_url="sqlite+aiosqlite://"))
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(path: Path = OPENAPI_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(openapi_document()), encoding="utf-8")
    return path


class ClientGenerationFailed(RuntimeError):
    pass


def generate_client(output: Path = CLIENT_PATH, *, spec: Path = OPENAPI_PATH) -> Path:
    """Regenerate the Python client package from the exported document with openapi-python-client.

    Warnings fail the run: a warning means an operation or a type is missing from the client.
    """
    if importlib.util.find_spec("openapi_python_client") is None:
        raise ClientGenerationFailed(
            "openapi-python-client is not installed; install the dev extra: pip install -e '.[dev]'"
        )
    # Its post-generation hooks run `ruff`, which lives next to this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    done = subprocess.run(  # noqa: S603 (fixed program, arguments are paths)
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--config",
            str(CLIENT_CONFIG_PATH),
            "--meta",
            "setup",
            "--output-path",
            str(output),
            "--overwrite",
            "--fail-on-warning",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ClientGenerationFailed(f"openapi-python-client failed:\n{done.stdout}{done.stderr}")
    return output
