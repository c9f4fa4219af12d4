import json
from collections import Counter
from typing import Any

from broker.openapi.export import OPENAPI_PATH, openapi_document, render


def test_committed_openapi_document_is_current() -> None:
    committed = OPENAPI_PATH.read_text(encoding="utf-8")
    assert committed == render(openapi_document()), (
        "openapi/openapi.json is stale; run `broker openapi export` and commit it"
    )


def test_schema_names_read_well_in_generated_clients() -> None:
    names = list(openapi_document()["components"]["schemas"])
    bad = [
        n
        for n in names
        if "__" in n or n.endswith(("-Input", "-Output")) or "[" in n or n.startswith("Body_")
    ]
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


def _multipart_bodies(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    schemas = document["components"]["schemas"]
    bodies = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:
                schema = content["multipart/form-data"]["schema"]
                name = schema["$ref"].removeprefix("#/components/schemas/")
                bodies[f"{method.upper()} {path}"] = schemas[name]
    return bodies


def test_every_multipart_file_field_is_format_binary() -> None:
    """openapi-python-client makes a `File` only of `format: binary`; pydantic's 3.1 spelling
    (`contentMediaType`) becomes a text field that the server refuses as an upload."""
    bodies = _multipart_bodies(openapi_document())
    assert "POST /v1/catalog/import" in bodies
    for operation, body in bodies.items():
        nodes = [
            node
            for field in body["properties"].values()
            for member in (field, *field.get("anyOf", ()))
            for node in (member, member.get("items", {}))
        ]
        assert [node for node in nodes if "contentMediaType" in node] == [], operation
        assert any(node.get("format") == "binary" for node in nodes), f"{operation} takes no file"


def test_errors_are_declared_as_problems_not_fastapi_validation_errors() -> None:
    document = openapi_document()
    assert "HTTPValidationError" not in json.dumps(document)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path == "/oauth/token":
                continue
            assert operation["responses"]["4XX"]["content"] == problem, path
