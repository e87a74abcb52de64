"""The control API (JSON) that injects faults and drives nodes, pools and pods."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kubesim.resident import STATES
from kubesim.resources import PODS
from kubesim.types import Obj

if TYPE_CHECKING:
    from kubesim.cluster import Cluster
    from kubesim.server import RegionServer, Simulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.details = details


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as exc:
        return _json({"error": str(exc), **exc.details}, exc.status)


async def _body(request: web.Request) -> Obj:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (ValueError, json.JSONDecodeError) as exc:
        raise ControlError(400, f"invalid JSON body: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ControlError(400, "the body must be a JSON object")
    return data


async def _fields(
    request: web.Request, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> Obj:
    """The JSON body, refused (400) if it has a key the endpoint does not read or lacks
    one it needs: a misspelt field must not be taken for a default."""
    body = await _body(request)
    accepted = [*required, *optional]
    unknown = sorted(k for k in body if k not in accepted)
    missing = [k for k in required if k not in body]
    if not unknown and not missing:
        return body
    endpoint = f"{request.method} {request.path}"
    if accepted:
        takes = "accepted: " + ", ".join(
            repr(k) if k in required else f"{k!r} (optional)" for k in accepted
        )
    else:
        takes = "it takes no body fields"
    problems = []
    if unknown:
        problems.append(
            "unknown key" + ("s " if len(unknown) > 1 else " ") + ", ".join(map(repr, unknown))
        )
    if missing:
        problems.append(
            "missing required key"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(map(repr, missing))
        )
    raise ControlError(
        400,
        f"{endpoint}: {'; '.join(problems)} ({takes})",
        unknown=unknown,
        missing=missing,
        required=list(required),
        optional=list(optional),
    )


def build_control_app(sim: Simulator) -> web.Application:
    def region(request: web.Request) -> tuple[Cluster, RegionServer]:
        name = request.match_info["region"]
        if name not in sim.clusters:
            raise ControlError(404, f"unknown region {name!r}")
        return sim.clusters[name], sim.servers[name]

    def summary(name: str) -> Obj:
        return sim.clusters[name].summary(sim.servers[name].url)

    async def list_regions(request: web.Request) -> web.Response:
        return _json({name: summary(name) for name in sim.clusters})

    async def get_region(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        return _json(summary(cluster.name))

    async def outage(request: web.Request) -> web.Response:
        cluster, server = region(request)
        await _fields(request)
        if request.method == "POST":
            await server.outage()
        else:
            await server.restore()
        return _json(summary(cluster.name))

    async def api_errors(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        faults = cluster.faults
        if request.method == "DELETE":
            await _fields(request)
            faults.error_rate = 0.0
            return _json(summary(cluster.name))
        body = await _fields(request, ("rate",), ("codes", "retry_after"))
        try:
            rate = float(body["rate"])
            codes = [int(c) for c in body.get("codes") or [500, 503, 429]]
            retry_after = int(body.get("retry_after", faults.retry_after))
        except (TypeError, ValueError) as exc:
            raise ControlError(400, f"invalid api-errors body: {exc}") from exc
        if not 0.0 <= rate <= 1.0:
            raise ControlError(400, "rate must be between 0.0 and 1.0")
        faults.error_rate, faults.error_codes, faults.retry_after = rate, codes, retry_after
        return _json(summary(cluster.name))

    async def latency(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        if request.method == "DELETE":
            await _fields(request)
            cluster.faults.latency_ms = 0.0
        else:
            body = await _fields(request, ("ms",))
            try:
                cluster.faults.latency_ms = max(0.0, float(body["ms"]))
            except (TypeError, ValueError) as exc:
                raise ControlError(400, f"invalid latency: {exc}") from exc
        return _json(summary(cluster.name))

    async def drop_watches(request: web.Request) -> web.Response:
        cluster, server = region(request)
        await _fields(request)
        return _json({"region": cluster.name, "dropped": server.drop_watches()})

    async def node_ready(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        body = await _fields(request, ("ready",))
        node = request.match_info["node"]
        if not isinstance(body["ready"], bool):
            raise ControlError(400, 'body must be {"ready": true|false}')
        if cluster.set_node_ready(node, body["ready"]) is None:
            raise ControlError(404, f"unknown node {node!r}")
        return _json({"region": cluster.name, "node": node, "ready": body["ready"]})

    async def delete_node(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        node = request.match_info["node"]
        await _fields(request)
        state = cluster.nodes.get(node)
        if cluster.delete_node(node) is None:
            raise ControlError(404, f"unknown node {node!r}")
        pool = cluster.pools.get(state.pool) if state else None
        return _json(
            {
                "region": cluster.name,
                "node": node,
                "deleted": True,
                "pool": cluster.pool_view(pool) if pool else None,
            }
        )

    async def pod_status(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        body = await _fields(request, ("state",))
        state = body["state"]
        if state not in STATES:
            raise ControlError(400, f"state must be one of {', '.join(STATES)}")
        key = (request.match_info["namespace"], request.match_info["pod"])
        if cluster.store.get(PODS.name, *key) is None:
            raise ControlError(404, f"unknown pod {key[0]}/{key[1]}")
        cluster.kubelet.set_status_state(key, str(state))
        return _json({"region": cluster.name, "namespace": key[0], "pod": key[1], "state": state})

    async def network(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        if cluster.faults.outage:
            raise ControlError(503, f"region {cluster.name} is unreachable (outage)")
        if request.method == "POST":
            body = await _fields(request, ("target",), ("rtt_ms", "loss"))
            try:
                target = str(body["target"])
                rtt_ms = float(body.get("rtt_ms", 0.0))
                loss = float(body.get("loss", 0.0))
            except (KeyError, TypeError, ValueError) as exc:
                raise ControlError(400, f"invalid network path: {exc}") from exc
            if not 0.0 <= loss <= 1.0 or rtt_ms < 0:
                raise ControlError(400, "rtt_ms must be >= 0 and loss within [0, 1]")
            cluster.network[target] = {"target": target, "rtt_ms": rtt_ms, "loss": loss}
        return _json({"region": cluster.name, "paths": list(cluster.network.values())})

    async def pools(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        return _json([cluster.pool_view(p) for p in cluster.pools.values()])

    async def scale(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        name = request.match_info["pool"]
        if name not in cluster.pools:
            raise ControlError(404, f"unknown pool {name!r}")
        body = await _fields(request, ("desired",), ("provisioning_delay_seconds",))
        try:
            desired = int(body["desired"])
            delay = body.get("provisioning_delay_seconds")
            delay_s = None if delay is None else float(delay)
        except (KeyError, TypeError, ValueError) as exc:
            raise ControlError(400, f'body must be {{"desired": N}}: {exc}') from exc
        if desired < 0:
            raise ControlError(400, "desired must be >= 0")
        pool = cluster.scale_pool(name, desired, delay_s)
        return _json(cluster.pool_view(pool))

    async def stats(request: web.Request) -> web.Response:
        cluster, _ = region(request)
        requests: dict[str, dict[str, int]] = {}
        for key, count in sorted(cluster.stats.requests.items()):
            verb, resource = key.split(" ", 1)
            requests.setdefault(verb, {})[resource] = count
        return _json(
            {
                "region": cluster.name,
                "requests": requests,
                "requests_total": cluster.stats.total,
                "injected_errors": cluster.stats.injected_errors,
                "objects": cluster.object_counts(),
                "watches": len(cluster.store.all_watchers()),
                "resource_version": cluster.store.rv,
            }
        )

    def serverless_of(request: web.Request) -> Cluster:
        cluster, _ = region(request)
        if cluster.serverless is None:
            raise ControlError(404, f"region {cluster.name} declares no serverless capacity")
        return cluster

    async def serverless_all(request: web.Request) -> web.Response:
        reports = {name: c.serverless_report() for name, c in sim.clusters.items()}
        return _json({name: r for name, r in reports.items() if r is not None})

    async def serverless_get(request: web.Request) -> web.Response:
        return _json(serverless_of(request).serverless_report())

    async def serverless_ready(request: web.Request) -> web.Response:
        cluster = serverless_of(request)
        body = await _fields(request, ("ready",))
        if not isinstance(body["ready"], bool):
            raise ControlError(400, 'body must be {"ready": true|false}')
        assert cluster.serverless is not None
        cluster.set_node_ready(cluster.serverless.node_name, body["ready"])
        return _json(cluster.serverless_report())

    async def serverless_quota(request: web.Request) -> web.Response:
        cluster = serverless_of(request)
        body = await _fields(request, ("exhausted",))
        if not isinstance(body["exhausted"], bool):
            raise ControlError(400, 'body must be {"exhausted": true|false}')
        cluster.set_serverless_exhausted(body["exhausted"])
        return _json(cluster.serverless_report())

    app = web.Application(middlewares=[_errors])
    r = app.router
    r.add_get("/sim/regions", list_regions)
    r.add_get("/sim/regions/{region}", get_region)
    r.add_route("POST", "/sim/regions/{region}/outage", outage)
    r.add_route("DELETE", "/sim/regions/{region}/outage", outage)
    r.add_route("POST", "/sim/regions/{region}/api-errors", api_errors)
    r.add_route("DELETE", "/sim/regions/{region}/api-errors", api_errors)
    r.add_route("POST", "/sim/regions/{region}/latency", latency)
    r.add_route("DELETE", "/sim/regions/{region}/latency", latency)
    r.add_post("/sim/regions/{region}/drop-watches", drop_watches)
    r.add_post("/sim/regions/{region}/nodes/{node}/ready", node_ready)
    r.add_delete("/sim/regions/{region}/nodes/{node}", delete_node)
    r.add_post("/sim/regions/{region}/pods/{namespace}/{pod}/status", pod_status)
    r.add_get("/sim/regions/{region}/network", network)
    r.add_post("/sim/regions/{region}/network", network)
    r.add_get("/sim/regions/{region}/pools", pools)
    r.add_post("/sim/regions/{region}/pools/{pool}/scale", scale)
    r.add_get("/sim/regions/{region}/stats", stats)
    r.add_get("/sim/serverless", serverless_all)
    r.add_get("/sim/regions/{region}/serverless", serverless_get)
    r.add_post("/sim/regions/{region}/serverless/ready", serverless_ready)
    r.add_post("/sim/regions/{region}/serverless/quota", serverless_quota)
    return app
