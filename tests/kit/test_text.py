"""Text the database can store (`kit.text`): the types themselves; every input that used to
reach PostgreSQL and answer 500, now a 422 naming the field; and a property over every string
field of every request body (and every string parameter) of the app, found in its OpenAPI
document so that a new schema is covered without touching this file."""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from tenantry.kit.text import (
    JSON_OBJECT_BOUNDS,
    MAX_JSON_DEPTH,
    MAX_JSON_INT,
    MAX_JSON_ITEMS,
    MAX_JSON_KEY_LENGTH,
    CheckedKeys,
    Email,
    JsonObject,
    Text,
    text,
)
from tests.support.asserts import assert_problem
from tests.support.openapi import json_bodies, minimal_body, resolve
from tests.support.world import Account, World

NUL = "a\x00b"
SURROGATE = "a\ud800b"
BAD = {"nul": (NUL, "must not contain NUL characters"), "surrogate": (SURROGATE, "unpaired")}
API = "/api/v1"

# Every code point, surrogates (Cs) and controls (Cc) included; NUL and lone surrogates also
# drawn on purpose, since a uniform draw over all of Unicode rarely lands on them.
ANY_CHARACTER = st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]),
)
ANY_TEXT = st.text(alphabet=ANY_CHARACTER, max_size=40)


def unstorable(value: str) -> bool:
    return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def errors(adapter: TypeAdapter[Any], value: Any) -> list[Any]:
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python(value)
    return caught.value.errors(include_url=False, include_input=False)


# -- the types ------------------------------------------------------------------------------

TEXT = TypeAdapter(Text)
EMAIL = TypeAdapter(Email)
JSON_OBJECT = TypeAdapter(JsonObject)
FLAGS = TypeAdapter(Annotated[dict[str, bool], CheckedKeys])


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("\x00", "nul_character", "must not contain NUL characters"),
        ("name\x00", "nul_character", "must not contain NUL characters"),
        ("\ud800", "unpaired_surrogate", "must not contain unpaired surrogates"),
        ("x\udfffy", "unpaired_surrogate", "must not contain unpaired surrogates"),
        ("\ud83d\ude00", "unpaired_surrogate", "must not contain unpaired surrogates"),
    ],
)
def test_text_refuses_nul_and_surrogates(value: str, kind: str, message: str) -> None:
    # A pair of surrogates as two code points is no more encodable than one; JSON parsing
    # joins a valid `\ud83d\ude00` pair into one code point before it gets here.
    [error] = errors(TEXT, value)
    assert (error["type"], error["msg"]) == (kind, message)


@pytest.mark.parametrize(
    "value", ["", "plain", "tab\tnew\nline\x01\x1f\x7f", "é ß 東京 😀", "\ufffd\uffff\U0010ffff"]
)
def test_text_keeps_everything_else(value: str) -> None:
    assert TEXT.validate_python(value) == value


def test_bounds_are_the_strings_own_even_when_optional() -> None:
    class Body(BaseModel):
        name: Annotated[str, text(min_length=1, max_length=5)]
        nick: Annotated[str, text(min_length=1, max_length=5)] | None = None
        code: Annotated[str, text(pattern=r"^[A-Z]{3}$")] | None = None

    schema = Body.model_json_schema()["properties"]
    assert schema["name"] | {"title": "_"} == {
        "type": "string",
        "minLength": 1,
        "maxLength": 5,
        "title": "_",
    }
    assert schema["nick"]["anyOf"][0] == {"type": "string", "minLength": 1, "maxLength": 5}
    assert schema["code"]["anyOf"][0] == {"type": "string", "pattern": "^[A-Z]{3}$"}
    for field, value, kind in [
        ("name", "", "string_too_short"),
        ("name", "toolong", "string_too_long"),
        ("nick", "", "string_too_short"),
        ("nick", "toolong", "string_too_long"),
        ("code", "eur", "string_pattern_mismatch"),
        ("nick", "a\x00", "nul_character"),
        ("code", "\ud800", "unpaired_surrogate"),
    ]:
        data = {"name": "ok", field: value}
        [error] = errors(TypeAdapter(Body), data)
        assert (error["loc"], error["type"]) == ((field,), kind)


