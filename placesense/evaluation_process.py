"""Entry point of the evaluation process: ``python -m placesense.evaluation_process FD``.

``placesense serve`` (through ``placesense.evaluation.Evaluator``) starts it with one end of a socket pair as
``FD``, sends the ``EvaluationSpec`` as the first message and then batches of stored readings. It is not meant to
be run by hand.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from placesense.evaluation import run_child


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m placesense.evaluation_process FD (started by placesense serve, not by hand)",
              file=sys.stderr)
        return 2
    conn = Connection(int(argv[0]))
    run_child(conn, conn.recv())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
