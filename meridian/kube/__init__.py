"""Kubernetes access: one ApiClient per region, errors mapped once, Jobs built and read."""
