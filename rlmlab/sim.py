"""Embedded S3: moto's server app in its own process, behind a fault-injection middleware.

`tc netem` is not available on these machines, so latency, bandwidth limits and faults are
injected in the server's WSGI layer instead. The server runs in a separate process because
with client and server sharing one interpreter on 2 cores, parallel GETs saturate near
200 requests/s (GUIDE §4) and every benchmark would measure the GIL, not the policy.

Only object reads (GET/HEAD on `/BUCKET/KEY`) are disturbed; bucket operations, listings
and PUTs go straight through, so setting up a test never flakes. Settings can be changed
while the server runs (`S3Server.configure`), through a control endpoint, so a benchmark
sweeps TTFB without restarting. Requests carrying the `x-rlmlab-bypass` header skip
injection: that is how `floor()` measures the server's own cost per request.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

CONTROL_PATH = "/_rlmlab/config"
BYPASS_HEADER = "x-rlmlab-bypass"
DUMMY_CREDENTIALS = {
    "aws_access_key_id": "rlmlab-embedded",
    "aws_secret_access_key": "rlmlab-embedded-secret",
    "region_name": "us-east-1",
}
_START_TIMEOUT_S = 60.0


@dataclass
class FaultSettings:
    """What the middleware injects into each object read. Rates are probabilities per request."""

    ttfb_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_mbps: float | None = None
    error_rate: float = 0.0
    reset_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 2000.0
    seed: int | None = None

    def replace(self, **changes) -> "FaultSettings":
        """A validated copy with `changes` applied; unknown names and bad values raise ValueError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown S3 server setting(s) {unknown}; known: {sorted(known)}")
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        for name in ("ttfb_ms", "jitter_ms", "slow_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.bandwidth_mbps is not None and self.bandwidth_mbps <= 0:
            raise ValueError(f"bandwidth_mbps must be positive or None, got {self.bandwidth_mbps}")
        rates = {n: getattr(self, n) for n in ("error_rate", "reset_rate", "slow_rate")}
        for name, rate in rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if sum(rates.values()) > 1:
            raise ValueError(f"error_rate + reset_rate + slow_rate must be <= 1, got {sum(rates.values())}")


# --------------------------------------------------------------------------- server side


class FaultInjector:
    """WSGI middleware around moto: delays, throttles, fails or cuts object reads."""

    def __init__(self, app, settings: FaultSettings):
        self.app = app
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.lock = threading.Lock()
        self.counts = {"object_reads": 0, "errors": 0, "resets": 0, "slow": 0}
        self.sockets_to_reset: set = set()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == CONTROL_PATH:
            return self._control(environ, start_response)
        if environ.get("HTTP_" + BYPASS_HEADER.upper().replace("-", "_")) or not _is_object_read(environ):
            return self.app(environ, start_response)
        with self.lock:
            settings = self.settings
            draw = self.rng.random()
            delay_s = max(0.0, settings.ttfb_ms + self.rng.uniform(-1, 1) * settings.jitter_ms) / 1000
            self.counts["object_reads"] += 1
            fault = _pick_fault(draw, settings)
            if fault:
                self.counts[fault] += 1
            status_code = self.rng.choice((500, 503))
        if fault == "slow":
            delay_s += settings.slow_ms / 1000
        if delay_s:
            time.sleep(delay_s)
        if fault == "errors":
            return _error_response(status_code, environ, start_response)
        if fault == "resets":
            return self._reset_midway(environ, start_response)
        body = self.app(environ, start_response)
        if settings.bandwidth_mbps:
            return _throttled(body, settings.bandwidth_mbps * 125_000)
        return body

    def _reset_midway(self, environ, start_response):
        """Send the headers and half the body, then drop the TCP connection with a RST."""
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        sock = environ.get("werkzeug.socket")

        def stream():
            start_response(captured["status"], captured["headers"])
            if environ["REQUEST_METHOD"] != "HEAD":
                yield body[: len(body) // 2]
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.sockets_to_reset.add(sock)
            raise ConnectionResetError("rlmlab: injected connection reset")

        return stream()

    def _control(self, environ, start_response):
        status = "200 OK"
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                changes = json.loads(environ["wsgi.input"].read(length) or b"{}")
                with self.lock:
                    self.settings = self.settings.replace(**changes)
                    if "seed" in changes:
                        self.rng.seed(self.settings.seed)
            except (ValueError, TypeError) as e:
                status, payload = "400 Bad Request", {"error": str(e)}
        if status == "200 OK":
            with self.lock:
                payload = {"settings": dataclasses.asdict(self.settings), "counts": dict(self.counts)}
        data = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def _is_object_read(environ) -> bool:
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return False
    bucket, _, key = environ.get("PATH_INFO", "").lstrip("/").partition("/")
    return bool(bucket and key)


def _pick_fault(draw: float, s: FaultSettings) -> str | None:
    for name, rate in (("errors", s.error_rate), ("resets", s.reset_rate), ("slow", s.slow_rate)):
        if draw < rate:
            return name
        draw -= rate
    return None


def _error_response(status_code: int, environ, start_response):
    code, message, status = {
        500: ("InternalError", "We encountered an internal error. Please try again.", "500 Internal Server Error"),
        503: ("SlowDown", "Please reduce your request rate.", "503 Slow Down"),
    }[status_code]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16]}</RequestId></Error>"
    ).encode()
    if environ["REQUEST_METHOD"] == "HEAD":
        body = b""
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _throttled(body, bytes_per_s: float):
    """Re-chunk a response body and pace it at `bytes_per_s` (one connection per request here)."""
    chunk = max(4096, int(bytes_per_s / 100))  # about 10 ms per chunk
    start = time.perf_counter()
    sent = 0
    try:
        for piece in body:
            for i in range(0, len(piece), chunk):
                part = piece[i : i + chunk]
                ahead = start + (sent + len(part)) / bytes_per_s - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
                sent += len(part)
                yield part
    finally:
        if hasattr(body, "close"):
            body.close()


