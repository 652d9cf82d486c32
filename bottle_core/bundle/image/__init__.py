"""The bundle image's build context. ``egress_policy`` is also imported on the host to check manifests."""
