"""The proxy's addons in order, for mitmdump's ``-s`` (which loads a file by its path, not a module of a package).

The policy first (``proxy_addon``); then the egress stage's preflight, which asks only about what the policy
allowed. Absolute imports: this file is run outside its package.
"""

from bottle_core.bundle.image import egress_preflight, proxy_addon

addons = [*proxy_addon.addons, *egress_preflight.addons]
