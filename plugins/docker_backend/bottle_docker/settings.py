"""The ``BOTTLE_*`` variables the docker backend reads (declared through ``backend_settings``; light to import)."""

from __future__ import annotations

from bottle_core.settings import BackendSetting

OUTBOUND_NETWORK = BackendSetting(
    "docker_outbound_network",
    "docker backend: the network bundles reach the outside through (default bottle-outbound, made on first use).")

#: Every setting of this backend, as ``backend_settings`` answers.
ALL = [OUTBOUND_NETWORK]
