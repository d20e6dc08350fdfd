"""The welcome report: a one-to-two page A4 PDF, attached to the onboarding welcome email, with
the company's profile, the suites we recommend (score and reasons) and its quote.

The caller fills the plain dataclasses below (money already formatted: "€1,234.50"); this
module only lays them out, with fpdf2.

**Fonts.** fpdf2's built-in fonts know Latin-1 only, and a company name can be anything, so the
report embeds DejaVu Sans (regular and bold), vendored in `fonts/` with its licence: nothing
to install on the machine, and fpdf2 embeds only the glyphs used (a report is ~30 KB).
DejaVu covers Latin, Greek, Cyrillic, Arabic, Hebrew and many symbols, but no CJK ideographs,
kana or hangul, and no emoji: a character that neither face can draw is written as "?"
(looked up in the fonts' cmaps), so such a name never fails and shows what it could.

`render_pdf` is CPU work of about a tenth of a second (fpdf2 parses both fonts for each
document, then subsets them); on the event loop use `render_pdf_async`, which runs it in a
worker thread.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import anyio.to_thread
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

FONTS = Path(__file__).parent / "fonts"
REGULAR = FONTS / "DejaVuSans.ttf"
BOLD = FONTS / "DejaVuSans-Bold.ttf"
FAMILY = "DejaVu"
MISSING = "?"

INK = (33, 37, 41)
MUTED = (108, 117, 125)
ACCENT = (13, 110, 253)
RULE = (206, 212, 218)
SHADE = (241, 243, 245)


@dataclass(frozen=True)
class ReportSuite:
    name: str
    score: int
    reasons: list[str]


@dataclass(frozen=True)
class ReportLine:
    label: str
    amount: str  # formatted by the caller: "€1,234.50"


@dataclass(frozen=True)
class WelcomeReport:
    company_name: str
    industry: str
    company_size: str
    contact_email: str | None
    suites: list[ReportSuite]
    lines: list[ReportLine]
    discounts: list[ReportLine]
    total: str
    billing_cycle: str  # "monthly", "annual"
    currency: str  # "EUR"
    generated_at: datetime


@cache
def _drawable() -> frozenset[int]:
    """Code points that both faces have a glyph for."""
    maps = []
    for path in (REGULAR, BOLD):
        with TTFont(path, lazy=True) as font:
            maps.append(frozenset(font.getBestCmap()))
    return maps[0] & maps[1]


def drawable(text: str) -> str:
    """`text` with every character the fonts cannot draw as "?" (line breaks and tabs as
    spaces; other control and formatting characters, and emoji variation selectors, dropped)."""
    known = _drawable()
    out = []
    for char in text:
        if char in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf") or "\ufe00" <= char <= "\ufe0f":
            continue
        else:
            out.append(char if ord(char) in known else MISSING)
    return "".join(out)


class _Document(FPDF):
    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(FAMILY, "", 8)
        self.set_text_color(*MUTED)
        self.cell(0, 10, f"Tenantry · page {self.page_no()}/{{nb}}", align="C")


def _document(report: WelcomeReport) -> _Document:
    pdf = _Document(orientation="portrait", unit="mm", format="A4")
    pdf.add_font(FAMILY, "", REGULAR)
    pdf.add_font(FAMILY, "B", BOLD)
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_title(drawable(f"Welcome to Tenantry, {report.company_name}"))
    pdf.set_author("Tenantry")
    pdf.set_creator("Tenantry")
    pdf.set_subject("Recommended suites and quote")
    pdf.set_lang("en")
    pdf.set_creation_date(report.generated_at)
    return pdf


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(6)
    pdf.set_font(FAMILY, "B", 14)
    pdf.set_text_color(*INK)
    pdf.cell(0, 8, drawable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(3)


def _paragraph(pdf: FPDF, text: str, *, size: float = 10, bold: bool = False) -> None:
    pdf.set_font(FAMILY, "B" if bold else "", size)
    pdf.multi_cell(0, size * 0.5, drawable(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _title(pdf: FPDF, report: WelcomeReport) -> None:
    pdf.set_text_color(*ACCENT)
    _paragraph(pdf, f"Welcome to Tenantry, {report.company_name}", size=20, bold=True)
    pdf.ln(2)
    pdf.set_text_color(*MUTED)
    prepared = f"Prepared on {report.generated_at:%d %B %Y}"
    if report.contact_email:
        prepared += f" for {report.contact_email}"
    _paragraph(pdf, prepared, size=9)
    pdf.ln(4)
    pdf.set_text_color(*INK)
    _paragraph(pdf, f"Industry: {report.industry}")
    _paragraph(pdf, f"Company size: {report.company_size}")


def _suite(pdf: FPDF, suite: ReportSuite) -> None:
    pdf.set_text_color(*INK)
    _paragraph(pdf, suite.name, size=11, bold=True)
    pdf.set_text_color(*ACCENT)
    _paragraph(pdf, f"Score {suite.score}", size=9)
    pdf.set_text_color(*INK)
    pdf.set_font(FAMILY, "", 10)
    for reason in suite.reasons:
        pdf.set_x(pdf.l_margin + 4)
        pdf.multi_cell(
            pdf.epw - 4,
            5,
            f"•  {drawable(reason)}",
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(3)


def _suites(pdf: FPDF, suites: Sequence[ReportSuite]) -> None:
    _heading(pdf, "Recommended suites")
    if not suites:
        _paragraph(pdf, "No suite recommended yet.")
    for suite in suites:
        _suite(pdf, suite)


def _quote(pdf: FPDF, report: WelcomeReport) -> None:
    """One table: the lines, the discounts (amounts as the caller wrote them), the total."""
    _heading(pdf, "Your quote")
    pdf.set_font(FAMILY, "", 10)
    pdf.set_text_color(*INK)
    headings = FontFace(family=FAMILY, emphasis="B", color=MUTED, fill_color=SHADE)
    total = FontFace(family=FAMILY, emphasis="B", size_pt=12, fill_color=SHADE)
    with pdf.table(
        col_widths=(3, 1),
        text_align=("LEFT", "RIGHT"),
        borders_layout="HORIZONTAL_LINES",
        headings_style=headings,
        line_height=6,
        padding=(1.5, 2),
    ) as table:
        head = table.row()
        head.cell("Item")
        head.cell(f"Amount ({drawable(report.currency)})")
        for line in [*report.lines, *report.discounts]:
            row = table.row()
            row.cell(drawable(line.label))
            row.cell(drawable(line.amount))
        last = table.row()
        last.cell(drawable(f"Total, billed {report.billing_cycle}"), style=total)
        last.cell(drawable(report.total), style=total)
    if not report.lines:
        pdf.ln(2)
        _paragraph(pdf, "No suite chosen yet.")


def render_pdf(report: WelcomeReport) -> bytes:
    """The report as PDF bytes. Blocking: on the event loop, `render_pdf_async`."""
    pdf = _document(report)
    pdf.add_page()
    _title(pdf, report)
    _suites(pdf, report.suites)
    _quote(pdf, report)
    return bytes(pdf.output())


async def render_pdf_async(report: WelcomeReport) -> bytes:
    """`render_pdf` in a worker thread."""
    return await anyio.to_thread.run_sync(render_pdf, report)
