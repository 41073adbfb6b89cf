"""Charts drawn on the server as SVG geometry (no chart library, no script: the page's CSP allows none
inline, and a few bars need none). The template renders the shapes; the same figures also go in a table."""
from dataclasses import dataclass

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 36, 24, 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # 0, 1, ...: its CSS class (chart-s0, chart-s1)
    label: str  # what a screen reader and the tooltip tell
    value: int


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


def _nice_top(largest):
    """A round top for the axis: 1, 2, 5 times a power of ten, at least the largest value."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= largest:
                return max(step * factor, 1)
        step *= 10


def grouped_bars(labels, series):
    """Bars of several ``series`` (each ``(name, values)``, a value per label) side by side per label.
    Answers ``{"bars", "ticks", "labels": [(x, text)], "width", "height"}``."""
    top = _nice_top(max((v for _, values in series for v in values), default=0))
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(labels), 1)
    bar_w = slot * 0.8 / max(len(series), 1)
    bars = []
    for i, label in enumerate(labels):
        for s, (name, values) in enumerate(series):
            h = plot_h * values[i] / top
            bars.append(Bar(x=round(LEFT + i * slot + slot * 0.1 + s * bar_w, 1), y=round(TOP + plot_h - h, 1),
                            width=round(bar_w, 1), height=round(h, 1), series=s, label=f"{label}: {name} {values[i]}",
                            value=values[i]))
    steps = next(n for n in (5, 4, 2, 1) if top % n == 0)  # whole numbers on the axis: 10 by 2s, 5 by 1s
    ticks = [Tick(y=round(TOP + plot_h - plot_h * k / steps, 1), value=top * k // steps) for k in range(steps + 1)]
    every = max(1, len(labels) // 10)  # at most about ten labels under the axis
    shown = [(round(LEFT + i * slot + slot / 2, 1), label) for i, label in enumerate(labels) if i % every == 0]
    return {"bars": bars, "ticks": ticks, "labels": shown, "width": WIDTH, "height": HEIGHT, "left": LEFT,
            "bottom": HEIGHT - BOTTOM}
