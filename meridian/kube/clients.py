"""One ApiClient per region, built from a kubeconfig context named after the region."""

from __future__ import annotations

import threading
from pathlib import Path

from kubernetes import client, config


class ClusterClients:
    """Lazily builds and caches one ApiClient per region; no global Configuration state."""

    def __init__(self, kubeconfig: Path | str, *, request_timeout: float = 10.0):
        self._kubeconfig = str(kubeconfig)
        self._clients: dict[str, client.ApiClient] = {}
        self._lock = threading.Lock()
        # (connect, read) seconds on every call: a dead region must fail fast, not hang.
        self.timeout: tuple[float, float] = (min(3.0, request_timeout), request_timeout)

    def api_client(self, region: str) -> client.ApiClient:
        with self._lock:
            existing = self._clients.get(region)
            if existing is not None:
                return existing
            configuration = client.Configuration()
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=self._kubeconfig,
                context=region,
                client_configuration=configuration,
                persist_config=False,
            )
            # Retries are the caller's (Temporal's) business; urllib3 retrying a refused
            # connection only slows down noticing that a region is gone.
            configuration.retries = False
            configuration.connection_pool_maxsize = 32
            api = client.ApiClient(configuration)
            self._clients[region] = api
            return api

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
