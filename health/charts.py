"""Inline SVG charts rendered on the server: the 24-hour uptime bar, sparklines, latency chart.

Built with format_html (every value escaped); colours come from CSS classes, so the page's CSP
needs no inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from health import states

BAR_HOURS = 24


def _grade(up: int, degraded: int, count: int) -> str:
    if not count:
        return "none"
    ratio = (up + degraded) / count
    if ratio >= 0.999:
        return "deg" if degraded * 2 > count else "ok"
    return "warn" if ratio >= 0.9 else "bad"


# The two charts below are drawn for every row of the Health page (500 rows must render in well
# under 200 ms), so they are built from plain strings rather than format_html: every value put
# into them is a number, an hour we formatted, or one of our own class names; nothing comes
# from a user.


def hour_labels(now_hour: datetime) -> list[str]:
    """ "HH:00" of each bar slot, oldest first; computed once per page, not once per row."""
    return [
        f"{(now_hour - timedelta(hours=BAR_HOURS - 1 - index)).hour:02d}:00"
        for index in range(BAR_HOURS)
    ]


def uptime_bar(slots: list[tuple[int, int, int] | None], labels: list[str]) -> SafeString:
    """One slot per hour, oldest left, with a <title> tooltip. A slot: (count, up, degraded)."""
    parts = []
    for index, slot in enumerate(slots):
        count, up, degraded = slot or (0, 0, 0)
        if count:
            label = f"{labels[index]} {100 * (up + degraded) / count:.1f}% of {count}"
        else:
            label = f"{labels[index]} no results"
        # Height, width and corner radius come from CSS: 12,000 of these on a 500-check page.
        parts.append(
            f'<rect x="{index * 5}" class="slot-{_grade(up, degraded, count)}">'
            f"<title>{label}</title></rect>"
        )
    return mark_safe(  # noqa: S308 (numbers and our own labels only, see above)
        '<svg class="uptime-bar" viewBox="0 0 119 16" width="119" height="16" role="img" '
        'aria-label="uptime over the last 24 hours">' + "".join(parts) + "</svg>"
    )


def _points(values: Sequence[float | None], width: float, height: float, top: float) -> list[str]:
    known = [v for v in values if v is not None]
    if not known:
        return []
    peak = max(top, max(known)) or 1.0
    step = width / max(1, len(values) - 1)
    return [
        f"{index * step:.1f},{height - (value / peak) * (height - 2) - 1:.1f}"
        for index, value in enumerate(values)
        if value is not None
    ]


def sparkline(values: Sequence[float | None], width: int = 100, height: int = 20) -> SafeString:
    points = _points(values, width, height, 0)
    if len(points) < 2:
        return mark_safe('<span class="muted small">no data yet</span>')
    known = [float(v) for v in values if v is not None]
    return mark_safe(  # noqa: S308 (numbers only)
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="latency trend, {min(known):.0f} to '
        f'{max(known):.0f} ms"><polyline points="{" ".join(points)}"/></svg>'
    )


def latency_chart(
    results: list, warn_ms: int | None, crit_ms: int | None, width: int = 1100, height: int = 200
) -> SafeString:
    """Latency of recent results, oldest left; failed results as red ticks; threshold lines."""
    if not results:
        return format_html('<p class="muted">{}</p>', "No results yet.")
    plot_h = height - 20
    values = [r.latency_ms for r in results]
    top = max([*values, warn_ms or 0, crit_ms or 0]) * 1.1 or 1.0
    step = width / max(1, len(results) - 1)

    def y(value: float) -> float:
        return plot_h - (value / top) * (plot_h - 4) - 2

    line = " ".join(f"{i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts = [format_html('<polyline class="latency-line" points="{}"/>', line)]
    for value, kind in ((warn_ms, "warn"), (crit_ms, "crit")):
        if value:
            parts.append(
                format_html(
                    '<line class="threshold-{k}" x1="0" x2="{w}" y1="{y}" y2="{y}"/>'
                    '<text class="axis" x="{w}" y="{ty}" text-anchor="end">{k} {v} ms</text>',
                    k=kind,
                    w=width,
                    y=f"{y(value):.1f}",
                    ty=f"{y(value) - 3:.1f}",
                    v=value,
                )
            )
    for index, result in enumerate(results):
        if result.outcome == states.DOWN:
            parts.append(
                format_html(
                    '<rect class="down-tick" x="{}" y="0" width="2" height="{}">'
                    "<title>{}: {}</title></rect>",
                    f"{max(0, index * step - 1):.1f}",
                    plot_h,
                    f"{result.at:%H:%M:%S}",
                    result.detail or "down",
                )
            )
    parts.append(
        format_html(
            '<text class="axis" x="0" y="{}">{}</text>'
            '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>'
            '<text class="axis" x="2" y="12">{} ms</text>',
            height - 4,
            f"{results[0].at:%H:%M}",
            width,
            height - 4,
            f"{results[-1].at:%H:%M}",
            f"{top:.0f}",
        )
    )
    return format_html(
        '<svg class="latency-chart" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="latency of the last {n} results">{body}</svg>',
        w=width,
        h=height,
        n=len(results),
        body=mark_safe("".join(parts)),  # noqa: S308 (each part built by format_html)
    )
