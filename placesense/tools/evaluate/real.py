"""``placesense evaluate --real DIR``: real homes' recorded lives replayed through what serve evaluates.

Each home under DIR (``placesense.tools.evaluate.realhomes``) is played three times in a row
(``placesense.tools.evaluate.inject.looped``: its first whole weeks twice, then all of it, so the routine detector's
two-week learning is behind it for the last play) as the readings its devices would send, into an ``EvaluationCore``
on the event clock (the rule engine, routine detector and sensor detectors of serve's evaluation process), ticked
after every reading as serve ticks after every batch. Findings go to an ``AlertService`` over a SQLite
``AlertStore``, so alerts are counted as a care team sees them: one per rule and home while open. The care team
deals with each alert: one still open two hours after it opened is resolved by them.

The report: alerts per home-month by rule on the ordinary recorded life, each judged against the labels
(``placesense.tools.evaluate.judge``), and, for each change injected into that life after the learning
(``placesense.tools.evaluate.inject``), whether the rule meant for it raised an alert, after how long,
and what else did. A table, then one JSON line.

This module runs and reports; it decides nothing about what is unusual.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.registry import Registry
from placesense.alerts.changes import AlertChange
from placesense.alerts.lifecycle import AlertService
from placesense.alerts.store import AlertStore
from placesense.basics.db import make_engine
from placesense.basics.timeunits import DAY_MS, HOUR_MS
from placesense.evaluation_core import EvaluationCore, EvaluationSpec
from placesense.tools.evaluate.inject import INJECTION_TYPES, Background, Injected, inject, looped
from placesense.tools.evaluate.judge import Judge
from placesense.tools.evaluate.realhomes import Activation, RecordedHome, device_readings, find_homes, load_home
from rules.config import RulesConfig

CARE_TEAM = "care team"
CARE_TEAM_CLOSES_AFTER_MS = 2 * HOUR_MS
# The rules meant to catch each injected change (the rules' and the detector's).
MEANT: dict[str, frozenset[str]] = {
    "late_morning": frozenset({"not_up", "routine_late_wakeup"}),
    "silence": frozenset({"inactivity", "routine_no_movement"}),
    "night_wandering": frozenset({"routine_night_wandering", "night_wandering"}),
    "more_bathroom_visits": frozenset({"bathroom_visits", "routine_more_bathroom_visits"}),
    "front_door_at_night": frozenset({"night_door", "routine_night_wandering"}),
}


@dataclass(frozen=True, slots=True)
class Raised:
    """An alert as it opened: rule, time, audience and words."""

    rule: str
    audience: str
    at_ms: int
    message: str


@dataclass
class _Collector:
    """Publisher that remembers every alert that opened, and which are still open (for the care team)."""

    raised: list[Raised] = field(default_factory=list)
    open_since: dict[int, int] = field(default_factory=dict)

    def publish(self, change: AlertChange) -> None:
        alert = change.alert
        if change.action == "opened":
            self.raised.append(Raised(alert.rule, alert.audience, alert.opened_at_ms, alert.message))
            self.open_since[alert.id] = alert.opened_at_ms
        elif change.action == "resolved":
            self.open_since.pop(alert.id, None)


def replay(
    home: RecordedHome, bg: Background, activations: list[Activation], rules: RulesConfig, care_team: bool = True
) -> list[Raised]:
    """Play ``activations`` as device readings through an ``EvaluationCore`` and an ``AlertService``; returns the
    alerts that opened. Without ``care_team`` nobody resolves anything (as in a bare ``placesense serve``)."""
    registry = Registry.from_data(home.registry_data())
    with tempfile.TemporaryDirectory(prefix="placesense-real-") as scratch:
        spec = EvaluationSpec(registry, rules, "event", Path(scratch) / "state", logging.WARNING)
        core = EvaluationCore(spec)
        engine = make_engine(f"sqlite:///{Path(scratch) / 'alerts.db'}")
        collector = _Collector()
        alerts = AlertService(AlertStore(engine), core.clock, rules, publishers=[collector])
        try:
            for reading in device_readings(home, activations, bg.start_ms, bg.end_ms):
                findings = core.readings([tuple(reading)])
                findings += core.tick()
                if findings:
                    alerts.apply_all(findings)
                now = core.clock.now_ms()
                for alert_id, opened in list(collector.open_since.items()) if care_team else ():
                    if now - opened >= CARE_TEAM_CLOSES_AFTER_MS:
                        alerts.resolve(alert_id, CARE_TEAM, "checked with the resident")
        finally:
            engine.dispose()
    return collector.raised


@dataclass
class HomeReport:
    key: str
    name: str
    days: float
    alerts: list[dict[str, Any]] = field(default_factory=list)
    injections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def months(self) -> float:
        return self.days / 30.0

    def by_rule(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = defaultdict(lambda: {"alerts": 0, "false": 0})
        for alert in self.alerts:
            counts[alert["rule"]]["alerts"] += 1
            counts[alert["rule"]]["false"] += 0 if alert["true"] else 1
        return dict(counts)

    def as_dict(self) -> dict[str, Any]:
        total = len(self.alerts)
        false = sum(1 for a in self.alerts if not a["true"])
        return {
            "home": self.key, "name": self.name, "days": round(self.days, 1),
            "alerts": total, "false_alerts": false,
            "alerts_per_month": round(total / self.months, 2), "false_per_month": round(false / self.months, 2),
            "by_rule": self.by_rule(), "alert_list": self.alerts, "injections": self.injections,
        }


def evaluate_home(home: RecordedHome, rules: RulesConfig, kinds: tuple[str, ...] = INJECTION_TYPES) -> HomeReport:
    bg = looped(home)
    judge = Judge(bg)
    report = HomeReport(home.key, home.name, (bg.end_ms - bg.start_ms) / DAY_MS)
    for alert in replay(home, bg, bg.activations, rules):
        verdict = judge.judge(alert.rule, alert.at_ms)
        report.alerts.append({
            "rule": alert.rule, "audience": alert.audience, "at": bg.local(alert.at_ms).strftime("%a %d %b %H:%M"),
            "true": verdict.true, "labels_show": verdict.labels_show, "message": alert.message,
        })
    for kind in kinds:
        done = inject(bg, kind)
        if done is None:
            report.injections.append({"type": kind, "injected": False})
            continue
        activations, injected = done
        raised = replay(home, bg, activations, rules)
        report.injections.append(_score(kind, injected, raised, bg))
    return report


def _score(kind: str, injected: Injected, raised: list[Raised], bg: Background) -> dict[str, Any]:
    window = [r for r in raised if injected.start_ms - HOUR_MS <= r.at_ms <= injected.end_ms + DAY_MS]
    own = [r for r in window if r.rule in MEANT[kind]]
    first = min(own, key=lambda r: r.at_ms) if own else None
    return {
        "type": kind, "injected": True, "start": bg.local(injected.start_ms).strftime("%a %d %b %H:%M"),
        "note": injected.note, "caught_by_its_rule": first is not None,
        "rule": first.rule if first else None,
        "delay_h": round(max(0, first.at_ms - injected.start_ms) / HOUR_MS, 2) if first else None,
        "message": first.message if first else None,
        "other_alerts": sorted({r.rule for r in window if r.rule not in MEANT[kind]}),
    }


def run_real(directory: Path, rules: RulesConfig | None = None) -> dict[str, Any]:
    root = directory
    homes = [load_home(path, root) for path in find_homes(root)]
    if not homes:
        raise FileNotFoundError(f"no recorded homes (folders with home.yaml) under {directory}")
    reports = [evaluate_home(home, rules or RulesConfig()) for home in homes]
    months = sum(r.months for r in reports)
    injections = [i for r in reports for i in r.injections if i["injected"]]
    return {
        "homes": [r.as_dict() for r in reports],
        "home_months": round(months, 2),
        "alerts_per_home_month": round(sum(len(r.alerts) for r in reports) / months, 2),
        "false_per_home_month": round(sum(1 for r in reports for a in r.alerts if not a["true"]) / months, 2),
        "injected": len(injections),
        "caught_by_its_rule": sum(1 for i in injections if i["caught_by_its_rule"]),
        "by_rule": dict(sum((Counter({k: v["alerts"] for k, v in r.by_rule().items()}) for r in reports), Counter())),
    }


def print_report(report: dict[str, Any]) -> None:
    rules = sorted(report["by_rule"])
    print(f"{'home':<22}{'days':>6}{'alerts/mo':>10}{'false/mo':>9}  by rule (alerts, false)")
    for home in report["homes"]:
        parts = [f"{rule} {v['alerts']} ({v['false']})" for rule, v in sorted(home["by_rule"].items())]
        print(f"{home['home']:<22}{home['days']:>6}{home['alerts_per_month']:>10}{home['false_per_month']:>9}  "
              + (", ".join(parts) or "none"))
    print(f"all homes: {report['alerts_per_home_month']} alerts and {report['false_per_home_month']} false alerts "
          f"per home-month over {report['home_months']} home-months; rules seen: {', '.join(rules) or 'none'}")
    width = 2 + max(22, *(len(c) for c in _injection_cells(report)))
    print(f"\n{'injected change':<22}" + "".join(f"{h['home'].split('/')[-1]:>{width}}" for h in report["homes"]))
    for kind in INJECTION_TYPES:
        cells = [_injection_cell(home, kind) for home in report["homes"]]
        print(f"{kind:<22}" + "".join(f"{c:>{width}}" for c in cells))
    print(f"caught by the rule meant for them: {report['caught_by_its_rule']} of {report['injected']}")


def _injection_cell(home: dict[str, Any], kind: str) -> str:
    """'not_up 4.56 h', 'missed (night_door)' or 'not injected': one cell of the injected-change table."""
    entry = next((i for i in home["injections"] if i["type"] == kind), None)
    if entry is None or not entry["injected"]:
        return "not injected"
    if entry["caught_by_its_rule"]:
        return f"{entry['rule']} {entry['delay_h']} h"
    return "missed" + (f" ({'/'.join(entry['other_alerts'])})" if entry["other_alerts"] else "")


def _injection_cells(report: dict[str, Any]) -> list[str]:
    return [_injection_cell(home, kind) for home in report["homes"] for kind in INJECTION_TYPES]


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        report = run_real(Path(args.real))
    except (FileNotFoundError, ValueError) as exc:
        print(f"placesense evaluate: {exc}", file=sys.stderr)
        return 2
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print_report(report)
    sys.stdout.flush()
    print(json.dumps(report, ensure_ascii=False, separators=(",", ":")))
    return 0
