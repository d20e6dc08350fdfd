"""The welcome mail of a completed onboarding: a personal PDF report (`onboarding.report`) of
the company's profile, recommended suites and quote, attached to a text and HTML message and
sent by the kit's mailer (SMTP, or an .eml file in the outbox without SMTP_URL).

Sent at most once per completion: the job holds the completion's row while it sends and
records where the message went; a retried job that finds it recorded sends nothing. (A crash
between the send and the record sends it again on retry, with the same Message-ID, so a mail
system that deduplicates keeps one.)
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tenantry.kit.jobs import unit_of_work
from tenantry.kit.logging import get_logger
from tenantry.kit.mail import Attachment, Mailer, compose
from tenantry.kit.platform import Platform
from tenantry.onboarding.catalog import CATALOG
from tenantry.onboarding.report import ReportLine, ReportSuite, WelcomeReport, render_pdf_async
from tenantry.onboarding.repository import CompletionLedger

log = get_logger("tenantry.onboarding")


def money(amount: str | Decimal, currency: str) -> str:
    """`1234.5`, EUR → `€1,234.50` (the currency's minor unit, its symbol)."""
    found = CATALOG.currencies.get(currency)
    places = found.minor_unit if found else 2
    value = Decimal(amount)
    formatted = f"{value:,.{places}f}"
    return f"{found.symbol}{formatted}" if found else f"{formatted} {currency}"


def report_of(saved: dict[str, Any], now: datetime) -> WelcomeReport:
    profile, quote = saved["profile"], saved.get("quote")
    currency = quote["currency"] if quote else CATALOG.base_currency
    lines, discounts, total, cycle = [], [], "", "monthly"
    if quote:
        cycle = quote["billing_cycle"]
        lines = [
            ReportLine(f"{line['name']} ({line['months']} mo)", money(line["amount"], currency))
            for line in quote["lines"]
        ]
        discounts = [
            ReportLine(d["label"], "-" + money(d["amount"], currency)) for d in quote["discounts"]
        ]
        total = money(quote["total"], currency)
    return WelcomeReport(
        company_name=profile["company_name"],
        industry=CATALOG.industries.get(profile["industry"], profile["industry"]),
        company_size=CATALOG.company_sizes[profile["company_size"]].label,
        contact_email=saved.get("email"),
        suites=[
            ReportSuite(s["name"], int(s["score"]), list(s["reasons"]))
            for s in saved["recommended_suites"]
        ],
        lines=lines,
        discounts=discounts,
        total=total or "no quote yet",
        billing_cycle=cycle,
        currency=currency,
        generated_at=now,
    )


def _bodies(report: WelcomeReport, full_name: str) -> tuple[str, str]:
    suites = [f"- {s.name} (score {s.score}): {'; '.join(s.reasons)}" for s in report.suites]
    text = "\n".join(
        [
            f"Hello {full_name},",
            "",
            f"{report.company_name} is ready on Tenantry. The suites we recommend:",
            *suites,
            "",
            f"Your quote: {report.total} ({report.billing_cycle}). The attached report has the"
            " details.",
            "",
            "The Tenantry team",
        ]
    )
    e = html.escape
    items = "".join(
        f"<li><strong>{e(s.name)}</strong> (score {s.score}): {e('; '.join(s.reasons))}</li>"
        for s in report.suites
    )
    body = (
        f"<p>Hello {e(full_name)},</p><p><strong>{e(report.company_name)}</strong> is ready on"
        f" Tenantry. The suites we recommend:</p><ul>{items}</ul>"
        f"<p>Your quote: <strong>{e(report.total)}</strong> ({e(report.billing_cycle)}). The"
        " attached report has the details.</p><p>The Tenantry team</p>"
    )
    return text, f"<!doctype html><html><body>{body}</body></html>"


async def send_welcome(platform: Platform, session_id: str) -> bool:
    """Send a completion's welcome mail unless it went already; whether this call sent it."""
    async with unit_of_work(platform) as session:
        completion = await CompletionLedger(session).get(session_id, lock=True)
        if completion is None:  # the company was deleted since
            return False
        if completion.welcome_sent_at is not None:
            return False
        saved = completion.report
        report = report_of(saved, datetime.now(UTC))
        pdf = await render_pdf_async(report)
        text, body = _bodies(report, saved.get("full_name") or saved["email"])
        message = compose(
            sender=platform.settings.mail_from,
            to=saved["email"],
            # one line whatever the name holds: a header cannot carry a line break
            subject=" ".join(f"Welcome to Tenantry, {report.company_name}".split()),
            text=text,
            html=body,
            attachments=[Attachment("tenantry-welcome.pdf", pdf, "application/pdf")],
            message_id=completion.welcome_message_id,
        )
        completion.welcome_message_id = str(message["Message-ID"])
        where = await Mailer(platform.settings).send(message)
        completion.welcome_sent_to = where[:512]
        completion.welcome_sent_at = datetime.now(UTC)
        log.info("welcome mail sent", tenant_id=str(completion.tenant_id), to=where)
        return True
