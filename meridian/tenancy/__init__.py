"""Tenancy: what each business unit may use (quotas, the submission rate) and how that is
written for Kubernetes. Pure logic; the store applies it inside its transactions."""
