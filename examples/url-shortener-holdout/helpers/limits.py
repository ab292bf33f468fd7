"""Holdout helper: the size limits of the spec, at their boundaries, against BASE_URL.

canary: ls-canary-url-shortener-5d1c9a7e

Run by an `I run` step (the step sets BASE_URL to the service under test). CON-3: a body of
8192 bytes is read, one of 8193 bytes, 100 KiB or 4 MiB is refused with 413 `body_too_large`
(the client reads the answer), and the service keeps serving; a body that is not UTF-8 is 400
`invalid_json`; HTTP/1.1 connections stay open and a HEAD answer has no body. CON-4: a URL of 2048 characters is accepted, one of 2049 is refused with
400 `invalid_url`. Prints `ok limits` and exits 0, or prints the first failure and exits 1.
"""

import http.client
import json
import os
import sys
from urllib.parse import urlsplit


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


BASE = urlsplit(os.environ.get("BASE_URL") or fail("BASE_URL is not set"))


def post(body):
    conn = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=10)
    try:
        conn.request("POST", "/links", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            fail(f"a {len(body)}-byte body got a non-JSON answer {r.status}: {raw[:80]!r}")
        return r.status, payload
    finally:
        conn.close()


def padded(size, url="https://example.com/pad"):
    """A JSON object of exactly `size` bytes with `url` and a `pad` string."""
    head = json.dumps({"url": url, "pad": ""}).encode()
    body = json.dumps({"url": url, "pad": "x" * (size - len(head))}).encode()
    assert len(body) == size
    return body


def main():
    status, p = post(padded(8192))
    if status != 201:
        fail(f"a body of exactly 8192 bytes answered {status} {p} (CON-3: at most 8 KiB is fine)")
    for size in (8193, 100 * 1024, 4 * 1024 * 1024):
        status, p = post(padded(size))
        if status != 413 or (p or {}).get("error") != "body_too_large":
            fail(f"a body of {size} bytes answered {status} {p}, expected 413 body_too_large")
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    status, p = post(json.dumps({"url": url}).encode())
    if status != 201 or (p or {}).get("url") != url:
        fail(f"a URL of 2048 characters answered {status} (CON-4: at most 2048 is fine)")
    status, p = post(json.dumps({"url": url + "b"}).encode())
    if status != 400 or (p or {}).get("error") != "invalid_url":
        fail(f"a URL of 2049 characters answered {status} {p}, expected 400 invalid_url")
    # Code lengths at the bounds (3 and 32); the service keeps links across trials, so a
    # random 3-character code may be taken already: then another is tried.
    import secrets
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    for length in (3, 32):
        for _ in range(20):
            code = "".join(secrets.choice(alphabet) for _ in range(length))
            status, p = post(json.dumps({"url": "https://example.com/c", "code": code}).encode())
            if status != 409:
                break
        if status != 201 or (p or {}).get("code") != code:
            fail(f"a {length}-character code answered {status} {p}, expected 201 with that code")
    # A Content-Length that is not a non-negative integer is the client's fault: 400, not a 5xx
    # and not a dropped connection (ANTI-3).
    import socket
    for value in ("abc", "-5"):
        with socket.create_connection((BASE.hostname, BASE.port), timeout=10) as sock:
            sock.sendall(f"POST /links HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n".encode())
            head = sock.recv(65536).split(b"\r\n", 1)[0]
        if not head.startswith(b"HTTP/1.1 400"):
            fail(f"Content-Length: {value} answered {head!r}, expected HTTP/1.1 400")
    status, p = post(b"\xff\xfe{}")
    if status != 400 or (p or {}).get("error") != "invalid_json":
        fail(f"a body that is not UTF-8 answered {status} {p}, expected 400 invalid_json")
    # One kept-alive connection: a HEAD answer carries no body and the next answer parses.
    conn = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=10)
    for method in ("HEAD", "GET", "GET"):
        conn.request(method, "/healthz")
        r = conn.getresponse()
        raw = r.read()
        if method == "GET" and (r.status != 200 or json.loads(raw) != {"status": "ok"}):
            fail(f"GET /healthz after {method} on a kept-alive connection answered {r.status} {raw!r}")
        if r.getheader("Connection", "").lower() == "close":
            fail(f"{method} /healthz closed a kept-alive HTTP/1.1 connection")
    conn.close()
    print("ok limits")


if __name__ == "__main__":
    main()
