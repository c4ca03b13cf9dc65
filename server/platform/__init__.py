"""The platform API: queries, credit reports, authorizations, audit, partial scores."""

from server.platform.app import create_app

__all__ = ["create_app"]
