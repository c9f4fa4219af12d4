"""FastAPI's OpenAPI document, refined where generated clients would be wrong or awkward."""

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

SCHEMAS = "#/components/schemas/"
FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# RFC 6749 §5.2 fixes the token endpoint's error shape; every other 4xx is a problem document.
NOT_PROBLEM_PATHS = frozenset({"/oauth/token"})

PROBLEM_SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "title": "Problem",
        "description": "An RFC 9457 problem document: `code` is stable, `detail` says what to "
        "fix, `errors` points at each bad field. Some problems add extension members.",
        "type": "object",
        "required": ["type", "title", "status", "detail", "instance", "code"],
        "properties": {
            "type": {"type": "string", "title": "Type"},
            "title": {"type": "string", "title": "Title"},
            "status": {"type": "integer", "title": "Status"},
            "detail": {"type": "string", "title": "Detail"},
            "instance": {"type": "string", "title": "Instance"},
            "code": {"type": "string", "title": "Code"},
            "request_id": {"type": "string", "title": "Request Id"},
            "errors": {
                "type": "array",
                "title": "Errors",
                "items": {"$ref": SCHEMAS + "ProblemFieldError"},
            },
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "description": "One thing wrong with the input: where it is and how to fix it.",
        "type": "object",
        "required": ["location", "message", "type"],
        "properties": {
            "location": {"type": "string", "title": "Location"},
            "message": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Type"},
        },
    },
}


def serve_refined_openapi(app: FastAPI) -> None:
    """Make the app build (once) and serve the refined document, at /openapi.json and /docs."""
    build = app.openapi

    def refined() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(build())
        return app.openapi_schema

    app.openapi = refined  # type: ignore[method-assign]


def refine(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document, changed (in place) where generated clients would be wrong or awkward."""
    _mark_uploads_binary(document)
    _name_form_bodies(document)
    _drop_null_from_form_fields(document)
    _require_if_match(document)
    _declare_problems(document)
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            yield path, operation


def _form_bodies(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(media type, body schema) of each form request body, with references resolved."""
    schemas = document.get("components", {}).get("schemas", {})
    for _path, operation in _operations(document):
        content = operation.get("requestBody", {}).get("content", {})
        for media_type in FORM_MEDIA_TYPES:
            schema = content.get(media_type, {}).get("schema")
            if schema is None:
                continue
            ref = schema.get("$ref", "")
            yield media_type, schemas.get(ref.removeprefix(SCHEMAS), {}) if ref else schema


def _file_nodes(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if schema.get("type") == "string" and "contentMediaType" in schema:
        yield schema
    for member in (*schema.get("anyOf", ()), *schema.get("oneOf", ())):
        yield from _file_nodes(member)
    if isinstance(schema.get("items"), dict):
        yield from _file_nodes(schema["items"])


def _mark_uploads_binary(document: dict[str, Any]) -> None:
    """File fields in `format: binary`, the OpenAPI 3.0 spelling generators understand.

    Pydantic 2 writes uploads in the 3.1 spelling (`contentMediaType`), which
    openapi-python-client reads as a plain string and sends as a text field without a file name;
    FastAPI then refuses it, so the generated upload method could never work.
    """
    for media_type, body in _form_bodies(document):
        if media_type != "multipart/form-data":
            continue
        for field in body.get("properties", {}).values():
            for node in _file_nodes(field):
                del node["contentMediaType"]
                node["format"] = "binary"


def _name_form_bodies(document: dict[str, Any]) -> None:
    """`Body_import_catalog_sheet` becomes `ImportCatalogSheetForm`, a name a client reads well."""
    schemas = document.get("components", {}).get("schemas", {})
    renames: dict[str, str] = {}
    for _path, operation in _operations(document):
        content = operation.get("requestBody", {}).get("content", {})
        for media_type in FORM_MEDIA_TYPES:
            ref = content.get(media_type, {}).get("schema", {}).get("$ref", "")
            old = ref.removeprefix(SCHEMAS)
            if old.startswith("Body_") and old in schemas:
                new = "".join(part.capitalize() for part in old.removeprefix("Body_").split("_"))
                renames[old] = new + "Form"
                content[media_type]["schema"]["$ref"] = SCHEMAS + renames[old]
    for old, new in renames.items():
        schemas[new] = schemas.pop(old)
        schemas[new]["title"] = new


def _drop_null_from_form_fields(document: dict[str, Any]) -> None:
    """An optional form field is left out, never null: a form has no way to say null.

    Declared nullable, it invites clients to send the text `null`, which the field refuses.
    """
    for _media_type, body in _form_bodies(document):
        for name, field in body.get("properties", {}).items():
            members = [m for m in field.get("anyOf", ()) if m.get("type") != "null"]
            if len(members) == len(field.get("anyOf", ())):
                continue
            rest = {k: v for k, v in field.items() if k != "anyOf"}
            single = len(members) == 1
            body["properties"][name] = (
                {**rest, **members[0]} if single else {**rest, "anyOf": members}
            )


# What broker.kit.etags.version_from_if_match takes: our ETag `"N"`, weak or not, quoted or not.
IF_MATCH_PATTERN = r'^(W/)?"?[0-9]{1,18}"?$'


def _require_if_match(document: dict[str, Any]) -> None:
    """If-Match is an ETag we issued, and required where its absence is answered 428.

    The route takes it as optional so that it can answer RFC 6585's 428 problem rather than
    FastAPI's 422, which leaves FastAPI declaring it optional and of any text.
    """
    for _path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "header" or parameter["name"].lower() != "if-match":
                continue
            # A header is absent or a string; FastAPI's `null` would be sent as the text "null".
            parameter["schema"] = {
                "type": "string",
                "pattern": IF_MATCH_PATTERN,
                "examples": ['"3"'],
                "title": parameter.get("schema", {}).get("title", "If-Match"),
            }
            if "428" in operation.get("responses", {}):
                parameter["required"] = True


def _declare_problems(document: dict[str, Any]) -> None:
    """Declare the problem documents the API really answers with, in place of FastAPI's default.

    FastAPI announces `422 HTTPValidationError` (`detail` as a list); our 422 is a problem whose
    `detail` is a string, which a generated client would fail to parse. Undeclared 4xx answers
    would come back unparsed; a `4XX` problem response makes them typed.
    """
    problem = {"application/problem+json": {"schema": {"$ref": SCHEMAS + "Problem"}}}
    validation = {"application/json": {"schema": {"$ref": SCHEMAS + "HTTPValidationError"}}}
    for path, operation in _operations(document):
        responses = operation.setdefault("responses", {})
        if responses.get("422", {}).get("content") == validation:
            del responses["422"]
        if path in NOT_PROBLEM_PATHS:
            continue
        for status, response in responses.items():
            if status[0] in "45" and not response.get("content"):
                response["content"] = problem
        responses.setdefault(
            "4XX",
            {
                "description": "A problem (RFC 9457): what went wrong and how to fix it.",
                "content": problem,
            },
        )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"{SCHEMAS}{unused}"' not in json.dumps(document):
            schemas.pop(unused, None)
    schemas.update(PROBLEM_SCHEMAS)
