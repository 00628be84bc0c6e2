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
    target = _regular_target(path)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as f:
            yield f
        os.chmod(tmp, final_mode(target))  # mkstemp makes the file private (0600); give it a normal file's mode
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TMP_SUFFIX = ".tmp"
TMP_EXTRA = 1 + 1 + 8 + len(TMP_SUFFIX)  # '.' name '.' random suffix: how much longer the temporary name is


def _regular_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: through symbolic links (the link stays, its target is
    written), refusing directories and special files (a device, FIFO or socket is not replaced by a
    regular file, nor opened and waited on)."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, not a file name")
    if target.exists() and not target.is_file():
        raise ValueError(f"{path}: is not a regular file (a device, FIFO or socket); give the name of a file")
    return target


def final_mode(target: Path | str) -> int:
    """The mode the file at ``target`` has, or the one a newly created file gets (0666 less the umask)."""
    try:
        return Path(target).stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text.encode())


def check_writable(path: str | os.PathLike, inputs: tuple = ()) -> None:
    """Fail early (before long work) when ``path`` cannot be written, would replace one of the
    command's ``inputs`` (paths), or has a name too long for the temporary file it is written through."""
    target = _regular_target(path)
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{path}: the directory {parent} is not writable")
    for source in inputs:
        if source is not None and target.exists() and Path(source).exists() and os.path.samefile(target, source):
            raise ValueError(f"{path}: is the input {source}; writing it would destroy that input (give another name)")
    limit = os.pathconf(parent, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if len(os.fsencode(target.name)) + TMP_EXTRA > limit:
        raise ValueError(f"{path}: the file name is too long (it is written through a temporary file of a name "
                         f"{TMP_EXTRA} bytes longer, and this file system allows {limit}); use a shorter name")
