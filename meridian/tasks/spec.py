"""The task model shared by the API, the workflows, the activities and the store.

Everything here is a pydantic model so that it travels through Temporal with
`pydantic_data_converter` and through FastAPI with the same validation. Validation
errors name the field, which FastAPI turns into a 422 with the field's path.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sized
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, to_jsonable_python

from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.providers import Provider

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# What a Job name may not hold (job_name_for turns each run of it into one "-").
NOT_IN_LABEL = re.compile(r"[^a-z0-9-]+")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_SUBDOMAIN_MAX = 253
# A key of a Secret's data, as Kubernetes' IsConfigMapKey accepts it.
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# Label keys/values as Kubernetes accepts them (prefix optional).
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

# A public task id is a DNS-1123 label of 63 characters at most. With its business unit
# it makes the task key (meridian/tasks/keys.py): the workflow id, the value of the Jobs'
# task-id label (Kubernetes' label limit, 63) and the start of Job names (job_name_for).
TASK_ID_MAX = 63
JOB_NAME_MAX = 63  # a Job's name is also the value of its pods' job-name label

# Bounds of a task body's lists and maps and of their items. `limit_errors` checks them on
# submit, modify and dry run (a 422 naming the field); the model does not, so specs stored
# and workflow inputs recorded before a bound existed still load. They keep any accepted
# spec well within the API's body limit, Temporal's payload limit and Kubernetes' own.
COMMAND_ITEMS_MAX = 256  # job.command and job.args, each
COMMAND_ITEM_CHARS_MAX = 32 * 1024  # one item of command or args
ENV_ENTRIES_MAX = 256
ENV_NAME_CHARS_MAX = 256
ENV_VALUE_CHARS_MAX = 32 * 1024
LABELS_MAX = 64  # keys and values are bounded by Kubernetes' label syntax (_check_labels)
ANNOTATIONS_MAX = 64
ANNOTATION_KEY_CHARS_MAX = 317  # a qualified name: a 253-character prefix, "/", 63 characters
ANNOTATION_VALUE_CHARS_MAX = 64 * 1024
ANNOTATIONS_TOTAL_CHARS_MAX = 256 * 1024  # Kubernetes' limit on an object's annotations
PLACEMENT_NAMES_MAX = 64  # placement.providers, placement.regions, and each preference tier
PREFERENCE_TIERS_MAX = 16
PLACEMENT_NAME_CHARS_MAX = 64  # a region or provider name in placement
# job.timeout_seconds: a year at most (Kubernetes takes any int64; a bound keeps it sane).
TIMEOUT_SECONDS_MAX = 366 * 24 * 3600
RUN_AS_USER_MAX = 2**31 - 1  # Linux uids Kubernetes accepts


class TaskKind(StrEnum):
    BATCH = "batch"
    RESIDENT = "resident"


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    SCHEDULING = "SCHEDULING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.STOPPED})
ACTIVE_STATUSES = frozenset({TaskStatus.SCHEDULING, TaskStatus.RUNNING})


class FailoverPolicy(StrEnum):
    AUTO = "auto"  # move to a healthy region on infrastructure failure
    NEVER = "never"  # wait for the region to come back (tasks that must not run twice)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSource(_Strict):
    provider: Provider
    region: Annotated[str, Field(min_length=1, max_length=64)]

    @property
    def key(self) -> str:
        """`<provider>:<region>`, the way network paths and the catalog name it."""
        return f"{self.provider.value}:{self.region}"


def _quantity_text(value: Any) -> Any:
    """A JSON number as Kubernetes accepts it ("cpu": 1, "memory": 1073741824) becomes the
    plain decimal text of the same number ("1", "0.5", "1073741824"); strings are kept
    as given. So `"cpu": 1` and `"cpu": "1"` are the same spec (and the same spec hash),
    and specs stored before numbers were accepted validate, dump and hash unchanged.
    """
    if isinstance(value, bool):
        raise ValueError("must be a Kubernetes quantity (e.g. 500m, 2, 256Mi), not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity")
        # repr is the shortest text that reads back as this float: 0.5 -> "0.5", 1.0 -> "1".
        return format(Decimal(repr(value)).normalize(), "f")
    return value


_QUANTITY_INPUT = str | int | float
CpuQuantity = Annotated[
    str, BeforeValidator(_quantity_text, json_schema_input_type=_QUANTITY_INPUT)
]
MemoryQuantity = Annotated[
    str, BeforeValidator(_quantity_text, json_schema_input_type=_QUANTITY_INPUT)
]


class Resources(_Strict):
    cpu: CpuQuantity = "500m"
    memory: MemoryQuantity = "256Mi"

    @field_validator("cpu")
    @classmethod
    def _cpu_is_quantity(cls, value: str) -> str:
        if parse_cpu_millis(value) <= 0:
            raise ValueError("cpu must be a positive Kubernetes quantity, e.g. 500m or 2")
        return value

    @field_validator("memory")
    @classmethod
    def _memory_is_quantity(cls, value: str) -> str:
        if parse_memory_bytes(value) <= 0:
            raise ValueError("memory must be a positive Kubernetes quantity, e.g. 256Mi or 2Gi")
        return value

    @property
    def cpu_millis(self) -> int:
        return parse_cpu_millis(self.cpu)

    @property
    def memory_bytes(self) -> int:
        return parse_memory_bytes(self.memory)


class SecretKeyRef(_Strict):
    """One key of a Kubernetes Secret in the task's namespace, in the region it runs in."""

    name: str
    key: str

    @field_validator("name")
    @classmethod
    def _name_is_subdomain(cls, value: str) -> str:
        if len(value) > DNS1123_SUBDOMAIN_MAX or not DNS1123_SUBDOMAIN.match(value):
            raise ValueError(
                "a Secret's name must be a DNS-1123 subdomain: at most 253 lowercase letters, "
                "digits, '-' and '.', starting and ending with a letter or digit"
            )
        return value

    @field_validator("key")
    @classmethod
    def _key_is_data_key(cls, value: str) -> str:
        if len(value) > DNS1123_SUBDOMAIN_MAX or not SECRET_KEY.match(value):
            raise ValueError("a Secret's key must be at most 253 letters, digits, '-', '_' and '.'")
        if value in (".", "..") or value.startswith(".."):
            raise ValueError("a Secret's key must not be '.' or '..' nor start with '..'")
        return value


