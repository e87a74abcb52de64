"""Deployment from the fleet file: render, kubeconfig, offline checks (infra/README.md)."""
