"""One ApiClient per region, built from a kubeconfig context named after the region.

A unit worker deployed in its region's cluster has no kubeconfig: it uses the pod's
ServiceAccount (in-cluster credentials), which reach that one cluster only.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kubernetes import client, config
from kubernetes.config import incluster_config

from meridian.observability.kube import instrument


class ClusterClients:
    """Lazily builds and caches one ApiClient per region; no global Configuration state."""

    def __init__(self, kubeconfig: Path | str, *, request_timeout: float = 10.0):
        self._kubeconfig = str(kubeconfig)
        self._clients: dict[str, client.ApiClient] = {}
        self._lock = threading.Lock()
        self._in_cluster_region: str | None = None
        # (connect, read) seconds on every call: a dead region must fail fast, not hang.
        self.timeout: tuple[float, float] = (min(3.0, request_timeout), request_timeout)

    def api_client(self, region: str) -> client.ApiClient:
        with self._lock:
            existing = self._clients.get(region)
            if existing is not None:
                return existing
            configuration = client.Configuration()
            if Path(self._kubeconfig).exists():
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=self._kubeconfig,
                    context=region,
                    client_configuration=configuration,
                    persist_config=False,
                )
            elif _in_a_pod():
                self._claim_in_cluster(region)
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            else:
                raise FileNotFoundError(
                    f"no kubeconfig at {self._kubeconfig}, and not in a pod (no in-cluster "
                    "credentials): set MERIDIAN_KUBECONFIG"
                )
            # Retries are the caller's (Temporal's) business; urllib3 retrying a refused
            # connection only slows down noticing that a region is gone.
            configuration.retries = False
            configuration.connection_pool_maxsize = 32
            api = client.ApiClient(configuration)
            instrument(api, region)  # request metrics by region, verb and code
            self._clients[region] = api
            return api

    def _claim_in_cluster(self, region: str) -> None:
        if self._in_cluster_region not in (None, region):
            raise ValueError(
                f"in-cluster credentials reach one region ({self._in_cluster_region}); "
                f"{region} needs a kubeconfig context (MERIDIAN_KUBECONFIG)"
            )
        self._in_cluster_region = region

    def batch(self, region: str) -> client.BatchV1Api:
        return client.BatchV1Api(self.api_client(region))

    def core(self, region: str) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client(region))

    def networking(self, region: str) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api_client(region))

    def close(self) -> None:
        with self._lock:
            for api in self._clients.values():
                api.close()  # type: ignore[no-untyped-call]
            self._clients.clear()


def _in_a_pod() -> bool:
    # The variable the kubelet sets in every pod; kubernetes' own loader reads it too.
    return bool(os.environ.get(incluster_config.SERVICE_HOST_ENV_NAME))