class SecretEnv(_Strict):
    """An env value read from a Secret when the pod starts: only this reference is ever
    stored, sent through Temporal or shown, never the value."""

    secret_ref: SecretKeyRef


_ENV_LITERAL: TypeAdapter[str] = TypeAdapter(str)


def _env_value(value: Any) -> Any:
    """A literal (as before: anything else than a string is refused as a string), or an
    object, which must be a secret reference (its errors name the reference's field)."""
    if isinstance(value, dict):
        return SecretEnv.model_validate(value)
    if isinstance(value, SecretEnv):
        return value
    return _ENV_LITERAL.validate_python(value)


EnvValue = Annotated[
    str | SecretEnv, BeforeValidator(_env_value, json_schema_input_type=str | SecretEnv)
]


class EnvVarSource(_Strict):
    secretKeyRef: SecretKeyRef  # noqa: N815 - Kubernetes' own spelling


class EnvVarEntry(_Strict):
    """One entry of the Kubernetes list form of env: a literal `value` or a
    `valueFrom.secretKeyRef`. It documents the accepted input (OpenAPI); `_env_from_list`
    does the checking, naming the entry."""

    name: str
    value: str = ""
    valueFrom: EnvVarSource | None = None  # noqa: N815 - Kubernetes' own spelling


def _env_from_list(value: Any) -> Any:
    """Accept Kubernetes' `[{"name": "A", "value": "1"}, ...]` as well as `{"A": "1"}`.

    The list is normalised to the map (the only form stored): a missing or null value is
    "" as in Kubernetes; `valueFrom.secretKeyRef` becomes `{"secret_ref": ...}`; a name
    given twice, another `valueFrom` source, or a value and a valueFrom together is an
    error.
    """
    if not isinstance(value, list):
        return value
    env: dict[str, Any] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"env[{i}] must be an object with a name and a value")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"env[{i}] needs a name")
        unknown = sorted(str(k) for k in item if k not in ("name", "value", "valueFrom"))
        if unknown:
            raise ValueError(
                f"env[{i}] ({name}): unknown key(s) {', '.join(unknown)}; "
                "an entry has a name and a value or a valueFrom.secretKeyRef"
            )
        if name in env:
            raise ValueError(f"env name {name!r} is given more than once")
        if item.get("valueFrom") is not None:
            env[name] = _secret_from_entry(i, name, item)
            continue
        literal = item.get("value")
        env[name] = "" if literal is None else literal
    return env


