"""The checked-in OpenAPI document, rendered the same way every time so drift shows in diffs."""

import json
from pathlib import Path
from typing import Any

from broker.app import create_app
from broker.config import Settings
from broker.migrations import PROJECT_ROOT

OPENAPI_PATH = PROJECT_ROOT / "openapi" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    # The document never depends on the database, so any URL will do for building the app.
    app = create_app(Settings(database_url="sqlite+aiosqlite://"))
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(path: Path = OPENAPI_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(openapi_document()), encoding="utf-8")
    return path
