"""Inline SVG charts rendered on the server: the 24-hour uptime bar, sparklines, latency chart.

Built with format_html (every value escaped); colours come from CSS classes, so the page's CSP
needs no inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

BAR_HOURS = 24


# The bar's colours: the share of good results (up or degraded: the run answered) in the hour.
GRADES = (("ok", "all good"), ("warn", "90-99.9% good"), ("bad", "under 90% good"))


def _grade(up: int, degraded: int, count: int) -> str:
    if not count:
        return "none"
    good = up + degraded
    if good == count:
        return "ok"
    return "warn" if good * 10 >= count * 9 else "bad"


def _share(good: int, count: int) -> str:
    """A percentage that never rounds up to 100% while a result failed."""
    return f"{math.floor(1000 * good / count) / 10:.1f}%"


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
    """One slot per hour, oldest left, with a <title> tooltip. A slot: (count, up, degraded).

    Its text alternative counts the hours of each colour, so the bar means something without
    colours too."""
    parts = []
    hours = {"ok": 0, "warn": 0, "bad": 0, "none": 0}
    for index, slot in enumerate(slots):
        count, up, degraded = slot or (0, 0, 0)
        grade = _grade(up, degraded, count)
        hours[grade] += 1
        if count:
            good = up + degraded
            label = f"{labels[index]}: {_share(good, count)} good ({good} of {count})"
        else:
            label = f"{labels[index]}: no results"
        # Height, width and corner radius come from CSS: 12,000 of these on a 500-check page.
        parts.append(f'<rect x="{index * 5}" class="slot-{grade}"><title>{label}</title></rect>')
    summary = ", ".join(
        f"{hours[grade]} h {text}"
        for grade, text in (*GRADES, ("none", "no results"))
        if hours[grade]
    )
    return mark_safe(  # noqa: S308 (numbers and our own labels only, see above)
        '<svg class="uptime-bar" viewBox="0 0 119 16" width="119" height="16" role="img" '
        f'aria-label="last 24 hours: {summary}">' + "".join(parts) + "</svg>"
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


@dataclass(frozen=True)
class Frame:
    """The latency chart's drawing area in its own units (the SVG scales to its box)."""

    width: int
    height: int
    left: int = 46
    right: int = 8
    top: int = 10
    bottom: int = 24

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def base(self) -> float:
        return self.height - self.bottom


