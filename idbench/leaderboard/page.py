"""The leaderboard as one self-contained HTML page: inline CSS, plots as data URIs, no scripts.

A Content-Security-Policy allows nothing but inline styles and ``data:`` images, so the page
loads nothing from the network (and a browser reports anything that tries).
"""

from __future__ import annotations

import base64
import re
from html import escape
from typing import Any

import polars as pl

from idbench.leaderboard import common_threshold, comparison, reference, starting_point
from idbench.leaderboard import provenance as prov
from idbench.leaderboard.tables import FLAGS, caption, d_int_name, display, groups

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 0.3em 0.45em; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
th { text-align: left; background: #f4f4f4; border-bottom: 2px solid #999; }
#comparison th { white-space: normal; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody + tbody { border-top: 2px solid #999; }
tbody tr:hover { background: #f7f9fc; }
caption { caption-side: bottom; text-align: left; padding-top: 0.6em; color: #555;
          white-space: normal; max-width: 60em; }
ol.notes { font-size: 0.8em; color: #555; margin: 0.6em 0; } abbr { text-decoration: none; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em;
          font-size: 0.85em; } dl.prov dt { font-weight: 600; } dl.prov dd { margin: 0; }
.scroll { overflow-x: auto; }
"""


NOTED = ("Method", "Projection")  # columns whose options move to a numbered note under the table
OPTIONS = re.compile(r"^(?P<name>\S+) \((?P<options>.+)\)$")  # fmt_options: "name (k=v, ...)"


def _noted(text: str, notes: list[str]) -> str:
    """A Method or Projection cell as its name with a note number (and the options as a tooltip):
    long option strings would widen the table past the page."""
    match = OPTIONS.match(text)
    if match is None:
        return escape(text)
    if text not in notes:
        notes.append(text)
    number = notes.index(text) + 1
    return (f'{escape(match["name"])}<sup><abbr title="{escape(match["options"])}">{number}'
            "</abbr></sup>")


def _flagged(text: str) -> str:
    """A d_int cell with each flag's mark naming its flag in a tooltip."""
    out = escape(text)
    for flag, (mark, _) in FLAGS.items():
        out = out.replace(mark, f'<abbr title="{flag}">{mark}</abbr>')
    return out


def table_html(df: pl.DataFrame) -> str:
    """The ``<table>``: one ``<tbody>`` per cell, so projections of one cell form a block; method
    and projection options as numbered notes below it (:func:`_noted`), flags' marks named in
    tooltips (:func:`_flagged`)."""
    headers, rows, right = display(df)
    group = groups(df)
    notes: list[str] = []

    def cls(i: int) -> str:
        return ' class="num"' if right[i] else ""

    def cell(j: int, text: str) -> str:
        if headers[j] == d_int_name(df):
            return _flagged(text)
        return _noted(text, notes) if headers[j] in NOTED else escape(text)

    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(headers))
    out = ['<table id="leaderboard">', f"<caption>{escape(caption(df))}</caption>",
           f"<thead><tr>{head}</tr></thead>"]
    for i, row in enumerate(rows):
        if i == 0 or group[i] != group[i - 1]:
            out.append("<tbody>" if i == 0 else "</tbody><tbody>")
        out.append("<tr>" + "".join(f"<td{cls(j)}>{cell(j, c)}</td>" for j, c in enumerate(row))
                   + "</tr>")
    out += ["</tbody>" if rows else "", "</table>"]
    if notes:
        out.append('<ol class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ol>")
    return "\n".join(out)


def to_html(
    df: pl.DataFrame,
    provenance: dict[str, Any] | None = None,
    images: dict[str, bytes] | None = None,
    title: str | None = None,
) -> str:
    """A complete HTML page: title, table, plots (PNG bytes by caption), provenance."""
    provenance = provenance or {}
    suite = provenance.get("suite")
    title = title or (f"idbench leaderboard: {suite}" if isinstance(suite, str) else
                      "idbench leaderboard")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<div class="scroll">{table_html(df)}</div>',
        "<h2>Comparison</h2>",
        f'<div class="scroll">{comparison.to_html(df)}</div>',
    ]
    if common_threshold.applies(df):
        parts += ["<h2>Optimisers at SGD's threshold</h2>",
                  f'<div class="scroll">{common_threshold.to_html(df)}</div>']
    if starts := starting_point.to_html(df):
        parts += ["<h2>Where the runs start</h2>", f'<div class="scroll">{starts}</div>']
    if published := reference.to_html(df):
        parts += ["<h2>Beside the published figure</h2>", f'<div class="scroll">{published}</div>']
    for name, png in (images or {}).items():
        data = base64.b64encode(png).decode("ascii")
        parts += [f"<h2>{escape(name)}</h2>",
                  f'<figure><img alt="{escape(name)}" src="data:image/png;base64,{data}"></figure>']
    items = prov.items(provenance)
    if items:
        parts.append("<h2>Provenance</h2>")
        parts.append('<dl class="prov">' + "".join(
            f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
