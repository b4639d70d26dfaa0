"""Atomic file writes, the one way idbench writes a result file: :func:`write_atomic`.

A file is written to a temporary file in the target folder, flushed and fsynced, then renamed onto
its name. The rename is atomic, so a reader sees the old file, no file, or the complete new one; a
crash leaves at most a temporary file. Temporary files are named ``.tmp-<pid>-<host>-<random>-<name>``
(a dot first: readers skip them), so :func:`remove_stale_temps` can tell the leftovers of a dead
writer on this machine from a file another live process is writing right now.

Example::

    write_atomic(path, frame.write_parquet)        # any function that writes to a binary file
    write_atomic(path, b"bytes")                   # or the bytes themselves
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from pathlib import Path
from typing import BinaryIO, Callable

from idbench.errors import IdbenchError

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP = re.compile(r"^\.tmp-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[0-9a-f]{8}-")


def temp_path(path: Path) -> Path:
    """A fresh temporary name for ``path`` in its folder, naming this process and machine."""
    return path.with_name(f".tmp-{os.getpid()}-{_HOST}-{secrets.token_hex(4)}-{path.name}")


def write_atomic(path: str | os.PathLike[str], content: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``content`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    The folder is created if needed. An OSError becomes one IdbenchError naming the file.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise IdbenchError(
            f"cannot write {path}: {exc.strerror or exc}; check the free space and permissions of "
            "the output folder"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files in ``folder`` left by writers on this machine that are dead
    (killed in the middle of a write); returns what was deleted. Files of live writers, of other
    machines, or of another naming are kept."""
    removed = []
    if not folder.is_dir():
        return removed
    for entry in os.scandir(folder):
        match = _TEMP.match(entry.name)
        if match is None or match["host"] != _HOST or alive(int(match["pid"])):
            continue
        Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
    return removed


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
