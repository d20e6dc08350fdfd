"""Mail (`kit.mail`) through a real SMTP server (aiosmtpd on 127.0.0.1, in a thread), into an
outbox folder without one, and what a refused connection or a wrong password becomes."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from tenantry.config import Settings
from tenantry.kit.mail import (
    Attachment,
    Mailer,
    MailError,
    SmtpTarget,
    compose,
    describe_smtp,
    parse_smtp_url,
)

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
USER, PASSWORD = "mailer@example.com", "s3cret:p@ss/word"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Inbox:
    """The aiosmtpd handler: every message accepted, and the logins tried."""

    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (USER, PASSWORD))


def serve(inbox: Inbox, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp_port(inbox: Inbox) -> Iterator[int]:
    yield from serve(inbox)


AUTH_WITHOUT_TLS = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def auth_port(inbox: Inbox) -> Iterator[int]:
    yield from serve(
        inbox, authenticator=inbox.authenticate, auth_required=True, auth_require_tls=False
    )


def settings_for(**values: Any) -> Settings:
    return Settings(_env_file=None, **{"smtp_url": None, "smtp_timeout_s": 5, **values})


def welcome(message_id: str | None = None) -> EmailMessage:
    return compose(
        sender="Tenantry <hello@tenantry.example>",
        to="Zoë Ñandú <zoe@example.com>",
        subject="Welcome to Tenantry, Café Ñandú",
        text="Hello Zoë,\nyour quote is attached.\n",
        html="<p>Hello Zoë,</p><p>your quote is <b>attached</b>.</p>",
        attachments=[Attachment("welcome-report.pdf", PDF, "application/pdf")],
        message_id=message_id,
    )


def assert_welcome(raw: bytes) -> None:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed["Subject"] == "Welcome to Tenantry, Café Ñandú"
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.com"
    assert parsed["To"].addresses[0].display_name == "Zoë Ñandú"
    assert parsed["Message-ID"] and parsed["Date"]
    alternative, attachment = parsed.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    # CRLF on the wire (policy SMTP), so CRLF in what is read back
    assert plain.get_content().replace("\r\n", "\n") == "Hello Zoë,\nyour quote is attached.\n"
    assert "<b>attached</b>" in html.get_content()
    assert list(parsed.iter_attachments()) == [attachment]
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "welcome-report.pdf"
    assert attachment.get_content() == PDF


def files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def test_compose_without_attachments_is_alternative_only() -> None:
    message = compose(sender="a@x.example", to="b@y.example", subject="s", text="t", html="<p>h")
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"].endswith("@x.example>")
    assert message["Date"]


def test_compose_refuses_a_header_with_a_line_break() -> None:
    with pytest.raises(ValueError):
        compose(
            sender="a@x.example",
            to="b@y.example",
            subject="hi\r\nBcc: everyone@example.com",
            text="t",
            html="h",
        )


def test_smtp_url_parsing() -> None:
    target = parse_smtp_url("smtp://mailer%40example.com:s3cret%3Ap%40ss%2Fword@mail.example")
    assert target == SmtpTarget("mail.example", 587, False, USER, PASSWORD)
    assert PASSWORD not in repr(target) and "s3cret" not in repr(target)
    assert parse_smtp_url("smtps://mail.example").port == 465
    assert parse_smtp_url("smtps://mail.example").use_tls
    assert parse_smtp_url("SMTP://mail.example:2525").port == 2525
    assert describe_smtp("smtp://u:pw@[::1]:25") == "smtp://[::1]:25"
    for bad in ("http://mail.example", "smtp://", "smtp://u:pw@mail.example:port"):
        with pytest.raises(ValueError) as caught:
            parse_smtp_url(bad)
        assert "pw" not in str(caught.value)


async def test_sends_through_smtp(inbox: Inbox, smtp_port: int) -> None:
    mailer = Mailer(settings_for(smtp_url=f"smtp://127.0.0.1:{smtp_port}"))

    where = await mailer.send(welcome())

    assert where == f"smtp://127.0.0.1:{smtp_port}"
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "hello@tenantry.example"
    assert envelope.rcpt_tos == ["zoe@example.com"]
    assert isinstance(envelope.original_content, bytes)
    assert_welcome(envelope.original_content)


@AUTH_WITHOUT_TLS
async def test_logs_in_with_the_url_credentials(inbox: Inbox, auth_port: int) -> None:
    url = f"smtp://mailer%40example.com:s3cret%3Ap%40ss%2Fword@127.0.0.1:{auth_port}"
    mailer = Mailer(settings_for(smtp_url=url))

    where = await mailer.send(welcome())

    assert inbox.logins == [(USER, PASSWORD)]
    assert len(inbox.envelopes) == 1
    assert where == f"smtp://127.0.0.1:{auth_port}"
    assert "s3cret" not in where and "mailer" not in where


@AUTH_WITHOUT_TLS
async def test_a_wrong_password_is_a_mail_error(inbox: Inbox, auth_port: int) -> None:
    mailer = Mailer(settings_for(smtp_url=f"smtp://{USER}:wrong-pw@127.0.0.1:{auth_port}"))

    with pytest.raises(MailError) as caught:
        await mailer.send(welcome())

    assert inbox.envelopes == []
    assert caught.value.__cause__ is not None
    assert "wrong-pw" not in str(caught.value)


async def test_a_refused_connection_is_a_mail_error() -> None:
    port = free_port()  # nothing listens there any more
    mailer = Mailer(settings_for(smtp_url=f"smtp://user:pw-123@127.0.0.1:{port}"))

    with pytest.raises(MailError) as caught:
        await mailer.send(welcome())

    assert caught.value.__cause__ is not None
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "pw-123" not in str(caught.value)


async def test_without_smtp_writes_to_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "outbox"
    mailer = Mailer(settings_for(mail_outbox_dir=outbox))

    where = await mailer.send(welcome(message_id="<welcome/42@tenantry.example>"))

    [written] = files(outbox)  # no temporary file left beside it
    assert Path(where) == written
    assert written.name.endswith("-welcome_42_tenantry.example.eml")
    assert_welcome(written.read_bytes())


async def test_outbox_files_do_not_collide(tmp_path: Path) -> None:
    mailer = Mailer(settings_for(mail_outbox_dir=tmp_path))

    first = await mailer.send(welcome())
    second = await mailer.send(welcome())

    assert first != second
    assert len(files(tmp_path)) == 2
