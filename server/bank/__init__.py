"""The bank scoring API: federated inference with the platform, scaled to points."""

from server.bank.app import create_app

__all__ = ["create_app"]
