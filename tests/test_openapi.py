import json
from collections import Counter

from broker.openapi_export import OPENAPI_PATH, openapi_document, render


def test_committed_openapi_document_is_current() -> None:
    committed = OPENAPI_PATH.read_text(encoding="utf-8")
    assert committed == render(openapi_document()), (
        "openapi/openapi.json is stale; run `broker openapi export` and commit it"
    )


def test_schema_names_read_well_in_generated_clients() -> None:
    names = list(openapi_document()["components"]["schemas"])
    bad = [n for n in names if "__" in n or n.endswith(("-Input", "-Output")) or "[" in n]
    assert bad == []


def test_operation_ids_are_unique_and_clean() -> None:
    ids = [
        operation["operationId"]
        for path in openapi_document()["paths"].values()
        for operation in path.values()
    ]
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert duplicates == []
    assert all("__" not in i and i.isidentifier() for i in ids)


def test_document_is_utf8_unescaped() -> None:
    assert "\\u" not in OPENAPI_PATH.read_text(encoding="utf-8")
    json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
