"""Alert texts from templates (``placesense.basics.texts``): every template reads in English and Welsh with the same
placeholders, English renders exactly as the rules wrote it before, and a stored text comes back whole."""

from __future__ import annotations

import re
import string
from dataclasses import replace

import pytest

from anomaly.baseline import Usual
from anomaly.explain import FEATURES, change_sentence, change_text, feature_sentence, feature_text
from placesense.alerts.changes import AlertChange, alert_to_json
from placesense.alerts.lifecycle import AlertService
from placesense.alerts.routing import LINK_PLACEHOLDER, Router
from placesense.alerts.store import AlertStore
from placesense.basics.clock import EventClock
from placesense.basics.db import make_engine
from placesense.basics.findings import Finding
from placesense.basics.texts import CATALOGUE, FEATURE_WORDS, LANGS, Text, duration, renderings, text
from rules.rota import NotificationsConfig


def _placeholders(template: str) -> set[str]:
    """The names a template fills in (their format may differ by language: a capital letter, say)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_template_has_every_language_with_the_same_placeholders(key: str) -> None:
    entry = CATALOGUE[key]
    assert set(entry) == set(LANGS)
    assert _placeholders(entry["cy"]) == _placeholders(entry["en"])
    words = re.sub(r"\{[^}]*\}", "", entry["en"])
    if re.search(r"[a-z]{2}", words):  # a template with words of its own, not only placeholders and punctuation
        assert entry["cy"] != entry["en"], "a Welsh template that is still English"


def test_english_reads_as_the_rules_wrote_it() -> None:
    assert text("help_button", time="07:10", room="living_room").english == (
        "Help button pressed at 07:10 (living room). Call or visit now."
    )
    cold = text("cold_home", room="bedroom", below_c=16.0, since="01:00", lasted=3 * 3_600_000 + 600_000, now_c=15.24)
    assert cold.english == (
        "Cold home: bedroom below 16 °C since 01:00 (3 h 10 min); now 15.2 °C. "
        "Below 18 °C raises health risks for older people."
    )


def test_welsh_renders_nested_clauses_rooms_and_durations_in_welsh() -> None:
    not_up = text(
        "not_up", time="09:30", usual=text("not_up.usual", usual_from="07:40", usual_to="08:30", days=14),
        last=text("not_up.last", time="22:10"), bed=text("empty"),
    )
    assert not_up.render("cy") == (
        "Heb godi eto am 09:30: dim symud y tu allan i'r ystafell wely a'r ystafell ymolchi ers y nos; "
        "fel arfer yn codi 07:40–08:30 dros y 14 diwrnod diwethaf. Gwelwyd ar ei thraed ddiwethaf am 22:10."
    )
    assert text("help_button", time="07:10", room="kitchen").render("cy") == (
        "Pwyswyd y botwm help am 07:10 (y gegin). Ffoniwch neu ewch yno nawr."
    )
    assert duration(2 * 86_400_000 + 3 * 3_600_000, "cy") == "2 diwrnod 3 awr"
    soon = text("needs_water.soon", bed="Queen's Square", by="14:00", day="w4", within=5 * 3_600_000,
                confidence="high", moisture=26.04, rate=text("empty"), threshold=25.0)
    assert "erbyn tua 14:00 dydd Gwener" in soon.render("cy") and "hyder uchel" in soon.render("cy")
    assert "by about 14:00 on Friday" in soon.english and "high confidence" in soon.english


def test_a_stored_text_comes_back_whole() -> None:
    original = text("no_kitchen_use", deadline="11:00", usual=text("no_kitchen_use.usual", usual="08:05"))
    assert Text.from_json(original.to_json()) == original
    assert renderings(original, original.english)["cy"].startswith("Dim defnydd o'r gegin eto heddiw")


def test_a_plain_message_is_english_only_and_an_unknown_template_is_refused() -> None:
    assert renderings(None, "Battery low.") == {"en": "Battery low."}
    with pytest.raises(KeyError):
        Text("no_such_template")


@pytest.mark.both_databases
def test_an_alert_keeps_its_template_and_an_older_database_gains_the_column(database_url: str) -> None:
    engine = make_engine(database_url)
    AlertStore(engine)
    with engine.begin() as conn:  # the alerts table as the release before Welsh made it
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN text")
    service = AlertService(AlertStore(engine), EventClock(1_760_000_000_000))
    words = text("help_button", time="07:10", room="kitchen")
    opened = service.apply(Finding("help_button", "care", "h-1", "critical", words.english, 1_760_000_000_000,
                                   text=words))
    assert opened is not None and opened.message == "Help button pressed at 07:10 (kitchen). Call or visit now."
    again = service.get(opened.id)
    assert again.text == words
    assert alert_to_json(again)["texts"] == {"en": opened.message, "cy": words.render("cy")}
    # A plain-text finding for the same alert drops the template: the Welsh must never say something else.
    plain = service.apply(Finding("help_button", "care", "h-1", "critical", "Pressed again.", 1_760_000_060_000))
    assert plain is not None and plain.text is None
    assert alert_to_json(plain)["texts"] == {"en": "Pressed again."}


def test_device_health_joins_clauses_per_language_and_keeps_the_english() -> None:
    soil = text("device", kind="soil", id="bed-008-soil")
    pir = text("device_in_room", room="living_room", kind="motion", id="m-12")
    words = text("device_health", reasons=[
        text("device_offline.never", device=soil, usual=text("empty")),
        text("low_battery", device=pir, pct=9.6, urgency=text("low_battery.now")),
    ])
    assert words.english == (
        "Soil sensor (bed-008-soil) has sent nothing since monitoring started; "
        "living room motion sensor (m-12) battery at 10 %: replace it now."
    )
    assert words.render("cy") == (
        "Nid yw synhwyrydd pridd (bed-008-soil) wedi anfon dim ers i'r monitro ddechrau; "
        "batri synhwyrydd symud yn yr ystafell fyw (m-12) ar 10 %: newidiwch y batri nawr."
    )
    assert Text.from_json(words.to_json()) == words


def test_air_quality_reads_in_welsh_with_its_band_period_advice_and_gaps() -> None:
    gaps = [text("daqi.no_data", pollutant="O3", time="09:00")]
    words = text("daqi", site="Regent Street", band="Moderate", index=5, pollutant="PM2.5", hours=24, mean=44.2,
                 advice=text("daqi.advice.Moderate"), gaps=gaps)
    assert words.english.startswith(
        "Air quality at Regent Street is Moderate (index 5 of 10): PM2.5 24-hour mean 44 µg/m³. Air pollution is "
        "moderate.")
    assert words.english.endswith("especially outdoors. O3: no data since 09:00.")
    assert words.render("cy").startswith(
        "Ansawdd yr aer yn Regent Street: Cymedrol (mynegai 5 o 10). Cymedr 24 awr PM2.5: 44 µg/m³. "
        "Mae llygredd aer yn gymedrol.")
    assert words.render("cy").endswith("yn yr awyr agored. O3: dim data ers 09:00.")


def test_routine_texts_read_as_before_in_english_and_in_welsh() -> None:
    night = text("routine_night_wandering", count=4, rooms=[text("routine.room", room="hallway"),
                                                              text("routine.room", room="kitchen")],
                 doors=text("routine_night_wandering.doors", count=1), time="03:10", most=1,
                 over=text("routine.over_days", days=text("usual_days.all", days=14)))
    assert night.english == (
        "Up and about at night: activity outside the bedroom and bathroom 4 time(s) (hallway, kitchen) and the front "
        "door opened 1 time(s) by 03:10; usually 1 at most a night over the last 14 days."
    )
    assert "(y cyntedd, y gegin) ac agorwyd y drws ffrynt 1 gwaith erbyn 03:10" in night.render("cy")
    nowhere = text("routine_night_wandering", count=3, rooms=text("routine.nowhere"), doors=text("empty"),
                   time="02:00", most=0, over=text("routine.full_stop"))
    assert "(nowhere) by 02:00; usually 0 at most a night." in nowhere.english
    still = text("routine_no_movement", still=185.0, since="10:05", typical=42.0, over=text("routine.full_stop"))
    assert still.english.startswith("No activity for 3 h 05 min since 10:05") and still.english.endswith("42 min.")
    assert still.render("cy").startswith("Dim symud ers 3 awr 05 mun (ers 10:05)")


def test_routine_feature_sentences_read_in_welsh_and_keep_their_english() -> None:
    wake = Usual(median=485, low=460, high=510, scale=10, days=14, highest=520, lowest=450, mean=485)
    assert feature_sentence("wake_min", 640, wake) == "Got up at 10:40; usually 07:40–08:30 over the last 14 days"
    assert feature_text("wake_min", 640, wake).render("cy") == (
        "Codi am 10:40; fel arfer 07:40–08:30 dros y 14 diwrnod diwethaf")
    out = Usual(median=90, low=60, high=125, scale=10, days=7, highest=130, lowest=50, mean=90)
    assert feature_sentence("out_min", 185, out) == (
        "Time out of the home: 3 h 05 min; usually 1 h 00 min–2 h 05 min over the last 7 days")
    assert feature_text("out_min", 185, out).render("cy") == (
        "Amser allan o'r cartref: 3 awr 05 mun; fel arfer 1 awr 00 mun–2 awr 05 mun dros y 7 diwrnod diwethaf")
    same = Usual(median=2, low=2, high=2, scale=1, days=10, highest=2, lowest=2, mean=2)
    assert feature_sentence("kettle_uses", 0, same) == "Kettle boils: 0; usually 2 over the last 10 days"
    # Weekdays and weekends are judged apart once there are a few of each, and the words say which days counted.
    weekdays = replace(wake, days=10, day_type="weekdays")
    assert feature_sentence("wake_min", 640, weekdays) == (
        "Got up at 10:40; usually 07:40–08:30 over the last 10 weekdays")
    weekend = replace(wake, days=4, day_type="weekend")
    assert feature_sentence("wake_min", 640, weekend) == (
        "Got up at 10:40; usually 07:40–08:30 over the last 4 weekend days")
    assert feature_text("wake_min", 640, weekend).render("cy") == (
        "Codi am 10:40; fel arfer 07:40–08:30 dros y 4 diwrnod penwythnos diwethaf")
    assert set(FEATURES) <= set(FEATURE_WORDS["cy"]), "a routine feature with no Welsh name"


def test_change_sentences_keep_their_english_and_read_in_welsh() -> None:
    assert change_sentence("wake_min", 485, 445) == "got up at 08:05 on average, 40 min later than usual (07:25)"
    assert change_text("wake_min", 485, 445).render("cy") == (
        "codi am 08:05 ar gyfartaledd, 40 mun yn hwyrach nag arfer (07:25)")
    assert change_sentence("motion_count", 150, 200) == (
        "movements detected: 150 a day on average, 25 % fewer than usual (200)")
    assert change_text("motion_count", 150, 200).render("cy") == (
        "symudiadau a welwyd: 150 y dydd ar gyfartaledd, 25 % yn llai nag arfer (200)")
    assert change_sentence("out_min", 185, 60) == (
        "time out of the home 3 h 05 min a day on average instead of 1 h 00 min")
    assert change_sentence("temperature_c", 17.5, 19.0) == (
        "average room temperature 17.5 °C on average instead of 19.0 °C")
    decline = text("routine_decline", days=21, weeks_from=4, weeks_to=8, parts=[
        change_text("wake_min", 485, 445), change_text("motion_count", 150, 200)])
    assert decline.english.startswith("Gradual change over the last 21 days, compared with 4–8 weeks earlier: got up "
                                      "at 08:05 on average, 40 min later than usual (07:25); movements detected")
    assert decline.render("cy").startswith("Newid graddol dros y 21 diwrnod diwethaf, o'i gymharu â 4–8 wythnos")


def test_a_welsh_speaker_gets_text_messages_in_welsh(database_url: str) -> None:
    notifications = NotificationsConfig.model_validate({
        "people": {"dan": {"name": "Dan Evans", "sms": "07700 900456", "lang": "cy"},
                   "amira": {"name": "Amira Khan", "sms": "07700 900123"}},
        "rotas": [{"name": "care", "audience": "care", "fallback": ["dan"]},
                  {"name": "street", "audience": "street", "fallback": ["amira"]}],
    })
    router = Router(notifications, contacts=frozenset({"sms"}), links=True)
    service = AlertService(AlertStore(make_engine(database_url)), EventClock(1_760_000_000_000))
    words = text("help_button", time="02:14", room="hallway")
    alert = service.apply(Finding("help_button", "care", "h-3fa2c1", "critical", words.english, 1_760_000_000_000,
                                  text=words))
    assert alert is not None
    (sms,) = router.intents(AlertChange("opened", alert), 1_760_000_000_000)
    assert sms.payload["text"] == (
        "BRYS. h-3fa2c1 (gofal): Pwyswyd y botwm help am 02:14 (y cyntedd). Ffoniwch neu ewch yno nawr.\n"
        f"Cydnabod: {LINK_PLACEHOLDER}"
    )
    assert sms.payload["title"] == "BRYS: botwm help yn h-3fa2c1"
    assert Router.with_link(sms.payload["text"], None).endswith("nawr."), "the link line is taken out in Welsh too"
    # English for everyone else, word for word as before.
    english = Router.text(AlertChange("opened", alert))
    assert english == "URGENT. h-3fa2c1 (care): Help button pressed at 02:14 (hallway). Call or visit now."
