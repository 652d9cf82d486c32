"""The bundle: the sidecar every bottle gets, holding the daemons between the agent and the world.

Layout:

* ``image/`` -- the bundle image's build context: its Dockerfile and the
  daemons that run inside it (``entrypoint.py`` starts them all and says when
  they are ready; ``proxy_addon.py`` judges every request the TLS-inspecting
  proxy sees against ``egress_policy.py``, which the host also uses to check
  the manifest's allow-list).
* :mod:`bottle_core.bundle.contract` -- the host side of the contract every
  backend uses to run the bundle: which files go in, how readiness is
  announced, where its CA and its logs come out.
* :mod:`bottle_core.bundle.logs` -- turning the bundle's output into the
  bottle's log files in its host state dir.

Nothing here imports an engine's SDK; backends bring the bundle up with
whatever their technology offers and follow this contract.
"""
