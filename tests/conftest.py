"""Shared fixtures: the embedded S3 (moto in its own process) and fresh buckets on it."""

from __future__ import annotations

import itertools
import os
import uuid

import pytest

from rlmlab.sim import S3Server
from claude_code_cli import cli_home, without_claude_settings  # noqa: F401  (fixtures for the real Claude Code CLI)
from fake_modal import fake_modal  # noqa: F401  (a fixture: a fake Modal Volume)


@pytest.fixture(scope="session")
def s3_server():
    """One embedded S3 for the whole session, nothing injected. Tests must not reconfigure it."""
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_server_factory():
    """Makes embedded S3 servers with injected latency or faults; stops them at teardown."""
    servers: list[S3Server] = []

    def make(**settings) -> S3Server:
        server = S3Server(**settings).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


_bucket_numbers = itertools.count()


def _new_bucket_uri(server: S3Server) -> str:
    name = f"t-{os.getpid()}-{next(_bucket_numbers)}-{uuid.uuid4().hex[:6]}"
    server.create_bucket(name)
    return f"s3://{name}/ctx"


@pytest.fixture
def new_bucket_uri():
    """`new_bucket_uri(server)`: a fresh bucket on that server, as `s3://BUCKET/ctx`."""
    return _new_bucket_uri


@pytest.fixture
def s3_uri(s3_server) -> str:
    """A fresh, empty bucket on the session server, as `s3://BUCKET/ctx` (a prefix, as real use has)."""
    return _new_bucket_uri(s3_server)
