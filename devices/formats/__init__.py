"""Decoders of each source format, looked up by the format name in the registry."""

from __future__ import annotations

from devices.decode import FormatDecoder
from devices.formats import canonical

FORMAT_DECODERS: dict[str, FormatDecoder] = {
    "canonical": canonical.decode,
}

__all__ = ["FORMAT_DECODERS"]
