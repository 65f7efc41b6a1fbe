"""Drives Sluice's gRPC rate limit service with the stock grpcio client, as Envoy would.

usage: rls_client.py PORT PROTO_DIR
Stubs are generated at run time from PROTO_DIR/rls.proto (the proto the Swift code is generated from).
Expects the configuration the Swift test writes (domain "e2e": user 2/minute named per-user, path=/pay 1/hour,
internal unlimited; response_headers and ietf_headers on; max_descriptors 8). Prints "ok" and exits 0, or
fails with an assertion naming what differed.
"""
import os
import socket
import sys
import tempfile

import grpc
from grpc_tools import protoc

port, proto_dir = int(sys.argv[1]), sys.argv[2]
out = tempfile.mkdtemp(prefix="sluice-rls-py-")
includes = os.path.join(os.path.dirname(protoc.__file__), "_proto")
status = protoc.main(["protoc", f"-I{proto_dir}", f"-I{includes}", f"--python_out={out}", f"--grpc_python_out={out}", "rls.proto"])
assert status == 0, f"protoc failed: {status}"
sys.path.insert(0, out)
import rls_pb2  # noqa: E402
import rls_pb2_grpc  # noqa: E402

from google.protobuf import wrappers_pb2  # noqa: E402

Response = rls_pb2.RateLimitResponse
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
stub = rls_pb2_grpc.RateLimitServiceStub(channel)


def descriptor(*pairs, hits=None):
    d = rls_pb2.RateLimitDescriptor(entries=[rls_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in pairs])
    if hits is not None:
        d.hits_addend.CopyFrom(wrappers_pb2.UInt64Value(value=hits))
    return d


def ask(*descriptors, domain="e2e", hits=0):
    return stub.ShouldRateLimit(rls_pb2.RateLimitRequest(domain=domain, descriptors=list(descriptors), hits_addend=hits), timeout=5)


def codes(response):
    return [s.code for s in response.statuses]


def headers(response):
    return {h.key: h.value for h in response.response_headers_to_add}


# One descriptor: its limit, what remains, when it resets; the most restrictive status's headers.
r = ask(descriptor(("user", "alice")))
assert r.overall_code == Response.OK, r
s = r.statuses[0]
assert s.code == Response.OK and s.current_limit.requests_per_unit == 2, s
assert s.current_limit.unit == Response.RateLimit.MINUTE and s.current_limit.name == "per-user", s
assert s.limit_remaining == 1, s
assert 1 <= s.duration_until_reset.seconds <= 60, s
h = headers(r)
assert h["x-ratelimit-limit"] == "2" and h["x-ratelimit-remaining"] == "1", h
assert 1 <= int(h["x-ratelimit-reset"]) <= 60, h
assert h["ratelimit-policy"] == '"per-user";q=2;w=60', h
assert h["ratelimit"].startswith('"per-user";r=1;t='), h

# All or nothing: over any limit, no descriptor is charged.
r = ask(descriptor(("user", "bob")), descriptor(("path", "/pay")))
assert r.overall_code == Response.OK and codes(r) == [Response.OK, Response.OK], r
r = ask(descriptor(("user", "carol")), descriptor(("path", "/pay")))
assert r.overall_code == Response.OVER_LIMIT and codes(r) == [Response.OK, Response.OVER_LIMIT], r
assert r.statuses[0].limit_remaining == 2, f"carol was not charged: {r.statuses[0]}"
assert headers(r)["x-ratelimit-remaining"] == "0", headers(r)
assert [ask(descriptor(("user", "carol"))).overall_code for _ in range(3)] == [Response.OK, Response.OK, Response.OVER_LIMIT]

# hits_addend: the request's (0 means 1), a descriptor's own over it, 0 on a descriptor checks only.
r = ask(descriptor(("user", "dave")), hits=2)
assert r.statuses[0].limit_remaining == 0, r
assert ask(descriptor(("user", "dave"))).overall_code == Response.OVER_LIMIT
r = ask(descriptor(("user", "erin"), hits=0))
assert r.overall_code == Response.OK and r.statuses[0].limit_remaining == 2, r
r = ask(descriptor(("user", "erin"), hits=2), hits=1)
assert r.statuses[0].limit_remaining == 0, r

# Unlimited, unmatched, unknown domain.
r = ask(descriptor(("internal", "svc")), descriptor(("nothing", "here")))
assert r.overall_code == Response.OK, r
assert r.statuses[0].limit_remaining == 4294967295 and not r.statuses[0].HasField("current_limit"), r
assert not r.statuses[1].HasField("current_limit"), r
r = ask(descriptor(("user", "frank")), domain="elsewhere")
assert r.overall_code == Response.OK and not r.statuses[0].HasField("current_limit"), r

# Bad requests: a clear status each, and the service keeps serving.
for request, code, text in [
    (rls_pb2.RateLimitRequest(domain="", descriptors=[descriptor(("user", "x"))]), grpc.StatusCode.INVALID_ARGUMENT, "domain must not be empty"),
    (rls_pb2.RateLimitRequest(domain="e2e"), grpc.StatusCode.INVALID_ARGUMENT, "descriptor list must not be empty"),
    (rls_pb2.RateLimitRequest(domain="e2e", descriptors=[descriptor(("user", "x"))] * 9), grpc.StatusCode.RESOURCE_EXHAUSTED, "9 descriptors, at most 8"),
]:
    try:
        stub.ShouldRateLimit(request, timeout=5)
        raise AssertionError(f"accepted: {text}")
    except grpc.RpcError as error:
        assert error.code() == code and text in error.details(), (error.code(), error.details())

# Garbage on the port closes that connection only.
with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
    raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 64)
    raw.settimeout(5)
    try:
        while raw.recv(65536):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
assert ask(descriptor(("user", "grace"))).overall_code == Response.OK

print("ok")
