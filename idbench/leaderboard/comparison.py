"""The comparison view: one row per model, one column per projection x method, d_int side by side.

Each cell of the view shows, for one (model, projection, method) measurement::

    319 [307, 337] ×0.96

the estimate in *total* directions (d_int times the number of compartments when d counts
directions per compartment, so split and unsplit methods compare on the same axis), its 95% CI on
the same axis, and the ratio of the estimate to that of dense FPD without compartments on the same
row (the reference of Li et al.; with several optimisers, the one trained by the column's
optimiser). Columns split further by compartments (``rbd, layer``), by optimiser where the table
holds more than one, and by options only where one projection x method was measured with
several; rows split by epochs where the budget varies (the budget suite), and by the tuner's draw
where it varies.
"""

from __future__ import annotations

from html import escape

import polars as pl

from idbench.leaderboard.tables import (
    d_int_name, fmt_d_int, fmt_interval, fmt_options, fmt_ratio, fmt_value, varies,
)

REFERENCE = ("dense", "fpd", "1")  # projection, method, compartments of the ratio's denominator
ROW = ["dataset", "model", "D"]
BASE = ["projection", "method", "compartments", "optimizer"]
COLUMN = [*BASE, "variant"]
# rows split by these where they vary: the budget suite's epochs, a study of the tuner's draws
SPLIT = [("epochs", "Epochs"), ("tune_draw", "Tuner draw")]


def _variant(row: dict) -> str:
    """The options of a cell as a rule (``density=1/sqrt(D)``, not its value at this D), so one
    choice made for models of different size is one column."""
    parts = [
        fmt_options(row[name], row[f"{name}_options"], row["D"], values=False)
        .removeprefix(row[name]).strip(" ()")
        for name in ("projection", "method")
    ]
    return "; ".join(p for p in parts if p)


def _column_label(key: dict, shown: set[str]) -> str:
    label = f"{key['projection']} {key['method']}"
    extra = []
    if key["compartments"] != "1":
        extra.append(f"{key['compartments']} compartments")
    if "optimizer" in shown:
        extra.append(key["optimizer"])
    if "variant" in shown and key["variant"]:
        extra.append(key["variant"])
    return label + (f" ({', '.join(extra)})" if extra else "")


def _entry(row: dict, reference: dict | None) -> str:
    """``d_int [low, high] ×ratio`` in total directions (see the module docstring)."""
    factor = (row["d_int_total"] / row["d_int"]) if row["d_int"] and row["d_int_total"] else None
    total = {**row, "d_int": row["d_int_total"],
             "d_max": row["d_max_total"] if row["d_max_total"] is not None else row["d_max"],
             "d_hi": None if row["d_hi"] is None or factor is None else round(row["d_hi"] * factor)}
    text = fmt_d_int(total)
    low, high = row["ci_low"], row["ci_high"]
    if not row["censored"] and factor is not None and low is not None and high is not None:
        text += " " + fmt_interval(low * factor, high * factor)
    if (reference is not None and not reference["censored"] and not row["censored"]
            and reference["d_int_total"] and row["d_int_total"]):
        text += f" ×{fmt_ratio(row['d_int_total'] / reference['d_int_total'])}"
    return text


def comparison(df: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)`` of the comparison view of the leaderboard rows ``df``."""
    split = [(c, label) for c, label in SPLIT if varies(df, c)]
    row_key = ROW + [c for c, _ in split]
    df = df.with_columns(pl.Series("variant", [_variant(r) for r in df.to_dicts()], pl.String))
    shown = {"optimizer"} if varies(df, "optimizer") else set()
    if df.select(BASE).n_unique() < df.select(COLUMN).n_unique():
        shown.add("variant")  # one projection x method measured with several options
    columns = df.select(COLUMN).unique(maintain_order=True).sort(COLUMN).to_dicts()
    headers = ["Model", "Dataset", "D"] + [label for _, label in split]
    headers += [_column_label(c, shown) for c in columns]
    rows = []
    for keys, part in df.group_by(row_key, maintain_order=True):
        cells = {tuple(r[c] for c in COLUMN): r for r in part.to_dicts()}
        references: dict[str, dict] = {}  # per optimiser: a ratio compares like with like
        for key, cell in cells.items():
            if key[:3] == REFERENCE:
                references.setdefault(key[3], cell)
        first = part.row(0, named=True)
        line = [first["model"], first["dataset"], str(first["D"])]
        line += [fmt_value(first[c]) for c, _ in split]
        for column in columns:
            row = cells.get(tuple(column[c] for c in COLUMN))
            line.append("" if row is None else _entry(row, references.get(column["optimizer"])))
        rows.append(line)
    return headers, rows


def caption(df: pl.DataFrame) -> str:
    name = d_int_name(df)
    return (
        f"Comparison: per model, {name} of each projection x method in total directions (d_int "
        "times the number of compartments where d counts directions per compartment), with its "
        f"95% CI on the same axis and ×: the ratio to {name} of dense FPD without compartments "
        f"{'with the same optimiser ' if varies(df, 'optimizer') else ''}on the same row. Empty: "
        "not measured."
    )


def to_markdown(df: pl.DataFrame) -> str:
    """The comparison view as a GitHub Markdown table, followed by its caption."""
    return markdown_table(*comparison(df), caption(df))


def to_html(df: pl.DataFrame) -> str:
    """The comparison view as an HTML ``<table id="comparison">``."""
    return html_table(*comparison(df), caption(df), "comparison")


def markdown_table(headers: list[str], rows: list[list[str]], text: str, labels: int = 2) -> str:
    """A GitHub Markdown table (its first ``labels`` columns left-aligned, the rest right-aligned),
    followed by the caption ``text``."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---"] * labels + ["---:"] * (len(headers) - labels)
    out = [line(headers), "|" + "|".join(align) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n\n" + text + "\n"


def html_table(headers: list[str], rows: list[list[str]], text: str, table_id: str,
               labels: int = 2) -> str:
    """An HTML ``<table id=table_id>`` with the caption ``text``; columns after the first
    ``labels`` are numeric (right-aligned)."""

    def cls(i: int) -> str:
        return ' class="num"' if i >= labels else ""

    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(headers))
    out = [f'<table id="{table_id}">', f"<caption>{escape(text)}</caption>",
           f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td{cls(j)}>{escape(c)}</td>" for j, c in enumerate(row)) + "</tr>"
            for row in rows]
    out += ["</tbody>", "</table>"]
    return "\n".join(out)
