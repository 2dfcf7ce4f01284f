"""Alert texts in English and Welsh, built from templates: a ``Text`` is a template id and its parameters, and it
renders in either language from the catalogue below.

A rule makes a ``Text`` instead of an f-string; the English rendering is the alert's ``message`` (the API's
contract, unchanged) and the ``Text`` itself is stored with the alert so the API can give the same message in
Welsh (``texts``) to whoever reads it in Welsh. Nothing is concatenated across languages: a template is one whole
sentence (or a whole optional clause, passed as a nested ``Text``), so word order and mutations stay the
translator's to choose.

Parameters are plain JSON values, or a nested ``Text``. A format spec says how a value reads in each language:
``{room:room}`` a registry room name ("y gegin" / "kitchen"), ``{room:Room}`` the same capitalised,
``{gap:duration}`` milliseconds as "3 h 10 min" / "3 awr 10 mun", ``{day:day}`` a day offset as "today" /
"heddiw", ``{kind:sensor}`` a device kind as what it senses, ``{count:times}`` "once" / "unwaith",
``{n:number}`` a small number in words, ``{what:visits}`` what bathroom visits were counted by; any other spec
is Python's (``{moisture:.1f}``).

The Welsh wording was written with the Welsh Government's terminology (Termiadur, Cysgliad style) but has not yet
been reviewed by a native speaker: see docs/welsh.md. This module knows words, not rules: it decides nothing.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from placesense.basics.timeunits import MINUTE_MS

Lang = Literal["en", "cy"]
LANGS: tuple[Lang, ...] = ("en", "cy")
Param = Union[str, int, float, None, "Text", list["Text"]]


# One entry per template id; every id has every language, with the same placeholders (tests/rules/test_texts.py).
CATALOGUE: dict[str, dict[Lang, str]] = {
    "empty": {"en": "", "cy": ""},
    # --- homes (care) --------------------------------------------------------------------------------------------
    "help_button": {
        "en": "Help button pressed at {time} ({room:room}). Call or visit now.",
        "cy": "Pwyswyd y botwm help am {time} ({room:room}). Ffoniwch neu ewch yno nawr.",
    },
    "cold_home": {
        "en": "Cold home: {room:room} below {below_c:g} °C since {since} ({lasted:duration}); now {now_c:.1f} °C. "
        "Below 18 °C raises health risks for older people.",
        "cy": "Cartref oer: {room:room} o dan {below_c:g} °C ers {since} ({lasted:duration}); {now_c:.1f} °C nawr. "
        "Mae llai na 18 °C yn cynyddu'r risg i iechyd pobl hŷn.",
    },
    "cold_home.cleared": {
        "en": "{room:Room} is back up to {now_c:.1f} °C at {time}.",
        "cy": "Mae {room:room} yn ôl i {now_c:.1f} °C am {time}.",
    },
    "bathroom_stay": {
        "en": "In the bathroom since {since} ({lasted:duration}) with no activity anywhere else; last activity in "
        "the bathroom at {last}. Possible fall or illness.",
        "cy": "Yn yr ystafell ymolchi ers {since} ({lasted:duration}) heb ddim symud yn unman arall; symud olaf yn yr "
        "ystafell ymolchi am {last}. Gallai fod wedi cwympo neu fod yn sâl.",
    },
    "no_kitchen_use": {
        "en": "No kitchen use yet today (fridge, kettle, cupboards or appliances) by {deadline}{usual}.",
        "cy": "Dim defnydd o'r gegin eto heddiw (oergell, tegell, cypyrddau neu offer) erbyn {deadline}{usual}.",
    },
    "no_kitchen_use.usual": {
        "en": "; usually first used around {usual}",
        "cy": "; fel arfer mae'n cael ei defnyddio gyntaf tua {usual}",
    },
    "not_up": {
        "en": "Not up yet at {time}: no activity outside the bedroom and bathroom since the night; {usual}.{last}{bed}",
        "cy": "Heb godi eto am {time}: dim symud y tu allan i'r ystafell wely a'r ystafell ymolchi ers y nos; "
        "{usual}.{last}{bed}",
    },
    "not_up.usual": {
        "en": "usually up {usual_from}–{usual_to} over the last {days} days",
        "cy": "fel arfer yn codi {usual_from}–{usual_to} dros y {days} diwrnod diwethaf",
    },
    "not_up.no_usual": {
        "en": "no usual time learned yet",
        "cy": "dim amser arferol wedi'i ddysgu eto",
    },
    "not_up.cleared": {"en": "{what}; {usual}.", "cy": "{what}; {usual}."},
    "not_up.came_home": {"en": "Came home at {time}", "cy": "Wedi dod adref am {time}"},
    "not_up.first_activity": {"en": "First activity {time} ({room:room})", "cy": "Symud cyntaf {time} ({room:room})"},
    "not_up.usual_by": {"en": "usually up by {usual_to}", "cy": "fel arfer wedi codi erbyn {usual_to}"},
    "not_up.last": {
        "en": " Last seen up at {time}.",
        "cy": " Gwelwyd ar ei thraed ddiwethaf am {time}.",
    },
    "not_up.in_bed": {
        "en": " The bed sensor shows her in bed.",
        "cy": " Mae synhwyrydd y gwely yn dangos ei bod yn y gwely.",
    },
    "sensor_in_room": {"en": "{kind:sensor} in the {room:room}", "cy": "{kind:sensor} yn {room:room}"},
    "the_room": {"en": "the {room:room}", "cy": "{room:room}"},
    "the_bed": {"en": "bed", "cy": "y gwely"},
    "inactivity": {
        "en": "No sensor has seen her since {since} ({gap:duration}); the last was {seen}{unsure}; {usual}{longest}.",
        "cy": "Does dim synhwyrydd wedi'i gweld ers {since} ({gap:duration}); yr olaf oedd {seen}{unsure}; "
        "{usual}{longest}.",
    },
    "inactivity.no_front_door": {
        "en": " (no front-door sensor: she may be out)",
        "cy": " (dim synhwyrydd ar y drws ffrynt: efallai ei bod allan)",
    },
    "inactivity.usual": {
        "en": "usually active at this time ({active} of the last {days} days)",
        "cy": "fel arfer yn symud o gwmpas ar yr adeg hon ({active} o'r {days} diwrnod diwethaf)",
    },
    "inactivity.no_usual": {"en": "no usual pattern learned yet", "cy": "dim patrwm arferol wedi'i ddysgu eto"},
    "inactivity.longest": {
        "en": "; her longest quiet spell at home in the last {days} days was {longest:duration}",
        "cy": "; ei chyfnod tawel hiraf gartref yn ystod y {days} diwrnod diwethaf oedd {longest:duration}",
    },
    "inactivity.cleared": {
        "en": "Activity again: {what} at {time} after {gap:duration}.",
        "cy": "Symud eto: {what} am {time} ar ôl {gap:duration}.",
    },
    "bathroom_stay.cleared": {
        "en": "Left the bathroom: activity in {where} at {time}, after {lasted:duration}.",
        "cy": "Wedi gadael yr ystafell ymolchi: symud yn {where} am {time}, ar ôl {lasted:duration}.",
    },
    "no_kitchen_use.cleared": {
        "en": "Kitchen used at {time} ({what}), the first use today.",
        "cy": "Defnyddiwyd y gegin am {time} ({what}), y defnydd cyntaf heddiw.",
    },
    "reduced_kitchen_use": {
        "en": "Kitchen hardly used yesterday: {uses} uses of the fridge, kettle, cupboards or appliances, at home "
        "most of the day; usually about {median:.0f} a day, never fewer than {least} over the last {days} days at "
        "home.",
        "cy": "Prin y defnyddiwyd y gegin ddoe: {uses} defnydd o'r oergell, y tegell, y cypyrddau neu'r offer, a "
        "hithau gartref y rhan fwyaf o'r dydd; fel arfer tua {median:.0f} y dydd, byth llai na {least} dros y {days} "
        "diwrnod diwethaf gartref.",
    },
    "reduced_kitchen_use.cleared": {
        "en": "Kitchen used {uses} times yesterday, back to about the usual {median:.0f}.",
        "cy": "Defnyddiwyd y gegin {uses} o weithiau ddoe, yn ôl i tua'r nifer arferol ({median:.0f}).",
    },
    "bathroom_visits": {
        "en": "More {what:visits} than usual: {night} last night ({hours}) and {total} in the last 24 hours{over}; "
        "usually about {usual_night:.0f} at night and {usual_total:.0f} a day over the last {days} days.{soon} More "
        "visits can be an early sign of a urinary infection.",
        "cy": "Mwy o {what:visits} nag arfer: {night} neithiwr ({hours}) a {total} yn ystod y 24 awr diwethaf{over}; "
        "fel arfer tua {usual_night:.0f} yn y nos a {usual_total:.0f} y dydd dros y {days} diwrnod diwethaf.{soon} "
        "Gall mwy o ymweliadau fod yn arwydd cynnar o haint y llwybr wrinol.",
    },
    "bathroom_visits.over": {
        "en": " ({total} over {days:number} days)",
        "cy": " ({total} dros {days:number} diwrnod)",
    },
    "bathroom_visits.soon": {
        "en": " Over the last {days:number} days, {count} came within two hours of the one before; usually about "
        "{usual:.1f} a day.",
        "cy": " Dros y {days:number} diwrnod diwethaf, daeth {count} o fewn dwy awr i'r un cynt; fel arfer tua "
        "{usual:.1f} y dydd.",
    },
    "bathroom_visits.cleared": {
        "en": "{what:Visits} back to usual: {night} last night and {total} in the last 24 hours (usually about "
        "{usual_night:.0f} and {usual_total:.0f}).",
        "cy": "{what:Visits} yn ôl i'r arfer: {night} neithiwr a {total} yn ystod y 24 awr diwethaf (fel arfer tua "
        "{usual_night:.0f} a {usual_total:.0f}).",
    },
    "night_door": {
        "en": "Front door opened at {time}, during the night ({hours}), {why}; opened {times:times} tonight.",
        "cy": "Agorwyd y drws ffrynt am {time}, yn ystod y nos ({hours}), {why}; wedi'i agor {times:times} heno.",
    },
    "night_door.settled": {
        "en": "after she had settled for the night",
        "cy": "ar ôl iddi setlo am y nos",
    },
    "night_door.not_usual": {
        "en": "which she does not usually do",
        "cy": "rhywbeth nad yw'n ei wneud fel arfer",
    },
    "night_door.not_usual_gone": {
        "en": "which she does not usually do, and nothing has moved at home since",
        "cy": "rhywbeth nad yw'n ei wneud fel arfer, a does dim byd wedi symud yn y cartref ers hynny",
    },
    # --- routine (the learned-routine detector, anomaly.routine) ------------------------------------------------
    "routine_change": {
        "en": "Routine changed yesterday. {sentences:sentences}.",
        "cy": "Newidiodd y drefn ddoe. {sentences:sentences}.",
    },
    "feature.at": {
        "en": "{feature:Feature} at {value}; usually {usual} over the last {days}",
        "cy": "{feature:Feature} am {value}; fel arfer {usual} dros y {days} diwethaf",
    },
    "feature.amount": {
        "en": "{feature:Feature}: {value}; usually {usual} over the last {days}",
        "cy": "{feature:Feature}: {value}; fel arfer {usual} dros y {days} diwethaf",
    },
    "routine_trend": {
        "en": "Routine has been changing: {parts}, over the last {days} days.",
        "cy": "Mae'r drefn wedi bod yn newid: {parts}, dros y {days} diwrnod diwethaf.",
    },
    "routine_trend.part": {
        "en": "{feature:feature}: {direction:direction} than usual for {days} days (yesterday {yesterday}; usually "
        "{low}–{high})",
        "cy": "{feature:feature}: {direction:direction} nag arfer ers {days} diwrnod (ddoe {yesterday}; fel arfer "
        "{low}–{high})",
    },
    "routine_bathroom_trend": {
        "en": "More bathroom visits than usual for {days} days: {listed} a day, by day and at night together "
        "(yesterday {by_day} by day and {at_night} at night); usually about {usual} a day ({day_low}–{day_high} by "
        "day and {night_low}–{night_high} at night) over the last {usual_days}. More visits can be an early "
        "sign of an infection.",
        "cy": "Mwy o ymweliadau â'r ystafell ymolchi nag arfer ers {days} diwrnod: {listed} y dydd, yn ystod y dydd "
        "a'r nos gyda'i gilydd (ddoe {by_day} yn ystod y dydd a {at_night} yn y nos); fel arfer tua {usual} y dydd "
        "({day_low}–{day_high} yn ystod y dydd a {night_low}–{night_high} yn y nos) dros y {usual_days} "
        "diwethaf. Gall mwy o ymweliadau fod yn arwydd cynnar o haint.",
    },
    "list_and": {"en": "{first} and {last}", "cy": "{first} a {last}"},
    "routine_decline": {
        "en": "Gradual change over the last {days} days, compared with {weeks_from}–{weeks_to} weeks earlier: "
        "{parts}. Slow changes like these together can be an early sign of declining health or mood.",
        "cy": "Newid graddol dros y {days} diwrnod diwethaf, o'i gymharu â {weeks_from}–{weeks_to} wythnos ynghynt: "
        "{parts}. Gall newidiadau araf fel hyn gyda'i gilydd fod yn arwydd cynnar bod iechyd neu hwyliau'n dirywio.",
    },
    "change.clock": {
        "en": "{feature:feature} at {recent} on average, {shift} min {direction:direction} than usual ({usual})",
        "cy": "{feature:feature} am {recent} ar gyfartaledd, {shift} mun {direction:direction} nag arfer ({usual})",
    },
    "change.duration": {
        "en": "{feature:feature} {recent} a day on average instead of {usual}",
        "cy": "{feature:feature} {recent} y dydd ar gyfartaledd yn lle {usual}",
    },
    "change.celsius": {
        "en": "{feature:feature} {recent} on average instead of {usual}",
        "cy": "{feature:feature} {recent} ar gyfartaledd yn lle {usual}",
    },
    "change.count": {
        "en": "{feature:feature}: {recent} a day on average, {pct} % {direction:direction} than usual ({usual})",
        "cy": "{feature:feature}: {recent} y dydd ar gyfartaledd, {pct} % {direction:direction} nag arfer ({usual})",
    },
    "feature.label": {"en": "{feature:feature}", "cy": "{feature:feature}"},
    "range": {"en": "{low}–{high}", "cy": "{low}–{high}"},
    "minutes": {"en": "{minutes:minutes}", "cy": "{minutes:minutes}"},
    "routine.over_days": {"en": " over the last {days}.", "cy": " dros y {days} diwethaf."},
    "usual_days.all": {"en": "{days} days", "cy": "{days} diwrnod"},
    "usual_days.weekdays": {"en": "{days} weekdays", "cy": "{days} diwrnod yn ystod yr wythnos"},
    "usual_days.weekend": {"en": "{days} weekend days", "cy": "{days} diwrnod penwythnos"},
    "routine.full_stop": {"en": ".", "cy": "."},
    "routine.room": {"en": "{room:room}", "cy": "{room:room}"},
    "routine.nowhere": {"en": "nowhere", "cy": "unman"},
    "routine_late_wakeup": {
        "en": "Not up yet at {time}; usually up {usual_from}–{usual_to} over the last {days}.",
        "cy": "Heb godi eto am {time}; fel arfer yn codi {usual_from}–{usual_to} dros y {days} diwethaf.",
    },
    "routine_no_movement": {
        "en": "No activity for {still:minutes} since {since}, at home and not in bed; at this time of day there is "
        "usually activity, and the longest still spell is usually under {typical:minutes}{over}",
        "cy": "Dim symud ers {still:minutes} (ers {since}), gartref a ddim yn y gwely; ar yr adeg hon o'r dydd mae "
        "symud fel arfer, ac mae'r cyfnod llonydd hiraf fel arfer yn llai na {typical:minutes}{over}",
    },
    "routine_no_movement.cleared": {"en": "Movement seen again.", "cy": "Gwelwyd symud eto."},
    "routine_night_wandering": {
        "en": "Up and about at night: activity outside the bedroom and bathroom {count} time(s) ({rooms:commas})"
        "{doors} by {time}; usually {most} at most a night{over}",
        "cy": "Ar ei thraed yn y nos: symud y tu allan i'r ystafell wely a'r ystafell ymolchi {count} gwaith "
        "({rooms:commas}){doors} erbyn {time}; fel arfer {most} ar y mwyaf bob nos{over}",
    },
    "routine_night_wandering.doors": {
        "en": " and the front door opened {count} time(s)",
        "cy": " ac agorwyd y drws ffrynt {count} gwaith",
    },
    "routine_more_bathroom_visits.today": {
        "en": "Bathroom visits: {visits} so far today by {time}; usually {low}–{high} in a whole day over the last "
        "{days}.",
        "cy": "Ymweliadau â'r ystafell ymolchi: {visits} hyd yma heddiw erbyn {time}; fel arfer {low}–{high} mewn "
        "diwrnod cyfan dros y {days} diwethaf.",
    },
    "routine_reduced_kitchen_use.today": {
        "en": "Little kitchen use: {today} kitchen visits, kettle boils and fridge openings by {time}; by this time "
        "usually {low}–{high} over the last {days} days.",
        "cy": "Ychydig o ddefnydd o'r gegin: {today} o ymweliadau â'r gegin, berwi'r tegell ac agor yr oergell erbyn "
        "{time}; erbyn yr adeg hon fel arfer {low}–{high} dros y {days} diwrnod diwethaf.",
    },
    "routine_cold_home": {
        "en": "Room temperature {now_c:.1f} °C at {time}; usually about {usual_c:.1f} °C at this time of day over "
        "the last {days} days.",
        "cy": "Tymheredd yr ystafell {now_c:.1f} °C am {time}; fel arfer tua {usual_c:.1f} °C ar yr adeg hon o'r "
        "dydd dros y {days} diwrnod diwethaf.",
    },
    "routine_cold_home.cleared": {
        "en": "Room temperature back to usual.",
        "cy": "Tymheredd yr ystafell yn ôl i'r arfer.",
    },
    # --- messages to people (placesense.alerts.routing): text messages and emails ------------------------
    "notify.subject": {"en": "{lead:lead}: {rule:rule} at {place}", "cy": "{lead:lead}: {rule:rule} yn {place}"},
    "notify.subject.closed": {
        "en": "{action:Action}: {rule:rule} at {place}",
        "cy": "{action:Action}: {rule:rule} yn {place}",
    },
    "notify.acknowledged": {
        "en": "{who} has acknowledged the alert at {place}: {message}",
        "cy": "Mae {who} wedi cydnabod y rhybudd yn {place}: {message}",
    },
    "notify.resolved": {
        "en": "Resolved by {who} at {place}: {message}",
        "cy": "Wedi'i ddatrys gan {who} yn {place}: {message}",
    },
    "notify.escalated": {
        "en": "{lead:lead} – {note}. Nobody has acknowledged it yet. {place}: {message}",
        "cy": "{lead:lead} – {note}. Does neb wedi ei gydnabod eto. {place}: {message}",
    },
    "notify.reminder": {
        "en": "{lead:lead} – still open from earlier, not acknowledged. {place}: {message}",
        "cy": "{lead:lead} – yn dal ar agor ers yn gynharach, heb ei gydnabod. {place}: {message}",
    },
    "notify.again": {
        "en": "{lead:lead} – it has happened again. {place}: {message}",
        "cy": "{lead:lead} – mae wedi digwydd eto. {place}: {message}",
    },
    "notify.opened": {"en": "{lead:lead}. {place}: {message}", "cy": "{lead:lead}. {place}: {message}"},
    "notify.place": {"en": "{subject} ({audience:audience})", "cy": "{subject} ({audience:audience})"},
    "notify.someone": {"en": "someone", "cy": "rhywun"},
    "notify.link": {"en": "Acknowledge: {link}", "cy": "Cydnabod: {link}"},
    # --- operations ----------------------------------------------------------------------------------------------
    "home_unmonitored": {
        "en": "No sensor in home {home} has reported {heard} ({devices} devices): placesense cannot see whether the "
        "resident is up or needs help. Check the home's hub, power and internet link.",
        "cy": "Does dim synhwyrydd yng nghartref {home} wedi adrodd {heard} ({devices} dyfais): ni all placesense weld "
        "a yw'r preswylydd wedi codi neu angen help. Gwiriwch hwb, pŵer a chysylltiad rhyngrwyd y cartref.",
    },
    "device": {"en": "{kind:device} ({id})", "cy": "{kind:device} ({id})"},
    "device_in_room": {"en": "{room:room} {kind:device} ({id})", "cy": "{kind:device} yn {room:room} ({id})"},
    "device_health": {"en": "{reasons:Sentence}.", "cy": "{reasons:Sentence}."},
    "device_offline": {
        "en": "{device} has sent nothing since {time} ({gap:duration}){usual}",
        "cy": "nid yw {device} wedi anfon dim ers {time} ({gap:duration}){usual}",
    },
    "device_offline.never": {
        "en": "{device} has sent nothing since monitoring started{usual}",
        "cy": "nid yw {device} wedi anfon dim ers i'r monitro ddechrau{usual}",
    },
    "device_offline.usual": {
        "en": "; it usually reports every {every:duration}",
        "cy": "; fel arfer mae'n adrodd bob {every:duration}",
    },
    "device_offline.cleared": {"en": "All devices are reporting again.", "cy": "Mae pob dyfais yn adrodd eto."},
    "low_battery": {
        "en": "{device} battery at {pct:.0f} %: {urgency}",
        "cy": "batri {device} ar {pct:.0f} %: {urgency}",
    },
    "low_battery.now": {"en": "replace it now", "cy": "newidiwch y batri nawr"},
    "low_battery.soon": {"en": "replace it soon", "cy": "newidiwch y batri cyn bo hir"},
    "low_battery.cleared": {"en": "All batteries are fine again.", "cy": "Mae pob batri yn iawn eto."},
    "sensor_fault.cleared": {
        "en": "Sensors read normally again.",
        "cy": "Mae'r synwyryddion yn darllen yn normal eto.",
    },
    "home_unmonitored.since": {"en": "since {time}", "cy": "ers {time}"},
    "home_unmonitored.since_start": {"en": "since monitoring started", "cy": "ers i'r monitro ddechrau"},
    "home_unmonitored.cleared": {
        "en": "Sensors in home {home} are reporting again (from {time}).",
        "cy": "Mae'r synwyryddion yng nghartref {home} yn adrodd eto (o {time}).",
    },
    # --- air quality (street) ------------------------------------------------------------------------------------
    "daqi": {
        "en": "Air quality at {site} is {band:band} (index {index} of 10): {pollutant} {hours:period} mean {mean:.0f} "
        "µg/m³. {advice}{gaps:run}",
        # "Ansawdd yr aer ...: Cymedrol" rather than "yn gymedrol": the band stays a name, so no mutation is needed.
        "cy": "Ansawdd yr aer yn {site}: {band:band} (mynegai {index} o 10). Cymedr {hours:period} {pollutant}: "
        "{mean:.0f} µg/m³. {advice}{gaps:run}",
    },
    "daqi.cleared": {
        "en": "Air quality at {site} is back to Low (index {index}): highest is {pollutant} {hours:period} mean "
        "{mean:.0f} µg/m³. {advice}{gaps:run}",
        "cy": "Mae ansawdd yr aer yn {site} yn ôl i Isel (mynegai {index}). Yr uchaf yw cymedr {hours:period} "
        "{pollutant}: {mean:.0f} µg/m³. {advice}{gaps:run}",
    },
    "daqi.no_data": {"en": " {pollutant}: no data since {time}.", "cy": " {pollutant}: dim data ers {time}."},
    # Our own plain-language summary of what the UK health advice means for each band.
    "daqi.advice.Low": {
        "en": "Air pollution is low: everyone can carry on with outdoor activities as usual.",
        "cy": "Mae llygredd aer yn isel: gall pawb barhau â gweithgareddau yn yr awyr agored fel arfer.",
    },
    "daqi.advice.Moderate": {
        "en": "Air pollution is moderate. Most people need not change anything. People with heart or lung "
        "conditions, and older people, who notice symptoms should think about doing less strenuous activity, "
        "especially outdoors.",
        "cy": "Mae llygredd aer yn gymedrol. Does dim angen i'r rhan fwyaf o bobl newid dim. Dylai pobl â chyflyrau'r "
        "galon neu'r ysgyfaint, a phobl hŷn, sy'n sylwi ar symptomau ystyried gwneud llai o weithgarwch egnïol, yn "
        "enwedig yn yr awyr agored.",
    },
    "daqi.advice.High": {
        "en": "Air pollution is high. Anyone with sore eyes, a cough or a sore throat should think about doing less "
        "outdoors. People with heart or lung conditions, and older people, should cut down on strenuous activity, "
        "especially outdoors; people with asthma may need their reliever inhaler more often.",
        "cy": "Mae llygredd aer yn uchel. Dylai unrhyw un â llygaid dolurus, peswch neu ddolur gwddf ystyried gwneud "
        "llai yn yr awyr agored. Dylai pobl â chyflyrau'r galon neu'r ysgyfaint, a phobl hŷn, leihau gweithgarwch "
        "egnïol, yn enwedig yn yr awyr agored; efallai y bydd angen i bobl ag asthma ddefnyddio eu hanadlydd "
        "lliniaru yn amlach.",
    },
    "daqi.advice.Very High": {
        "en": "Air pollution is very high. Everyone should cut down on strenuous activity outdoors, especially with a "
        "cough or sore throat. People with heart or lung conditions, and older people, should avoid strenuous "
        "activity, and people with asthma may need their reliever inhaler more often.",
        "cy": "Mae llygredd aer yn uchel iawn. Dylai pawb leihau gweithgarwch egnïol yn yr awyr agored, yn enwedig "
        "gyda pheswch neu ddolur gwddf. Dylai pobl â chyflyrau'r galon neu'r ysgyfaint, a phobl hŷn, osgoi "
        "gweithgarwch egnïol, ac efallai y bydd angen i bobl ag asthma ddefnyddio eu hanadlydd lliniaru yn amlach.",
    },
    # --- flowerbeds (street) -------------------------------------------------------------------------------------
    "needs_water": {
        "en": "{bed} needs water now: soil moisture {moisture:.1f} %, below its {threshold:g} % threshold{rate}.",
        "cy": "Mae angen dŵr ar {bed} nawr: lleithder y pridd {moisture:.1f} %, o dan ei drothwy o {threshold:g} %"
        "{rate}.",
    },
    "needs_water.soon": {
        "en": "{bed} needs water by about {by} {day:day} (within {within:duration}; {confidence:confidence} "
        "confidence): soil moisture {moisture:.1f} %{rate}, threshold {threshold:g} %.",
        "cy": "Bydd angen dŵr ar {bed} erbyn tua {by} {day:day} (o fewn {within:duration}; hyder "
        "{confidence:confidence}): lleithder y pridd {moisture:.1f} %{rate}, trothwy {threshold:g} %.",
    },
    "needs_water.rate": {
        "en": "; drying about {rate:.2f} % an hour",
        "cy": "; yn sychu tua {rate:.2f} % yr awr",
    },
    "needs_water.cleared": {
        "en": "{bed} no longer needs water{cause}: soil moisture {moisture:.1f} %.",
        "cy": "Does dim angen dŵr ar {bed} mwyach{cause}: lleithder y pridd {moisture:.1f} %.",
    },
    "needs_water.watered": {"en": ": marked as watered at {time}", "cy": ": wedi'i nodi fel wedi'i ddyfrio am {time}"},
    "needs_water.slowed": {
        "en": ": it has stopped drying as fast as forecast, so it is taken off the list",
        "cy": ": nid yw'n sychu mor gyflym â'r rhagolwg mwyach, felly mae wedi'i dynnu oddi ar y rhestr",
    },
    "needs_water.rained": {
        "en": " after rain or watering at {time}",
        "cy": " ar ôl glaw neu ddyfrio am {time}",
    },
    "over_watered": {
        "en": "{bed} is over-watered: soil moisture {moisture:.0f} %, above {wet:.0f} %. "
        "Skip watering; check the drainage if it stays this wet.",
        "cy": "Mae gormod o ddŵr ar {bed}: lleithder y pridd {moisture:.0f} %, uwchlaw {wet:.0f} %. "
        "Peidiwch â dyfrio; gwiriwch y draeniad os yw'n aros mor wlyb â hyn.",
    },
    "over_watered.cleared": {
        "en": "{bed} is no longer over-watered: soil moisture {moisture:.0f} %.",
        "cy": "Does dim gormod o ddŵr ar {bed} mwyach: lleithder y pridd {moisture:.0f} %.",
    },
}

# Registry room names in words. Welsh takes the definite form with its mutation ("y gegin"), as it reads in
# every template; a room not listed reads as its own name in both languages.
ROOMS: dict[Lang, dict[str, str]] = {
    "en": {},
    "cy": {
        "kitchen": "y gegin",
        "bathroom": "yr ystafell ymolchi",
        "bedroom": "yr ystafell wely",
        "living_room": "yr ystafell fyw",
        "lounge": "y lolfa",
        "hall": "y cyntedd",
        "hallway": "y cyntedd",
        "dining_room": "yr ystafell fwyta",
        "front_door": "y drws ffrynt",
        "home": "y cartref",
    },
}
DAYS: dict[Lang, tuple[str, ...]] = {
    "en": ("today", "tomorrow"),
    "cy": ("heddiw", "yfory"),
}
WEEKDAYS: dict[Lang, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "cy": ("dydd Llun", "dydd Mawrth", "dydd Mercher", "dydd Iau", "dydd Gwener", "dydd Sadwrn", "dydd Sul"),
}
# What a home's sensor saw, by device kind ("movement in the kitchen" / "symud yn y gegin").
SENSORS: dict[Lang, dict[str, str]] = {
    "en": {
        "motion": "movement", "front_door": "front door", "fridge_door": "fridge", "door": "door",
        "contact": "cupboard or switch", "flush": "toilet flush", "bed": "bed", "chair": "chair",
        "kettle": "kettle", "plug": "appliance", "": "sensor",
    },
    "cy": {
        "motion": "symud", "front_door": "drws ffrynt", "fridge_door": "oergell", "door": "drws",
        "contact": "cwpwrdd neu switsh", "flush": "fflysh y toiled", "bed": "gwely", "chair": "cadair",
        "kettle": "tegell", "plug": "teclyn", "": "synhwyrydd",
    },
}
# What a device is ("kitchen motion sensor (m-12)" / "synhwyrydd symud yn y gegin (m-12)").
DEVICES: dict[Lang, dict[str, str]] = {
    "en": {
        "motion": "motion sensor", "front_door": "front door sensor", "fridge_door": "fridge door sensor",
        "door": "door sensor", "bed": "bed sensor", "chair": "chair sensor", "kettle": "kettle plug",
        "plug": "smart plug", "climate": "temperature sensor", "help_button": "help button",
        "contact": "contact sensor", "flush": "toilet flush sensor", "soil": "soil sensor", "air": "air sensor",
        "": "device",
    },
    "cy": {
        "motion": "synhwyrydd symud", "front_door": "synhwyrydd y drws ffrynt",
        "fridge_door": "synhwyrydd drws yr oergell", "door": "synhwyrydd drws", "bed": "synhwyrydd gwely",
        "chair": "synhwyrydd cadair", "kettle": "plwg y tegell", "plug": "plwg clyfar",
        "climate": "synhwyrydd tymheredd", "help_button": "botwm help", "contact": "synhwyrydd cyswllt",
        "flush": "synhwyrydd fflysio'r toiled", "soil": "synhwyrydd pridd", "air": "synhwyrydd aer", "": "dyfais",
    },
}
# What bathroom visits were counted by: "flushes" or "visits".
VISITS: dict[Lang, dict[str, str]] = {
    "en": {"flushes": "toilet visits (flushes)", "visits": "bathroom visits"},
    "cy": {"flushes": "ymweliadau â'r toiled (fflysio)", "visits": "ymweliadau â'r ystafell ymolchi"},
}
NUMBERS: dict[Lang, tuple[str, ...]] = {
    "en": ("none", "one", "two", "three", "four"),
    "cy": ("dim", "un", "dau", "tri", "pedwar"),
}
# How a carer names what the routine detector measures (``anomaly.explain.FEATURES`` takes its names from here).
FEATURE_WORDS: dict[Lang, dict[str, str]] = {
    "en": {
        "wake_min": "got up", "bedtime_min": "went to bed", "motion_count": "movements detected",
        "kitchen_visits": "kitchen visits", "kettle_uses": "kettle boils", "fridge_opens": "fridge openings",
        "kitchen_events": "kitchen visits, kettle boils and fridge openings",
        "bathroom_day": "bathroom visits in the day", "bathroom_night": "bathroom visits at night",
        "night_activity": "movements outside the bedroom at night", "out_min": "time out of the home",
        "temperature_c": "average room temperature",
    },
    "cy": {
        "wake_min": "codi", "bedtime_min": "mynd i'r gwely", "motion_count": "symudiadau a welwyd",
        "kitchen_visits": "ymweliadau â'r gegin", "kettle_uses": "berwi'r tegell", "fridge_opens": "agor yr oergell",
        "kitchen_events": "ymweliadau â'r gegin, berwi'r tegell ac agor yr oergell",
        "bathroom_day": "ymweliadau â'r ystafell ymolchi yn ystod y dydd",
        "bathroom_night": "ymweliadau â'r ystafell ymolchi yn y nos",
        "night_activity": "symud y tu allan i'r ystafell wely yn y nos", "out_min": "amser allan o'r cartref",
        "temperature_c": "tymheredd cyfartalog yr ystafell",
    },
}
# Words for codes in messages to people: how urgent, which rule, which team, what was done.
LEADS: dict[Lang, dict[str, str]] = {
    "en": {"info": "For information", "warning": "Warning", "critical": "URGENT"},
    "cy": {"info": "Er gwybodaeth", "warning": "Rhybudd", "critical": "BRYS"},
}
RULE_WORDS: dict[Lang, dict[str, str]] = {
    "en": {},
    "cy": {
        "help_button": "botwm help", "not_up": "heb godi", "cold_home": "cartref oer", "inactivity": "dim symud",
        "night_door": "drws yn ystod y nos", "bathroom_stay": "amser hir yn yr ystafell ymolchi",
        "bathroom_visits": "ymweliadau â'r ystafell ymolchi", "no_kitchen_use": "dim defnydd o'r gegin",
        "reduced_kitchen_use": "llai o ddefnydd o'r gegin", "needs_water": "angen dŵr",
        "over_watered": "gormod o ddŵr", "device_offline": "dyfais all-lein", "low_battery": "batri isel",
        "sensor_fault": "nam ar synhwyrydd", "home_unmonitored": "cartref heb ei fonitro", "daqi": "ansawdd aer",
    },
}
AUDIENCES: dict[Lang, dict[str, str]] = {
    "en": {},
    "cy": {"care": "gofal", "street": "stryd", "ops": "gweithrediadau"},
}
ACTIONS: dict[Lang, dict[str, str]] = {
    "en": {},
    "cy": {"acknowledged": "cydnabuwyd", "resolved": "datryswyd"},
}
DIRECTIONS: dict[Lang, dict[str, str]] = {
    "en": {},
    "cy": {"later": "yn hwyrach", "earlier": "yn gynharach", "more": "yn fwy", "less": "yn llai", "fewer": "yn llai"},
}
BANDS: dict[Lang, dict[str, str]] = {
    "en": {},
    "cy": {"Low": "Isel", "Moderate": "Cymedrol", "High": "Uchel", "Very High": "Uchel Iawn"},
}
CONFIDENCE: dict[Lang, dict[str, str]] = {
    "en": {},
    "cy": {"high": "uchel", "medium": "canolig", "low": "isel"},
}


@dataclass(frozen=True, slots=True)
class Text:
    """A message as a template id and its parameters; ``render`` gives it in one language."""

    key: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key not in CATALOGUE:
            raise KeyError(f"no alert text template {self.key!r}")

    def render(self, lang: Lang = "en") -> str:
        return _Formatter(lang).format(CATALOGUE[self.key][lang], **self.params)

    @property
    def english(self) -> str:
        return self.render("en")

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "params": {name: _param_json(v) for name, v in self.params.items()}}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Text:
        params = raw.get("params") or {}
        return cls(raw["key"], {k: _param_from_json(v) for k, v in params.items()})


def _param_json(value: Param) -> Any:
    if isinstance(value, Text):
        return value.to_json()
    if isinstance(value, list):
        return [item.to_json() for item in value]
    return value


def _param_from_json(value: Any) -> Param:
    if isinstance(value, dict):
        return Text.from_json(value)
    if isinstance(value, list):
        return [Text.from_json(item) for item in value]
    return value  # type: ignore[no-any-return]


def text(key: str, **params: Param) -> Text:
    """``text("help_button", time="07:10", room="kitchen")``."""
    return Text(key, params)


def renderings(stored: Text | None, english: str) -> dict[str, str]:
    """The message in every language: from its template when it has one; otherwise English only, as stored."""
    if stored is None:
        return {"en": english}
    return {lang: stored.render(lang) for lang in LANGS}


class _Formatter(string.Formatter):
    def __init__(self, lang: Lang) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Text):
            return value.render(self.lang)
        if isinstance(value, list):  # clauses: "; " between them (":Sentence" starts with a capital, ":run" no gap)
            gap = {"run": "", "commas": ", ", "sentences": ". "}.get(format_spec, "; ")
            joined = gap.join(item.render(self.lang) for item in value)
            return joined[:1].upper() + joined[1:] if format_spec == "Sentence" else joined
        if format_spec == "device":
            return DEVICES[self.lang].get(str(value), DEVICES[self.lang][""])
        if format_spec in ("room", "Room"):
            words = ROOMS[self.lang].get(str(value or "home"), str(value or "home").replace("_", " "))
            return words[:1].upper() + words[1:] if format_spec == "Room" else words
        if format_spec == "duration":
            return duration(int(value), self.lang)
        if format_spec == "minutes":  # a routine's minutes: "3 h 05 min", "40 min"
            hours, minutes = divmod(round(value), 60)
            h, m = ("h", "min") if self.lang == "en" else ("awr", "mun")
            return f"{hours} {h} {minutes:02d} {m}" if hours else f"{minutes} {m}"
        if format_spec == "day":
            return day_words(value, self.lang)
        if format_spec == "sensor":
            return SENSORS[self.lang].get(str(value), SENSORS[self.lang][""])
        if format_spec in ("visits", "Visits"):
            words = VISITS[self.lang][str(value)]
            return words[:1].upper() + words[1:] if format_spec == "Visits" else words
        if format_spec == "number":
            return NUMBERS[self.lang][int(value)] if 0 <= int(value) < len(NUMBERS[self.lang]) else str(value)
        if format_spec == "times":
            return times(int(value), self.lang)
        if format_spec in ("feature", "Feature"):
            words = FEATURE_WORDS[self.lang].get(str(value), str(value))
            return words[:1].upper() + words[1:] if format_spec == "Feature" else words
        if format_spec == "lead":
            return LEADS[self.lang][str(value)]
        if format_spec == "rule":
            return RULE_WORDS[self.lang].get(str(value), str(value).replace("_", " "))
        if format_spec == "audience":
            return AUDIENCES[self.lang].get(str(value), str(value))
        if format_spec == "Action":
            words = ACTIONS[self.lang].get(str(value), str(value))
            return words[:1].upper() + words[1:]
        if format_spec == "direction":
            return DIRECTIONS[self.lang].get(str(value), str(value))
        if format_spec == "band":
            return BANDS[self.lang].get(str(value), str(value))
        if format_spec == "period":  # averaging hours: "1-hour" / "1 awr"
            return f"{value}-hour" if self.lang == "en" else f"{value} awr"
        if format_spec == "confidence":
            return CONFIDENCE[self.lang].get(str(value), str(value))
        return str(super().format_field(value, format_spec))


def duration(ms: int, lang: Lang = "en") -> str:
    """'3 h 10 min', '45 min', '2 days 3 h'; in Welsh '3 awr 10 mun', '2 diwrnod 3 awr'."""
    minutes = max(0, round(ms / MINUTE_MS))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    h, m = ("h", "min") if lang == "en" else ("awr", "mun")
    day = ("day" if days == 1 else "days") if lang == "en" else "diwrnod"
    if days:
        return f"{days} {day} {hours} {h}" if hours else f"{days} {day}"
    if hours:
        return f"{hours} {h} {mins} {m}" if mins else f"{hours} {h}"
    return f"{mins} {m}"


def day_words(offset: int | str, lang: Lang = "en") -> str:
    """A day relative to today: 0 'today', 1 'tomorrow'; a weekday as 'w0'..'w6' (Monday first) reads 'on Friday'."""
    if isinstance(offset, str) and offset.startswith("w"):
        name = WEEKDAYS[lang][int(offset[1:])]
        return f"on {name}" if lang == "en" else name
    return DAYS[lang][int(offset)]


def times(count: int, lang: Lang = "en") -> str:
    """'once', '3 times'; in Welsh 'unwaith', '3 gwaith'."""
    if lang == "en":
        return "once" if count == 1 else f"{count} times"
    return "unwaith" if count == 1 else f"{count} gwaith"