def test_email_refuses_both_with_the_same_message() -> None:
    assert EMAIL.validate_python("Someone@Example.com") == "Someone@example.com"
    for value, message in [
        ("a\x00b@example.com", "must not contain NUL characters"),
        ("ab@exam\x00ple.com", "must not contain NUL characters"),
        ("a\ud800@example.com", "must not contain unpaired surrogates"),
        ('"x\ud800" <ab@example.com>', "must not contain unpaired surrogates"),
    ]:
        [error] = errors(EMAIL, value)
        assert error["msg"] == message
    assert "not a valid email" in errors(EMAIL, "nope")[0]["msg"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a\x00": 1}, "$: a key must not contain NUL characters"),
        ({"a": "\x00"}, "$.a: must not contain NUL characters"),
        ({"a": {"b": [1, {"c\ud800": 1}]}}, "$.a.b[1]: a key must not contain unpaired surrogates"),
        ({"a": {"b": [1, "x\udc00"]}}, "$.a.b[1]: must not contain unpaired surrogates"),
        ({"a": ["x" * MAX_JSON_KEY_LENGTH, {"k" * 129: 1}]}, "$.a[1]: a key must be at most 128"),
        ({"a": math.nan}, "$.a: numbers must be finite"),
        ({"a": [1.5, -math.inf]}, "$.a[1]: numbers must be finite"),
        ({"a": MAX_JSON_INT + 1}, "$.a: integers must be between -2^53 and 2^53"),
        ({"a": -MAX_JSON_INT - 1}, "$.a: integers must be between -2^53 and 2^53"),
        ({"a": {1, 2}}, "$.a: not a JSON value"),
        ({"a": {1: "x"}}, "$.a: a key must be a string"),
    ],
)
def test_json_object_checks_every_key_and_value(value: dict[str, Any], message: str) -> None:
    [error] = errors(JSON_OBJECT, value)
    assert error["type"] == "json_value"
    assert error["msg"].startswith(message), error["msg"]


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: {"a": [{"a": [...]}]} alternating objects and arrays."""
    value: Any = "leaf"
    for level in range(depth - 1, 0, -1):
        value = {"a": value} if level % 2 == 0 else [value]
    return {"a": value}


def test_json_object_bounds() -> None:
    assert JSON_OBJECT.validate_python(nested(MAX_JSON_DEPTH))
    assert "at most 8 levels" in errors(JSON_OBJECT, nested(MAX_JSON_DEPTH + 1))[0]["msg"]
    # Far deeper than Python's recursion limit: refused at the bound, without recursion.
    assert "at most 8 levels" in errors(JSON_OBJECT, nested(100_000))[0]["msg"]
    flat = {"a": list(range(MAX_JSON_ITEMS - 1))}
    assert JSON_OBJECT.validate_python(flat) == flat
    flat["b"] = []
    assert "at most 1000 members" in errors(JSON_OBJECT, flat)[0]["msg"]
    assert "at most 1000 members" in errors(JSON_OBJECT, {"a": [0] * 10**6})[0]["msg"]
    fine = {"k" * MAX_JSON_KEY_LENGTH: [MAX_JSON_INT, -MAX_JSON_INT, 1.5e300, None, True, ""]}
    assert JSON_OBJECT.validate_python(fine) == fine
    assert "8 levels" in JSON_OBJECT_BOUNDS
    assert "1000 members" in JSON_OBJECT_BOUNDS


def test_checked_keys_come_before_the_values() -> None:
    # The value's error would name the key in its `loc`; the key's own error names no key.
    [error] = errors(FLAGS, {"x\ud800": "not a bool"})
    assert (error["loc"], error["msg"]) == ((), "a key must not contain unpaired surrogates")
    [error] = errors(FLAGS, {"beta": "not a bool"})
    assert error["loc"] == ("beta",)
    assert FLAGS.validate_python({"beta": True}) == {"beta": True}


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_text_refuses_exactly_what_cannot_be_stored(value: str) -> None:
    try:
        result = TEXT.validate_python(value)
    except ValidationError:
        assert unstorable(value)
    else:
        assert not unstorable(value)
        result.encode("utf-8")  # what asyncpg does with it


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=4))
def test_json_objects_that_pass_are_storable(value: dict[str, Any]) -> None:
    try:
        result = JSON_OBJECT.validate_python(value)
    except ValidationError:
        return
    # What PostgreSQL gets: JSON without NaN or Infinity, as UTF-8, with no \u0000 escape.
    encoded = json.dumps(result, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert b"\\u0000" not in encoded


# -- through the app: the inputs that answered 500 ------------------------------------------


@pytest.fixture
async def actor(world: World) -> Account:
    """An owner of their company who is also a platform admin: reaches every route."""
    return await world.user(await world.tenant(), "owner", account_type="internal_employee")


@pytest.fixture
async def member(world: World, actor: Account) -> Account:
    return await world.user(actor.tenant_id, "member", login=False)


async def send(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """`body` as JSON with every non-ASCII character escaped: a lone surrogate travels as
    `\\ud800`, as a client would send it (httpx cannot encode one itself)."""
    content = json.dumps(body, ensure_ascii=True).encode("ascii")
    return await client.request(
        method, path, content=content, headers={**headers, "content-type": "application/json"}
    )


def new_user(**fields: Any) -> dict[str, Any]:
    return {
        "email": f"new-{uuid.uuid4().hex[:10]}@example.com",
        "full_name": "New One",
        "password": "long enough pw",
    } | fields


def _crashers() -> list[Any]:
    cases = []
    for kind, (bad, _) in BAD.items():
        for path in ("/users", "/admin/users/internal"):
            for field in ("full_name", "email", "password"):
                value = bad + "@example.com" if field == "email" else bad * 5
                cases.append(("POST", path, new_user(**{field: value}), [field], kind))
        cases += [
            ("PATCH", "/users/{member}", {"full_name": bad}, ["full_name"], kind),
            ("POST", "/api-keys", {"name": bad}, ["name"], kind),
            ("POST", "/admin/cache/clear", {"cache": bad}, ["cache"], kind),
            (
                "POST",
                "/auth/login",
                {"email": bad + "@example.com", "password": "x"},
                ["email"],
                kind,
            ),
            ("POST", "/auth/login", {"email": "{actor}", "password": bad}, ["password"], kind),
        ]
        settings_cases: list[tuple[dict[str, Any], list[Any]]] = [
            ({"timezone": bad}, ["timezone"]),
            ({"locale": bad}, ["locale"]),
            ({"currency": bad}, ["currency"]),
            ({"lead_statuses": ["new", bad]}, ["lead_statuses", 1]),
            ({"business_hours": {"mon": [{"open": bad}]}}, ["business_hours"]),
            ({"business_hours": {bad: "09:00"}}, ["business_hours"]),
            ({"branding": {"logo": {"alt": bad}}}, ["branding"]),
            ({"branding": {"colors": [{bad: "#fff"}]}}, ["branding"]),
            ({"feature_flags": {bad: True}}, ["feature_flags"]),
            ({"feature_flags": {bad: "not a bool"}}, ["feature_flags"]),
        ]
        cases += [("PATCH", "/tenant/settings", b, loc, kind) for b, loc in settings_cases]
    return [
        pytest.param(*case, id=f"{case[0]} {case[1]} {'.'.join(map(str, case[3]))} {case[4]}")
        for case in cases
    ]


async def snapshot(client: httpx.AsyncClient, actor: Account) -> list[Any]:
    """What the refused requests could have changed."""
    seen = []
    for path in ("/users", "/admin/users/internal", "/api-keys", "/tenant/settings"):
        r = await client.get(API + path, params={"per_page": 100}, headers=actor.headers)
        assert r.status_code == 200, r.text
        seen.append(r.json())
    return seen


def fill(value: Any, actor: Account, member: Account) -> Any:
    if value == "{actor}":
        return actor.email
    if isinstance(value, dict):
        return {k: fill(v, actor, member) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "loc", "kind"), _crashers())
async def test_what_used_to_answer_500_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    actor: Account,
    member: Account,
    method: str,
    path: str,
    body: dict[str, Any],
    loc: list[Any],
    kind: str,
) -> None:
    before = await snapshot(client, actor)
    url = API + path.format(member=member.id)
    r = await send(client, method, url, fill(body, actor, member), actor.headers)
    problem = assert_problem(r, 422, "validation-error")
    [error] = problem["errors"]
    assert error["loc"] == ["body", *loc]
    assert BAD[kind][1] in error["message"], error
    assert await snapshot(client, actor) == before


async def test_settings_json_out_of_bounds_is_refused_before_any_work(
    client: httpx.AsyncClient, actor: Account
) -> None:
    settings_url = API + "/tenant/settings"
    before = await snapshot(client, actor)
    for branding, message in [
        (nested(MAX_JSON_DEPTH + 1), "levels of nesting"),
        ({"a": [0] * (MAX_JSON_ITEMS + 1)}, "members and array items"),
        ({"a": 2**64}, "integers must be between"),
    ]:
        r = await send(client, "PATCH", settings_url, {"branding": branding}, actor.headers)
        [error] = assert_problem(r, 422)["errors"]
        assert error["loc"] == ["body", "branding"]
        assert message in error["message"]
    headers = {**actor.headers, "content-type": "application/json"}
    # NaN is not JSON, but Python's parser takes it (and PostgreSQL would not).
    r = await client.patch(settings_url, content=b'{"branding": {"a": NaN}}', headers=headers)
    assert "numbers must be finite" in assert_problem(r, 422)["errors"][0]["message"]
    # Nesting past the parser's own limit (within the body limit): refused while parsing.
    deep = b'{"branding": {"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}}"
    assert_problem(await client.patch(settings_url, content=deep, headers=headers), 400)
    assert await snapshot(client, actor) == before


@pytest.mark.parametrize(
    ("method", "url", "loc"),
    [
        ("POST", "/admin/cache/invalidate/a%00b@example.com", ["path", "email"]),
        ("GET", "/auth/oauth/a%00b/authorize", ["path", "provider"]),
        ("GET", "/auth/oauth/a%00b/callback", ["path", "provider"]),
        ("GET", "/auth/oauth/x/callback?code=a%00b", ["query", "code"]),
        ("GET", "/auth/oauth/x/callback?state=a%00b", ["query", "state"]),
        ("GET", "/auth/oauth/x/callback?error=a%00b", ["query", "error"]),
    ],
)
async def test_nul_in_a_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, actor: Account, method: str, url: str, loc: list[str]
) -> None:
    r = await client.request(method, API + url, headers=actor.headers)
    [error] = assert_problem(r, 422, "validation-error")["errors"]
    assert (error["loc"], error["message"]) == (loc, "must not contain NUL characters")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/cache/invalidate/%ED%A0%80@example.com",
        "/auth/oauth/%ED%A0%80/authorize",
        "/auth/oauth/x/callback?state=%ED%A0%80&code=%FF",
    ],
)
async def test_an_encoded_surrogate_in_a_url_is_not_a_surrogate(
    client: httpx.AsyncClient, actor: Account, url: str
) -> None:
    # UTF-8 has no encoding of a surrogate: %ED%A0%80 is invalid UTF-8, which the server
    # decodes to U+FFFD replacement characters (storable text) before any validation.
    method = "POST" if "invalidate" in url else "GET"
    r = await client.request(method, API + url, headers=actor.headers)
    assert_problem(r, 404)


# -- the property, over every request body and parameter of the app -------------------------


@dataclass(frozen=True)
class Slot:
    """One place a string goes: `field` of the body of `method path`, as the field's value,
    a list's item, or a free-form object's key or value."""

    method: str
    path: str
    body: dict[str, Any]
    field: str
    shape: str  # "value", "item", "key", "object value", or "extra key" (the body's own)

    def put(self, value: str) -> dict[str, Any]:
        if self.shape == "extra key":
            return {value: 1} | self.body
        placed: Any = {
            "value": value,
            "item": [value],
            "key": {value: True},
            "object value": {"k": value},
        }[self.shape]
        return self.body | {self.field: placed}


def body_slots(spec: dict[str, Any]) -> list[Slot]:
    components = spec["components"]["schemas"]
    slots = []
    for method, path, op, model in json_bodies(spec):
        props = {k: resolve(v, components) for k, v in model["properties"].items()}
        body = minimal_body(op, components)
        assert body is not None
        slots.append(Slot(method, path, body, "", "extra key"))
        for name, prop in props.items():
            kind = prop.get("type")
            if kind == "string":
                shapes = ["value"]
            elif kind == "array" and resolve(prop["items"], components).get("type") == ("string"):
                shapes = ["item"]
            elif kind == "object":
                values = prop.get("additionalProperties", True)
                shapes = ["key"] + (["object value"] if values in (True, {}) else [])
            else:
                continue
            slots += [Slot(method, path, body, name, shape) for shape in shapes]
    return slots


def parameter_slots(spec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every string path or query parameter."""
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if resolve(param["schema"], {}).get("type") == "string":
                    found.append((method.upper(), path, param["in"], param["name"]))
    return found


