"""Completing onboarding, with real commits and real app instances: the company made once
(across a restart, through another instance, under a concurrent double click), its owner able
to log in, and the welcome mail with its PDF received by a real SMTP server, once."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader
from sqlalchemy import func, select, text

from tenantry.config import Settings
from tenantry.kit.db import Database, session_scope
from tenantry.onboarding.models import OnboardingCompletion
from tenantry.onboarding.welcome import send_welcome
from tenantry.tenants.models import Tenant
from tests.onboarding.test_profile import SEED_PROFILE
from tests.support.asserts import assert_problem
from tests.support.platform import make_app, running
from tests.support.world import CommittedWorld

BASE = "/api/v1/onboarding"
PASSWORD = "a long enough password"


def _profile(name: str, email_: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {**SEED_PROFILE, "company_name": name}
    if email_:
        body["user_email"] = email_
    return body


def _unique(prefix: str = "owner") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@corp.example"


class Inbox:
    """An SMTP server on 127.0.0.1 (aiosmtpd) keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd checks its server on the port given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
async def instance(
    settings: Settings, committed_db: Database, tmp_path: Path
) -> AsyncIterator[Any]:
    app = make_app(settings, committed_db, jobs_in_process=False, mail_outbox_dir=tmp_path)
    async with running(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def _start(client: Any, name: str, email_: str | None) -> str:
    r = await client.post(f"{BASE}/company-profile", json=_profile(name, email_))
    assert r.status_code == 201, r.text
    return str(r.json()["session_id"])


async def _complete(client: Any, session_id: str, **body: Any) -> Any:
    return await client.post(
        f"{BASE}/complete-demo-experience", json={"session_id": session_id, **body}
    )


async def test_a_session_survives_a_restart_and_completes_once_on_any_instance(
    mode_settings: Settings, committed: CommittedWorld
) -> None:
    owner = _unique()
    first_db = Database(mode_settings.database_url or "", mode_settings)
    app_a = make_app(mode_settings, first_db, jobs_in_process=False)
    async with running(app_a) as a:
        session_id = await _start(a, "Café Ñandú Ltd", owner)
        app_b = make_app(mode_settings, committed.db, jobs_in_process=False)
        async with running(app_b) as b:  # another instance, the same state store
            assert (await b.get(f"{BASE}/sessions/{session_id}")).status_code == 200
            r = await _complete(b, session_id, password=PASSWORD, full_name="Ada Lovelace")
            assert r.status_code == 201, r.text
    await first_db.dispose()
    done = r.json()
    committed.made(uuid.UUID(done["tenant_id"]))
    assert (done["created"], done["password"], done["email"]) == (True, None, owner)
    assert done["tenant_slug"].startswith("cafe-nandu-ltd")

    restarted_db = Database(mode_settings.database_url or "", mode_settings)
    app_c = make_app(mode_settings, restarted_db, jobs_in_process=False)
    try:
        async with running(app_c) as c:  # a restart: a new app on a new engine
            me = await c.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {done['access_token']}"}
            )
            assert (me.status_code, me.json()["role"]) == (200, "owner")
            state = (await c.get(f"{BASE}/sessions/{session_id}")).json()
            assert (state["step"], state["tenant_id"], state["demo_mode"]) == (
                "completed",
                done["tenant_id"],
                False,
            )
            again = await _complete(c, session_id)
            assert again.status_code == 200, again.text
            assert (again.json()["tenant_id"], again.json()["created"]) == (
                done["tenant_id"],
                False,
            )
            login = await c.post("/api/v1/auth/login", json={"email": owner, "password": PASSWORD})
            assert login.status_code == 200
    finally:
        await restarted_db.dispose()


