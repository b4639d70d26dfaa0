"""The ``idbench`` command: a thin layer over the library.

Every command calls one library function; user mistakes (:class:`~idbench.errors.IdbenchError`)
print one line to stderr and exit with status 2, with no traceback.
"""

from __future__ import annotations

import sys

import typer

from idbench.errors import IdbenchError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Measure the intrinsic dimension of neural-network training objectives.",
)


@app.callback()
def _root() -> None:
    """Measure the intrinsic dimension of neural-network training objectives."""

KINDS = ("models", "datasets", "projections", "methods")


@app.command("ls")
def ls(
    kind: str = typer.Argument(..., help="models | datasets | projections | methods"),
    pattern: str = typer.Argument("*", help="shell-style wildcard, e.g. '*lenet*'"),
) -> None:
    """List what exists: registered models, datasets, projections or methods."""
    for name in list_names(kind, pattern):
        typer.echo(name)


def list_names(kind: str, pattern: str = "*") -> list[str]:
    """Names of one kind of component (``idbench ls``)."""
    import idbench.data
    import idbench.methods
    import idbench.models
    import idbench.projections

    listers = {
        "models": idbench.models.list,
        "datasets": idbench.data.list,
        "projections": idbench.projections.list,
        "methods": idbench.methods.list,
    }
    if kind not in listers:
        raise IdbenchError(f"cannot list {kind!r}: choose one of {', '.join(listers)}")
    return listers[kind](pattern)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()  # click handles its own usage errors (status 2) and Ctrl-C
    except IdbenchError as exc:
        typer.echo(f"idbench: error: {exc}", err=True)
        sys.exit(2)