def test_the_slots_cover_the_known_schemas(app: Any) -> None:
    found = {(s.path.removeprefix(API), s.field, s.shape) for s in body_slots(app.openapi())}
    assert {
        ("/users", "full_name", "value"),
        ("/users", "email", "value"),
        ("/users", "password", "value"),
        ("/users/{user_id}", "full_name", "value"),
        ("/admin/users/internal", "password", "value"),
        ("/api-keys", "name", "value"),
        ("/auth/login", "password", "value"),
        ("/admin/cache/clear", "cache", "value"),
        ("/tenant/settings", "timezone", "value"),
        ("/tenant/settings", "lead_statuses", "item"),
        ("/tenant/settings", "branding", "key"),
        ("/tenant/settings", "branding", "object value"),
        ("/tenant/settings", "business_hours", "object value"),
        ("/tenant/settings", "feature_flags", "key"),
    } <= found
    params = {(p.removeprefix(API), name) for _, p, _, name in parameter_slots(app.openapi())}
    assert {
        ("/auth/oauth/{provider}/authorize", "provider"),
        ("/auth/oauth/{provider}/callback", "code"),
        ("/admin/cache/invalidate/{email}", "email"),
    } <= params


def _url(path: str, member: Account) -> str:
    """The path with its parameters filled: the member's id for a user, else a fresh UUID."""
    path = path.replace("{user_id}", str(member.id))
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def fill_fresh(body: dict[str, Any]) -> dict[str, Any]:
    """The body with fresh email addresses, so that each request could really create."""
    return {
        k: f"p-{uuid.uuid4().hex[:12]}@example.com" if k == "email" else v for k, v in body.items()
    }


