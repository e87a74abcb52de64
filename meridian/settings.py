"""One typed settings object for every Meridian process.

Sources, highest first: constructor arguments, `MERIDIAN_*` environment variables
(nested with `__`, e.g. `MERIDIAN_PLACEMENT__WEIGHT_LOAD=2`), the YAML file named by
`MERIDIAN_CONFIG`, then the defaults documented here. Nothing else reads os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from meridian.auth.settings import AuthSettings
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.contracts import PROBE_REPLY_RESERVE_SECONDS, probe_api_budget_seconds
from meridian.regions.probing import parse_host_port, parse_target_key
from meridian.security.settings import CodecSettings
from meridian.tenancy.quotas import QuotaSettings

DEFAULT_STATE_DIR = Path(".meridian")
REPO_ROOT = Path(__file__).resolve().parent.parent


class PlacementWeights(BaseModel):
    locality: float = Field(0.45, ge=0)
    network: float = Field(0.35, ge=0)
    load: float = Field(0.20, ge=0)


class BurstSettings(BaseModel):
    """When a task under `placement.capacity: auto` bursts to serverless pods (README,
    "Serverless burst"). Nodes first: a region whose nodes have room never bursts an
    auto task. One whose nodes are full bursts it when its pools are at their ceiling
    (no node is coming), or when a new node would take longer to boot than
    `max_wait_for_nodes_seconds` (the most a task is worth waiting for nodes)."""

    max_wait_for_nodes_seconds: float = Field(60.0, ge=0)
    # Subtracted from a burst candidate's score, times its cost term in [0, 1] (the
    # serverless price's share of serverless + node-share price; 1 when nodes' price is
    # unknown): a burst region loses to a region with room on its nodes, other things
    # equal, by up to this much.
    cost_weight: float = Field(0.15, ge=0)


class FailoverSettings(BaseModel):
    # A region is down once unreachable / not polled for longer than this.
    region_grace_seconds: float = Field(10.0, gt=0)
    # How often the central service probes each region's health.
    health_interval_seconds: float = Field(2.0, gt=0)
    # A probe no unit worker took up in time means a dead worker (down after the grace
    # period) unless Temporal lists a poll of the region's queues this recent: then the
    # worker is alive and busy (a starved process, every probe slot taken), and the
    # region is degraded, not down. Moving a busy worker's tasks would leave each of
    # their Jobs fenced and running in a region nobody can delete from. 0: no such check.
    worker_busy_seconds: float = Field(5.0, ge=0)
    # API error rate above which a region is degraded / down.
    degraded_error_rate: float = Field(0.2, ge=0, le=1)
    down_error_rate: float = Field(0.8, ge=0, le=1)
    # A region whose API takes this long (smoothed, per probe) is degraded: slow, not dead.
    degraded_latency_ms: float = Field(1000.0, gt=0)
    # A health probe's time to answer, the region API's replies included. An API that
    # does not answer within it counts as unreachable (down after the grace period).
    probe_api_timeout_seconds: float = Field(5.0, gt=1)
    # A Job whose pod stays unschedulable this long is moved.
    unschedulable_seconds: float = Field(60.0, gt=0)
    # A create that failed without an answer (it ran out of time; its request may still
    # land) is sent again to the same region for this long, while the region is not
    # down, before the task moves: the resend finds the Job if the first one landed, so
    # the task never has a late Job in one region and a new one in another.
    create_resend_seconds: float = Field(120.0, ge=0)
    # A resident channel silent this long is suspect (verified through the API).
    resident_heartbeat_timeout_seconds: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _slow_before_unreachable(self) -> FailoverSettings:
        # Otherwise a slow API would never read degraded: it would go straight from
        # up to unreachable (and down), the move this setting exists to avoid.
        budget_ms = probe_api_budget_seconds(self.probe_api_timeout_seconds) * 1000
        if self.degraded_latency_ms >= budget_ms:
            raise ValueError(
                f"degraded_latency_ms ({self.degraded_latency_ms:g}) must be below the "
                f"probe's API budget, {budget_ms:g} ms (probe_api_timeout_seconds "
                f"{self.probe_api_timeout_seconds:g} less a reserve of "
                f"{PROBE_REPLY_RESERVE_SECONDS:g} s)"
            )
        return self


class SweepSettings(BaseModel):
    running_task_interval_seconds: float = Field(15.0, gt=0)
    job_interval_seconds: float = Field(20.0, gt=0)
    page_size: int = Field(500, ge=1, le=5000)
    # Start the workflow of a task left SCHEDULING without one for this long.
    unstarted_after_seconds: float = Field(30.0, gt=0)


class MetricsSettings(BaseModel):
    """Where each process serves Prometheus `/metrics` (`MERIDIAN_METRICS__*`).

    One port per process role, 0 = no metrics server (the default outside `meridian up`,
    so that two processes on one machine never fight over a port nobody asked for). The
    Temporal SDK's own metrics are served on the same `/metrics` (meridian/observability).
    """

    # The address the metrics servers bind. Loopback by default: in a cluster, set
    # 0.0.0.0 so that Prometheus can scrape the pod.
    host: str = "127.0.0.1"
    api_port: int = Field(0, ge=0, le=65535)
    central_port: int = Field(0, ge=0, le=65535)
    unit_port: int = Field(0, ge=0, le=65535)
    # `meridian up` only: a role whose port is 0 gets the first free port from here on
    # (0: `meridian up` serves no metrics).
    base_port: int = Field(9180, ge=0, le=65535)


class WorkerSettings(BaseModel):
    """What each worker holds in memory and runs at once (workers/central.py, unit.py).

    Measured with `python -m bench --scale` (BENCHMARKS.md, "Live scale"). A live
    TaskWorkflow that is only following its Job wakes rarely: on a signal about its Job,
    and on its backstop, whose period grows 4-fold up to `status_backstop_max_seconds`
    (1,800 s). So the cache needs to hold the tasks that are busy now (starting, moving,
    ending), not the whole live set: a task evicted while it waits is replayed from its
    history (tens of events) when it next wakes. Each cached TaskWorkflow costs the
    central worker 0.05-0.08 MiB of RSS at the margin (`python -m bench.workflow_memory
    --matrix --workflows 600`: 196 MiB with 250 cached, 215 with 500, 219 with all 600;
    the older 0.2 MiB estimate at 2,000 live tasks counted more than the cache), so 500
    cached take ~40 MiB over the worker's idle ~170 MiB. The rest of its ~350 MiB at
    10,000 live tasks is its main heap and glibc's thread arenas, not the cache
    (`python -m bench.rss_breakdown PID`): a smaller cache would buy little memory for
    more replays (~25 ms of CPU each). 500 hold a few seconds of starts or a region's
    move.
    """

    # Run the central worker's workflows in the SDK's sandbox, which checks each run for
    # non-deterministic calls at run time. Off by default for its CPU: every activation
    # in the sandbox runs its payload conversions through the sandbox's importer, and
    # a replay (a workflow evicted from the cache waking up) builds a sandbox first; a
    # TaskWorkflow history of 90 events replays in 25 ms of CPU plain against 45 ms
    # sandboxed (BENCHMARKS.md, issue 16). The guard stays where it catches mistakes
    # before production: the test suite runs every workflow sandboxed (tests/conftest.py
    # sets MERIDIAN_WORKERS__CENTRAL_SANDBOX) and the replay tests replay the recorded
    # histories in the sandbox. Turn it on to run a new workflow version sandboxed.
    central_sandbox: bool = False
    # Sticky cache of the central worker, in workflows (0 disables stickiness).
    central_cached_workflows: int = Field(500, ge=0)
    # Workflow tasks the central worker runs at once (the SDK's default is 100). They are
    # CPU-bound Python on one event loop: more in flight adds queueing, not throughput.
    central_workflow_tasks: int = Field(100, ge=1)
    # Activities at once, and the threads they run on (store writes, placement).
    central_activities: int = Field(64, ge=1)
    # Per region hosted: Job activities at once, and their threads (half of it: most
    # are Kubernetes calls that wait on the network, a few hold a thread each).
    unit_activities_per_region: int = Field(32, ge=1)
    unit_threads_per_region: int = Field(16, ge=1)


class ChannelSettings(BaseModel):
    """A unit worker's watches, per region: the memory bounds of its Job watch
    (meridian/channels/watch.py), which bound what a long-lived worker holds whatever the
    number of Jobs it has seen, and its pod cache (meridian/regions/pod_cache.py).
    """

    # Live Jobs whose last reported state the watch remembers, to report each change
    # once; the least recently changed is forgotten first. Ended and deleted Jobs are
    # forgotten anyway, so this only has to exceed the Jobs a region runs at once (a
    # forgotten Job's next change is still reported; a duplicate costs one signal).
    watch_seen_jobs: int = Field(20_000, ge=1)
    # Jobs with news waiting between the watch's reader thread and the event loop. A
    # Job's newer event replaces its older one, so this bounds Jobs, not events; when
    # it is reached the reader waits (and the API connection with it).
    watch_pending_jobs: int = Field(1_000, ge=1)
    # The health probe lists a region's nodes and reads its live pods from a cache a
    # watch keeps; off: it lists every live pod each probe (MERIDIAN_CHANNELS__POD_CACHE).
    pod_cache: bool = True
    # A cache whose watch has been broken this long is not trusted: probes list pods
    # again until it has re-listed. Above the watch's capped backoff (4 s), so one
    # reconnect does not throw probes back on the full list.
    pod_cache_stale_seconds: float = Field(5.0, gt=0)


class ScalingSettings(BaseModel):
    tick_seconds: float = Field(10.0, gt=0)
    high_water: float = Field(0.80, gt=0, le=1)
    low_water: float = Field(0.40, ge=0, lt=1)
    scale_up_cooldown_seconds: float = Field(60.0, ge=0)
    scale_down_window_seconds: float = Field(600.0, ge=0)
    scale_down_cooldown_seconds: float = Field(300.0, ge=0)


class NetworkProbeSettings(BaseModel):
    """Where the unit workers' network samples (RTT, loss to data sources) come from."""

    # auto: kubesim's simulated paths when its control URL resolves, else tcp;
    # tcp: time TCP connects to each data source's endpoint; off: no samples (placement
    # estimates every path from distance).
    mode: Literal["auto", "kubesim", "tcp", "off"] = "auto"
    # A tcp round per interval; the 2 s health probes in between report nothing new.
    interval_seconds: float = Field(30.0, gt=0)
    attempts: int = Field(3, ge=1, le=10)
    timeout_seconds: float = Field(1.0, gt=0, le=10)
    # Data-source keys ("aws:us-east-1") to probe; empty: every region's own location in
    # the regions file.
    targets: list[str] = Field(default_factory=list)
    # Key -> "host:port", over the templates (the only way to probe azure, gcp and idc).
    endpoints: dict[str, str] = Field(default_factory=dict)
    # Provider -> "host:port" with {region}, over the defaults for aws, alibaba, tencent,
    # huawei and baidu (meridian/probing.py); "" switches a default off.
    templates: dict[str, str] = Field(default_factory=dict)

    @field_validator("targets")
    @classmethod
    def _target_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            parse_target_key(key)
        return value

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: dict[str, str]) -> dict[str, str]:
        for key, endpoint in value.items():
            parse_target_key(key)
            parse_host_port(endpoint)
        return value

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for provider, template in value.items():
            parse_target_key(f"{provider}:region")
            if template:
                parse_host_port(template.replace("{region}", "region"))
        return value


