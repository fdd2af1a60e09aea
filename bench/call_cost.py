"""What one whole Check costs authz_server, in instructions: CheckRequest bytes in, as
HTTP/2 frames off the socket, to CheckResponse bytes out, through the native front end's
own parsing and encoding (frames, HPACK, gRPC framing, protobuf decode and encode, the
request context, the decision, the dynamic metadata, the decision log line and the
metrics), in process and under callgrind, so that the machine's load cannot move it.

The policy is the full one of the through-Envoy bench: an API with API-key and OAuth2
security, a subscription (Unlimited tier, counted by the throttle stage), a scope on the
secured resource and a backend JWT (ES256, also on the open resource); a key manager
whose key is a certificate (no network), tokens ES256 as the resident key manager signs
them. Cases: `constant` (the same front end answering a constant allow, as
bench/constant_authz.py: the floor of the target ratio), `anonymous` (the open
resource), `api_key`, `api_key_counted` (the same on a subscription tier that counts every
call and sends the RateLimit fields), `jwt_cached`, `jwt_cached_counted`, and `jwt_first_sight` (the verified-token cache off,
the backend-JWT cache at one entry with two tokens taking turns: every call verifies and
signs).

Calls arrive as Envoy sends them on one connection: HEADERS (one HPACK block, indexed
after the first call) and DATA with END_STREAM, a connection WINDOW_UPDATE every 64
calls; the answers are collected, not sent. What stays outside: the event loop's select,
recv and send (the kernel's work and asyncio's few hundred instructions per read).

Each case runs in its own interpreter under `valgrind --tool=callgrind --dump-before=getppid`:
the program calls os.getppid() after its warm-up and again after the measured calls, so the
second dump holds exactly those calls' instructions.

`python -m bench.call_cost [--calls N] [--cases a,b] [--no-callgrind]` prints JSON;
`--profile` prints a cProfile of one case instead (where the Python time goes).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

CASES = ("constant", "anonymous", "api_key", "api_key_counted", "jwt_cached", "jwt_cached_counted",
         "jwt_first_sight")
COUNTING_TIER = "BenchCounting"   # the *_counted cases' subscription tier: 10^12 a month, never reached
CALLS = 2_000
WARM_CALLS = 300
BASE = "/pizzashack/1.0.0"
KEY = "pck_bench-call-cost-key"
CONSUMER_KEY = "pcc_bench-call-cost-client"
ISSUER = "http://127.0.0.1:8081"
SCOPE = "bench:read"
BACKEND_HEADER = "x-jwt-assertion"
CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check"
# What Envoy's ext_authz gRPC client sends (its 200 ms default timeout).
ENVOY_HEADERS = [(":method", "POST"), (":scheme", "http"), (":path", CHECK_PATH), (":authority", "authz_server"),
                 ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "200m"),
                 ("x-envoy-internal", "true")]
_FRAME = struct.Struct(">BHBBI")


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return _FRAME.pack(len(payload) >> 16, len(payload) & 0xFFFF, kind, flags, stream_id) + payload


@dataclass
class Keys:
    token_key: Any        # the key manager's (what signs access tokens)
    backend_key: Any      # authz_server's backend-JWT signing key


def _keys() -> Keys:
    from cryptography.hazmat.primitives.asymmetric import ec

    return Keys(ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1()))


def _world(keys: Keys, tier: str = "Unlimited") -> list:
    from cryptography.hazmat.primitives import serialization
    from jwt.algorithms import ECAlgorithm
    from portcullis.admin.v1 import admin_pb2, key_managers_pb2, throttling_pb2
    from portcullis.sync.v1 import sync_pb2

    from bench.world import api_key_world

    security = admin_pb2.SecuritySchemes(oauth2=admin_pb2.OAuth2Scheme(), api_key=admin_pb2.ApiKeyScheme())
    api = admin_pb2.Api(
        id="api-1", organization_id="default", name="bench", version="1.0.0", context=BASE, base_path=BASE,
        production_endpoint="http://127.0.0.1:8091", sandbox_endpoint="http://127.0.0.1:8092",
        lifecycle_state=admin_pb2.Api.PUBLISHED, security=security,
        resources=[admin_pb2.Resource(method="GET", path="/open", open=True),
                   admin_pb2.Resource(method="GET", path="/menu", scopes=[SCOPE])],
        backend_jwt=admin_pb2.BackendJwtConfig(enabled=True, header=BACKEND_HEADER, validity_seconds=900,
                                               algorithm="ES256", include_on_open_resources=True))
    public_pem = keys.token_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    jwk = dict(ECAlgorithm.to_jwk(keys.backend_key.public_key(), as_dict=True), kid="bk-1", alg="ES256", use="sig")
    private_pem = keys.backend_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
    now = int(time.time())
    policy = throttling_pb2.ThrottlingPolicy
    return [
        *api_key_world(api, KEY, tier),
        policy(id="tp-counting", organization_id="default", name=COUNTING_TIER, kind=policy.SUBSCRIPTION,
               request_count=10**12, unit=policy.MONTH, stop_on_quota_reach=True),
        sync_pb2.KeyManagerRecord(
            id="km-1", organization_id="default", name="Resident", type=key_managers_pb2.KeyManager.OIDC,
            enabled=True, issuer=ISSUER, certificate_pem=public_pem,
            token_handling=key_managers_pb2.TokenHandling(accepts_jwt=True),
            consumer_key_claims=["azp", "client_id"], scopes_claims=["scope", "scp"],
            allowed_algorithms=["ES256", "RS256"], leeway_seconds=30),
        sync_pb2.ApplicationKeyRecord(id="ak-1", organization_id="default", application_id="app-1",
                                      environment=admin_pb2.PRODUCTION, key_manager_id="km-1",
                                      consumer_key=CONSUMER_KEY),
        sync_pb2.BackendSigningKeyRecord(id="bk-1", algorithm="ES256", private_key_pem=private_pem,
                                         public_jwk_json=json.dumps(jwk), not_before_unix=now - 60),
    ]


def _entity(record):
    from portcullis.sync.v1 import sync_pb2

    field = {"Organization": "organization", "Api": "api", "Application": "application",
             "Subscription": "subscription", "ApiKeyRecord": "api_key", "KeyManagerRecord": "key_manager",
             "ApplicationKeyRecord": "application_key", "BackendSigningKeyRecord": "backend_signing_key",
             "ThrottlingPolicy": "throttling_policy"}[type(record).DESCRIPTOR.name]
    return sync_pb2.PolicyEntity(**{field: record})


def _token(keys: Keys, jti: str) -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "alice", "aud": CONSUMER_KEY, "azp": CONSUMER_KEY, "client_id": CONSUMER_KEY,
              "scope": SCOPE, "iat": now, "nbf": now, "exp": now + 3600, "jti": jti}
    return jwt.encode(claims, keys.token_key, algorithm="ES256", headers={"kid": "km-key-1", "typ": "at+jwt"})


def check_request(path: str, headers: dict[str, str]):
    """A CheckRequest shaped like Envoy's (addresses, time, the request's usual headers)."""
    from envoy.service.auth.v3 import external_auth_pb2

    request = external_auth_pb2.CheckRequest()
    attributes = request.attributes
    attributes.source.address.socket_address.address = "127.0.0.1"
    attributes.source.address.socket_address.port_value = 51234
    attributes.destination.address.socket_address.address = "127.0.0.1"
    attributes.destination.address.socket_address.port_value = 8080
    attributes.request.time.seconds = int(time.time())
    http = attributes.request.http
    http.id = "7c1f0b0e-4d3a-4a57-9a3e-0d4f6c1b2a39"
    http.method = "GET"
    http.path = path
    http.host = "127.0.0.1:8080"
    http.scheme = "http"
    http.protocol = "HTTP/1.1"
    http.headers.update({":authority": "127.0.0.1:8080", ":path": path, ":method": "GET", ":scheme": "http",
                         "user-agent": "wrk", "accept": "*/*", "x-forwarded-proto": "http",
                         "x-request-id": http.id, **headers})
    return request


@dataclass
class Case:
    handler: Callable[[bytes], bytes]
    messages: list[bytes]        # CheckRequest bytes, taken in turn
    backend_jwt: bool            # an allow must set the backend JWT header
    close: Callable[[], None]


def build_case(name: str) -> Case:
    """The handler the native front end calls for Check, with its policy and caches ready."""
    if name not in CASES:
        raise ValueError(f"unknown case {name!r}: one of {', '.join(CASES)}")
    from envoy.service.auth.v3 import external_auth_pb2
    from google.rpc import code_pb2, status_pb2

    if name == "constant":
        allow = external_auth_pb2.CheckResponse(status=status_pb2.Status(code=code_pb2.OK),
                                                ok_response=external_auth_pb2.OkHttpResponse()).SerializeToString()
        request = check_request(BASE + "/menu", {"apikey": KEY}).SerializeToString()
        return Case(lambda message: allow, [request], False, lambda: None)

    from authz_server import decision_log
    from authz_server.backend_jwt.cache import BackendJwtCache
    from authz_server.backend_jwt.issuer import BackendJwtIssuer
    from authz_server.check_servicer import AuthorizationService
    from authz_server.frontends import check_handler
    from authz_server.index.policy_index import PolicyIndex
    from authz_server.index.store import PolicyStore
    from authz_server.key_managers.introspection import IntrospectionClient
    from authz_server.key_managers.jwks_cache import JwksCache
    from authz_server.key_managers.services import TokenServices
    from authz_server.key_managers.verified import VerifiedTokenCache
    from authz_server.throttle.limiter import Throttle
    from authz_server.throttle.local_counting import LocalCounters
    from authz_server.throttle.shared_table import SharedTable
    from authz_server.throttle.table_file import shared_counter_table

    keys = _keys()
    store = PolicyStore()
    tier = COUNTING_TIER if name.endswith("_counted") else "Unlimited"
    store.install_snapshot(PolicyIndex.from_snapshot([_entity(record) for record in _world(keys, tier)], 1))
    first_sight = name == "jwt_first_sight"
    tokens = TokenServices(jwks=JwksCache(timeout=1.0, min_refresh_seconds=10.0),
                           introspection=IntrospectionClient(sync_token=lambda: None, timeout=1.0),
                           verified=None if first_sight else VerifiedTokenCache(10_000))
    table_files = shared_counter_table(4096)
    table = SharedTable.open(table_files.__enter__())
    throttle = Throttle(LocalCounters(table), table=table)
    sink = decision_log.DecisionLog(_Discard(), who=" worker-0")   # type: ignore[arg-type]
    decision_log.install(sink)
    service = AuthorizationService(store, tokens=tokens, throttle=throttle,
                                   backend_jwt=BackendJwtIssuer(cache=BackendJwtCache(1 if first_sight else 10_000)))
    if name == "anonymous":
        headers = [{}]
    elif name in ("api_key", "api_key_counted"):
        headers = [{"apikey": KEY}]
    else:
        headers = [{"authorization": f"Bearer {_token(keys, jti)}"}
                   for jti in (("jti-1", "jti-2") if first_sight else ("jti-1",))]
    path = BASE + ("/open" if name == "anonymous" else "/menu")
    messages = [check_request(path, each).SerializeToString() for each in headers]

    def close() -> None:
        throttle.stop()
        tokens.stop()
        decision_log.install(None)
        sink.stop()
        table_files.__exit__(None, None, None)

    return Case(check_handler(service), messages, True, close)


class _Discard:
    """Where the decision lines go (their formatting and batching are measured, not the write)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None: ...


