"""Plain sentences for carers: today's value, the usual range and over how many days.

"Got up at 10:40; usually 07:40–08:30 over the last 14 days." Times of day are local clock times; counts are
whole numbers; nothing here decides whether something is unusual.
"""

from __future__ import annotations

from anomaly.baseline import Usual
from placesense.basics.texts import FEATURE_WORDS, Text, text

# feature -> unit kind
KINDS: dict[str, str] = {
    "wake_min": "clock",
    "bedtime_min": "clock",
    "motion_count": "count",
    "kitchen_visits": "count",
    "kettle_uses": "count",
    "fridge_opens": "count",
    "kitchen_events": "count",
    "bathroom_day": "count",
    "bathroom_night": "count",
    "night_activity": "count",
    "out_min": "duration",
    "temperature_c": "celsius",
}
# feature -> (how a carer names it, unit kind); the names in every language are
# ``placesense.basics.texts.FEATURE_WORDS``
FEATURES: dict[str, tuple[str, str]] = {
    feature: (FEATURE_WORDS["en"][feature], kind) for feature, kind in KINDS.items()
}


def clock(minutes: float) -> str:
    """Minutes after local midnight (may exceed a day) as HH:MM."""
    whole = round(minutes) % 1440
    return f"{whole // 60:02d}:{whole % 60:02d}"


def amount(feature: str, value: float) -> str:
    kind = FEATURES.get(feature, (feature, "count"))[1]
    if kind == "clock":
        return clock(value)
    if kind == "duration":
        hours, minutes = divmod(round(value), 60)
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    if kind == "celsius":
        return f"{value:.1f} °C"
    return str(round(value))


def days_text(usual: Usual) -> Text:
    """'14 days', '10 weekdays' or '4 weekend days': what a usual range was learned from (weekdays and weekends
    are judged apart once there are a few of each)."""
    return text(f"usual_days.{usual.day_type}", days=usual.days)


def feature_sentence(feature: str, value: float, usual: Usual) -> str:
    """One feature against its usual range, e.g. ``Got up at 10:40; usually 07:40–08:30 over the last 14 days``."""
    return feature_text(feature, value, usual).english


def feature_text(feature: str, value: float, usual: Usual) -> Text:
    """``feature_sentence`` as a template, so it reads in Welsh too."""
    low, high = amount_text(feature, usual.low), amount_text(feature, usual.high)
    span: str | Text = low if _same(low, high) else text("range", low=low, high=high)
    kind = FEATURES.get(feature, (feature, "count"))[1]
    return text("feature.at" if kind == "clock" else "feature.amount", feature=feature,
                value=amount_text(feature, value), usual=span, days=days_text(usual))


def amount_text(feature: str, value: float) -> str | Text:
    """``amount`` for a template: a duration reads per language, every other amount is the same in both."""
    if FEATURES.get(feature, (feature, "count"))[1] == "duration":
        return text("minutes", minutes=value)
    return amount(feature, value)


def _same(low: str | Text, high: str | Text) -> bool:
    english = [v.english if isinstance(v, Text) else v for v in (low, high)]
    return english[0] == english[1]


def change_sentence(feature: str, recent: float, usual: float) -> str:
    """A change over several days in words, e.g. ``got up at 08:05 on average, 40 min later than usual (07:25)``
    or ``movements detected: 150 a day on average, 25 % fewer than usual (200)``."""
    return change_text(feature, recent, usual).english


def change_text(feature: str, recent: float, usual: float) -> Text:
    """``change_sentence`` as a template, so it reads in Welsh too."""
    kind = FEATURES.get(feature, (feature, "count"))[1]
    if kind == "clock":
        shift = round(recent - usual)
        return text("change.clock", feature=feature, recent=clock(recent), shift=abs(shift),
                    direction="later" if shift >= 0 else "earlier", usual=clock(usual))
    if kind in ("duration", "celsius"):
        return text(f"change.{kind}", feature=feature, recent=amount_text(feature, recent),
                    usual=amount_text(feature, usual))
    change = round(100 * (recent - usual) / usual) if usual else 0
    return text("change.count", feature=feature, recent=round(recent), pct=abs(change),
                direction="fewer" if change < 0 else "more", usual=round(usual))
