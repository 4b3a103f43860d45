"""Shared fixtures.

Monte-Carlo tests take the ``seed`` (or ``rng``) fixture. Its contract: the test
passes for *any* seed. The seed is random on every run and printed in the
report header; set ``QTHEORY_TEST_SEED`` to replay a run.
"""

import os
import secrets
import zlib

import numpy as np
import pytest

_SEED = int(os.environ.get("QTHEORY_TEST_SEED", secrets.randbits(32)))


def pytest_report_header(config):
    return f"qtheory Monte-Carlo seed: QTHEORY_TEST_SEED={_SEED}"


@pytest.fixture
def seed(request) -> int:
    """A seed that differs per test and per run (reproducible via QTHEORY_TEST_SEED)."""
    return (_SEED + zlib.crc32(request.node.nodeid.encode())) % (2**32)


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