class _Transport:
    """What the connection writes, kept."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class Wire:
    """One HTTP/2 connection of the native front end, fed the frames Envoy would send."""

    def __init__(self, handler: Callable[[bytes], bytes]) -> None:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        from hpack import Encoder

        from authz_server.frontends import CHECK_PATH as SERVED_PATH
        from authz_server.h2grpc.connection import H2GrpcConnection, Limits
        from authz_server.h2grpc.server import ServerCore

        assert SERVED_PATH == CHECK_PATH
        self._loop = asyncio.new_event_loop()
        self._pool = ThreadPoolExecutor(max_workers=1)
        core = ServerCore({CHECK_PATH: handler}, Limits(), self._loop, self._pool, 64)
        self.transport = _Transport()
        self.connection = H2GrpcConnection(core)
        self.connection.connection_made(self.transport)
        self._encoder = Encoder()
        self._stream_id = 1
        self._calls = 0
        # Envoy's preface: SETTINGS (a large stream window), a large connection window, our SETTINGS' ACK.
        settings = struct.pack(">HI", 0x4, 268_435_456) + struct.pack(">HI", 0x3, 2_147_483_647)
        self.connection.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(0x4, 0, 0, settings)
                                      + _frame(0x8, 0, 0, struct.pack(">I", 268_435_456 - 65_535))
                                      + _frame(0x4, 0x1, 0, b""))
        self.transport.written.clear()

    def frames(self, message: bytes) -> bytes:
        """The next call's bytes: HEADERS, DATA with END_STREAM (and a window top-up)."""
        block = self._encoder.encode(ENVOY_HEADERS)
        stream_id, self._stream_id = self._stream_id, self._stream_id + 2
        data = _frame(0x1, 0x4, stream_id, block) + _frame(0x0, 0x1, stream_id, struct.pack(">BI", 0, len(message))
                                                           + message)
        self._calls += 1
        if self._calls % 64 == 0:
            data += _frame(0x8, 0, 0, struct.pack(">I", 64 * 4096))
        return data

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._loop.close()