class DatabaseTLS(BaseModel):
    """TLS to MySQL/MariaDB (`MERIDIAN_DATABASE__TLS__*`); SQLite ignores it."""

    # Require TLS (on whenever a file below is given); never falls back to plain text.
    enabled: bool = False
    # The CA that signed the server's certificate (PEM). Empty: the system's CAs.
    ca: Path | None = None
    # A client certificate and its key (PEM), for servers that require one.
    cert: Path | None = None
    key: Path | None = None
    # Check the server's certificate chain and that it names the host in the URL.
    verify: bool = True

    @property
    def required(self) -> bool:
        return self.enabled or any(p is not None for p in (self.ca, self.cert, self.key))


class DatabaseSettings(BaseModel):
    """How Meridian talks to MySQL/MariaDB (`MERIDIAN_DATABASE__*`); the URL is
    `database_url`."""

    # A server that does not answer within these fails the call instead of hanging a
    # worker thread: connecting, and then each read or write on the connection. A row
    # lock waited on for longer than the read timeout also ends so (InnoDB's own lock
    # wait timeout, 50 s by default, would answer later).
    connect_timeout_seconds: float = Field(10.0, gt=0)
    read_timeout_seconds: float = Field(30.0, gt=0)
    tls: DatabaseTLS = Field(default_factory=DatabaseTLS)


