"""The region catalog: where every provider's regions (and IDC sites) are on the globe.

Placement needs to know how far a task's data is from each compute region, for any
region the data may live in, including regions where Meridian runs nothing. The
catalog ships as `meridian/data/catalog.yaml`; platforms merge their own files (IDC
sites, new regions) with `Catalog.load(extra_paths=...)`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from meridian.regions.providers import Provider

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parents[1] / "data" / "catalog.yaml"
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG); the spherical model errs < 0.5 %
# How many known regions an UnknownRegionError spells out before summarising the rest.

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster


class LatLon(Protocol):
    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


@dataclass(frozen=True, slots=True)
class CatalogRegion:
    provider: Provider
    region: str
    name: str
    city: str
    country: str
    lat: float
    lon: float

    @property
    def key(self) -> str:
        """`<provider>:<region>`, the same key as `DataSource.key` and network paths."""
        return f"{self.provider.value}:{self.region}"


class UnknownRegionError(ValueError):
    """A region id the catalog does not know. A ValueError so validators turn it into 422."""

    def __init__(self, provider: Provider, region: str, known: list[str]) -> None:
        self.provider = provider
        self.region = region
        self.known = known
        super().__init__(_unknown_message(provider, region, known))


def _unknown_message(provider: Provider, region: str, known: list[str]) -> str:
    head = f"unknown {provider.value} region {region!r}"
    if not known:
        return f"{head}; no {provider.value} regions are known (add them to the catalog)"
    close = difflib.get_close_matches(region, known, n=3, cutoff=0.75)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    # The whole list: a user who typed a wrong id needs to see the right one.
    return f"{head}{hint}; known: {', '.join(known)}"


def great_circle_km(a: LatLon | tuple[float, float], b: LatLon | tuple[float, float]) -> float:
    """Haversine distance in km between two (lat, lon) points or catalog regions."""
    lat1, lon1 = a if isinstance(a, tuple) else (a.lat, a.lon)
    lat2, lon2 = b if isinstance(b, tuple) else (b.lat, b.lon)
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    # min() guards asin against rounding just above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class Catalog:
    """An immutable index of regions by (provider, region id), with cached distances."""

    def __init__(self, regions: Iterable[CatalogRegion]) -> None:
        self._by_key: dict[tuple[Provider, str], CatalogRegion] = {}
        for region in regions:
            self._by_key[(region.provider, region.region)] = region
        self._known: dict[Provider, list[str]] = {p: [] for p in Provider}
        for provider, region_id in sorted(self._by_key):
            self._known[provider].append(region_id)
        # Placement asks for the same few pairs on every decision; a plain dict keyed by
        # the pair is the cheapest cache (an lru_cache on a method would pin `self`).
        self._distances: dict[tuple[str, str, str, str], float | None] = {}

    @classmethod
    def load(
        cls, extra_paths: Iterable[Path | str] = (), *, base: Path | str | None = None
    ) -> Catalog:
        """The shipped catalog (or `base`), then each extra file; later entries override."""
        regions: dict[tuple[Provider, str], CatalogRegion] = {}
        for path in [Path(base) if base else DEFAULT_CATALOG_PATH, *map(Path, extra_paths)]:
            for region in _read_file(path):
                regions[(region.provider, region.region)] = region
        return cls(regions.values())

    @staticmethod
    def default() -> Catalog:
        """The shipped catalog, loaded once per process."""
        return catalog_for()

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Any:
        return iter(self._by_key.values())

    def locate(self, provider: Provider | str, region: str) -> CatalogRegion | None:
        return self._by_key.get((Provider(provider), region))

    def known(self, provider: Provider | str) -> list[str]:
        """Region ids of `provider`, sorted."""
        return list(self._known[Provider(provider)])

    def require(self, provider: Provider | str, region: str) -> CatalogRegion:
        prov = Provider(provider)
        found = self._by_key.get((prov, region))
        if found is None:
            raise UnknownRegionError(prov, region, self._known[prov])
        return found

    def distance_km(
        self, a_provider: str, a_region: str, b_provider: str, b_region: str
    ) -> float | None:
        """Great-circle km between two catalog regions; None when either is unknown."""
        pair = (a_provider, a_region, b_provider, b_region)
        try:
            return self._distances[pair]
        except KeyError:
            pass
        a = self._by_key.get((Provider(a_provider), a_region))
        b = self._by_key.get((Provider(b_provider), b_region))
        km = great_circle_km(a, b) if a is not None and b is not None else None
        self._distances[pair] = km
        return km


def catalog_for(extra_paths: Iterable[Path | str] = ()) -> Catalog:
    """The catalog a deployment uses: the shipped one plus its `catalog_files`, loaded
    once per process for each set of files."""
    return _loaded(tuple(str(Path(p).resolve()) for p in extra_paths))


@cache
def _loaded(extra: tuple[str, ...]) -> Catalog:
    return Catalog.load(extra)


def _read_file(path: Path) -> list[CatalogRegion]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    if not isinstance(data, Mapping) or not isinstance(data.get("regions"), Mapping):
        raise ValueError(f"{path}: expected a mapping with 'regions: {{<provider>: {{...}}}}'")
    out: list[CatalogRegion] = []
    for provider_name, entries in data["regions"].items():
        try:
            provider = Provider(provider_name)
        except ValueError:
            raise ValueError(f"{path}: unknown provider {provider_name!r}") from None
        for region_id, entry in (entries or {}).items():
            out.append(_parse_entry(path, provider, str(region_id), entry))
    return out


def _parse_entry(path: Path, provider: Provider, region_id: str, entry: Any) -> CatalogRegion:
    where = f"{path}: {provider.value}:{region_id}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping with lat and lon")
    try:
        lat, lon = float(entry["lat"]), float(entry["lon"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: lat and lon must be numbers") from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"{where}: coordinates ({lat}, {lon}) out of range")
    return CatalogRegion(
        provider=provider,
        region=region_id,
        name=str(entry.get("name", region_id)),
        city=str(entry.get("city", "")),
        country=str(entry.get("country", "")),
        lat=lat,
        lon=lon,
    )
