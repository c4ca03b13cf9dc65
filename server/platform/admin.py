"""Bootstrapping: the first operator institution and its key, from the command line.

Every route that creates institutions or keys needs an operator key, so the
very first one cannot come through the API; ``creditlab serve
bootstrap-operator NAME`` calls :func:`bootstrap_operator` once on a new
database and prints the key (once — only its digest is stored).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from server.config import PlatformSettings
from server.platform.db import Database
from server.platform.security import issue_key
from server.platform.tables import ApiKey, Institution, Role

__all__ = ["bootstrap_operator"]


def bootstrap_operator(database: Database, settings: PlatformSettings, name: str) -> str:
    """Create an operator institution called ``name`` with one key; return the key.

    Raises
    ------
    ValueError
        If an institution of that name exists already (issue further keys
        through the API with an existing operator key instead).
    """
    now = datetime.now(UTC)
    with database.session() as session:
        if session.scalar(select(Institution).where(Institution.name == name)) is not None:
            raise ValueError(f"an institution named {name!r} exists already; issue it a new key "
                             "with POST /v1/institutions/{id}/keys using an operator key")
        institution = Institution(id=uuid.uuid4().hex, name=name, role=Role.operator,
                                  created_at=now)
        session.add(institution)
        session.flush()  # the key's foreign key needs the institution row first
        issued = issue_key(settings.key_pepper.get_secret_value())
        session.add(ApiKey(id=issued.key_id, institution_id=institution.id,
                           digest=issued.digest, created_at=now))
    return issued.plaintext
