"""Writing files so that a failed or interrupted write never leaves a half file where a good one was."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary file in the same directory, renamed
    over ``path`` only when the block completes; on any error it is removed and ``path`` is untouched."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target}: is a directory, not a file name")
    handle, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.",
                                   suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            yield f
        os.chmod(tmp, _mode_for(target))  # mkstemp makes the file private (0600); give it a normal file's mode
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(target: Path) -> int:
    """The mode the file at ``target`` has, or the one a newly created file gets (0666 less the umask)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text.encode())


def check_writable(path: str | os.PathLike) -> None:
    """Fail early (before long work) when ``path`` cannot be written."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise IsADirectoryError(f"{target}: is a directory, not a file name")
    if not parent.is_dir():
        raise FileNotFoundError(f"{target}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{target}: the directory {parent} is not writable")
