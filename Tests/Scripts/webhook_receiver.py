"""A webhook receiver for Sluice's tests: verifies each delivery the way the README tells receivers to.

    python webhook_receiver.py PORT SECRET LOG FAILURES

Every POST is checked (HMAC-SHA256 of "<Webhook-Timestamp>.<raw body>" keyed by SECRET's UTF-8 bytes, compared
in constant time; the timestamp within 5 minutes of now) and appended to LOG as one JSON line: the path, the
event's id and type, whether the signature and timestamp were valid, and the status answered. Path /fail
always answers 500; any other path answers 500 to the first FAILURES attempts of each event id, then 204.
"""

import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRET, LOG, FAILURES = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
attempts = {}


def verify(secret, headers, body):
    """The receiver's check, as in the README."""
    timestamp = headers.get("Webhook-Timestamp", "")
    signature = headers.get("Webhook-Signature", "")
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
    return hmac.compare_digest(expected, signature), fresh


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        valid, fresh = verify(SECRET, self.headers, body)
        event = json.loads(body)
        attempt = attempts.get((self.path, event["id"]), 0) + 1
        attempts[(self.path, event["id"])] = attempt
        status = 500 if self.path == "/fail" or attempt <= FAILURES else 204
        with open(LOG, "a") as log:
            log.write(json.dumps({
                "path": self.path, "id": event["id"], "type": event["type"], "attempt": attempt, "valid": valid,
                "fresh": fresh, "header_id": self.headers.get("Webhook-Id"), "timestamp": self.headers.get("Webhook-Timestamp"),
                "event": event, "status": status,
            }) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