async def test_a_double_click_makes_one_company(instance: Any, committed: CommittedWorld) -> None:
    name = f"Twice {uuid.uuid4().hex[:6]}"
    session_id = await _start(instance, name, _unique())
    first, second = await asyncio.gather(
        _complete(instance, session_id), _complete(instance, session_id)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 201]
    assert first.json()["tenant_id"] == second.json()["tenant_id"]
    committed.made(uuid.UUID(first.json()["tenant_id"]))
    made = next(r.json() for r in (first, second) if r.status_code == 201)
    assert made["password"] and len(made["password"]) >= 16  # made for the owner, shown once
    async with session_scope(committed.db.sessionmaker) as session:
        count = await session.scalar(
            select(func.count()).select_from(Tenant).where(Tenant.name == name)
        )
        jobs = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'session_id' = :s"),
            {"s": session_id},
        )
    assert (count, jobs) == (1, 1)  # one company, one welcome job, queued with it
    login = await instance.post(
        "/api/v1/auth/login", json={"email": made["email"], "password": made["password"]}
    )
    assert login.status_code == 200


async def test_completion_needs_a_live_session_and_an_email(instance: Any) -> None:
    r = await _complete(instance, "y" * 32)
    assert assert_problem(r, 404)["detail"] == "Session expired or not found"
    session_id = await _start(instance, "No Mail Inc", None)
    problem = assert_problem(await _complete(instance, session_id), 422)
    assert problem["errors"][0]["loc"] == ["body", "email"]
    problem = assert_problem(await _complete(instance, session_id, password="short"), 422)
    assert problem["errors"][0]["loc"] == ["body", "password"]
    problem = assert_problem(await _complete(instance, session_id, email="nope"), 422)
    assert problem["errors"][0]["loc"] == ["body", "email"]


def _pdf_text(message: EmailMessage) -> str:
    [pdf] = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "tenantry-welcome.pdf"
    reader = PdfReader(io.BytesIO(pdf.get_content()))
    # Words as the reader sees them, whatever the lines the layout broke them into.
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


async def test_the_welcome_mail_arrives_once_with_its_report(
    settings: Settings,
    committed_db: Database,
    committed: CommittedWorld,
    inbox: tuple[Inbox, int],
) -> None:
    received, port = inbox
    app = make_app(
        settings, committed_db, jobs_in_process=False, smtp_url=f"smtp://127.0.0.1:{port}"
    )
    owner = _unique()
    async with running(app) as client:
        session_id = await _start(client, "Welcome Works GmbH", owner)
        quote = await client.post(
            f"{BASE}/pricing",
            json={
                "session_id": session_id,
                "suites": ["marketing_optimization", "analytics"],
                "billing_cycle": "annual",
            },
        )
        assert quote.status_code == 201, quote.text
        r = await _complete(client, session_id, password=PASSWORD)
        assert r.status_code == 201, r.text
        committed.made(uuid.UUID(r.json()["tenant_id"]))
        platform = app.state.platform
        await platform.jobs.work(platform, queues=["mail"], wait=False)

        [message] = received.messages
        assert message["To"] == owner and "Welcome Works GmbH" in message["Subject"]
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert plain is not None and "Marketing Optimisation" in plain.get_content()
        assert html is not None and "<strong>Welcome Works GmbH</strong>" in html.get_content()
        report = _pdf_text(message)
        assert "Welcome Works GmbH" in report and "Analytics" in report
        assert f"€{quote.json()['total']}" in report.replace(",", "")

        assert not await send_welcome(platform, session_id)  # a retried job sends nothing
        assert len(received.messages) == 1
    async with session_scope(committed.db.sessionmaker) as session:
        done = await session.get(OnboardingCompletion, session_id)
        assert done is not None and done.welcome_sent_at is not None
        assert done.welcome_sent_to == f"smtp://127.0.0.1:{port}"
        assert done.welcome_message_id == message["Message-ID"]


async def test_without_smtp_the_welcome_mail_is_an_eml_in_the_outbox(
    instance: Any, committed: CommittedWorld, tmp_path: Path
) -> None:
    session_id = await _start(instance, "Outbox Ltd", _unique())
    r = await _complete(instance, session_id)
    committed.made(uuid.UUID(r.json()["tenant_id"]))
    platform = instance.app.state.platform
    await platform.jobs.work(platform, queues=["mail"], wait=False)
    [eml] = await asyncio.to_thread(lambda: list(tmp_path.glob("*.eml")))
    raw = await asyncio.to_thread(eml.read_bytes)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Outbox Ltd" in _pdf_text(message)  # type: ignore[arg-type]
