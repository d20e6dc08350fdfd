"""Schema fuzzing: schemathesis reads the app's own OpenAPI document and generates requests for
every operation (valid ones, and invalid ones the schema forbids), sent in process through the
real ASGI app as a company member, a company owner and a platform administrator. Every answer
must be no 5xx, a status code the operation documents, of its documented content type (every
error `application/problem+json`), with a body matching its documented schema.

Path parameters are, in turn, generated (unknown ids: 404s) and the caller's own rows (made
through the API first, `test_isolation_matrix.company`), so operations are reached past their
lookups. And statefully, along the document's own links (`kit.openapi.add_links`): each
link's POST is generated and sent, and what it created feeds the linked operations' cases.

The run's size is `FUZZ_EXAMPLES` examples per operation, mode and caller (default
5: well inside the CI budget, ~2,000 requests); a longer run is

    FUZZ_EXAMPLES=100 script/test tests/security/test_schema_fuzz.py

Hypothesis is derandomised here (the same cases every run); `FUZZ_SEED=<n>` varies them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.test_isolation_matrix import KINDS, company
from tests.support.world import Account, World

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Paths whose parameters are not a company's rows (`test_isolation_matrix.NOT_TENANT_ROWS`).
OWN_PARAMETERS = {"provider": "corp"}


def _draw(strategy: SearchStrategy[Any], n: int) -> list[Any]:
    """`n` cases (fewer when the schema allows fewer), the same every run."""
    cases: list[Any] = []

    @seed(SEED)
    @settings(
        max_examples=n,
        database=None,
        derandomize=SEED == 0,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
        deadline=None,
    )
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    with contextlib.suppress(Unsatisfiable):  # nothing forbidden to send: no parameters
        collect()
    return cases


def _cases(app: FastAPI, ids: dict[str, str]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(app.openapi())
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = re.findall(r"\{(\w+)\}", operation.path)
        own = {
            n: ids[KINDS[n]] if n in KINDS else OWN_PARAMETERS[n]
            for n in names
            if n in KINDS or n in OWN_PARAMETERS
        }
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            found += _draw(operation.as_strategy(generation_mode=mode), EXAMPLES)
            if own and len(own) == len(names):
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=own)
                found += _draw(strategy, EXAMPLES)
    return found


async def _send(client: httpx.AsyncClient, case: Any, who: Account) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    headers = {
        k: v
        for k, v in kwargs.pop("headers").items()
        if k.lower() not in ("authorization", "connection", "user-agent")
    }
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):  # a raw body: httpx names it `content`
        kwargs["content"] = kwargs.pop("data")
    return await client.request(**kwargs, headers={**headers, **who.headers})


@pytest.mark.parametrize("role", ["member", "owner", "platform admin"])
async def test_every_operation_answers_as_documented(world: World, app: FastAPI, role: str) -> None:
    if role == "platform admin":
        tenant = await world.tenant()
        caller = await world.user(tenant, "admin", account_type="internal_employee")
        _, ids = await company(world)
    else:
        owner, ids = await company(world)
        caller = owner if role == "owner" else await world.user(owner.tenant_id, "member")
    cases = _cases(app, ids)
    assert len({(c.method, c.path) for c in cases}) >= 60  # every operation, or near
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for case in cases:
        response = await _send(world.client, case, caller)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:
            found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            first = "; ".join(str(e).strip().splitlines()[0][:200] for e in found)
            failures.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: {first}"
            )
    print(f"{role}: {len(cases)} requests, statuses {dict(sorted(statuses.items()))}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(sorted(set(failures))[:40])
    assert statuses[200] + statuses[201] + statuses[204] > len(cases) // 10  # not only refusals


def _pointer(body: Any, expression: str) -> Any:
    """A `$response.body#/a/b` runtime expression against a decoded body."""
    for part in expression.removeprefix("$response.body#/").split("/"):
        body = body[part]
    return body


async def test_responses_feed_the_operations_they_link_to(world: World, app: FastAPI) -> None:
    owner, _ = await company(world)
    spec = app.openapi()
    schema = schemathesis.openapi.from_dict(spec)
    followed: Counter[str] = Counter()
    failures: list[str] = []
    for item in spec["paths"].values():
        post = item.get("post")
        if post is None:
            continue
        links = [link for r in post["responses"].values() for link in r.get("links", {}).values()]
        if not links:
            continue
        # what deletes the new row goes last: what follows a delete finds nothing, rightly
        links.sort(
            key=lambda link: schema.find_operation_by_id(link["operationId"]).method == "delete"
        )
        source = schema.find_operation_by_id(post["operationId"])
        for case in _draw(source.as_strategy(), EXAMPLES):
            made = await _send(world.client, case, owner)
            if made.status_code not in (201, 202):
                continue
            for link in links:
                target = schema.find_operation_by_id(link["operationId"])
                given = {n: _pointer(made.json(), e) for n, e in link["parameters"].items()}
                strategy = target.as_strategy(path_parameters=given)
                for follow in _draw(strategy, 2):
                    response = await _send(world.client, follow, owner)
                    followed[f"{response.status_code}"] += 1
                    try:
                        follow.validate_response(response, checks=CHECKS)
                    except (AssertionError, FailureGroup) as exc:
                        failures.append(f"{link['operationId']} -> {response.status_code}: {exc}")
                    if response.status_code == 404 and follow.method != "DELETE":
                        failures.append(f"{link['operationId']}: the linked id was not found")
    print(f"followed links: {dict(followed)}")
    assert not failures, "\n".join(failures[:20])
    assert sum(followed.values()) >= 20
