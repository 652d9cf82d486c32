"""The bundle image's build context. Core also imports ``egress_policy`` and ``policy`` from here, to check manifests on the host."""
