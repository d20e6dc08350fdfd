"""Reading the app's own OpenAPI document in tests: a schema with its references resolved,
and a minimal valid value of one (to build a request the validation lets through)."""

from __future__ import annotations

import uuid
from typing import Any


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return resolve(components[schema["$ref"].rsplit("/", 1)[1]], components)
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return resolve(options[0], components)
    return schema


def minimal(schema: dict[str, Any]) -> Any:
    """A valid value of a required property (a fresh address for an email)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "email":
            return f"p-{uuid.uuid4().hex[:12]}@example.com"
        if schema.get("format") == "uri":  # a public address, known without DNS
            return "https://93.184.215.14/"
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "a" * min(max(schema.get("minLength", 1), 10), schema.get("maxLength", 1000))
    if kind == "array" and schema.get("minItems", 0) > 0:
        return [minimal(schema["items"])]
    return {"boolean": True, "integer": 1, "number": 1, "array": [], "object": {}}[str(kind)]


def minimal_body(operation: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    """The operation's JSON body with only its required fields, each minimal; None when it
    takes no JSON body."""
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    model = resolve(content["application/json"]["schema"], components)
    props = {k: resolve(v, components) for k, v in model.get("properties", {}).items()}
    required = list(model.get("required", []))
    # one of several sets of fields (`anyOf` of `required`): the first set
    required += model.get("anyOf", [{}])[0].get("required", [])
    return {k: minimal(props[k]) for k in required}


def json_bodies(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(METHOD, path, the operation, its resolved JSON body schema) of every operation that
    takes a JSON body."""
    components = spec["components"]["schemas"]
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                model = resolve(content["application/json"]["schema"], components)
                found.append((method.upper(), path, op, model))
    return found
