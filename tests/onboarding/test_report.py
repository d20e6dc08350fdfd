"""The welcome report PDF (`onboarding.report`): read back with pypdf, it names the company,
its suites, their reasons and the total, whatever script the company's name is in."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from pypdf import PdfReader

from tenantry.onboarding.report import (
    ReportLine,
    ReportSuite,
    WelcomeReport,
    drawable,
    render_pdf,
    render_pdf_async,
)

GENERATED = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)


def report(company: str = "Café Ñandú Ltd", **changes: object) -> WelcomeReport:
    values: dict[str, object] = {
        "company_name": company,
        "industry": "Hospitality",
        "company_size": "11–50 employees",
        "contact_email": "zoë@cafe-nandu.example",
        "suites": [
            ReportSuite("Sales CRM", 92, ["You sell to other businesses", "Team of 11–50"]),
            ReportSuite("Field Territories", 74, ["Reps on the road in 3 regions"]),
            ReportSuite("Data Sync", 61, ["Spreadsheets to import", "Weekly exports"]),
        ],
        "lines": [
            ReportLine("Sales CRM (annual)", "€3,600.00"),
            ReportLine("Field Territories (annual)", "€2,400.00"),
            ReportLine("Data Sync (annual)", "€1,200.00"),
        ],
        "discounts": [
            ReportLine("Bundle discount", "−€360.00"),
            ReportLine("Annual billing, 10% off", "−€684.00"),
        ],
        "total": "€6,156.00",
        "billing_cycle": "annually",
        "currency": "EUR",
        "generated_at": GENERATED,
    }
    values.update(changes)
    return WelcomeReport(**values)  # type: ignore[arg-type]


def text_of(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return reader, re.sub(r"[ \t]+", " ", text)


def test_names_the_company_suites_reasons_and_total() -> None:
    pdf = render_pdf(report())

    assert pdf.startswith(b"%PDF-")
    reader, text = text_of(pdf)
    assert 1 <= len(reader.pages) <= 2
    assert "Welcome to Tenantry, Café Ñandú Ltd" in text
    assert "Hospitality" in text and "11–50 employees" in text
    assert "Recommended suites" in text and "Your quote" in text
    for suite in report().suites:
        assert suite.name in text
        assert f"Score {suite.score}" in text
        for reason in suite.reasons:
            assert reason in text
    for line in [*report().lines, *report().discounts]:
        assert line.label in text and line.amount in text
    assert "€6,156.00" in text
    assert "annually" in text


def test_metadata_comes_from_the_report() -> None:
    reader = PdfReader(io.BytesIO(render_pdf(report())))

    metadata = reader.metadata
    assert metadata is not None
    assert metadata.title == "Welcome to Tenantry, Café Ñandú Ltd"
    assert metadata.author == "Tenantry"
    assert metadata.creation_date == GENERATED


def test_same_report_same_bytes() -> None:
    assert render_pdf(report()) == render_pdf(report())


def test_cjk_and_emoji_do_not_fail() -> None:
    pdf = render_pdf(report("東京 Trading 🚀", industry="物流"))

    _, text = text_of(pdf)
    assert "Trading" in text
    assert "Sales CRM" in text and "€6,156.00" in text


def test_characters_without_a_glyph_become_question_marks() -> None:
    assert drawable("東京 Trading") == "?? Trading"
    assert drawable("Café Ñandú Ελλάδα Москва") == "Café Ñandú Ελλάδα Москва"
    assert drawable("a\nb\u200bc\x00") == "a bc"
    assert drawable("ok \u2764\ufe0f") == "ok \u2764"  # DejaVu has the heart, not the emoji style


def test_empty_report_and_long_names_render() -> None:
    long_name = "Very " * 40 + "Long Company Name GmbH & Co. KG " + "X" * 150
    pdf = render_pdf(
        report(long_name, suites=[], lines=[], discounts=[], total="€0.00", contact_email=None)
    )

    reader, text = text_of(pdf)
    assert len(reader.pages) <= 2
    assert "No suite recommended yet." in text
    assert "€0.00" in text


async def test_async_renders_the_same() -> None:
    assert await render_pdf_async(report()) == render_pdf(report())
