"""Stopping what ``make demo`` started: each process is waited for, so the next stops only after it has ended."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from placesense.tools.localstack.process import pid_file_stop

# Takes its time over SIGTERM, as serve does (it stores, acknowledges and saves first), then leaves a mark.
SLOW_TO_STOP = """
import signal, sys, time
from pathlib import Path
def stop(*_):
    time.sleep(0.5)
    Path(sys.argv[1]).write_text("stopped")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("up", flush=True)
while True:
    time.sleep(1)
"""


def test_a_stopped_process_has_ended_when_the_stop_returns(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    with subprocess.Popen(
        [sys.executable, "-c", SLOW_TO_STOP, str(mark)], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        pid_file = tmp_path / "slow.pid"
        pid_file.write_text(str(proc.pid))
        assert pid_file_stop(pid_file, wait_s=30)
        # Ended, though not yet reaped by its parent (this test): a zombie counts as stopped.
        assert mark.read_text() == "stopped"
        assert not pid_file.exists()
        assert proc.wait(5) == 0
    assert not pid_file_stop(pid_file)  # nothing recorded any more


def test_a_process_already_gone_is_not_reported_as_stopped(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait(30)
    pid_file = tmp_path / "gone.pid"
    pid_file.write_text(str(proc.pid))
    assert not pid_file_stop(pid_file)
    assert not pid_file.exists()