def _secret_from_entry(i: int, name: str, item: dict[str, Any]) -> dict[str, Any]:
    if item.get("value") not in (None, ""):
        raise ValueError(f"env[{i}] ({name}): give a value or a valueFrom, not both")
    source = item["valueFrom"]
    if not isinstance(source, dict) or set(source) != {"secretKeyRef"}:
        given = ", ".join(sorted(map(str, source))) if isinstance(source, dict) else source
        raise ValueError(
            f"env[{i}] ({name}): valueFrom supports only secretKeyRef (a Secret's key), not {given}"
        )
    return {"secret_ref": source["secretKeyRef"]}


_ENV_INPUT = dict[str, str | SecretEnv] | list[EnvVarEntry]
EnvMap = Annotated[
    dict[str, EnvValue], BeforeValidator(_env_from_list, json_schema_input_type=_ENV_INPUT)
]


def _unset(value: Any) -> bool:
    return value is None


class JobSpec(_Strict):
    image: Annotated[str, Field(min_length=1, max_length=512)]
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: EnvMap = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    # Copied onto the pod template (kubesim reads kubesim.io/duration, exit-code, resident).
    annotations: dict[str, str] = Field(default_factory=dict)
    status_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    # Left out of dumps when not given, so that specs stored before these fields existed
    # dump and hash (store.spec_hash: idempotent resubmits) exactly as they did.
    timeout_seconds: Annotated[
        int | None,
        Field(
            ge=1,
            le=TIMEOUT_SECONDS_MAX,
            exclude_if=_unset,
            description="The Job's activeDeadlineSeconds; when not given, the default of "
            "the task's kind (settings: policy.batch_timeout_seconds, "
            "policy.resident_timeout_seconds).",
        ),
    ] = None
    run_as_user: Annotated[
        int | None,
        Field(
            ge=1,
            le=RUN_AS_USER_MAX,
            exclude_if=_unset,
            description="The uid the container runs as, for images whose default user is "
            "root or a name: task pods must run as non-root.",
        ),
    ] = None

    @field_validator("image")
    @classmethod
    def _image_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("image must not be empty")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str | SecretEnv]) -> dict[str, str | SecretEnv]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"env name {name!r} is not a valid environment variable name")
            if name.startswith("MERIDIAN_"):
                raise ValueError(f"env name {name!r}: the MERIDIAN_ prefix is reserved")
        return value


# `backoff` is accepted on input as another name of `backoff_seconds` (always dumped so).
_BACKOFF_NAMES = AliasChoices("backoff_seconds", "backoff")
_BACKOFF_DOC = "Seconds before the first retry; `backoff` is accepted as another name."


def _one_backoff(data: Any) -> Any:
    if isinstance(data, dict) and "backoff" in data and "backoff_seconds" in data:
        raise ValueError("give backoff_seconds or backoff (the same field), not both")
    return data


class RetryPolicy(_Strict):
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    backoff_seconds: Annotated[
        float,
        Field(ge=0, le=3600, validation_alias=_BACKOFF_NAMES, description=_BACKOFF_DOC),
    ] = 2.0
    backoff_multiplier: Annotated[float, Field(ge=1, le=10)] = 2.0
    max_backoff_seconds: Annotated[float, Field(ge=0, le=86400)] = 300.0

    @model_validator(mode="before")
    @classmethod
    def _backoff_once(cls, data: Any) -> Any:
        return _one_backoff(data)

    def backoff_for(self, failed_attempts: int) -> float:
        """Seconds to wait before the attempt after `failed_attempts` application failures."""
        delay = self.backoff_seconds * self.backoff_multiplier ** max(0, failed_attempts - 1)
        return float(min(delay, self.max_backoff_seconds))


class Capacity(StrEnum):
    """Which kind of room a task may run in (`placement.capacity`)."""

    NODES = "nodes"  # the region's node pools only
    SERVERLESS = "serverless"  # the region's serverless pods (meridian.serverless)
    AUTO = "auto"  # nodes first; Meridian bursts to serverless when nodes cannot keep up


