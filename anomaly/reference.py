"""The level shift's reference window: the last values an older stretch of a series held, and their median.

``SeriesDetector`` judges a level shift as the median of the last few values against the median of this window
(values that left its short window). The window keeps at most ``size`` values, once, as a ring in arrival order,
and sorts them as one small slot number per value: as a second array of floats, the sorted copy cost 1.2 KB a
detector, and a fleet holds thousands.

This module must not score or learn anything but its values: it is a bounded window with a median.
"""

from __future__ import annotations

import bisect
from array import array
from typing import Any


class ReferenceWindow:
    """The last ``size`` values entered, with their median.

    >>> window = ReferenceWindow(3)
    >>> for value in (5.0, 1.0, 4.0, 2.0):
    ...     window.enter(value)
    >>> window.median()  # of 1.0, 4.0, 2.0: 5.0 has left
    2.0
    """

    __slots__ = ("_oldest", "_order", "_values", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: array[float] = array("d")  # at most ``size``, a ring in arrival order
        self._oldest = 0  # the ring's slot of the oldest value, once it is full
        # The ring's slots in value order: bytes while a slot number fits in one.
        self._order: bytearray | array[int] = bytearray() if size <= 256 else array("I")

    @classmethod
    def from_saved(cls, attributes: dict[str, Any], size: int) -> ReferenceWindow:
        """The window a ``SeriesDetector`` saved before this class existed kept among its own ``attributes``
        (``_reference``, ``_reference_oldest``, ``_reference_order``); takes them out of ``attributes``."""
        window = cls(size)
        if "_reference" in attributes:
            window._values = attributes.pop("_reference")
        if "_reference_oldest" in attributes:
            window._oldest = attributes.pop("_reference_oldest")
        if "_reference_order" in attributes:
            window._order = attributes.pop("_reference_order")
        return window

    def __len__(self) -> int:
        return len(self._values)

    def enter(self, moving: float) -> None:
        """Add ``moving``; once the window is full, its oldest value leaves.

        A new value goes after its equals, so equal values are in arrival order, as in the sorted list of
        values this replaces; the medians are the same numbers, down to the sign of a zero.
        """
        values, order = self._values, self._order
        by_value = values.__getitem__
        if len(values) < self.size:
            slot = len(values)
            values.append(moving)
        elif self.size > 0:
            slot = self._oldest
            self._oldest = (slot + 1) % len(values)
            # Equal values are in arrival order, so the first entry equal to the oldest value is its own.
            del order[bisect.bisect_left(order, values[slot], key=by_value)]
            values[slot] = moving
        else:
            return
        order.insert(bisect.bisect_right(order, moving, key=by_value), slot)

    def median(self) -> float:
        """The median of the values held (the mean of the middle two for an even count); not for an empty window."""
        values, order = self._values, self._order
        n = len(order)
        mid = n // 2
        return values[order[mid]] if n % 2 else 0.5 * (values[order[mid - 1]] + values[order[mid]])

    def in_arrival_order(self) -> list[float]:
        """The values held, oldest first."""
        values, oldest = list(self._values), self._oldest
        return values[oldest:] + values[:oldest]

    def in_value_order(self) -> list[float]:
        """The values held, smallest first (equal values in arrival order)."""
        values = self._values
        return [values[slot] for slot in self._order]
