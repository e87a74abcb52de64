"""A prober of real network paths: TCP connect times to per-region public endpoints.

A unit worker reports one sample per data-source key (`<provider>:<region>`) with each
region probe; the central service smooths them (meridian/network.py). Without kubesim
this is where those samples come from.

A TCP handshake is one round trip and needs nothing from the far end but a listening
port, so the connect time is an RTT measurement that works against any public API
endpoint without credentials; no payload is sent and the socket is closed at once.
"""

from __future__ import annotations

import logging
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from meridian.regions.providers import Provider

if TYPE_CHECKING:
    from meridian.regions.config import RegionsFile
    from meridian.settings import NetworkProbeSettings, Settings

log = logging.getLogger(__name__)

# Providers with a public API endpoint per region. Azure, GCP and IDC have none of that
# kind (their APIs are global, or there is no API), so they are probed only where
# `network_probe.endpoints` names a target; otherwise placement estimates them.
DEFAULT_TEMPLATES: dict[str, str] = {
    "aws": "ec2.{region}.amazonaws.com:443",
    "alibaba": "ecs.{region}.aliyuncs.com:443",
    "tencent": "cvm.{region}.tencentcloudapi.com:443",
    "huawei": "ecs.{region}.myhuaweicloud.com:443",
    "baidu": "bcc.{region}.baidubce.com:443",
}

# On top of attempts x timeout for the whole round: thread start-up and name resolution.
ROUND_SLACK_SECONDS = 0.5

Sample = dict[str, Any]
# (resolved addresses, seconds allowed) -> seconds the connect took, or None if it failed.
Connect = Callable[[list[Any], float], float | None]


def parse_host_port(value: str) -> tuple[str, int]:
    """`host:port` or `[v6 address]:port` → (host, port); ValueError when malformed."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or any(c in host for c in " /[]{}") or not port_text.isdigit():
        raise ValueError(f"{value!r} is not host:port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{value!r}: port must be 1..65535")
    return host, port


def parse_target_key(key: str) -> tuple[str, str]:
    """A data-source key `<provider>:<region>` → (provider, region); ValueError otherwise."""
    provider, sep, region = key.partition(":")
    if not sep or not region:
        raise ValueError(f"{key!r} is not a data-source key '<provider>:<region>'")
    if provider not in {p.value for p in Provider}:
        raise ValueError(f"{key!r}: unknown provider {provider!r}")
    return provider, region


def resolve_endpoint(
    key: str, endpoints: Mapping[str, str], templates: Mapping[str, str]
) -> str | None:
    """The `host:port` to probe for a data-source key, or None when nothing is configured.

    An explicit endpoint wins; then the provider's template (user templates over the
    defaults; an empty template switches a default off).
    """
    if key in endpoints:
        return endpoints[key]
    provider, region = parse_target_key(key)
    template = {**DEFAULT_TEMPLATES, **templates}.get(provider, "")
    return template.replace("{region}", region) if template else None


def probe_targets(config: NetworkProbeSettings, regions: RegionsFile) -> dict[str, str]:
    """Data-source key → `host:port` for every key to probe.

    The keys are `config.targets`, or when that is empty every region's own location in
    the regions file: the data locations that matter to the fleet.
    """
    keys: Iterable[str] = config.targets or [
        f"{r.provider.value}:{r.location}" for r in regions.regions
    ]
    targets: dict[str, str] = {}
    for key in dict.fromkeys(keys):
        endpoint = resolve_endpoint(key, config.endpoints, config.templates)
        if endpoint is None:
            log.info("network probe: no endpoint for %s; placement estimates it", key)
            continue
        targets[key] = endpoint
    return targets


def build_prober(settings: Settings) -> TcpProber | None:
    """The unit worker's prober when network samples come from TCP probes, else None."""
    if settings.resolved_network_probe_mode != "tcp":
        return None
    from meridian.regions.config import load_regions

    config = settings.network_probe
    return TcpProber(
        probe_targets(config, load_regions(settings.regions_file)),
        interval_seconds=config.interval_seconds,
        attempts=config.attempts,
        timeout_seconds=config.timeout_seconds,
    )


