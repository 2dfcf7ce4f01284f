"""Home care rules: the routine-change alerts a care team acts on, each with its evidence in plain English.

Rules (all in the home's own time zone; defaults in ``rules.config``):
- ``not_up``: still in the night's sleep (nothing outside the bedroom and bathroom since her longest quiet spell
  of the night began) at the wake deadline: 09:30 until her usual getting-up is learned, then her usual latest
  plus a margin as wide as her mornings vary (at most 14:00); not while she is out; clears when she is up.
- ``no_kitchen_use``: no kitchen use (fridge, kettle, kitchen cupboards and appliances) by 11:00, or once learned
  by her usual latest first use plus a margin; not while she is out or not yet up; clears at the first use.
- ``reduced_kitchen_use``: a whole day at home with kitchen use far below every one of her own recent days.
- ``inactivity``: no change from any sensor for 3 h (once learned: longer than her longest quiet spell of the last
  fortnight) in waking hours, at an hour she is usually active; not while she is asleep, in bed (only a bed
  excuses stillness: an occupied chair does not) or out (front door, then silence: a state, not a fall).
- ``bathroom_stay``: in the bathroom for over 60 minutes with nothing anywhere else, only where motion sensors
  would have seen her leave (a PIR in every other sensed room, or a bed sensor in the bedroom).
- ``bathroom_visits``: more toilet visits (flushes, where a flush sensor works) or bathroom visits than her own
  days, nights and runs of days, judged against her own day-to-day variance (a door's opening and closing, the
  flush and the bathroom PIR a few minutes apart are one visit).
- ``night_door``: the front door opened during the night window (23:00–06:00), going out (not coming home): at once
  after she had settled for the night; when she was up and going out at night is not her habit, once nothing has
  moved at home for 15 minutes after the door (she really went: the bins, a look outside or a door sensor on the
  way to the bathroom are not alerts).
- ``cold_home``: a room below 16 °C for 2 hours (counted 07:00–23:00); clears once every room is above 17 °C.
- ``help_button``: the help button was pressed (critical).

Activity is a change: a device repeating its state (an hourly check-in) is alive, not proof anyone moved
(``rules.homesense``); while she is out, one device alone is not her. Each home's registry says what its sensors
can observe; a rule whose condition the
sensors cannot see does not fire on absence of evidence. Absence-of-events rules run from timers, fired by the
engine at the exact due time, so event-clock replays give the same alerts every run. Findings name the home
only by its pseudonymous id. All learned and per-home state is plain data (``rules.home.picture``).

The package: ``dispatcher`` (``HomeRules``: the homes, their timers, and how a reading becomes her activity) hands
each reading, activity and due timer to one module per check (``wake``, ``kitchen``, ``inactivity``, ``bathroom``,
``night_door``, ``cold``, ``help``) through the small protocols in ``check``. No module here may touch alerts,
storage or MQTT.
"""

from rules.home.dispatcher import HomeRules

__all__ = ["HomeRules"]
