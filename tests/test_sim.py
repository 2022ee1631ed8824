"""The embedded S3: injected latency, bandwidth and faults are real; the process is managed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rlmlab.errors import TransientStoreError
from rlmlab.sim import S3Server
from rlmlab.stores import open_store


def _timed_get(store, key: str, *args) -> float:
    t0 = time.perf_counter()
    store.get(key, *args)
    return time.perf_counter() - t0


def _process_gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_latency_bandwidth_and_slow_responses_are_injected(s3_server_factory, new_bucket_uri):
    server = s3_server_factory()
    store = open_store(new_bucket_uri(server), endpoint_url=server.endpoint_url)
    store.put("small", b"s" * 100)
    store.put("big", b"b" * 300_000)
    _timed_get(store, "small")  # warm up the connection pool and moto's code paths

    server.configure(ttfb_ms=100)
    assert min(_timed_get(store, "small") for _ in range(2)) >= 0.09

    server.configure(ttfb_ms=0, bandwidth_mbps=8)  # 1 MB/s: 300 kB take about 0.3 s
    assert _timed_get(store, "big") >= 0.25
    assert store.get("big", 0, 10) == b"b" * 10  # throttled bodies still arrive whole

    server.configure(bandwidth_mbps=None, slow_rate=1.0, slow_ms=300)
    assert _timed_get(store, "small") >= 0.28
    assert server.counts["slow"] == 1


def test_settings_validate_and_report(s3_server_factory):
    server = s3_server_factory(ttfb_ms=5)
    assert server.settings["ttfb_ms"] == 5
    assert server.configure(jitter_ms=2)["jitter_ms"] == 2
    with pytest.raises(ValueError, match=r"unknown S3 server setting\(s\) \['latency'\]"):
        server.configure(latency=3)
    with pytest.raises(ValueError, match="error_rate must be within"):
        server.configure(error_rate=1.5)
    with pytest.raises(ValueError, match="must be <= 1"):
        S3Server(error_rate=0.6, reset_rate=0.6)
    assert server.settings["error_rate"] == 0


def test_seeded_faults_repeat(s3_server_factory, new_bucket_uri):
    def outcomes(server) -> list[str]:
        store = open_store(new_bucket_uri(server), endpoint_url=server.endpoint_url, client="obstore")
        store.put("k", b"data")
        server.configure(seed=7, error_rate=0.3, reset_rate=0.2)  # reseeds the server's RNG
        results = []
        for _ in range(25):
            try:
                store.get("k")
                results.append("ok")
            except TransientStoreError:
                results.append("fault")
        return results

    first = outcomes(s3_server_factory())
    assert first == outcomes(s3_server_factory())
    assert 3 <= first.count("fault") <= 22


def test_floor(s3_server):
    floor = s3_server.floor(n=20)
    assert floor["n"] == 20
    assert 0 < floor["min_ms"] <= floor["median_ms"] <= floor["p90_ms"]


def test_stop_and_parent_death_leave_no_process():
    server = S3Server().start()
    pid = server._process.pid
    server.stop()
    assert _process_gone(pid, within_s=5)

    script = textwrap.dedent(
        """
        import os, sys
        from rlmlab.sim import S3Server
        server = S3Server().start()
        print(server._process.pid, flush=True)
        os.kill(os.getpid(), 9)  # die without cleaning up
        """
    )
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    child_pid = int(parent.stdout.strip())
    assert _process_gone(child_pid, within_s=5)


CLI = [sys.executable, "-m", "rlmlab"]


def test_cli_serve():
    proc = subprocess.Popen(
        CLI + ["s3", "serve", "--ttfb-ms", "1", "--bucket", "cli-bucket"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("embedded S3 at http://127.0.0.1:"), first + proc.stderr.read()
        endpoint = first.split()[3]
        store = open_store("s3://cli-bucket/x", endpoint_url=endpoint)
        store.put("k", b"hello")
        assert store.get("k", 1, 3) == b"el"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run(CLI + ["s3", "serve", "--error-rate", "3"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "error_rate must be within [0, 1]" in bad.stderr
