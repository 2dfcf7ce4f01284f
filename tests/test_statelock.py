"""The state folder's lock, with real processes: one user of the folder at a time, held until the last holder
ends, and never left behind by a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from placesense.statelock import StateFolderInUse, StateLock

# A process that takes the lock itself, says so, and waits for its stdin to close.
HOLDER = (
    "import sys; from pathlib import Path; from placesense.statelock import StateLock; "
    "StateLock(Path(sys.argv[1]), 'placesense serve', 'x'); print('held', flush=True); sys.stdin.read()"
)


def _python(*args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, pass_fds=pass_fds
    )


def _lock(folder: Path) -> StateLock:
    return StateLock(folder, "placesense privacy delete-home", "erasing a home")


def test_a_second_holder_is_refused_and_told_who_holds_the_folder(tmp_path: Path) -> None:
    first = StateLock(tmp_path / "state", "placesense serve", "starting another service on it")
    with pytest.raises(StateFolderInUse, match=rf"in use by placesense serve \(pid {os.getpid()}\); .* before erasing"):
        _lock(tmp_path / "state")
    _lock(tmp_path / "other").release()  # another folder is another lock
    first.release()
    with _lock(tmp_path / "state"), pytest.raises(StateFolderInUse, match=r"placesense privacy delete-home \(pid"):
        StateLock(tmp_path / "state", "placesense serve", "starting another service on it")


def test_a_child_that_inherited_the_lock_holds_it_until_it_ends(tmp_path: Path) -> None:
    lock = StateLock(tmp_path / "state", "placesense serve", "x")
    # Leaving the block closes the child's stdin, which ends it, and waits for it.
    with _python("-c", "import sys; print('up', flush=True); sys.stdin.read()", pass_fds=(lock.fileno(),)) as child:
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        lock.release()  # as when serve stops or is killed: its evaluation process saves last
        with pytest.raises(StateFolderInUse):
            _lock(tmp_path / "state")
    _lock(tmp_path / "state").release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    with _python("-c", HOLDER, str(tmp_path / "state")) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            with pytest.raises(StateFolderInUse, match=rf"\(pid {holder.pid}\)"):
                _lock(tmp_path / "state")
        finally:
            holder.send_signal(signal.SIGKILL)  # no chance to let go
            holder.wait(30)
    _lock(tmp_path / "state").release()
