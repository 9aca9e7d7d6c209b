"""Server-rendered SVG charts (pygal) for Insights: inline, no script, nothing fetched.

pygal writes a ``<script>`` with its configuration into every chart even when told to load
no script (``js=[]``); we render its element tree and drop every ``script`` element before
serialising, so the markup is pure SVG and CSS. Each chart has ``role="img"`` and an
``aria-labelledby`` its title: the data table under it is the full text alternative.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from xml.etree import ElementTree

import pygal
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

SVG_NS = "http://www.w3.org/2000/svg"
ElementTree.register_namespace("", SVG_NS)
ElementTree.register_namespace("xlink", "http://www.w3.org/1999/xlink")

# Wagtail's admin type, and a palette whose neighbours stay apart for colour-blind readers
# (Okabe–Ito).
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#262626",
    foreground_strong="#141414",
    foreground_subtle="#767676",
    font_family='-apple-system, BlinkMacSystemFont, "Segoe UI", system-ui, Roboto, '
                '"Helvetica Neue", Arial, sans-serif',
    title_font_size=15,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
    value_font_size=12,
    colors=("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"),
    opacity="0.9",
    opacity_hover="1",
    guide_stroke_color="#d9d9d9",
    major_guide_stroke_color="#bfbfbf",
    guide_stroke_dasharray="0",
    major_guide_stroke_dasharray="0",
)

BASE = dict(
    style=STYLE,
    js=[],
    css=["file://style.css", "file://graph.css"],
    disable_xml_declaration=True,
    width=560,
    height=300,
    legend_at_bottom=True,
    legend_at_bottom_columns=4,
    show_y_guides=True,
    print_values=False,
    truncate_label=-1,
    truncate_legend=-1,
    x_label_rotation=0,
    margin=12,
    margin_bottom=30,
    margin_right=28,
    spacing=12,
    no_data_text="No data",
    include_x_axis=True,
)


def _svg(chart, title: str) -> SafeString:
    tree = chart.render_tree()
    for parent in tree.iter():
        for child in list(parent):
            if child.tag in (f"{{{SVG_NS}}}script", "script"):
                parent.remove(child)
    tree.set("role", "img")
    chart_id = tree.get("id", "chart")
    tree.set("aria-labelledby", f"{chart_id}-title")
    title_element = ElementTree.Element(f"{{{SVG_NS}}}title", id=f"{chart_id}-title")
    title_element.text = title
    tree.insert(0, title_element)
    markup = ElementTree.tostring(tree, encoding="unicode")
    if "<script" in markup:  # belt and braces: never ship a script in a chart
        raise ValueError("chart markup carries a script")
    return mark_safe(markup)  # noqa: S308 — serialised by ElementTree, text escaped by it


def _nice_step(top: float, ticks: int = 5) -> float:
    """A step of 1, 2 or 5 × 10ⁿ giving about ``ticks`` intervals up to ``top``."""
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _apply(chart, labels: list[str], series: dict[str, list], formatter,
           stacked: bool = False, counts: bool = False) -> None:
    chart.x_labels = labels
    if len(labels) > 6:
        chart.x_labels_major_every = math.ceil(len(labels) / 6)
        chart.show_minor_x_labels = False
    columns = list(zip(*[[v or 0 for v in values] for values in series.values()],
                       strict=True))
    top = max((sum(c) if stacked else max(c) for c in columns), default=0)
    if top > 0:
        # Few, round ticks (pygal draws one per unit, or 0.2, 0.4 … for small counts).
        step = _nice_step(top)
        if counts:
            step = max(1, round(step))
        n = math.ceil(top / step)
        chart.y_labels = [round(i * step, 6) for i in range(n + 1)]
    if formatter is not None:
        chart.value_formatter = formatter
    longest = max((len(name) for name in series), default=0)
    chart.legend_at_bottom_columns = 2 if longest > 14 else max(1, min(4, len(series)))
    for name, values in series.items():
        chart.add(name, values)  # ElementTree escapes the text


def stacked_bars(title: str, labels: list[str], series: dict[str, list],
                 formatter: Callable | None = None) -> SafeString:
    chart = pygal.StackedBar(**BASE)
    _apply(chart, labels, series, formatter, stacked=True, counts=formatter is None)
    return _svg(chart, title)


def bars(title: str, labels: list[str], series: dict[str, list],
         formatter: Callable | None = None) -> SafeString:
    chart = pygal.Bar(**BASE)
    _apply(chart, labels, series, formatter, counts=formatter is None)
    return _svg(chart, title)


def horizontal_bars(title: str, labels: list[str], series: dict[str, list],
                    formatter: Callable | None = None) -> SafeString:
    chart = pygal.HorizontalBar(**{**BASE, "height": max(200, 80 + 40 * len(labels))})
    _apply(chart, labels, series, formatter if formatter else _decimal)
    return _svg(chart, title)


def _decimal(value) -> str:
    return "" if value is None else f"{value:g}"


def line(title: str, labels: list[str], series: dict[str, list],
         formatter: Callable | None = None) -> SafeString:
    chart = pygal.Line(**{**BASE, "dots_size": 3, "stroke_style": {"width": 2.5}})
    _apply(chart, labels, series, formatter, counts=formatter is None)
    return _svg(chart, title)
