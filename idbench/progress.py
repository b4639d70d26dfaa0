"""What the terminal shows while idbench works: a live status line and result summaries (rich).

Everything goes to stderr, so ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


@contextlib.contextmanager
def status(title: str = "measuring") -> Iterator[Callable[[str], None]]:
    """A spinner whose text follows the latest event; yields the event callback."""
    with console.status(title) as live:

        def on_event(message: str) -> None:
            live.update(f"{title}: {message}")
            if not console.is_terminal:
                console.print(f"{title}: {message}", highlight=False)

        yield on_event


def print_summary(summary: dict[str, Any]) -> None:
    """A two-column table of one measurement's result."""
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        if key == "d_int90" and value is None:
            shown = f"> {summary['d_max']} (censored)"
        table.add_row(key, shown)
    console.print(table)
