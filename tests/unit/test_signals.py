"""Clean-up runs to its end even when Ctrl-C or SIGTERM arrives in the middle of it."""

from __future__ import annotations

import os
import signal

import pytest

from bottle_core.signals import deferred


def test_ctrl_c_waits_for_the_block_then_interrupts():
    finished = []
    # Ctrl-C as the `bottle` process meets it (Python's own handler), whatever a test before this one left.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with deferred():
                os.kill(os.getpid(), signal.SIGINT)
                finished.append("cleanup done")
    finally:
        signal.signal(signal.SIGINT, before)
    assert finished == ["cleanup done"]


def test_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with deferred():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
