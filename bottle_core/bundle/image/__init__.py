"""The bundle image's build context; core imports :mod:`.policy` from here to check rules on the host."""
