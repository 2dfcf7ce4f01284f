"""``placesense evaluate``: routine-change detection on simulated homes, scored against the injected truth.

Runs firmware-sim in-process (no broker or database), prints a table per anomaly type and, last, one JSON line
with everything (``placesense.tools.evaluate.simulated`` explains the scoring). With ``--real DIR`` it replays
recordings of real homes instead (``placesense.tools.evaluate.real``), and with ``--street DIR`` or ``--detect DIR``
real soil, air and labelled anomaly data (``placesense.tools.evaluate.sets_cli``). This module only formats; it
decides nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from placesense.tools.evaluate import sets_cli as evaluate_sets_cli
from placesense.tools.evaluate.simulated import run_evaluation


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--homes", type=int, default=12, help="simulated homes (default 12)")
    parser.add_argument("--days", type=int, default=60, help="simulated days, warm-up included (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--warm-up-days", type=int, default=14, help="days a home learns before alerting")
    evaluate_sets_cli.add_options(parser)
    parser.add_argument(
        "--real", metavar="DIR", help="replay the recorded real homes under DIR (folders with home.yaml, e.g. "
        "tests/data/homes) through serve's rules and detectors; alerts judged against their activity labels",
    )


def run(args: argparse.Namespace) -> int:
    if args.real:
        from placesense.tools.evaluate.real import run as run_real

        return run_real(args)
    if evaluate_sets_cli.wanted(args):
        return evaluate_sets_cli.run(args)
    started = time.perf_counter()
    report = run_evaluation(homes=args.homes, days=args.days, seed=args.seed, warm_up_days=args.warm_up_days)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(f"{args.homes} homes × {args.days} days, {report['events']} events, {report['us_per_event']} µs per event")
    print(f"{'anomaly type':<22}{'injected':>9}{'recall':>8}{'by rule':>9}{'precision':>11}{'median delay h':>16}")
    for kind, entry in report["types"].items():
        cells = [entry[k] for k in ("injected", "recall", "recall_by_its_rule", "precision", "median_delay_h")]
        shown = ["–" if c is None else str(c) for c in cells]
        print(f"{kind:<22}{shown[0]:>9}{shown[1]:>8}{shown[2]:>9}{shown[3]:>11}{shown[4]:>16}")
    print(f"false routine alerts per home per month: {report['false_alerts_per_home_month']}")
    sys.stdout.flush()
    print(json.dumps(report, ensure_ascii=False, separators=(",", ":")))
    return 0
