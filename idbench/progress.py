"""What the terminal shows while idbench works: a live status line (stderr) and result tables
(stdout), with rich.

Progress, notes and warnings go to stderr (:data:`console`), results to stdout
(:func:`print_result`), so ``idbench measure ... > result.txt`` captures the result and nothing
else. Piped, a result table is not wrapped at the terminal's 80 columns.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True)
PIPED_WIDTH = 240  # columns of a result table written to a file or a pipe


def print_result(renderable: Any) -> None:
    """A result (table) on stdout, not wrapped at 80 columns when stdout is not a terminal."""
    results = Console(highlight=False)
    if not results.is_terminal:
        results = Console(highlight=False, width=PIPED_WIDTH)
    results.print(renderable)


@contextlib.contextmanager
def status(title: str = "measuring") -> Iterator[Callable[[str], None]]:
    """A spinner whose text follows the latest event; yields the event callback."""
    with console.status(title) as live:

        def on_event(message: str) -> None:
            live.update(f"{title}: {escape(message)}")
            if not console.is_terminal:
                console.print(f"{title}: {message}", highlight=False, markup=False)

        yield on_event


def print_summary(summary: dict[str, Any]) -> None:
    """A two-column table of one measurement's result."""
    table = Table(show_header=False, box=None, pad_edge=False)
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        if key.startswith("d_int") and value is None:
            shown = f"> {summary['d_max']} (censored)"
        table.add_row(key, escape(shown))
    print_result(table)


@contextlib.contextmanager
def suite_progress() -> Iterator[tuple[Callable[[int, int, str], None], Callable[[str], None]]]:
    """A suite progress bar (cells done) with the current cell's latest event under it.

    The bar appears with the first cell, so an error raised before any training prints alone.
    When the suite ends (or stops) the event line is removed, so the last line left on stderr is
    the bar itself (cells done, time), not a stale event of the last cell.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console)
    tasks: dict[str, Any] = {}

    def on_cell(index: int, total: int, label: str) -> None:
        if not tasks:
            bar.start()
            tasks["suite"] = bar.add_task("suite", total=total)
            tasks["cell"] = bar.add_task("", total=None, start=False)
        bar.update(tasks["suite"], completed=index)
        bar.update(tasks["cell"], description=f"  {escape(label)}")
        if not console.is_terminal:
            console.print(f"cell {index + 1}/{total}: {label}", highlight=False, markup=False)

    def on_event(message: str) -> None:
        if tasks:
            bar.update(tasks["cell"], description=f"  {escape(message)}")

    try:
        yield on_cell, on_event
        if tasks:
            bar.update(tasks["suite"], completed=bar.tasks[0].total)
    finally:
        if tasks:
            bar.remove_task(tasks["cell"])
            bar.stop()


def print_plan(rows: list[dict[str, Any]]) -> None:
    """The ``--dry-run`` table: cells, whether they run, and what the store already holds."""
    table = Table("cell", "key", "status", "stored runs", "measured")
    for row in rows:
        status_text = f"skipped: {row['skipped']}" if row["skipped"] else "runs"
        table.add_row(escape(row["cell"]), row["key"], escape(status_text), str(row["stored_runs"]),
                      "yes" if row["measured"] else "no")
    print_result(table)
