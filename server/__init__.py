"""Serving (DESIGN §6): the platform API and the bank scoring API, both FastAPI.

- ``server.platform`` — queries per catalog item with masking, credit reports
  (JSON/HTML), authorizations, API keys, the append-only audit record, usage
  feedback to providers, and partial scores for federated inference.
- ``server.bank`` — ``POST /v1/scores`` (and batch): the bank's half of the
  model plus the platform's partial score, calibrated and scaled to points.
- ``server.config`` — settings of both, from the environment or in code.
- ``server.cli`` — ``creditlab serve platform|bank|bootstrap-operator``.
"""
