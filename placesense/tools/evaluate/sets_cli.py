"""``placesense evaluate --street DIR`` and ``--detect DIR``: the report on real public data sets.

``--street DIR`` replays the soil probes (``DIR/simpact_soil``) and the hourly air station
(``DIR/openair_marylebone``) through the rules and detectors serve runs (``placesense.tools.evaluate.street``,
``placesense.tools.evaluate.air``); ``--detect DIR`` scores ``placesense detect`` NAB-style on labelled series
(``placesense.tools.evaluate.detect``), and may be given more than once, one set each, reported apart. Each prints a few
readable lines and, last, one JSON line with everything.
This module only formats; it decides nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--street", type=Path, metavar="DIR",
        help="real street data (tests/data): watering forecast, sensor faults, alert budget, DAQI vs DEFRA",
    )
    parser.add_argument(
        "--detect", type=Path, metavar="DIR", action="append",
        help="labelled series (timestamp,value,label CSVs, e.g. tests/data/skab): NAB-style score of detect;"
        " give it again for another set (each is scored and reported on its own)",
    )


def wanted(args: argparse.Namespace) -> bool:
    return getattr(args, "street", None) is not None or bool(getattr(args, "detect", None))


def run(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {}
    if args.street is not None:
        from placesense.tools.evaluate.air import evaluate_air
        from placesense.tools.evaluate.street import evaluate_soil, evaluate_transplanted

        soil = report["soil"] = evaluate_soil(args.street / "simpact_soil")
        transplanted = report["soil_transplanted_faults"] = evaluate_transplanted(args.street / "simpact_soil")
        air = report["air"] = evaluate_air(args.street / "openair_marylebone")
        water, faults = soil["watering"], soil["faults"]
        print(f"soil: {soil['probes']} probes × {soil['days']} days (SIMPaCT, Sydney park)")
        print(
            f"  'within 24 h' announcements that came true: {water['announcements_true']}/{water['announcements']}"
            f" ({water['precision']}); episodes {water['episodes_true']}/{water['episodes']}"
        )
        print(
            f"  crossings listed 12 h ahead: {water['announced_12h_ahead']}/{water['crossings']}"
            f" ({water['recall_12h']}), 6 h ahead: {water['announced_6h_ahead']}; withdrawn without a rise:"
            f" {water['withdrawn_without_rise']}"
        )
        print(
            f"  … after a day of drying: {water['of_those_announced_12h_ahead']}/"
            f"{water['crossings_after_a_day_drying']}; within 12 h of a wetting: {water['of_those_listed_12h_ahead']}/"
            f"{water['crossings_within_12h_of_a_wetting']}"
        )
        ahead = soil["forecastability"]
        print(
            f"  forecastability: at {ahead['hours_judged']} hours 6-48 h before a crossing"
            f" ({ahead['hours_with_a_forecast']} with a drying forecast), actual/forecast time"
            f" p10/p50/p90 {ahead['actual_over_forecast_p10_p50_p90']}; said 12-24 h and crossed 12-24 h later"
            f" {ahead['of_those_crossed_12_24h_later']}/{ahead['forecast_12_24h']}"
        )
        print(
            f"  fault alerts: {faults['fault_alerts_opened']} ({faults['false_per_probe_month']} per probe-month);"
            f" street alert changes a day per 30 beds: {soil['alert_changes_per_day_per_30_beds']}"
        )
        print(
            f"  transplanted failures caught: {transplanted['caught']}/{transplanted['failed_probes']}"
            f" {transplanted['caught_by_kind']}; false alerts on the healthy probes:"
            f" {transplanted['false_per_healthy_probe_month']} per probe-month"
        )
        print(f"air: {air['hours']} hours (Marylebone Road 2003, hourly means)")
        print(
            f"  hours the site index differs from DEFRA's method: {air['hours_site_index_disagrees']};"
            f" by pollutant {air['hours_disagree_by_pollutant']}; DAQI alerts opened {air['daqi_alerts_opened']}"
        )
    if args.detect:
        from placesense.tools.evaluate.detect import evaluate_detect

        # Sets are scored apart, never pooled: a detector tuned to one set shows up as a gap between them.
        report["detect"] = {}
        for folder in args.detect:
            detect = report["detect"][folder.name] = evaluate_detect(folder)
            ours, gaussian = detect["placesense_detect"], detect["windowed_gaussian_best_threshold"]
            print(f"detect on {folder.name}: {detect['series']} labelled series, {detect['points']} points")
            print(
                f"  NAB-style standard profile: placesense detect {ours['nab_standard']}"
                f" ({ours['detected']}/{ours['windows']} windows, {ours['false_positives']} false flags);"
                f" windowed Gaussian at its best threshold {gaussian['nab_standard']}; null 0.0"
            )
    sys.stdout.flush()
    print(json.dumps(report, ensure_ascii=False, separators=(",", ":")))
    return 0