def _build_server(host: str, port: int, settings: FaultSettings):
    """moto's S3 app, wrapped in the injector, served threaded by werkzeug."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import ThreadedWSGIServer

    injector = FaultInjector(DomainDispatcherApplication(create_backend_app), settings)

    class Server(ThreadedWSGIServer):
        def shutdown_request(self, request):
            # A socket marked for reset is closed at once (SO_LINGER 0 => RST), without the
            # orderly FIN that shutdown(SHUT_WR) would send first.
            if request in injector.sockets_to_reset:
                injector.sockets_to_reset.discard(request)
                self.close_request(request)
            else:
                super().shutdown_request(request)

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

    return Server(host, port, injector, handler=QuietHandler)


def _child_main() -> None:
    """Entry point of the server process: report the port, serve until the parent goes away."""
    settings = FaultSettings().replace(**json.loads(sys.argv[1]))
    server = _build_server("127.0.0.1", int(sys.argv[2]), settings)
    sys.stdout.write(json.dumps({"port": server.server_address[1]}) + "\n")
    sys.stdout.flush()

    def exit_when_parent_gone():
        # The parent holds our stdin open; EOF means it stopped us or died.
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=exit_when_parent_gone, daemon=True).start()
    server.serve_forever()


# --------------------------------------------------------------------------- client side


class S3Server:
    """A real S3 HTTP endpoint on 127.0.0.1 (moto) in its own process, with injected faults.

    Use it as a context manager: `with S3Server(ttfb_ms=50) as s3: ... s3.endpoint_url`.
    """

    def __init__(
        self,
        ttfb_ms: float = 0,
        jitter_ms: float = 0,
        bandwidth_mbps: float | None = None,
        error_rate: float = 0,
        reset_rate: float = 0,
        slow_rate: float = 0,
        slow_ms: float = 2000,
        seed: int | None = None,
        *,
        port: int = 0,
    ):
        self._settings = FaultSettings(
            ttfb_ms, jitter_ms, bandwidth_mbps, error_rate, reset_rate, slow_rate, slow_ms, seed
        )
        self._settings.validate()
        self._requested_port = port
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self.port: int | None = None

    # lifecycle ---------------------------------------------------------------

    def start(self) -> "S3Server":
        if self._process is not None:
            return self
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from rlmlab.sim import _child_main; _child_main()",
                json.dumps(dataclasses.asdict(self._settings)),
                str(self._requested_port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        line = _readline_with_timeout(self._process.stdout, _START_TIMEOUT_S)
        if not line:
            self.stop()
            raise RuntimeError(f"embedded S3 server failed to start:\n{self._stderr_text()}")
        self.port = json.loads(line)["port"]
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()  # the server exits on EOF
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            process.stdout.close()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):
        if getattr(self, "_process", None) is not None:
            self.stop()

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("S3Server is not running: call start() or use it in a `with` block")
        return f"http://127.0.0.1:{self.port}"

    # settings ----------------------------------------------------------------

    def configure(self, **changes) -> dict:
        """Change injection settings while running (e.g. `configure(ttfb_ms=50)`); returns them all."""
        self._settings = self._settings.replace(**changes)  # validate before sending
        return self._control("POST", changes)["settings"]

    @property
    def settings(self) -> dict:
        return self._control("GET")["settings"]

    @property
    def counts(self) -> dict:
        """How many object reads the server saw and how many it failed, reset or slowed."""
        return self._control("GET")["counts"]

    def _control(self, method: str, body: dict | None = None) -> dict:
        self.endpoint_url  # noqa: B018 -- raises a clear error when the server is not running
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, CONTROL_PATH, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = json.loads(response.read())
        finally:
            conn.close()
        if response.status != 200:
            raise ValueError(payload.get("error", f"control request failed with HTTP {response.status}"))
        return payload

    # helpers -----------------------------------------------------------------

    @property
    def credentials(self) -> dict:
        """Dummy credentials (boto3 keyword arguments); moto accepts any."""
        return dict(DUMMY_CREDENTIALS)

    def env(self) -> dict[str, str]:
        """Environment variables pointing an S3 client (or a subprocess) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": DUMMY_CREDENTIALS["region_name"],
        }

    def client(self, **config):
        """A boto3 S3 client for this server (path-style addressing, dummy credentials)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=Config(s3={"addressing_style": "path"}, **config),
            **DUMMY_CREDENTIALS,
        )

    def create_bucket(self, name: str) -> str:
        """Create a bucket (no error if it exists already); returns `s3://NAME`."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        return f"s3://{name}"

    def floor(self, n: int = 50, size: int = 1024) -> dict:
        """The server's own time per small GET, nothing injected: median and p90 in ms.

        Measured with a bare HTTP client (one connection per request, as the server closes
        each), so it is the cost of the server, loopback and TCP set-up, not of an SDK.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        bucket, key = "rlmlab-floor", "floor/object.bin"
        self.create_bucket(bucket)
        # public-read, so the bare (unsigned) client below may read it
        self.client().put_object(Bucket=bucket, Key=key, Body=os.urandom(size), ACL="public-read")
        times = []
        for _ in range(n + 3):
            t0 = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("GET", f"/{bucket}/{key}", headers={BYPASS_HEADER: "1"})
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            if response.status != 200 or len(body) != size:
                raise RuntimeError(f"floor GET failed: HTTP {response.status}, {len(body)} bytes")
            times.append((time.perf_counter() - t0) * 1000)
        times = sorted(times[3:])  # the first few warm up moto's code paths
        return {
            "n": n,
            "object_bytes": size,
            "median_ms": statistics.median(times),
            "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
            "min_ms": times[0],
        }

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]


def _readline_with_timeout(stream, timeout: float) -> bytes:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else b""


# --------------------------------------------------------------------------- CLI


def add_commands(subparsers) -> None:
    s3 = subparsers.add_parser("s3", help="the embedded S3 server")
    commands = s3.add_subparsers(dest="s3_command", required=True)
    serve = commands.add_parser("serve", help="run the embedded S3 (moto + injected latency/faults) until Ctrl-C")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    defaults = FaultSettings()
    for name, kind, meaning in (
        ("ttfb_ms", float, "added first-byte latency of each object GET/HEAD, ms"),
        ("jitter_ms", float, "uniform +/- jitter on that latency, ms"),
        ("bandwidth_mbps", float, "per-connection bandwidth cap, megabits/s (default: none)"),
        ("error_rate", float, "share of object reads answered 500 InternalError or 503 SlowDown"),
        ("reset_rate", float, "share of object reads whose connection is reset mid-body"),
        ("slow_rate", float, "share of object reads delayed by --slow-ms more"),
        ("slow_ms", float, "extra delay of a slow response, ms"),
        ("seed", int, "seed of the fault RNG (default: random)"),
    ):
        default = getattr(defaults, name)
        serve.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=default, help=meaning + ("" if default is None else f" (default: {default})")
        )
    serve.add_argument("--bucket", action="append", default=[], help="create this bucket at start (repeatable)")
    serve.set_defaults(func=_serve)


def _serve(args) -> int:
    fields = [f.name for f in dataclasses.fields(FaultSettings)]
    try:
        settings = FaultSettings().replace(**{name: getattr(args, name) for name in fields})
    except ValueError as e:
        print(f"rlmlab s3 serve: {e}", file=sys.stderr)
        return 2
    server = _build_server("127.0.0.1", args.port, settings)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if args.bucket:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint, **DUMMY_CREDENTIALS)
            for bucket in args.bucket:
                client.create_bucket(Bucket=bucket)
        print(f"embedded S3 at {endpoint}  ({settings})")
        print(
            f"export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={DUMMY_CREDENTIALS['aws_access_key_id']} "
            f"AWS_SECRET_ACCESS_KEY={DUMMY_CREDENTIALS['aws_secret_access_key']} AWS_DEFAULT_REGION=us-east-1"
        )
        for bucket in args.bucket:
            print(f"bucket: s3://{bucket}")
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