class TcpProber:
    """Measures RTT and loss to each target by timing TCP connects, one round per interval.

    `measure(consumer)` never waits for the network (unless asked to): when a round is
    due it starts one on a background thread and returns at once. The caller is the
    region health probe, whose whole budget is ~3 s; a round against an unreachable
    endpoint takes attempts x timeout (3 s by default) and must not make a healthy
    region look dead.

    Between rounds `measure` returns [] rather than the cached samples. Every sample is
    folded into an EWMA and counted (activities/regions.py); handing back the same
    measurement on each 2 s health tick would fold it in ~15 times per round, leaving
    the smoothing almost no history and inflating the sample count placement reports.
    An empty list means "nothing new": the stored path keeps its value.

    Each round is delivered once to every consumer (a compute region hosted in this
    process), so all of them receive it, not just the first to ask.
    """

    def __init__(
        self,
        targets: Mapping[str, str],
        *,
        interval_seconds: float = 30.0,
        attempts: int = 3,
        timeout_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        connect: Connect | None = None,
    ):
        if attempts < 1 or timeout_seconds <= 0 or interval_seconds <= 0:
            raise ValueError("attempts, timeout_seconds and interval_seconds must be positive")
        self.targets = {key: parse_host_port(value) for key, value in targets.items()}
        self.interval_seconds = interval_seconds
        self.attempts = attempts
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        # How one connect is timed (tests stand in a path that never answers).
        self._connect = connect or connect_seconds
        self._lock = threading.Lock()
        self._round_done = threading.Event()
        self._round_done.set()
        self._last_started: float | None = None
        self._round = 0  # number of the latest completed round
        self._round_finished = 0.0
        self._samples: list[Sample] = []
        self._delivered: dict[str, int] = {}
        self._unresolved: set[str] = set()
        self.rounds_started = 0

    @property
    def round_budget_seconds(self) -> float:
        return self.attempts * self.timeout_seconds + ROUND_SLACK_SECONDS

    def measure(self, consumer: str = "", *, wait: bool = False) -> list[Sample]:
        """Samples of the latest round not yet handed to `consumer`, else [].

        Starts a round in the background when the last one started `interval_seconds`
        ago or more. With `wait`, blocks until the running round (if any) completes:
        about `round_budget_seconds` at most.
        """
        with self._lock:
            now = self._clock()
            due = self._last_started is None or now - self._last_started >= self.interval_seconds
            if due and self._round_done.is_set() and self.targets:
                self._last_started = now
                self.rounds_started += 1
                self._round_done.clear()
                threading.Thread(
                    target=self._background_round, name="network-probe", daemon=True
                ).start()
        if wait:
            self._round_done.wait(self.round_budget_seconds + 1.0)
        with self._lock:
            # A round older than two intervals is stale (say, a region whose probes
            # stopped for a while): its consumer gets the next one instead.
            fresh = self._clock() - self._round_finished < 2 * self.interval_seconds
            if self._round == 0 or self._delivered.get(consumer) == self._round or not fresh:
                return []
            self._delivered[consumer] = self._round
            return [dict(sample) for sample in self._samples]

    def _background_round(self) -> None:
        try:
            samples = self.run_round()
        except Exception:  # a probe bug must not stop future rounds
            log.exception("network probe round failed")
            samples = []
        with self._lock:
            self._samples = samples
            self._round += 1
            self._round_finished = self._clock()
            self._round_done.set()

    def run_round(self) -> list[Sample]:
        """One round now, every target concurrently; returns within the round budget.

        One thread per target (the fleet's data locations: tens, not thousands), so that
        the round takes as long as its slowest target, not their sum. Daemon threads: a
        name lookup stuck past the budget is abandoned, never waited for at exit.
        """
        deadline = time.monotonic() + self.round_budget_seconds
        results: dict[str, Sample | None] = {}
        threads = []
        for key, (host, port) in self.targets.items():

            def probe(key: str = key, host: str = host, port: int = port) -> None:
                results[key] = self._probe_target(key, host, port, deadline)

            thread = threading.Thread(target=probe, name=f"network-probe-{key}", daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        samples = []
        for key in self.targets:
            sample = results.get(key)
            if sample is None:
                # Unresolvable (or resolution outlived the round): that says nothing
                # about the path, so no sample rather than a 100 % loss.
                if key not in self._unresolved:
                    host = self.targets[key][0]
                    log.warning("network probe: cannot resolve %s (%s); not measured", host, key)
                    self._unresolved.add(key)
                continue
            self._unresolved.discard(key)
            samples.append(sample)
        return samples

    def _probe_target(self, key: str, host: str, port: int, deadline: float) -> Sample | None:
        try:
            addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):  # UnicodeError: a name IDNA cannot encode
            return None
        times_ms = []
        for _ in range(self.attempts):
            budget = min(self.timeout_seconds, deadline - time.monotonic())
            elapsed = self._connect(addresses, budget)
            if elapsed is not None:
                times_ms.append(elapsed * 1000.0)
        if not times_ms:
            return {"target": key, "rtt_ms": self.timeout_seconds * 1000.0, "loss": 1.0}
        return {
            "target": key,
            "rtt_ms": round(statistics.median(times_ms), 3),
            "loss": round((self.attempts - len(times_ms)) / self.attempts, 4),
        }


def connect_seconds(addresses: list[Any], budget: float) -> float | None:
    """Seconds one TCP connect took, or None when it failed within `budget`.

    Tries each resolved address in turn (as socket.create_connection does, so a host
    without IPv6 routes still reaches an IPv4 address) and times only the connect that
    succeeded.
    """
    end = time.monotonic() + budget
    for family, kind, proto, _name, address in addresses:
        remaining = end - time.monotonic()
        if remaining <= 0:
            return None
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(remaining)
                started = time.perf_counter()
                sock.connect(address)
                return time.perf_counter() - started
        except OSError:
            continue
    return None
