"""The OpenAPI document is part of the product: stable operation ids, RFC 9457 problem
responses instead of FastAPI's default validation schema, and the bearer scheme."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from tenantry.kit.errors import PROBLEM_MEDIA_TYPE, FieldError, Problem, problems


def operation_id(route: APIRoute) -> str:
    """The endpoint function's name: stable across releases, unique (checked by a test)."""
    return route.name


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": "Send the same key to retry safely: the first answer is given again (for"
    " 24 h) and the work done once; 409 while the first is running, 422 for another body"
    " under the same key (draft-ietf-httpapi-idempotency-key-header).",
}


Link = tuple[str, str, str, str]  # (POST path, target operationId, parameter, expression)


def add_links(paths: dict[str, Any], extra: tuple[Link, ...] = ()) -> None:
    """OpenAPI links from what a POST creates to what takes its id: the 201 of `POST /things`
    feeds `{thing_id}` of every operation under `/things/{thing_id}` (its own id,
    `$response.body#/id`), and `extra` says the rest. A generated client (and the schema
    fuzzer, stateful) follows them."""

    def link(post: dict[str, Any], target: dict[str, Any], name: str, expression: str) -> None:
        created = next(post["responses"][c] for c in ("201", "202") if c in post["responses"])
        created.setdefault("links", {})[target["operationId"]] = {
            "operationId": target["operationId"],
            "parameters": {name: expression},
        }

    for path, item in paths.items():
        post = item.get("post")
        if post is None or not {"201", "202"} & set(post["responses"]):
            continue
        under = re.compile(re.escape(path) + r"/\{(\w+)\}(/[^{}]+)?")
        for other, other_item in paths.items():
            found = under.fullmatch(other)
            if found is not None:
                for target in other_item.values():
                    link(post, target, found.group(1), "$response.body#/id")
    by_id = {op["operationId"]: op for item in paths.values() for op in item.values()}
    for path, target, name, expression in extra:
        link(paths[path]["post"], by_id[target], name, expression)


def install(
    app: FastAPI,
    *,
    unlimited_paths: tuple[str, ...] = (),
    idempotency_exempt: tuple[str, ...] = (),
    links: tuple[Link, ...] = (),
) -> None:
    """`unlimited_paths`: prefixes the rate limiter skips; every other operation documents its
    429, and every operation the 431 of the header limits and the 504 of the request timeout
    (all made by middleware). Every POST but under `idempotency_exempt` takes an
    `Idempotency-Key` header (`kit.idempotency`), with its 400, 409 and 422."""
    platform = problems(429, 431, 504)
    idempotent = problems(400, 409, 422)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=app.servers,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components["Problem"].pop("$defs", None)
        components["FieldError"] = FieldError.model_json_schema()
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        problem_ref = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for route, path in schema.get("paths", {}).items():
            limited = not route.startswith(unlimited_paths)
            for method, op in path.items():
                responses = op.setdefault("responses", {})
                if method == "post" and not route.startswith(idempotency_exempt):
                    op.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
                    for status, response in idempotent.items():
                        responses.setdefault(str(status), response)
                for status, response in platform.items():
                    if status != 429 or limited:
                        responses.setdefault(str(status), response)
                if "422" in responses:
                    responses["422"] = {
                        "description": "Request validation failed; `errors` names each field",
                        "content": problem_ref,
                    }
        add_links(schema.get("paths", {}), links)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
