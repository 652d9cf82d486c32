"""The proxy's addons in order, for mitmdump's ``-s`` (which loads a file by its path, not a module of a package).

The policy first (``proxy_addon``); then the egress stage's preflight, which asks only about what the policy
allowed. Absolute imports: this file is run outside its package. In a pooled bundle the
modules that read no configuration are imported first, then the claim is awaited (``pooled.py``).
Two changes to how mitmproxy works, made before the proxy accepts a connection: connections are read in large
pieces (``large_reads``), and an event goes only to the addons that handle it (``hook_dispatch``).
"""

from bottle_core.bundle.image import (  # noqa: F401 - what reads no configuration, imported while pooled
    egress_policy, egress_stage, error_pages, hook_dispatch, hosts, inspection, large_reads, model_tools, pooled,
    readiness, response_inspection, response_stream, websockets)
from mitmproxy import connection, ctx, http, tcp  # noqa: F401,E402
from mitmproxy.proxy import commands, events, layer, layers  # noqa: F401,E402

large_reads.install()
hook_dispatch.install()
pooled.wait_in_proxy()  # a pooled bundle: nothing below reads the configuration before a run has claimed it

from bottle_core.bundle.image import egress_preflight, proxy_addon, proxy_serve  # noqa: E402

# Last: serves the entry point's listening socket once every addon before it runs (the policy in force).
addons = [*proxy_addon.addons, *egress_preflight.addons, proxy_serve.Serve()]
