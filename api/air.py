"""``GET /api/v1/air/sites``: the latest UK Daily Air Quality Index per site and pollutant.

The rules room computes the running means and bands (``service.rules.air_quality()``); this module lists them
with each site's place from the registry. It must not compute an index.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Street, StreetSide
from api.problems import AUTH_ERRORS
from api.timefmt import rfc3339
from rules.daqi import Band

router = APIRouter(tags=["air"])


class PollutantOut(BaseModel):
    metric: str
    label: str
    averaging_hours: int
    mean_ugm3: float | None = Field(description="null when nothing was measured in the averaging period")
    index: int | None
    band: Band | None
    complete: bool = Field(description="false while the readings do not yet cover enough of the averaging period")
    status: Literal["current", "incomplete", "no data"] = Field(
        description="current: banded; incomplete: too little of the period covered; no data: nothing measured "
        "in the averaging period (see no_data_since), never shown as a current band"
    )
    coverage: float = Field(description="share of the averaging period the readings cover (DEFRA: 0.75 needed)")
    no_data_since: str | None = Field(description="the last reading, when status is 'no data'")


class AirSiteOut(BaseModel):
    site_id: str
    name: str
    lat: float | None
    lon: float | None
    index: int | None = Field(description="1..10, the highest over complete pollutants; null while unknown")
    band: Band | None
    updated: str | None
    pollutants: list[PollutantOut]


class AirSitesOut(BaseModel):
    sites: list[AirSiteOut]


@router.get("/api/v1/air/sites", response_model=AirSitesOut, responses=AUTH_ERRORS)
def air_sites(service: Street, _caller: StreetSide) -> AirSitesOut:
    """Every air site with its latest DAQI index and band, per pollutant."""
    registry = service.registry
    sites = []
    for site in service.rules.air_quality():
        spec = registry.air_sites.get(site.site_id)
        sites.append(
            AirSiteOut(
                site_id=site.site_id,
                name=site.name,
                lat=spec.lat if spec else None,
                lon=spec.lon if spec else None,
                index=site.index,
                band=site.band,
                updated=rfc3339(site.updated_ms or None),
                pollutants=[
                    PollutantOut(
                        metric=p.metric,
                        label=p.label,
                        averaging_hours=p.averaging_hours,
                        mean_ugm3=p.mean_ugm3,
                        index=p.index,
                        band=p.band,
                        complete=p.complete,
                        status=p.status,
                        coverage=p.coverage,
                        no_data_since=rfc3339(p.last_reading_ms) if p.status == "no data" else None,
                    )
                    for p in site.pollutants
                ],
            )
        )
    return AirSitesOut(sites=sites)
