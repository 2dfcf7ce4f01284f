"""Routine-change detection per home: learn each resident's normal, say plainly when today departs from it.

``RoutineDetector`` takes home ``Reading``s one at a time (``process``) and the passing of time (``tick``), and
returns ``placesense.basics.findings.Finding``s for the care team. For each home it learns, from the home's own history:

- daily features (getting-up time, bedtime, movements, kitchen visits, kettle boils, fridge openings, bathroom
  visits by day and night, movement outside the bedroom at night, time out, room temperature), each against a
  rolling weekday/weekend baseline (``anomaly.baseline``) that follows slow, healthy drift;
- an hour-of-day activity profile and the usual longest still spell, so "no movement" is judged against what is
  normal at that hour for that person;
- an hour-of-day room-temperature profile.

Checks run as early as the evidence allows: *not up yet* once the usual getting-up range has clearly passed,
*no movement* while the person is at home and normally active, *night-time wandering* as it happens, *more
bathroom visits* and *less kitchen use* during the day, *cold home* against the usual temperature at that hour,
and at the end of each routine day a multivariate check over the whole feature vector (robust z-scores against
the baselines, combined; see ``docs/anomaly.md`` for why this and not HalfSpaceTrees). Two checks accumulate
evidence over days instead: *more bathroom visits* over several days (a Poisson CUSUM against the usual rate), and
a *gradual decline* (``anomaly.decline``: later mornings, fewer movements, less kitchen use, less time out,
judged against the same person three to eight weeks earlier so the slow change cannot become its own normal).
Nothing is raised until a home has ``warm_up_days`` of learned days. Days flagged for a feature are kept out of
that feature's baseline unless the change lasts ``accept_after_days`` days, so one bad day does not become normal.

This module must not talk to MQTT, InfluxDB or the alert store: readings in, findings out.

The package: ``detector`` (``RoutineDetector``: the homes, their routine days, and how a reading becomes her
activity) hands ticks, activity, climate readings and closed days to one module per check through the small
protocols in ``check``: the live checks ``late_wake``, ``stillness``, ``night``, ``bathroom``, ``kitchen`` and
``temperature``; the end-of-day checks ``daily`` (which runs ``trend`` and ``bathroom_trend``) and ``decline``.
What each home learns is its ``model`` (``HomeModel``), saved as it is.
"""

from anomaly.routine.detector import RoutineDetector

__all__ = ["RoutineDetector"]
