"""Private files and folders: what placesense writes that holds personal data or secrets (the database, spool
segments, saved state, exports) is readable by its own user only, 0600 for files and 0700 for folders, from the
moment it exists, and a file written again over an older, wider one ends up private too.

Only how files are created and what mode they get lives here; what goes in them is the caller's business. This
module never widens a mode and never changes a folder it did not create (an operator may point a setting at a
shared folder).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as a 0700 folder; an existing folder is left as it is."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        # mkdir's mode is filtered by the umask; a umask of 0 would leave it 0700 anyway, a wider one not wider.
        path.chmod(PRIVATE_DIR)
    return path


def create_private(path: Path) -> int:
    """A new file opened for writing with mode 0600 (fails if it exists): the descriptor, for ``os.fdopen``."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, as a 0600 file whatever mode an older ``path`` had.

    The bytes go to a new file beside it (created 0600, so never readable by others, not even while written),
    are fsynced, and the new file replaces ``path`` in one rename."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    fd = create_private(partial)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def make_private(path: Path) -> None:
    """Take group and other permissions off an existing file this user owns (one an older version left wider)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        info = path.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(stat.S_IMODE(info.st_mode) & ~0o077)


def touch_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist; make an existing one private."""
    try:
        os.close(create_private(path))
    except FileExistsError:
        make_private(path)
