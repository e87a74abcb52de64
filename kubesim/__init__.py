"""kubesim: a Kubernetes-API-compatible simulator of one or many regional clusters.

Each region is served as its own HTTP API server (so an outage looks like a dead
cluster to the client); a control API injects faults and drives node pools. See
``kubesim/README.md``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