def nice_ticks(top: float, wanted: int = 4) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten) from 0 up to `top`, about `wanted` of them."""
    if top <= 0:
        return [0.0]
    raw = top / wanted
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * index for index in range(int(top // step) + 1)]


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def latency_chart(
    results: list, warn_ms: int | None, crit_ms: int | None, width: int = 1100, height: int = 220
) -> SafeString:
    """Latency of recent results, oldest left, with axes in ms and time, a tooltip per point.

    A failed run has no latency (its figure is how long it took to fail, up to the timeout):
    the line breaks there and a red mark stands on the time axis instead of a point."""
    if not results:
        return format_html('<p class="muted">{}</p>', "No results yet.")
    frame = Frame(width, height)
    answered = [r.latency_ms for r in results if not r.failed]
    top = max([*answered, warn_ms or 0, crit_ms or 0, 1.0]) * 1.1
    ticks = nice_ticks(top)
    top = max(top, ticks[-1])
    step = frame.plot_w / max(1, len(results) - 1)

    def x(index: int) -> float:
        return frame.left + (index * step if len(results) > 1 else frame.plot_w / 2)

    def y(value: float) -> float:
        return frame.base - (value / top) * (frame.base - frame.top)

    parts = [_axes(frame, ticks, y, results)]
    for value, kind in ((warn_ms, "warn"), (crit_ms, "crit")):
        if value:
            parts.append(
                format_html(
                    '<line class="threshold-{k}" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>'
                    '<text class="axis" x="{x2}" y="{ty}" text-anchor="end">{label} {v} ms</text>',
                    k=kind,
                    x1=frame.left,
                    x2=frame.width - frame.right,
                    y=f"{y(value):.1f}",
                    ty=f"{y(value) - 3:.1f}",
                    label="degraded above" if kind == "warn" else "down above",
                    v=value,
                )
            )
    parts += _line_segments(results, x, y)
    half = step / 2 if len(results) > 1 else frame.plot_w / 2
    for index, result in enumerate(results):
        when = f"{result.at:%H:%M:%S}"
        if result.failed:
            parts.append(
                format_html(
                    '<g class="pt pt-down"><title>{}: failed, {}</title>'
                    '<rect class="hit" x="{}" y="{}" width="{}" height="{}"/>'
                    '<rect class="down-mark" x="{}" y="{}" width="4" height="8"/></g>',
                    when,
                    result.detail or "no answer",
                    f"{x(index) - half:.1f}",
                    frame.top,
                    f"{2 * half:.1f}",
                    f"{frame.base - frame.top:.1f}",
                    f"{x(index) - 2:.1f}",
                    f"{frame.base - 8:.1f}",
                )
            )
            continue
        parts.append(
            format_html(
                '<g class="pt pt-{}"><title>{}: {} ms, {}</title>'
                '<rect class="hit" x="{}" y="{}" width="{}" height="{}"/>'
                '<circle cx="{}" cy="{}" r="2.5"/></g>',
                result.outcome,
                when,
                f"{result.latency_ms:.1f}",
                result.outcome,
                f"{x(index) - half:.1f}",
                frame.top,
                f"{2 * half:.1f}",
                f"{frame.base - frame.top:.1f}",
                f"{x(index):.1f}",
                f"{y(result.latency_ms):.1f}",
            )
        )
    if not answered:
        parts.append(
            format_html(
                '<text class="axis no-answer" x="{}" y="{}" text-anchor="middle">{}</text>',
                f"{frame.left + frame.plot_w / 2:.1f}",
                f"{(frame.top + frame.base) / 2:.1f}",
                f"none of these {len(results)} runs answered",
            )
        )
    failed = len(results) - len(answered)
    described = f"{min(answered):.0f} to {max(answered):.0f} ms" if answered else "no answered runs"
    return format_html(
        '<svg class="latency-chart" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="latency of the last {n} results: {described}; {failed} failed">{body}</svg>',
        w=width,
        h=height,
        n=len(results),
        described=described,
        failed=failed,
        body=mark_safe("".join(parts)),  # noqa: S308 (each part built by format_html)
    )


def _axes(frame: Frame, ticks: list[float], y, results: list) -> SafeString:
    """Grid lines with their ms labels, the time axis with its first, middle and last time."""
    parts = [
        format_html(
            '<line class="grid" x1="{}" x2="{}" y1="{y}" y2="{y}"/>'
            '<text class="axis" x="{}" y="{ty}" text-anchor="end">{} ms</text>',
            frame.left,
            frame.width - frame.right,
            frame.left - 4,
            _ms(tick),
            y=f"{y(tick):.1f}",
            ty=f"{y(tick) + 4:.1f}",
        )
        for tick in ticks
    ]
    span = results[-1].at - results[0].at
    shape = "%H:%M:%S" if span.total_seconds() < 600 else "%H:%M"
    times = [(0, "start"), (len(results) // 2, "middle"), (len(results) - 1, "end")]
    step = frame.plot_w / max(1, len(results) - 1)
    for index, anchor in times if len(results) > 2 else times[::2]:
        parts.append(
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="{}">{}</text>',
                f"{frame.left + index * step:.1f}",
                frame.height - 6,
                anchor,
                results[index].at.strftime(shape),
            )
        )
    return mark_safe("".join(parts))  # noqa: S308 (each part built by format_html)


def _line_segments(results: list, x, y) -> list[SafeString]:
    """One polyline per run of answered results: a failed run is a gap, never a point."""
    segments: list[list[str]] = [[]]
    for index, result in enumerate(results):
        if result.failed:
            segments.append([])
        else:
            segments[-1].append(f"{x(index):.1f},{y(result.latency_ms):.1f}")
    return [
        format_html('<polyline class="latency-line" points="{}"/>', " ".join(points))
        for points in segments
        if len(points) > 1
    ]
