"""``GET /api/v1/air/sites``: the latest UK Daily Air Quality Index per site and pollutant.

The rules room computes the running means and bands (``service.rules.air_quality()``); this module lists them
with each site's place from the registry. It must not compute an index.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.adapt import as_mapping
from api.deps import Ctx, StreetSide
from api.problems import AUTH_ERRORS, not_available
from api.timefmt import rfc3339

router = APIRouter(tags=["air"])
Band = Literal["Low", "Moderate", "High", "Very High"]


class PollutantOut(BaseModel):
    metric: str
    label: str
    averaging_hours: int
    mean_ugm3: float
    index: int
    band: Band
    complete: bool = Field(description="false while the readings do not yet cover enough of the averaging period")


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
def air_sites(ctx: Ctx, _caller: StreetSide) -> AirSitesOut:
    """Every air site with its latest DAQI index and band, per pollutant."""
    rules = ctx.part("rules")
    latest = getattr(rules, "air_quality", None)
    if latest is None:
        raise not_available("the air quality index")
    registry = ctx.service.registry
    sites = []
    for raw in latest():
        site: dict[str, Any] = dict(as_mapping(raw))
        spec = registry.air_sites.get(site["site_id"])
        sites.append(
            AirSiteOut(
                site_id=site["site_id"],
                name=site["name"],
                lat=spec.lat if spec else None,
                lon=spec.lon if spec else None,
                index=site.get("index"),
                band=site.get("band"),
                updated=rfc3339(site.get("updated_ms") or None),
                pollutants=[PollutantOut.model_validate(dict(as_mapping(p))) for p in site.get("pollutants", ())],
            )
        )
    return AirSitesOut(sites=sites)
