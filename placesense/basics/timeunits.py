"""Units of time in epoch milliseconds, the one time scale readings, rules, detectors and alerts share.

Defined once here so a "day" is the same number everywhere; calendar days in a home's own time zone (DST, 23- and
25-hour days) are ``placesense.basics.localtime``'s business, not these constants'.
"""

from __future__ import annotations

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