def _any_registry() -> dict[str, list[str]]:
    return {"*": []}


class PolicySettings(BaseModel):
    """What a task may ask for, and the limits every task pod runs under.

    The first four are checked on submit, modify and the placement dry run (each breach
    a 422 naming the field, meridian/tasks/policy.py); the rest shape the Job
    (meridian/kube/jobs.py), read by the unit workers.
    """

    # Business unit -> image prefixes its tasks may use ("registry.example.com/ads/");
    # "*" is every unit without an entry of its own; an empty list allows any image.
    # Images are compared in their full form: "busybox" is docker.io/library/busybox.
    image_registries: dict[str, list[str]] = Field(default_factory=_any_registry)
    # The most cpu and memory one task may request (None: only the largest node bounds it).
    max_cpu: str | None = None
    max_memory: str | None = None
    # Annotation prefixes refused on top of the built-in ones (meridian.io/, AppArmor's
    # and seccomp's pod overrides).
    denied_annotation_prefixes: list[str] = Field(default_factory=list)
    # A Job's activeDeadlineSeconds when the task gives no job.timeout_seconds, per kind:
    # a batch task is stopped (FAILED, DeadlineExceeded) after a day; a resident task
    # runs until stopped.
    batch_timeout_seconds: int = Field(24 * 3600, ge=1)
    resident_timeout_seconds: int | None = Field(None, ge=1)
    # A finished Job is deleted after this long: a safety net, the sweeps reconcile first.
    finished_job_ttl_seconds: int = Field(3600, ge=0)

    @field_validator("max_cpu")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        if value is not None and parse_cpu_millis(value) <= 0:
            raise ValueError("max_cpu must be a positive Kubernetes quantity, e.g. 16")
        return value

    @field_validator("max_memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and parse_memory_bytes(value) <= 0:
            raise ValueError("max_memory must be a positive Kubernetes quantity, e.g. 64Gi")
        return value

    def registries_for(self, business_unit: str) -> list[str]:
        return self.image_registries.get(business_unit, self.image_registries.get("*", []))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MERIDIAN_",
        env_nested_delimiter="__",
        extra="ignore",
        # A validation error quotes no input: the bad value may be (or sit beside) a
        # secret, such as the database URL's password or a codec key.
        hide_input_in_errors=True,
    )

    state_dir: Path = DEFAULT_STATE_DIR
    # Empty means: SQLite file `<state_dir>/meridian.db`. A secret (its password): read
    # it through `resolved_database_url`; printing the settings shows `**********`.
    database_url: SecretStr = SecretStr("")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    central_task_queue: str = "meridian.central"
    # The region monitor, the sweeps and the region control loops: a queue (and worker
    # slots) of their own, so that a burst of task workflows — a thousand tasks leaving a
    # failed region — never queues the monitor's rounds behind it. Empty:
    # `<central_task_queue>.control`.
    control_task_queue: str = ""
    regions_file: Path = REPO_ROOT / "infra" / "regions" / "dev.yaml"
    # Extra region catalog files merged over the shipped one (IDC sites, new cloud
    # regions): same format as meridian/data/catalog.yaml; later files win.
    catalog_files: list[Path] = Field(default_factory=list)
    # Empty means: `<state_dir>/kubeconfig` written by kubesim.
    kubeconfig: str = ""
    # kubesim's control API (simulated network probes and node pools); empty: read
    # `kubesim.json` beside the kubeconfig when it exists.
    kubesim_control_url: str = ""
    kubernetes_namespace: str = "meridian"
    # Task Jobs run in `<prefix><business unit>` (slugged, hashed where needed) in each
    # region, never in `kubernetes_namespace` (meridian/kube/namespaces.py).
    tasks_namespace_prefix: str = Field(
        "meridian-", max_length=40, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*-?$"
    )
    api_host: str = "127.0.0.1"
    # `meridian worker` serves /healthz and /readyz on this port (all interfaces: the
    # kubelet probes the pod's IP) for the deployments' probes. 0: none, as under
    # `meridian up`, which runs several workers on one machine.
    worker_health_port: int = Field(0, ge=0, le=65535)
    api_port: int = Field(8000, ge=1, le=65535)
    # How long the API keeps an idle client connection open. Longer than the idle
    # timeout of whatever pools connections to it (load balancers: AWS ALB 60 s; httpx
    # and most clients: 5 s): the side that closes first must be the client, or a
    # request sent as the server closes fails with a reset connection.
    api_keep_alive_seconds: int = Field(75, gt=0)
    # The largest request body the API reads (1 MiB); a larger one is answered 413 and
    # never stored. Well under Temporal's default payload limit (2 MB), so that every task the API
    # accepts can also be started.
    api_max_body_bytes: int = Field(1 << 20, gt=0)
    # Logs: plain text for a terminal (`meridian up`), or one JSON object per line for a
    # log pipeline (MERIDIAN_LOG_FORMAT=json, as the manifests set it).
    log_format: Literal["text", "json"] = "text"
    temporal_port: int = Field(7233, ge=1, le=65535)
    temporal_ui_port: int = Field(8233, ge=1, le=65535)
    kubesim_base_port: int = Field(18100, ge=1, le=65535)
    # How long the workflow waits for a signal before it reads the Job itself.
    status_backstop_seconds: float = Field(30.0, gt=0)
    # ... growing 4-fold while the Job runs on unchanged, up to this. The sweeps cover a
    # long Job; the backstop is the last resort when signals and sweeps both miss. A
    # fixed 30 s period costs 333 Job reads a second at 10,000 live tasks, and doubling
    # to 600 s still saturated this machine's two cores while 10,000 tasks started.
    status_backstop_max_seconds: float = Field(1800.0, gt=0)
    # Resident tasks continue-as-new after this many history events.
    history_event_limit: int = Field(2000, ge=100)
    # A RUNNING task whose backstop read finds its Job running on continues as new once
    # its history is longer than this. A task woken while out of the central worker's
    # cache (a signal, its backstop, a region's move) is replayed from its whole history
    # first: about 25 ms of CPU for 90 events. Measured: a task has about 30 events when
    # its first backstop read answers (40 with the namespace step), and a settled run
    # starts with 5 and grows about 11 per backstop; so at 25 a long task rolls over at
    # its first backstop and then every third one (1.5 h at the 30 min ceiling). None:
    # only `history_event_limit` rolls a history over.
    settled_history_events: int | None = Field(25, ge=10)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    placement: PlacementWeights = Field(default_factory=PlacementWeights)
    burst: BurstSettings = Field(default_factory=BurstSettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    sweeps: SweepSettings = Field(default_factory=SweepSettings)
    scaling: ScalingSettings = Field(default_factory=ScalingSettings)
    network_probe: NetworkProbeSettings = Field(default_factory=NetworkProbeSettings)
    channels: ChannelSettings = Field(default_factory=ChannelSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    # Per business unit: a default and overrides (meridian/tenancy/quotas.py).
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(("sqlite", "mysql+pymysql", "mariadb+pymysql")):
            raise ValueError("database_url must be sqlite:///... or mysql+pymysql://...")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        url = self.database_url.get_secret_value()
        return url or f"sqlite:///{(self.state_dir / 'meridian.db').resolve()}"

    @property
    def resolved_control_task_queue(self) -> str:
        return self.control_task_queue or f"{self.central_task_queue}.control"

    @property
    def resolved_kubeconfig(self) -> Path:
        return Path(self.kubeconfig) if self.kubeconfig else self.state_dir / "kubeconfig"

    @property
    def resolved_kubesim_control_url(self) -> str | None:
        if self.kubesim_control_url:
            return self.kubesim_control_url
        info = self.resolved_kubeconfig.parent / "kubesim.json"
        if info.exists():
            import json

            url = json.loads(info.read_text()).get("control_url")
            return str(url) if url else None
        return None

    @property
    def resolved_network_probe_mode(self) -> Literal["kubesim", "tcp", "off"]:
        mode = self.network_probe.mode
        if mode == "auto":
            return "kubesim" if self.resolved_kubesim_control_url else "tcp"
        return mode


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by MERIDIAN_CONFIG (the only env read outside BaseSettings)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        import os

        path = os.environ.get("MERIDIAN_CONFIG")
        if not path:
            return {}
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        return data
