"""A stand-in app for pod-level tests (Python): the same behaviour and /status format as reader.ts.

It reads every file in its secrets directory and keeps only fingerprints (sha256, 16 hex), never values;
it re-reads on SIGHUP and on POST /reload and reports what it saw on GET /status.
env: APP_SECRETS_DIR (default /var/run/secrets/sidekey), APP_PORT (8080).
"""
import hashlib
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRETS_DIR = os.environ.get("APP_SECRETS_DIR", "/var/run/secrets/sidekey")
LOCK = threading.Lock()
STATUS = {"app": "python", "pid": os.getpid(), "uid": os.getuid(), "loads": 0, "reloads": 0, "reasons": [], "files": {}}


def read_secrets():
    files = {}
    try:
        names = sorted(n for n in os.listdir(SECRETS_DIR) if not n.startswith("."))
    except OSError:
        return files
    for name in names:
        path = os.path.join(SECRETS_DIR, name)
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()[:16]
        stat = os.stat(path)
        files[name] = {"sha256": digest, "mode": format(stat.st_mode & 0o777, "04o"), "uid": stat.st_uid, "gid": stat.st_gid}
    return files


def load(reason):
    with LOCK:
        STATUS["files"] = read_secrets()
        STATUS["loads"] += 1
        if reason != "start":
            STATUS["reloads"] += 1
        STATUS["reasons"].append(reason)
        summary = " ".join(f"{name}:{f['sha256']}" for name, f in STATUS["files"].items())
        print(f"app(python) load #{STATUS['loads']} reason={reason} {summary}", flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/status":
            self.send_error(404)
            return
        with LOCK:
            body = json.dumps(STATUS).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.path != "/reload":
            self.send_error(404)
            return
        load("http")
        self.send_response(200)
        self.send_header("content-length", "9")
        self.end_headers()
        self.wfile.write(b"reloaded\n")

    def log_message(self, *args):
        pass


def main():
    load("start")
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=load, args=("SIGHUP",)).start())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    HTTPServer(("127.0.0.1", int(os.environ.get("APP_PORT", "8080"))), Handler).serve_forever()


if __name__ == "__main__":
    main()
