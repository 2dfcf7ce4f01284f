"""Every decoder against the vendors' own examples: the vectors in this folder's YAML files.

Each vector cites where its bytes or JSON come from (repository, path and commit, or a URL) and says what
placesense stores and refuses for it. Three kinds:

- ``frame``: raw bytes through the model's codec (``same_as_frame`` on an object vector: the object and the frame
  must give the same result, so the decoded-object road and the raw-frame road cannot drift apart);
- ``vendor_object``: a vendor decoder's output read without a frame;
- ``message``: a whole message through ``decode_message`` (or, for Sensor.Community, the decoder the API calls),
  exactly as ingest runs it; ``topics``: topics and how they are classified.

The expectations were written from the sources, not from running our code; a vector whose source disagrees
with another says so in its ``status`` and ``note``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from devices.codecs import CODECS, FrameValues, codec_for, metrics_from_vendor_object
from devices.decode import decode_message, finish, parse_json_object
from devices.formats import FORMAT_DECODERS
from devices.readings import Reading
from devices.registry import DeviceSpec
from devices.topics import TopicInfo, classify_topic
from placesense.basics.errors import DecodeError
from tests.devices.support import LIMITS, NOW_MS

HERE = Path(__file__).parent
VECTORS: list[dict[str, Any]] = [
    vector for path in sorted(HERE.glob("*.yaml")) for vector in yaml.safe_load(path.read_text(encoding="utf-8"))
]
STATUSES = {"agrees", "disputed", "observation"}


def _of(kind: str) -> list[dict[str, Any]]:
    return [v for v in VECTORS if kind in v]


def _frame(spec: dict[str, Any], model: str) -> FrameValues:
    codec = codec_for(model)
    assert codec is not None, model
    return codec.decode(bytes.fromhex(spec["hex"].replace(" ", "")), spec["f_port"])


def _check_values(values: FrameValues, expect: dict[str, Any]) -> None:
    assert values.metrics == pytest.approx(expect.get("metrics", {}))
    assert {r.metric: r.kind for r in values.refused} == expect.get("refused", {})
    assert all(r.reason for r in values.refused)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_every_vector_cites_its_source_and_has_a_status() -> None:
    ids = [v["id"] for v in VECTORS]
    assert len(ids) == len(set(ids)), "vector ids must be unique"
    for vector in VECTORS:
        source = vector["source"]
        assert source.get("url") or (source.get("repo") and source.get("path")), vector["id"]
        assert vector["status"] in STATUSES, vector["id"]
        if vector["status"] != "agrees":
            assert vector.get("note"), f"{vector['id']}: a disputed vector or observation says why"


def test_every_codec_and_every_format_has_vendor_vectors() -> None:
    models = {v["frame"]["model"] for v in _of("frame")} | {v["vendor_object"]["model"] for v in _of("vendor_object")}
    assert set(CODECS) <= models
    formats = {v["message"]["device"].get("format", "canonical") for v in _of("message")}
    assert set(FORMAT_DECODERS) <= formats


@pytest.mark.parametrize("vector", _of("frame"), ids=lambda v: v["id"])
def test_frame(vector: dict[str, Any]) -> None:
    expect = vector["expect"]
    if "error" in expect:
        with pytest.raises(DecodeError) as err:
            _frame(vector["frame"], vector["frame"]["model"])
        assert err.value.kind == expect["error"] and err.value.reason
        return
    _check_values(_frame(vector["frame"], vector["frame"]["model"]), expect)


@pytest.mark.parametrize("vector", _of("vendor_object"), ids=lambda v: v["id"])
def test_vendor_object(vector: dict[str, Any]) -> None:
    spec = vector["vendor_object"]
    _check_values(metrics_from_vendor_object(spec["model"], spec["object"], "decoded_payload"), vector["expect"])
    if "same_as_frame" in vector:
        _check_values(_frame(vector["same_as_frame"], spec["model"]), vector["expect"])


def _decode(message: dict[str, Any]) -> Reading:
    device = DeviceSpec.model_validate(message["device"])
    payload = orjson.dumps(message["payload"])
    if message.get("format") == "sensor_community":  # HTTP: the API builds the TopicInfo from its headers
        info = TopicInfo("sensor_community", "telemetry", message["chip"], sensor_pin=message.get("sensor_pin"))
        decoded = FORMAT_DECODERS["sensor_community"](info, parse_json_object(payload), device)
        return finish(decoded, info, device, NOW_MS, LIMITS)
    info_or_none = classify_topic(message["topic"])
    assert info_or_none is not None, message["topic"]
    return decode_message(info_or_none, payload, device, NOW_MS, LIMITS)


@pytest.mark.parametrize("vector", _of("message"), ids=lambda v: v["id"])
def test_message(vector: dict[str, Any]) -> None:
    expect = vector["expect"]
    if "error" in expect:
        with pytest.raises(DecodeError) as err:
            _decode(vector["message"])
        assert err.value.kind == expect["error"] and err.value.reason
        return
    reading = _decode(vector["message"])
    assert dict(reading.metrics) == pytest.approx(expect.get("metrics", {}))
    assert {r.metric: r.kind for r in reading.refused} == expect.get("refused", {})
    assert reading.battery_pct == (pytest.approx(expect["battery_pct"]) if "battery_pct" in expect else None)
    if "ts" in expect:
        assert reading.ts_ms == _ms(expect["ts"])
    if "seq" in expect:
        assert reading.seq == expect["seq"]


@pytest.mark.parametrize("vector", _of("topics"), ids=lambda v: v["id"])
def test_topics(vector: dict[str, Any]) -> None:
    for topic, kind in vector["topics"].items():
        info = classify_topic(topic)
        assert info is not None and info.kind == kind, topic