async def test_every_body_slot_refuses_nul_and_a_surrogate(
    client: httpx.AsyncClient, app: Any, actor: Account, member: Account
) -> None:
    for slot in body_slots(app.openapi()):
        url = _url(slot.path, member)
        fresh = Slot(slot.method, slot.path, fill_fresh(slot.body), slot.field, slot.shape)
        r = await send(client, slot.method, url, fresh.body, actor.headers)
        assert r.status_code < 500 and r.status_code != 422, (slot, r.text)  # valid as is
        for bad, _ in BAD.values():
            r = await send(client, slot.method, url, fresh.put(bad), actor.headers)
            if slot.field:
                found = assert_problem(r, 422)["errors"]
                assert found[0]["loc"][:2] == ["body", slot.field], (slot, found)
            else:  # an unknown key: refused by `extra="forbid"`, else ignored; never stored
                assert r.status_code < 500, (slot, r.text)


PROPERTY = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(data=st.data())
async def test_no_text_in_any_body_field_answers_5xx(
    client: httpx.AsyncClient,
    app: Any,
    actor: Account,
    member: Account,
    data: st.DataObject,
) -> None:
    slots = body_slots(app.openapi())
    slot = data.draw(st.sampled_from(slots), label="slot")
    value = data.draw(ANY_TEXT, label="text")
    body = Slot(slot.method, slot.path, fill_fresh(slot.body), slot.field, slot.shape).put(value)
    r = await send(client, slot.method, _url(slot.path, member), body, actor.headers)
    assert r.status_code < 500, r.text
    if unstorable(value) and slot.field:
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][:2] == ["body", slot.field]


@PROPERTY
@given(data=st.data())
async def test_no_text_in_any_parameter_answers_5xx(
    client: httpx.AsyncClient, app: Any, actor: Account, data: st.DataObject
) -> None:
    method, path, where, name = data.draw(st.sampled_from(parameter_slots(app.openapi())))
    value = data.draw(ANY_TEXT, label="text")
    # What a client can send: UTF-8, percent-encoded (a surrogate's bytes are invalid UTF-8).
    encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
    url = path.replace("{" + name + "}", encoded) if where == "path" else path
    url = re.sub(r"\{[^}]+\}", "x", url)  # any other parameter of the path
    if where == "query":
        url += f"?{name}={encoded}"
    r = await client.request(method, url, headers=actor.headers)
    assert r.status_code < 500, r.text
    if "\x00" in value and where == "query":
        assert r.status_code == 422, r.text
