"""A small client for kubesim's control API (sync and async), reused by engine tests."""

from __future__ import annotations

from typing import Any

import httpx

from kubesim.types import Obj


class KubesimControlError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"kubesim control API answered {status}: {message}")
        self.status = status


def _result(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise KubesimControlError(response.status_code, message)
    return response.json()


def _api_errors_body(rate: float, codes: list[int] | None, retry_after: float | None) -> Obj:
    body: Obj = {"rate": rate}
    if codes is not None:
        body["codes"] = codes
    if retry_after is not None:
        body["retry_after"] = retry_after
    return body


class KubesimControl:
    """Every control endpoint as a method; ``region`` is the region (context) name."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KubesimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Obj | None = None) -> Any:
        return _result(self._client.request(method, path, json=body))

    # regions and faults
    def regions(self) -> Obj:
        return dict(self._call("GET", "/sim/regions"))

    def region(self, region: str) -> Obj:
        return dict(self._call("GET", f"/sim/regions/{region}"))

    def outage(self, region: str) -> Obj:
        return dict(self._call("POST", f"/sim/regions/{region}/outage"))

    def restore(self, region: str) -> Obj:
        return dict(self._call("DELETE", f"/sim/regions/{region}/outage"))

    def api_errors(
        self,
        region: str,
        rate: float,
        codes: list[int] | None = None,
        retry_after: float | None = None,
    ) -> Obj:
        body = _api_errors_body(rate, codes, retry_after)
        return dict(self._call("POST", f"/sim/regions/{region}/api-errors", body))

    def clear_api_errors(self, region: str) -> Obj:
        return dict(self._call("DELETE", f"/sim/regions/{region}/api-errors"))

    def latency(self, region: str, ms: float) -> Obj:
        return dict(self._call("POST", f"/sim/regions/{region}/latency", {"ms": ms}))

    def clear_latency(self, region: str) -> Obj:
        return dict(self._call("DELETE", f"/sim/regions/{region}/latency"))

    def drop_watches(self, region: str) -> Obj:
        return dict(self._call("POST", f"/sim/regions/{region}/drop-watches"))

    # nodes, pools, pods
    def set_node_ready(self, region: str, node: str, ready: bool) -> Obj:
        return dict(
            self._call("POST", f"/sim/regions/{region}/nodes/{node}/ready", {"ready": ready})
        )

    def delete_node(self, region: str, node: str) -> Obj:
        return dict(self._call("DELETE", f"/sim/regions/{region}/nodes/{node}"))

    def pools(self, region: str) -> list[Obj]:
        return list(self._call("GET", f"/sim/regions/{region}/pools"))

    def scale_pool(
        self, region: str, pool: str, desired: int, provisioning_delay_seconds: float | None = None
    ) -> Obj:
        body: Obj = {"desired": desired}
        if provisioning_delay_seconds is not None:
            body["provisioning_delay_seconds"] = provisioning_delay_seconds
        return dict(self._call("POST", f"/sim/regions/{region}/pools/{pool}/scale", body))

    def set_pod_status(self, region: str, namespace: str, pod: str, state: str) -> Obj:
        return dict(
            self._call(
                "POST", f"/sim/regions/{region}/pods/{namespace}/{pod}/status", {"state": state}
            )
        )

    # network probes and counters
    def network(self, region: str) -> Obj:
        return dict(self._call("GET", f"/sim/regions/{region}/network"))

    def set_network_path(self, region: str, target: str, rtt_ms: float, loss: float = 0.0) -> Obj:
        return dict(
            self._call(
                "POST",
                f"/sim/regions/{region}/network",
                {"target": target, "rtt_ms": rtt_ms, "loss": loss},
            )
        )

    def stats(self, region: str) -> Obj:
        return dict(self._call("GET", f"/sim/regions/{region}/stats"))

    # serverless capacity (one virtual node per region that declares it)
    def serverless(self, region: str | None = None) -> Obj:
        path = "/sim/serverless" if region is None else f"/sim/regions/{region}/serverless"
        return dict(self._call("GET", path))

    def set_serverless_ready(self, region: str, ready: bool) -> Obj:
        body = {"ready": ready}
        return dict(self._call("POST", f"/sim/regions/{region}/serverless/ready", body))

    def exhaust_serverless(self, region: str, exhausted: bool = True) -> Obj:
        body = {"exhausted": exhausted}
        return dict(self._call("POST", f"/sim/regions/{region}/serverless/quota", body))


class AsyncKubesimControl:
    """The same endpoints for asyncio callers."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncKubesimControl:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, body: Obj | None = None) -> Any:
        return _result(await self._client.request(method, path, json=body))

    async def regions(self) -> Obj:
        return dict(await self._call("GET", "/sim/regions"))

    async def outage(self, region: str) -> Obj:
        return dict(await self._call("POST", f"/sim/regions/{region}/outage"))

    async def restore(self, region: str) -> Obj:
        return dict(await self._call("DELETE", f"/sim/regions/{region}/outage"))

    async def api_errors(
        self,
        region: str,
        rate: float,
        codes: list[int] | None = None,
        retry_after: float | None = None,
    ) -> Obj:
        body = _api_errors_body(rate, codes, retry_after)
        return dict(await self._call("POST", f"/sim/regions/{region}/api-errors", body))

    async def clear_api_errors(self, region: str) -> Obj:
        return dict(await self._call("DELETE", f"/sim/regions/{region}/api-errors"))

    async def latency(self, region: str, ms: float) -> Obj:
        return dict(await self._call("POST", f"/sim/regions/{region}/latency", {"ms": ms}))

    async def clear_latency(self, region: str) -> Obj:
        return dict(await self._call("DELETE", f"/sim/regions/{region}/latency"))

    async def drop_watches(self, region: str) -> Obj:
        return dict(await self._call("POST", f"/sim/regions/{region}/drop-watches"))

    async def set_node_ready(self, region: str, node: str, ready: bool) -> Obj:
        return dict(
            await self._call("POST", f"/sim/regions/{region}/nodes/{node}/ready", {"ready": ready})
        )

    async def delete_node(self, region: str, node: str) -> Obj:
        return dict(await self._call("DELETE", f"/sim/regions/{region}/nodes/{node}"))

    async def pools(self, region: str) -> list[Obj]:
        return list(await self._call("GET", f"/sim/regions/{region}/pools"))

    async def scale_pool(
        self, region: str, pool: str, desired: int, provisioning_delay_seconds: float | None = None
    ) -> Obj:
        body: Obj = {"desired": desired}
        if provisioning_delay_seconds is not None:
            body["provisioning_delay_seconds"] = provisioning_delay_seconds
        return dict(await self._call("POST", f"/sim/regions/{region}/pools/{pool}/scale", body))

    async def set_pod_status(self, region: str, namespace: str, pod: str, state: str) -> Obj:
        return dict(
            await self._call(
                "POST", f"/sim/regions/{region}/pods/{namespace}/{pod}/status", {"state": state}
            )
        )

    async def network(self, region: str) -> Obj:
        return dict(await self._call("GET", f"/sim/regions/{region}/network"))

    async def set_network_path(
        self, region: str, target: str, rtt_ms: float, loss: float = 0.0
    ) -> Obj:
        return dict(
            await self._call(
                "POST",
                f"/sim/regions/{region}/network",
                {"target": target, "rtt_ms": rtt_ms, "loss": loss},
            )
        )

    async def stats(self, region: str) -> Obj:
        return dict(await self._call("GET", f"/sim/regions/{region}/stats"))

    async def serverless(self, region: str | None = None) -> Obj:
        path = "/sim/serverless" if region is None else f"/sim/regions/{region}/serverless"
        return dict(await self._call("GET", path))

    async def set_serverless_ready(self, region: str, ready: bool) -> Obj:
        body = {"ready": ready}
        return dict(await self._call("POST", f"/sim/regions/{region}/serverless/ready", body))

    async def exhaust_serverless(self, region: str, exhausted: bool = True) -> Obj:
        body = {"exhausted": exhausted}
        return dict(await self._call("POST", f"/sim/regions/{region}/serverless/quota", body))
