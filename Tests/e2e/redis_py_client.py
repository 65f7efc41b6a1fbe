"""Drives a running Sluice line server with the stock `redis` package (8.x), default settings.

redis-py 8 opens every connection with HELLO 3 (RESP3), CLIENT SETINFO and CLIENT MAINT_NOTIFICATIONS;
this checks that all of that works, then every command, a pipeline of 1000, all-or-nothing MTAKE, and
error replies. Usage: redis_py_client.py PORT. Exits non-zero with a message on the first failure.
"""
import sys

import redis


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    port = int(sys.argv[1])
    client = redis.Redis(host="127.0.0.1", port=port)  # defaults: protocol 3 in redis-py 8
    check(client.ping() is True, "PING")
    hello = client.execute_command("HELLO", "3")
    check(hello.get(b"proto") == 3 or hello.get("proto") == 3, f"HELLO 3 -> {hello!r}")

    decision = client.execute_command("TAKE", "api", "py:1")
    check(decision == [1, 20, 19, 10, 0], f"TAKE -> {decision!r}")  # 100/s: a token refills in 10 ms
    # login: a sliding window of 5 per minute, so nothing refills while the test runs.
    decision = client.execute_command("TAKE", "login", "py:1", 4)
    check(decision[:3] == [1, 5, 1], f"TAKE cost 4 -> {decision!r}")
    decision = client.execute_command("TAKE", "login", "py:1", 2)
    check(decision[:3] == [0, 5, 1] and decision[4] > 0, f"TAKE cost 2 with 1 left -> {decision!r}")
    client.execute_command("TAKE", "hourly", "py:2")
    check(client.execute_command("PEEK", "hourly", "py:2")[:3] == [1, 3, 1], "PEEK")
    check(client.execute_command("PEEK", "hourly", "py:2")[:3] == [1, 3, 1], "PEEK consumes nothing")
    check(client.execute_command("RESET", "login", "py:1") == 1, "RESET")
    check(client.execute_command("PEEK", "login", "py:1")[:3] == [1, 5, 4], "RESET empties the window")

    pipe = client.pipeline(transaction=False)
    for index in range(1000):
        pipe.execute_command("TAKE", "hourly", f"pipe:{index % 100}")
    results = pipe.execute()
    check(len(results) == 1000, "pipeline length")
    allowed = sum(1 for result in results if result[0] == 1)
    check(allowed == 300, f"pipeline: 100 keys x limit 3 -> 300 allowed, got {allowed}")
    check(all(result[0] == 1 for result in results[:300]), "replies arrive in order")

    # All or nothing: the second check (hourly, exhausted) denies, so the first (api) must not be charged.
    before = client.execute_command("PEEK", "api", "aon")
    multi = client.execute_command("MTAKE", "api", "aon", 1, "hourly", "pipe:0", 1)
    check(multi[0] == 0 and len(multi) == 3, f"MTAKE denied -> {multi!r}")
    after = client.execute_command("PEEK", "api", "aon")
    check(before[2] == after[2], f"MTAKE denied but charged api: {before!r} -> {after!r}")
    multi = client.execute_command("MTAKE", "api", "aon", 2, "login", "aon", 1)
    check(multi[0] == 1 and multi[1][2] >= 18 and multi[2][2] == 4, f"MTAKE allowed -> {multi!r}")

    check(client.execute_command("THROTTLE", "py:inline", 1, "1m")[0] == 1, "THROTTLE first")
    check(client.execute_command("THROTTLE", "py:inline", 1, "1m")[0] == 0, "THROTTLE second")
    shadow = [client.execute_command("TAKE", "daily", "py:shadow")[0] for _ in range(3)]
    check(shadow == [1, 1, 1], f"shadow policy always allows -> {shadow!r}")

    for command, expected in [
        (("TAKE", "nope", "k"), "unknown policy"),
        (("TAKE", "api", "k", 0), "cost must be a positive integer"),
        (("TAKE", "api", "k", -1), "cost must be a positive integer"),
        (("TAKE", "api"), "wrong number of arguments"),
        (("TAKE", "api", "x" * 600), "longer than the limit"),
        (("THROTTLE", "k", 10, "ten"), "not a duration"),
        (("FLUSHALL",), "unknown command"),
    ]:
        try:
            client.execute_command(*command)
            check(False, f"{command!r} should fail")
        except redis.ResponseError as error:
            check(expected in str(error), f"{command!r} -> {error}")
    check(client.ping() is True, "connection still usable after errors")

    info = client.info()
    check(int(info["decisions_allowed"]) > 300, f"INFO -> {info!r}")
    resp2 = redis.Redis(host="127.0.0.1", port=port, protocol=2)
    check(resp2.execute_command("TAKE", "api", "py:resp2")[:3] == [1, 20, 19], "RESP2 client")
    print("redis-py: all checks passed")


if __name__ == "__main__":
    main()
