"""Outbound mail (the onboarding welcome email): compose a standard MIME message, then hand it
to an SMTP server, or, with no server configured, drop it as an .eml file in an outbox folder.

- **Composing** (`compose`): the stdlib `email` package with the SMTP policy (CRLF line ends):
  multipart/alternative with text/plain then text/html, wrapped in multipart/mixed when there
  are attachments; `Message-ID` and `Date` always set. A header value with a line break is
  refused by the policy (`ValueError`), so no header can be smuggled in through a subject.
- **SMTP** (`SMTP_URL`): `smtp://user:password@host:port` speaks STARTTLS when the server
  offers it (port 587 by default), `smtps://...` TLS from the start (port 465); the user and
  password are URL-decoded and optional. aiosmtplib sends without blocking the event loop;
  any failure (refused connection, timeout, authentication, refused recipients) becomes
  `MailError` with the cause chained, so a job can retry.
- **Outbox** (no `SMTP_URL`, the embedded default): `<MAIL_OUTBOX_DIR>/<time>-<id>.eml`,
  written to a temporary file and renamed into place (a reader never sees half a message),
  in a worker thread.

The password never leaves `SmtpTarget`: not in its repr, a log line, an error or the answer
of `Mailer.send`, which names the server as `describe_smtp` renders it.
"""

from __future__ import annotations

import email.policy
import email.utils
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit
from uuid import uuid4

import aiosmtplib
import anyio.to_thread

from tenantry.config import Settings
from tenantry.kit.logging import get_logger

log = get_logger("tenantry.mail")

_DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class MailError(Exception):
    """The message could not be handed over; worth trying again later."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str  # "application/pdf"


@dataclass(frozen=True)
class SmtpTarget:
    """Where `SMTP_URL` points, parsed; the password is kept out of the repr."""

    hostname: str
    port: int
    use_tls: bool  # smtps: TLS from the first byte
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{'smtps' if self.use_tls else 'smtp'}://{host}:{self.port}"


def _split(url: str) -> tuple[SplitResult, int]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL has an invalid port") from None
    return parts, port or _DEFAULT_PORTS[scheme]


def parse_smtp_url(url: str) -> SmtpTarget:
    """`ValueError` (never quoting the URL, which may hold a password) when it is not one."""
    parts, port = _split(url)
    return SmtpTarget(
        hostname=parts.hostname or "",
        port=port,
        use_tls=parts.scheme.lower() == "smtps",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def describe_smtp(url: str) -> str:
    """The URL as it may be logged: scheme, host and port, no user name or password."""
    return parse_smtp_url(url).describe()


def _domain(sender: str) -> str:
    address = email.utils.parseaddr(sender)[1]
    domain = address.rpartition("@")[2]
    return domain or "tenantry.localhost"


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    attachments: Sequence[Attachment] = (),
    message_id: str | None = None,
) -> EmailMessage:
    """A message ready to send: the text and HTML versions of one body, then attachments."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or email.utils.make_msgid(domain=_domain(sender))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message


def _eml_name(message: EmailMessage, now: datetime) -> str:
    raw = str(message.get("Message-ID") or "").strip().strip("<>") or uuid4().hex
    safe = _UNSAFE_IN_NAME.sub("_", raw).strip("._")[:120] or uuid4().hex
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{safe}.eml"


def write_eml(directory: Path, message: EmailMessage) -> Path:
    """Blocking: the message as `<directory>/<time>-<id>.eml`, renamed into place whole."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _eml_name(message, datetime.now(UTC))
    data = message.as_bytes(policy=email.policy.SMTP)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".eml.tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


class Mailer:
    """Sends through `SMTP_URL`, or into `MAIL_OUTBOX_DIR` without it (module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None

    async def send(self, message: EmailMessage) -> str:
        """Where the message went: `smtp://host:port`, or the path of the .eml file."""
        if self.target is None:
            path = await anyio.to_thread.run_sync(write_eml, self.settings.mail_outbox_dir, message)
            log.info("mail written to the outbox", path=str(path))
            return str(path)
        return await self._smtp(self.target, message)

    async def _smtp(self, target: SmtpTarget, message: EmailMessage) -> str:
        where = target.describe()
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=target.hostname,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.use_tls,
                # None: STARTTLS when the server offers it; never a second handshake on smtps.
                start_tls=False if target.use_tls else None,
                timeout=self.settings.smtp_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"sending mail through {where} failed: {exc}") from exc
        if refused:
            raise MailError(f"{where} refused recipients: {', '.join(sorted(refused))}")
        log.info("mail sent", server=where)
        return where
