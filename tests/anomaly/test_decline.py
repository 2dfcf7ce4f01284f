"""DeclineWatch on its own: a slow decline across several kinds of behaviour is reported once, with what moved;
ordinary ups and downs, a change in one kind of behaviour only, and a drift too slow to matter are not."""

from __future__ import annotations

import pickle
import random

from anomaly.decline import DeclineWatch


def _day(rng: random.Random, decline: float = 0.0, wake_only: bool = False) -> dict[str, float | None]:
    """One day of a resident who gets up about 07:30 and, as ``decline`` goes from 0 to 1, gets up an hour
    later, moves about 40 % less, uses the kitchen half as much and stops going out."""
    others = 0.0 if wake_only else decline
    return {
        "wake_min": 450.0 + rng.gauss(0, 15) + 60 * decline,
        "motion_count": rng.gauss(210, 18) * (1 - 0.4 * others),
        "kitchen_events": float(max(0, round(rng.gauss(16, 2.5) * (1 - 0.5 * others)))),
        "out_min": (rng.uniform(60, 200) if rng.random() < 0.6 * (1 - others) else 0.0),
    }


def _run(days: list[dict[str, float | None]], watch: DeclineWatch | None = None) -> list[tuple[int, object]]:
    watch = watch or DeclineWatch()
    reports = []
    for index, values in enumerate(days):
        report = watch.add_day(values, weekend=index % 7 >= 5)
        if report is not None:
            reports.append((index, report))
    return reports


def test_months_of_ordinary_days_report_nothing() -> None:
    for seed in range(5):
        rng = random.Random(seed)
        assert _run([_day(rng) for _ in range(240)]) == []


def test_a_decline_over_three_weeks_is_reported_with_what_moved() -> None:
    rng = random.Random(1)
    days = [_day(rng) for _ in range(50)] + [_day(rng, decline=min(1.0, d / 21)) for d in range(21)]
    reports = _run(days)
    assert reports, "decline not reported"
    first_day, report = reports[0]
    assert 50 < first_day <= 60  # within ten days of the start, while the change is still small
    moved = {m.feature: m for m in report.moved}  # type: ignore[attr-defined]
    assert len(moved) >= 2
    assert "wake_min" in moved and moved["wake_min"].recent > moved["wake_min"].usual
    for feature in ("motion_count", "kitchen_events"):
        if feature in moved:
            assert moved[feature].recent < moved[feature].usual
    assert report.reference_to_days_ago == 22  # type: ignore[attr-defined]
    # reported again at most every quiet period, not every day
    assert len(reports) <= 2


def test_the_lagged_reference_catches_a_drift_a_rolling_baseline_would_absorb() -> None:
    rng = random.Random(4)
    # six weeks from normal to the full decline: each week moves by less than a day's ordinary spread
    days = [_day(rng) for _ in range(50)] + [_day(rng, decline=d / 42) for d in range(42)]
    reports = _run(days)
    assert reports and reports[0][0] >= 50


def test_one_kind_of_behaviour_alone_is_not_a_decline() -> None:
    rng = random.Random(2)
    days = [_day(rng) for _ in range(50)] + [_day(rng, decline=1.0, wake_only=True) for _ in range(20)]
    assert _run(days) == []


def test_days_a_same_day_check_reported_are_left_out() -> None:
    rng = random.Random(3)
    days = [_day(rng) for _ in range(50)]
    for _ in range(5):  # five late mornings with little kitchen use, each already reported that day
        day = _day(rng, decline=1.0)
        days.append(day | {"wake_min": None, "kitchen_events": None})
    assert _run(days) == []


def test_state_is_bounded_and_pickles() -> None:
    rng = random.Random(5)
    watch = DeclineWatch()
    for index in range(400):
        watch.add_day(_day(rng), weekend=index % 7 >= 5)
    assert len(watch._days) == 56 and len(watch._run) <= 14
    restored = pickle.loads(pickle.dumps(watch))
    assert restored.cusum == watch.cusum and list(restored._days) == list(watch._days)
