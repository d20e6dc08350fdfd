"""The server-drawn charts' geometry (`console.charts`): every bar inside its panel's plot, as
tall as its value in proportion to the largest, and no data an empty chart, not a division
by zero; the template draws what the geometry says, escaped."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tenantry.console.charts import PANEL_HEIGHT, PATTERNS, percent, small_multiples
from tenantry.console.web import env

values = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=31)
series_of = st.lists(values, min_size=1, max_size=4)


@given(series_of)
def test_bars_stay_in_the_plot_and_are_proportional(series: list[list[int]]) -> None:
    days = max(len(v) for v in series)
    labels = [f"2026-03-{i + 1:02d}" for i in range(days)]
    chart = small_multiples([(f"s{i}", v) for i, v in enumerate(series)], labels)
    peak = max(max(v) for v in series)
    assert chart.peak == peak and chart.empty == (peak == 0)
    assert chart.height == len(series) * PANEL_HEIGHT
    for panel, given_values in zip(chart.panels, series, strict=True):
        assert len(panel.bars) == days
        room = panel.plot_bottom - panel.plot_top
        assert panel.top <= panel.plot_top < panel.plot_bottom <= chart.height
        assert panel.total == sum(given_values)
        right = -1.0
        for bar, value in zip(panel.bars, [*given_values, *[0] * days], strict=False):
            assert bar.value == value
            assert chart.left <= bar.x and bar.x + bar.width <= chart.right + 0.01
            assert bar.x >= right  # side by side, never overlapping
            right = bar.x + bar.width
            assert panel.plot_top - 0.01 <= bar.y <= panel.plot_bottom
            assert abs(bar.y + bar.height - panel.plot_bottom) <= 0.02
            if peak:
                assert abs(bar.height - room * value / peak) <= 0.01
                if value == peak:
                    assert abs(bar.height - room) <= 0.01
            else:
                assert bar.height == 0


def test_no_data_draws_an_empty_chart_that_says_so() -> None:
    chart = small_multiples([("profile", [0, 0]), ("completed", [])], ["2026-03-01", "2026-03-02"])
    assert chart.empty and all(b.height == 0 for p in chart.panels for b in p.bars)
    svg = env.get_template("_funnel_chart.html").render(
        chart=chart, chart_title="t", chart_desc="d"
    )
    assert "No onboarding sessions in this range." in svg
    none = small_multiples([], [])
    assert none.empty and none.panels == [] and none.height > 0


def test_each_series_has_its_own_pattern_and_labels_are_escaped() -> None:
    chart = small_multiples([(f"<s{i}>", [i + 1]) for i in range(3)], ["2026-03-01"])
    assert [p.pattern for p in chart.panels] == list(PATTERNS[:3])
    svg = env.get_template("_funnel_chart.html").render(
        chart=chart, chart_title="<b>", chart_desc="a & b"
    )
    assert "<s0>" not in svg and "&lt;s0&gt;" in svg and "&lt;b&gt;" in svg
    assert re.findall(r'fill="url\(#pattern-(\w+)\)"', svg) == list(PATTERNS[:3])
    assert " style=" not in svg


def test_percentages_read_well() -> None:
    assert [percent(r) for r in (0.0, 0.5, 0.3333, 1.0)] == ["0%", "50%", "33.3%", "100%"]