def answer(written: bytes) -> Any:
    """The CheckResponse in one call's written bytes; AssertionError unless HTTP/2 and gRPC said OK."""
    from envoy.service.auth.v3 import external_auth_pb2
    from hpack import Decoder

    position, message, trailers = 0, None, None
    while position < len(written):
        high, low, kind, flags, _ = _FRAME.unpack_from(written, position)
        length = high << 16 | low
        payload = written[position + 9:position + 9 + length]
        position += 9 + length
        if kind == 0x0:
            message = payload[5:]
        elif kind == 0x1 and flags & 0x1:
            trailers = dict(Decoder().decode(payload))
    assert trailers is not None and trailers.get("grpc-status") == "0", trailers
    assert message is not None, "no message"
    return external_auth_pb2.CheckResponse.FromString(message)


def prepared(name: str, calls: int, warm: int = WARM_CALLS) -> tuple[Callable[[], None], Callable[[], None]]:
    """(run `calls` calls, close) for case `name`, warmed up and checked allowed."""
    case = build_case(name)
    wire = Wire(case.handler)
    feed, written = wire.connection.data_received, wire.transport.written

    def check_last() -> None:
        response = answer(written[-1])
        assert response.status.code == 0, response.denied_response.body
        names = {option.header.key for option in response.ok_response.headers}
        assert not case.backend_jwt or BACKEND_HEADER in names, names
        counted = {option.header.key for option in response.ok_response.response_headers_to_add}
        assert name.endswith("_counted") == ("ratelimit" in counted), counted

    for index in range(warm):
        feed(wire.frames(case.messages[index % len(case.messages)]))
        check_last()
    inputs = [wire.frames(case.messages[index % len(case.messages)]) for index in range(calls)]
    written.clear()

    def run() -> None:
        for data in inputs:
            feed(data)

    def close() -> None:
        assert len(written) == calls, f"{len(written)} writes for {calls} calls"
        check_last()
        wire.close()
        case.close()

    return run, close


