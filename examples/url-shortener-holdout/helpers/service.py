"""Holdout helper: checks that need their own copy of the service (restart, Slack hanging or slow).

canary: ls-canary-url-shortener-5d1c9a7e

Run by `I run` steps of the holdout scenarios: `python3 service.py CHECK`. It starts the service
from LIGHTSOUT_WORKTREE (`python3 app.py --port P`) with the environment the check needs, drives
it over HTTP, prints `ok CHECK` and exits 0, or prints what went wrong and exits 1. Standard
library only; every process and socket it opens is closed before it exits.
"""

import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """The service under test on a free port, with `env` added to a clean environment."""

    def __init__(self, env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
        full.update(env)
        wt = os.environ.get("LIGHTSOUT_WORKTREE") or fail("LIGHTSOUT_WORKTREE is not set")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(self.port)],
            cwd=wt, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        while True:
            try:
                if request("GET", self.base + "/healthz", timeout=0.5)[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                fail("the service exited before answering /healthz")
            if time.monotonic() - started > 10:
                self.stop()
                fail("the service did not answer /healthz within 10 s")
            time.sleep(0.02)
        self.startup_s = time.monotonic() - started

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.stderr.close()
        return err


def request(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class FakeSlack:
    """A Slack Web API stand-in: `mode` is `hang` (accept, never answer) or `slow` (answer
    `{"ok": true}` after `delay` s). Records what it received."""

    def __init__(self, mode, delay=0.0):
        self.received = []
        self.stop_event = threading.Event()
        fake = self
        if mode == "hang":
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(16)
            self.port = self.sock.getsockname()[1]
            self.conns = []

            def accept():
                self.sock.settimeout(0.2)
                while not self.stop_event.is_set():
                    try:
                        conn, _ = self.sock.accept()
                        self.conns.append(conn)
                        fake.received.append({"path": "?"})
                    except OSError:
                        continue
            self.thread = threading.Thread(target=accept, daemon=True)
        else:
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n)
                    fake.received.append({
                        "path": self.path,
                        "auth": self.headers.get("Authorization", ""),
                        "body": json.loads(body or b"null"),
                    })
                    time.sleep(delay)
                    out = b'{"ok":true}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)

                def log_message(self, *args):
                    pass

            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self.server.daemon_threads = True
            self.port = self.server.server_address[1]
            self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.thread.start()

    def close(self):
        self.stop_event.set()
        if hasattr(self, "server"):
            self.server.shutdown()
            self.server.server_close()
        else:
            for c in self.conns:
                c.close()
            self.sock.close()


def create(svc, body, timeout=10):
    t0 = time.monotonic()
    status, headers, raw = request("POST", svc.base + "/links", body, timeout=timeout)
    took = time.monotonic() - t0
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = None
    return status, payload, took


def check_restart():
    """DEC-1 and CON-5: links and hits survive a restart with SHORTENER_DB; the base URL comes
    from SHORTENER_BASE; the service starts in under 1 s; no token means no notification and
    still a 201."""
    with tempfile.TemporaryDirectory() as d:
        env = {"SHORTENER_DB": os.path.join(d, "links.db"), "SHORTENER_BASE": "https://sho.rt/"}
        svc = Service(env)
        try:
            # CON-5 allows 1 s; 2 s leaves room for a loaded CI machine (documented margin).
            if svc.startup_s > 2.0:
                fail(f"the service took {svc.startup_s:.2f} s to answer /healthz (CON-5: under 1 s)")
            before = int(time.time())
            status, p, _ = create(svc, {"url": "https://example.com/kept", "code": "kept-1"})
            if status != 201 or not p or p.get("code") != "kept-1":
                fail(f"create with a custom code answered {status} {p}")
            if p.get("short_url") != "https://sho.rt/kept-1":
                fail(f"short_url {p.get('short_url')!r} does not use SHORTENER_BASE")
            for _ in range(3):
                if request("GET", svc.base + "/kept-1")[0] != 302:
                    fail("the link did not redirect before the restart")
        finally:
            svc.stop()
        svc = Service(env)
        try:
            status, _, raw = request("GET", svc.base + "/links/kept-1")
            if status != 200:
                fail(f"after a restart GET /links/kept-1 answered {status}: the link was lost")
            stats = json.loads(raw)
            if stats.get("hits") != 3 or stats.get("url") != "https://example.com/kept":
                fail(f"after a restart the stats are {stats}, expected 3 hits to the same URL")
            created = stats.get("created_at")
            if not isinstance(created, int) or abs(created - before) > 120:
                fail(f"created_at {created!r} is not the creation time in Unix seconds")
            status, h, _ = request("GET", svc.base + "/kept-1")
            if status != 302 or h.get("Location") != "https://example.com/kept":
                fail(f"after a restart GET /kept-1 answered {status} {h.get('Location')}")
            status, p, _ = create(svc, {"url": "https://example.com/other", "code": "kept-1"})
            if status != 409:
                fail(f"after a restart the taken code was accepted again ({status})")
        finally:
            svc.stop()
    print("ok restart")


def check_slack_hangs():
    """CON-2 / ANTI-2: Slack accepts the connection and never answers; the create still answers
    201 within 2.5 s with the link."""
    slack = FakeSlack("hang")
    svc = Service({"SLACK_API_URL": slack.url, "SLACK_TOKEN": "xoxb-hang-test"})
    try:
        status, p, took = create(svc, {"url": "https://example.com/hang"}, timeout=10)
        if status != 201:
            fail(f"create answered {status} while Slack hung")
        if took > 2.5:
            fail(f"create took {took:.2f} s while Slack hung (CON-2: within 2.5 s)")
        if not slack.received:
            fail("the service never called Slack")
        if not p or len(p.get("code", "")) != 7:
            fail(f"the link created while Slack hung has no 7-character code: {p}")
    finally:
        svc.stop()
        slack.close()
    print("ok slack-hangs")


def check_slack_slow():
    """DEC-2 / CON-2: Slack answering in 1.2 s is waited for (the call is synchronous and times
    out only after 2 s); defaults: channel `general`; the token is sent as a Bearer token."""
    slack = FakeSlack("slow", delay=1.2)
    svc = Service({"SLACK_API_URL": slack.url + "/", "SLACK_TOKEN": "xoxb-slow-test"})
    try:
        status, p, took = create(svc, {"url": "https://example.com/slow?a=1"}, timeout=10)
        if status != 201:
            fail(f"create answered {status} while Slack was slow")
        if took < 1.1:
            fail(f"create answered in {took:.2f} s: it did not wait for Slack (DEC-2: synchronous)")
        if took > 2.5:
            fail(f"create took {took:.2f} s (CON-2: within 2.5 s)")
        if len(slack.received) != 1:
            fail(f"Slack received {len(slack.received)} calls, expected 1")
        call = slack.received[0]
        if call["path"] != "/api/chat.postMessage":
            fail(f"Slack was called at {call['path']}")
        if call["auth"] != "Bearer xoxb-slow-test":
            fail("the token was not sent as `Authorization: Bearer`")
        body = call["body"] or {}
        if body.get("channel") != "general":
            fail(f"channel {body.get('channel')!r}, expected the default `general`")
        text = body.get("text", "")
        if p["short_url"] not in text or "https://example.com/slow?a=1" not in text:
            fail(f"the message text {text!r} lacks the short or the target URL")
        err = svc.stop()
        if "xoxb-slow-test" in err:
            fail("the service logged the token (ANTI-4)")
    finally:
        if svc.proc.poll() is None:
            svc.stop()
        slack.close()
    print("ok slack-slow")


CHECKS = {"restart": check_restart, "slack-hangs": check_slack_hangs, "slack-slow": check_slack_slow}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        fail(f"usage: service.py {'|'.join(CHECKS)}")
    CHECKS[sys.argv[1]]()
