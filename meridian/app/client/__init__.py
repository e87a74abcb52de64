"""The `meridian task|region|placement` commands: a client of the REST API."""

from meridian.app.client.commands import register

__all__ = ["register"]