_CALLGRIND_PROGRAM = r"""
import os, sys
from bench.call_cost import prepared
run, close = prepared(sys.argv[1], int(sys.argv[2]))
os.getppid()   # callgrind dumps here: start-up and warm-up
run()
os.getppid()   # and here: the measured calls only
close()
"""


def instructions(name: str, calls: int, out: Path) -> int:
    """Instructions (Ir) of `calls` calls of case `name`, start-up and warm-up left out."""
    target = out / f"callgrind.{name}"
    subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=getppid", f"--callgrind-out-file={target}",
                    sys.executable, "-c", _CALLGRIND_PROGRAM, name, str(calls)],
                   check=True, capture_output=True, text=True)
    dumps = sorted(out.glob(f"callgrind.{name}.*"), key=lambda path: int(path.suffix[1:]))
    assert len(dumps) >= 2, f"callgrind wrote {len(dumps)} dumps for {name}"
    match = re.search(r"^summary:\s+(\d+)", dumps[1].read_text(), re.MULTILINE)
    assert match, "no summary line in the callgrind output"
    return int(match.group(1))


def cpu_us(name: str, calls: int) -> float:
    """µs of process CPU per call, without valgrind (moves with the machine's load)."""
    run, close = prepared(name, calls)
    started = time.process_time()
    run()
    elapsed = time.process_time() - started
    close()
    return elapsed / calls * 1e6


def run(calls: int = CALLS, cases: tuple[str, ...] = CASES, with_callgrind: bool = True,
        keep: Path | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {"calls": calls, "cases": {}}
    for name in cases:
        figures["cases"][name] = {"cpu_us_per_call": round(cpu_us(name, calls), 1)}
    if with_callgrind and shutil.which("valgrind") is not None:
        with tempfile.TemporaryDirectory(prefix="portcullis-callgrind-") as tmp:
            out = keep or Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            for name in cases:
                figures["cases"][name]["instructions_per_call"] = round(instructions(name, calls, out) / calls)
        constant = figures["cases"].get("constant", {}).get("instructions_per_call")
        if constant:
            for name, each in figures["cases"].items():
                each["times_constant"] = round(each["instructions_per_call"] / constant, 2)
    return figures


def profile(name: str, calls: int) -> None:
    import cProfile
    import pstats

    run_calls, close = prepared(name, calls)
    profiler = cProfile.Profile()
    profiler.runcall(run_calls)
    close()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.call_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="keep the callgrind files in this folder")
    parser.add_argument("--profile", default=None, help="a cProfile of this case instead")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, args.calls)
        return 0
    cases = tuple(name.strip() for name in args.cases.split(",") if name.strip())
    print(json.dumps(run(args.calls, cases, not args.no_callgrind, args.keep), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