def _auto(value: Any) -> bool:
    return value is Capacity.AUTO


_CAPACITY_DOC = (
    "nodes, serverless or auto (the default): auto runs on the region's nodes and bursts "
    "to its serverless pods when the nodes cannot keep up. A resident task never bursts "
    "unless it asks for serverless: under auto it stays on nodes."
)


class PlacementConstraints(_Strict):
    """What the submitter allows or prefers. All fields optional.

    `region` pins the task to one Meridian region: it runs there or stays unplaced.
    `preferences` is an ordered list of tiers; each tier lists region names or
    provider names, and the first tier with an eligible region wins ("JP first, then SG
    or US": [["aws-ap-northeast-1"], ["gcp-asia-southeast1", "aws-us-west-2"]]).
    `capacity` chooses nodes, serverless pods or either (see `capacity_for`).
    """

    region: str | None = None
    providers: list[Provider] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    preferences: list[list[str]] = Field(default_factory=list)
    # Left out of dumps when auto, so that specs stored before it existed dump and hash
    # (store.spec_hash: idempotent resubmits) exactly as they did.
    capacity: Annotated[Capacity, Field(exclude_if=_auto, description=_CAPACITY_DOC)] = (
        Capacity.AUTO
    )


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not LABEL_KEY.match(key) or len(key) > 253:
            raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
        if not LABEL_VALUE.match(val) or len(val) > 63:
            raise ValueError(f"label value {val!r} is not a valid Kubernetes label value")
        if key.startswith("meridian.io/"):
            raise ValueError(f"label key {key!r}: the meridian.io/ prefix is reserved")
    return value


