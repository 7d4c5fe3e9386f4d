"""Needs the message broker (BROKER_ADDRESS, host:port). Optional: `cargo xtask smoke` checks
it first and reports the suite prerequisite-unavailable when nothing listens there."""

import os
import socket

import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.broker]


def test_the_broker_accepts_connections():
    host, _, port = os.environ.get("BROKER_ADDRESS", "127.0.0.1:9092").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5):
        pass
