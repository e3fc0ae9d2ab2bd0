"""Helpers shared by the dashboard's API and browser tests: a consumer
serving the dashboard on a free loopback port, HTTP with urllib, and dead
jobs written by hand the way PROTOCOL §4 describes them."""
import json
import time
import urllib.error
import urllib.request

import msgpack
import pytest

from conftest import free_port, key, scale, wait_for

TOKEN = "s3cret-token-for-the-tests-0123"


@pytest.fixture
def dash(consumer):
    """Factory: dash(token=None, *args) starts a consumer whose dashboard
    is on a free port; returns (consumer, base URL)."""
    def start(*args, token=None, **kw):
        port = free_port()
        env = dict(kw.pop("env", {}) or {})
        if token:
            env["JOBQ_ADMIN_TOKEN"] = token
        c = consumer("--metrics-addr", "127.0.0.1:%d" % port, *args, env=env, **kw)
        wait_for(lambda: "http: listening" in c.log(), what="http listening")
        return c, "http://127.0.0.1:%d" % port
    return start


def http(base, path, method="GET", token=None, body=None, headers=None):
    """One request with urllib; returns (status, raw body bytes, headers)."""
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=body, method=method, headers=h)
    if method == "POST" and body is None:
        req.data = b""
    try:
        with urllib.request.urlopen(req, timeout=scale(15)) as r:
            return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}


def api(base, path, method="GET", token=None, want=200):
    """An API call that must answer `want`; returns the decoded JSON."""
    status, raw, hdr = http(base, "/api/" + path, method=method, token=token)
    assert status == want, (path, status, raw)
    assert hdr["content-type"] == "application/json; charset=utf-8"
    return json.loads(raw)


def make_dead(r, jid, type_="echo", payload=None, error="boom", attempt=3, died_at=None, queue="default"):
    """A dead job as PROTOCOL §4 leaves it: its hash and its dead-set entry,
    died a minute ago unless told (the consumer trims dead jobs older than
    --dead-ttl). The payload (any Python value) is msgpack, as producers
    send it."""
    if died_at is None:
        died_at = int(time.time() * 1000) - 60000
    fields = {"type": type_, "attempt": attempt, "error": error, "failed_at": died_at}
    if payload is not None:
        fields["payload"] = msgpack.packb(payload, use_bin_type=True)
    r.hset(key("job:" + jid, queue), mapping=fields)
    r.zadd(key("dead", queue), {jid: died_at})
    r.sadd("jobq:queues", queue)