class TaskSpec(_Strict):
    """What a task is: everything the submitter said, and nothing Meridian decided."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    business_unit: Annotated[str, Field(min_length=1, max_length=63)]
    kind: TaskKind = TaskKind.BATCH
    data_source: DataSource
    job: JobSpec
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    labels: dict[str, str] = Field(default_factory=dict)
    placement: PlacementConstraints = Field(default_factory=PlacementConstraints)
    failover: FailoverPolicy = FailoverPolicy.AUTO

    @field_validator("business_unit")
    @classmethod
    def _bu_is_label_value(cls, value: str) -> str:
        if not LABEL_VALUE.match(value):
            raise ValueError("business_unit must be a valid Kubernetes label value")
        return value

    @field_validator("labels")
    @classmethod
    def _labels_valid(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)

    @model_validator(mode="after")
    def _status_port_only_for_resident(self) -> TaskSpec:
        if self.job.status_port is not None and self.kind is not TaskKind.RESIDENT:
            # A ValidationError raised here keeps its loc (nested under any parent's), so
            # the 422 names job.status_port rather than the whole body.
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "value_error",
                            "Value error, status_port is only allowed for resident tasks "
                            "(kind is {kind})",
                            {"kind": self.kind.value},
                        ),
                        loc=("job", "status_port"),
                        input=self.job.status_port,
                    )
                ],
            )
        return self


def capacity_for(spec: TaskSpec) -> Capacity:
    """The capacity a task may use. A resident task under `auto` stays on nodes: it runs
    for long, where serverless pods cost more per hour than the node share they replace,
    and moving a live service onto a virtual node is not a decision to make for it."""
    capacity = spec.placement.capacity
    if spec.kind is TaskKind.RESIDENT and capacity is Capacity.AUTO:
        return Capacity.NODES
    return capacity


Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldError:
    """One bad field of a task body: `loc` is its path in the body, as pydantic gives it."""

    loc: Loc
    msg: str
    type: str


def limit_errors(spec: TaskSpec) -> list[FieldError]:
    """Every list, map or item of `spec` past its bound (the *_MAX constants above)."""
    job, placement = spec.job, spec.placement
    errors: list[FieldError] = []
    for field in ("command", "args"):
        items: list[str] = getattr(job, field)
        errors += _too_many(("job", field), items, COMMAND_ITEMS_MAX)
        for i, item in enumerate(items):
            errors += _too_long(("job", field, i), item, COMMAND_ITEM_CHARS_MAX)
    errors += _too_many(("job", "env"), job.env, ENV_ENTRIES_MAX)
    for name, value in job.env.items():
        errors += _too_long(("job", "env"), name, ENV_NAME_CHARS_MAX, what="a name")
        if isinstance(value, str):  # a secret reference is bounded by its own checks
            loc: Loc = ("job", "env", name[:ENV_NAME_CHARS_MAX])
            errors += _too_long(loc, value, ENV_VALUE_CHARS_MAX)
    errors += _too_many(("job", "annotations"), job.annotations, ANNOTATIONS_MAX)
    for key, value in job.annotations.items():
        errors += _too_long(("job", "annotations"), key, ANNOTATION_KEY_CHARS_MAX, what="a key")
        errors += _too_long(
            ("job", "annotations", key[:ANNOTATION_KEY_CHARS_MAX]),
            value,
            ANNOTATION_VALUE_CHARS_MAX,
        )
    total = sum(len(k) + len(v) for k, v in job.annotations.items())
    if total > ANNOTATIONS_TOTAL_CHARS_MAX:
        errors.append(
            FieldError(
                loc=("job", "annotations"),
                msg=f"keys and values together must be at most "
                f"{ANNOTATIONS_TOTAL_CHARS_MAX} characters, not {total}",
                type="too_long",
            )
        )
    errors += _too_many(("labels",), spec.labels, LABELS_MAX)
    if placement.region is not None:
        errors += _too_long(("placement", "region"), placement.region, PLACEMENT_NAME_CHARS_MAX)
    errors += _too_many(("placement", "providers"), placement.providers, PLACEMENT_NAMES_MAX)
    errors += _too_many(("placement", "regions"), placement.regions, PLACEMENT_NAMES_MAX)
    for i, name in enumerate(placement.regions):
        errors += _too_long(("placement", "regions", i), name, PLACEMENT_NAME_CHARS_MAX)
    errors += _too_many(("placement", "preferences"), placement.preferences, PREFERENCE_TIERS_MAX)
    for i, tier in enumerate(placement.preferences):
        errors += _too_many(("placement", "preferences", i), tier, PLACEMENT_NAMES_MAX)
        for j, name in enumerate(tier):
            errors += _too_long(("placement", "preferences", i, j), name, PLACEMENT_NAME_CHARS_MAX)
    return errors


def _too_many(loc: Loc, items: Sized, most: int) -> list[FieldError]:
    if len(items) <= most:
        return []
    msg = f"at most {most} entries are allowed, not {len(items)}"
    return [FieldError(loc=loc, msg=msg, type="too_long")]


def _too_long(loc: Loc, text: str, most: int, what: str = "the value") -> list[FieldError]:
    if len(text) <= most:
        return []
    msg = f"{what} must be at most {most} characters, not {len(text)}"
    return [FieldError(loc=loc, msg=msg, type="string_too_long")]


def validate_task_id(value: str) -> str:
    if len(value) > TASK_ID_MAX:
        raise ValueError(f"id must be at most {TASK_ID_MAX} characters")
    if not DNS1123_LABEL.match(value):
        raise ValueError(
            "id must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def job_name_for(task_id: str, attempt: int) -> str:
    """Deterministic Job name: a retried create of the same attempt meets 409, not a twin.

    `task_id` is the task's key (meridian/tasks/keys.py). `<key>-a<attempt>` when the key
    is a DNS-1123 label and the name fits in 63 characters (tasks from before ids were
    scoped per unit: their names stay as they were). Otherwise the key is made a label
    (lowercase, `-` for anything else, such as the dot after the business unit), cut to
    fit, and followed by a hash of the whole key: two keys that read alike once made a
    label, or share a long prefix, still get distinct names. Nothing parses the name
    back: the Job's labels carry the task key and attempt.
    """
    suffix = f"-a{attempt}"
    name = f"{task_id}{suffix}"
    if len(name) <= JOB_NAME_MAX and DNS1123_LABEL.match(task_id):
        return name
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:8]
    keep = JOB_NAME_MAX - len(suffix) - len(digest) - 1
    readable = NOT_IN_LABEL.sub("-", task_id.lower())[:keep].strip("-")
    return f"{readable}-{digest}{suffix}" if readable else f"{digest}{suffix}"


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def _merge_document(model: BaseModel) -> dict[str, Any]:
    """The fields a patch model was given (recursively), minus those given as null."""
    doc: dict[str, Any] = {}
    for name in sorted(model.model_fields_set):
        value = getattr(model, name)
        if value is None:
            continue
        # Maps may hold models (env's secret references): the document is plain JSON.
        doc[name] = (
            _merge_document(value) if isinstance(value, BaseModel) else to_jsonable_python(value)
        )
    return doc


def _null_fields(model: BaseModel, loc: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name in sorted(model.model_fields_set):
        value = getattr(model, name)
        if value is None:
            found.append((*loc, name))
        elif isinstance(value, BaseModel):
            found.extend(_null_fields(value, (*loc, name)))
    return found


_PatchQuantity = Annotated[
    str | None, BeforeValidator(_quantity_text, json_schema_input_type=_QUANTITY_INPUT | None)
]


class ResourcesPatch(_Strict):
    cpu: _PatchQuantity = None
    memory: _PatchQuantity = None


# A null value inside env, labels or annotations removes that key.
_PatchMap = dict[str, str | None]
_PatchEnvValue = Annotated[
    str | SecretEnv | None,
    BeforeValidator(
        lambda v: None if v is None else _env_value(v),
        json_schema_input_type=str | SecretEnv | None,
    ),
]
_PatchEnv = dict[str, _PatchEnvValue]


class JobPatch(_Strict):
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: Annotated[
        _PatchEnv | None,
        BeforeValidator(
            _env_from_list,
            json_schema_input_type=dict[str, str | SecretEnv | None] | list[EnvVarEntry] | None,
        ),
    ] = None
    resources: ResourcesPatch | None = None
    annotations: _PatchMap | None = None
    timeout_seconds: int | None = None
    run_as_user: int | None = None


class RetryPatch(_Strict):
    max_attempts: int | None = None
    backoff_seconds: Annotated[
        float | None, Field(validation_alias=_BACKOFF_NAMES, description=_BACKOFF_DOC)
    ] = None
    backoff_multiplier: float | None = None
    max_backoff_seconds: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _backoff_once(cls, data: Any) -> Any:
        return _one_backoff(data)


class TaskPatch(_Strict):
    """A partial task body for PATCH /v1/tasks/{id}: a JSON merge patch (RFC 7396).

    Only the fields given are applied; objects (job, job.resources, retry) merge field by
    field and maps (job.env, job.annotations, labels) key by key, where a null value
    removes the key; lists (command, args) replace. The result is validated again as a
    whole TaskSpec, so a bad merged value fails naming its field.

    One deliberate difference from RFC 7396: a null *field* (`"retry": null`,
    `"job": {"command": null}`) means "not given", never "reset to the default". Patches
    recorded in workflow histories before merging existed serialize every field they were
    not given as null, and replaying them must not wipe the spec; the API rejects such
    nulls up front (`null_fields`), so clients are told rather than silently ignored.
    Because null and absent fields mean the same, the patch means the same after any
    serialization (Temporal's pydantic converter writes unset fields as null).
    """

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    job: JobPatch | None = None
    retry: RetryPatch | None = None
    labels: _PatchMap | None = None

    def merge_document(self) -> dict[str, Any]:
        """This patch as an RFC 7396 document (what the client sent, null fields left out)."""
        return _merge_document(self)

    def null_fields(self) -> list[tuple[str, ...]]:
        """Paths of fields given as an explicit null (which the API refuses)."""
        return _null_fields(self)

    def apply_to(self, spec: TaskSpec) -> TaskSpec:
        """Return the merged spec, validated again as a whole (raises ValidationError)."""
        merged = json_merge_patch(spec.model_dump(mode="json"), self.merge_document())
        return TaskSpec.model_validate(merged)

    def changes_job(self, spec: TaskSpec) -> bool:
        """True when applying this patch changes what the Job runs (it must be replaced).

        Quantities compare by value: patching cpu "1000m" with 1 changes nothing.
        """
        return _job_identity(self.apply_to(spec).job) != _job_identity(spec.job)


def _job_identity(job: JobSpec) -> dict[str, Any]:
    identity = job.model_dump(mode="json")
    identity["resources"] = {
        "cpu_millis": job.resources.cpu_millis,
        "memory_bytes": job.resources.memory_bytes,
    }
    return identity
