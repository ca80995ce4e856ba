"""Private files: everything the service writes is readable by its owner only, whatever the umask.

New files are created 0600 (folders 0700); files an older version left readable are tightened
to 0600 when opened. SQLite creates a database's -wal, -shm and -journal files with the database
file's own mode, so a private database file keeps its companions private too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create a folder (and its parents) owner-only; an existing one is left as it is."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Make sure `path` exists and is 0600, before anything (e.g. SQLite) opens it."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)


def private_sqlite(path: Path) -> None:
    """A SQLite database file and whatever companions it already has, all 0600."""
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.chmod(companion, FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` (replacing its content), the file 0600 even if it existed."""
    with open_private(path) as handle:
        handle.write(data)


def open_private(path: Path) -> BinaryIO:
    """Open `path` for writing from the start, created (or tightened to) 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")
