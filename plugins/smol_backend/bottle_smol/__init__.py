"""bottle's smol backend: each agent in a smolvm microVM with its own kernel, behind a sidecar bundle."""
