"""TLS to Redis (rediss://, issue 23): a throw-away CA and certificates made
with the `openssl` command, redis-servers that speak TLS only, jobs
enqueued over TLS by python3-redis and by `jobq`, run by a consumer over
TLS; client certificates; the configuration errors (wrong CA, expired
certificate, wrong server name, missing file) that stop the consumer with
exit 2 and their reason; an outage after a good start; and no secret in
any log."""
import json
import os
import socket
import subprocess
import urllib.request

import pytest
import redis as redislib

from conftest import (SANITIZER_MARKERS, Consumer, free_port, jobq, maps_lib, scale, wait_for,
                      wait_result, xadd)

PASSWORD = "tls-s3cret-pw"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_cert(d, name, ca, days="2", san="DNS:localhost,IP:127.0.0.1", cn="localhost"):
    """A key and a certificate signed by ca (a name in d), EC P-256: fast."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".crt", "-days", days, "-extfile", name + ".ext",
            cwd=d)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".crt", "-days", "2", "-subj", "/CN=" + name,
            cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The CA, a server certificate for localhost and 127.0.0.1, an expired
    one, a client certificate, and another CA that signed none of them."""
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_cert(d, "server", "ca")
    make_cert(d, "expired", "ca", days="-1")
    make_cert(d, "client", "ca", san="DNS:jobq-client", cn="jobq-client")
    return lambda name: os.path.join(d, name)


class TlsRedis:
    """A redis-server that speaks TLS only (--port 0), with a password."""

    def __init__(self, d, pki, cert="server", auth_clients="no", port=None):
        self.dir, self.pki = d, pki
        self.port = port or free_port()
        args = ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                "--tls-cert-file", pki(cert + ".crt"), "--tls-key-file", pki(cert + ".key"),
                "--tls-ca-cert-file", pki("ca.crt"), "--tls-auth-clients", auth_clients,
                "--requirepass", PASSWORD, "--dir", d, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", os.path.join(d, "redis-%d.log" % self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, what="redis-server over TLS on port %d" % self.port)

    def answers(self):
        # Not verified: the server may carry the expired certificate.
        try:
            return self.client(socket_timeout=1, ssl_cert_reqs="none").ping()
        except (redislib.exceptions.RedisError, OSError):
            return False

    def client(self, **kw):
        # The client certificate too: a server with --tls-auth-clients yes wants one.
        kw.setdefault("ssl_cert_reqs", "required")
        return redislib.Redis(host="127.0.0.1", port=self.port, password=PASSWORD, ssl=True,
                              ssl_ca_certs=self.pki("ca.crt"), ssl_certfile=self.pki("client.crt"),
                              ssl_keyfile=self.pki("client.key"), **kw)

    def url(self, host="127.0.0.1"):
        return "rediss://:%s@%s:%d" % (PASSWORD, host, self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def tls_redis(tmpdir_path, pki):
    started = []

    def start(**kw):
        s = TlsRedis(tmpdir_path, pki, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def tls_consumer(tmpdir_path):
    """consumer(url, *args, ready=True): a consumer over TLS; stopped after."""
    started = []

    def start(url, *args, ready=True):
        c = Consumer(url, ["--workers", "1"] + list(args), tmpdir_path)
        started.append(c)
        if ready:
            c.wait_log(r"worker \S+ ready")
        return c

    yield start
    for c in started:
        c.stop()
        assert_no_secrets(c.log())


def assert_no_secrets(text):
    """No password or key in a log, nor (under `make check`) a sanitizer's
    report."""
    assert PASSWORD not in text, "the password is in a log"
    assert "PRIVATE KEY" not in text and "BEGIN" not in text, "key material in a log"
    for marker in SANITIZER_MARKERS:
        assert marker not in text, "sanitizer report:\n" + text


def tls_args(pki, *extra):
    return ["--redis-tls-ca", pki("ca.crt")] + list(extra)


def test_jobs_over_tls_from_python_and_jobq(tls_redis, tls_consumer, pki):
    srv = tls_redis()
    r = srv.client()
    port = free_port()
    c = tls_consumer(srv.url(), *tls_args(pki, "--metrics-addr", "127.0.0.1:%d" % port))
    jid = xadd(r, type="echo", enc="json", payload='{"over":"tls"}', notify="1")
    res = wait_result(r, jid)
    assert res["state"] == b"done", res
    # The CLI over TLS too, under the host's name (the certificate has both).
    env = dict(os.environ, JOBQ_REDIS_TLS_CA=pki("ca.crt"))
    out = subprocess.run([os.path.join(os.path.dirname(c.proc.args[0]), "jobq"), "--redis",
                          srv.url("localhost"), "enqueue", "echo", '{"n":7}', "--wait=20"],
                         capture_output=True, text=True, env=env, timeout=scale(30))
    assert out.returncode == 0, out.stderr
    assert '"result":{"n":7}' in out.stdout
    done = jobq("--redis-tls-ca", pki("ca.crt"), "wait", jid, redis_url=srv.url())
    assert done.returncode == 0 and '"state":"done"' in done.stdout, done.stderr
    stats = jobq("--redis-tls-ca", pki("ca.crt"), "stats", "--json", redis_url=srv.url())
    assert stats.returncode == 0, stats.stderr
    assert_no_secrets(out.stderr + done.stderr + stats.stderr)
    # /metrics and the dashboard's API read Redis through libjobq, over TLS too.
    base = "http://127.0.0.1:%d" % port
    metrics = urllib.request.urlopen(base + "/metrics", timeout=scale(15)).read().decode()
    assert "jobq_redis_read_ok 1" in metrics, metrics
    overview = json.loads(urllib.request.urlopen(base + "/api/overview",
                                                 timeout=scale(15)).read())
    assert overview, overview
    # libssl is in the worker of a rediss:// consumer only (dlopen).
    worker = c.worker_pids()[0]
    assert maps_lib(worker, "libssl.so")


def test_plain_tcp_worker_does_not_load_libssl(consumer):
    c = consumer()
    assert not maps_lib(c.worker_pids()[0], "libssl.so")
    assert not maps_lib(c.pid, "libssl.so")


def test_multi_mib_payloads_and_results_over_tls(tls_redis, tls_consumer, pki, tmpdir_path):
    """Partial writes and reads: a 3 MiB inline payload from python3-redis,
    and an 8 MiB one sent chunked by jobq, both echoed back (the 8 MiB
    result as a chunk list)."""
    srv = tls_redis()
    r = srv.client()
    tls_consumer(srv.url(), *tls_args(pki))
    big = os.urandom(3 << 20)
    import msgpack
    jid = xadd(r, type="echo", payload=msgpack.packb(big), notify="1")
    res = wait_result(r, jid, timeout=30)
    assert res["state"] == b"done", res.get("error")
    path = os.path.join(tmpdir_path, "payload.bin")
    data = os.urandom(8 << 20)
    with open(path, "wb") as f:
        f.write(data)
    out_path = os.path.join(tmpdir_path, "result.bin")
    p = jobq("--redis-tls-ca", pki("ca.crt"), "enqueue", "echo", "@" + path, "--wait=60", "--raw",
             "-o", out_path, redis_url=srv.url())
    assert p.returncode == 0, p.stderr
    with open(out_path, "rb") as f:
        assert msgpack.unpackb(f.read()) == data
    if res.get("result") is not None:
        assert msgpack.unpackb(res["result"]) == big


def test_client_certificate_auth(tls_redis, tls_consumer, pki):
    srv = tls_redis(auth_clients="yes")
    # Without a certificate the server refuses the session: a configuration
    # error at start, exit 2, with the server's reason.
    c = tls_consumer(srv.url(), *tls_args(pki), ready=False)
    assert c.wait(20) == 2, c.log()
    assert "refused the TLS session" in c.log(), c.log()
    c = tls_consumer(srv.url(), *tls_args(pki, "--redis-tls-cert", pki("client.crt"),
                                         "--redis-tls-key", pki("client.key")))
    r = srv.client()
    jid = xadd(r, type="echo", enc="json", payload='"with a client certificate"', notify="1")
    assert wait_result(r, jid)["state"] == b"done"
    p = jobq("--redis-tls-ca", pki("ca.crt"), "--redis-tls-cert", pki("client.crt"),
             "--redis-tls-key", pki("client.key"), "wait", jid, redis_url=srv.url())
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("case", ["wrong-ca", "expired", "wrong-name", "missing-file",
                                  "key-without-cert"])
def test_configuration_errors_exit_2_with_their_reason(tls_redis, tls_consumer, pki, case):
    srv = tls_redis(cert="expired" if case == "expired" else "server")
    args, want = {
        "wrong-ca": (["--redis-tls-ca", pki("other-ca.crt")], r"certificate verify failed"),
        "expired": (tls_args(pki), r"certificate verify failed: certificate has expired"),
        "wrong-name": (tls_args(pki, "--redis-tls-server-name", "redis.example.com"),
                       r"hostname mismatch \(the name checked was 'redis.example.com'"),
        "missing-file": (["--redis-tls-ca", pki("nope.crt")],
                         r"cannot read the CA file '.*nope.crt': No such file"),
        "key-without-cert": (tls_args(pki, "--redis-tls-key", pki("client.key")),
                             r"a client certificate needs its key"),
    }[case]
    c = tls_consumer(srv.url(), *args, ready=False)
    assert c.wait(20) == 2, c.log()
    import re
    assert re.search(want, c.log()), c.log()
    assert len(re.findall(want, c.log())) == 1, "said more than once:\n" + c.log()
    # The CLI says the same: 2 for a file, 3 (Redis refused us) otherwise.
    p = jobq(*args, "stats", redis_url=srv.url())
    assert p.returncode == (2 if case in ("missing-file", "key-without-cert") else 3), p.stderr
    assert re.search(want, p.stderr), p.stderr
    assert_no_secrets(p.stderr)


def test_insecure_skips_verification_with_a_warning(tls_redis, tls_consumer, pki):
    srv = tls_redis()
    c = tls_consumer(srv.url(), "--redis-tls-ca", pki("other-ca.crt"), "--redis-tls-insecure")
    assert "--redis-tls-insecure: the Redis server's certificate is NOT verified" in c.log()
    r = srv.client()
    jid = xadd(r, type="echo", enc="json", payload="1", notify="1")
    assert wait_result(r, jid)["state"] == b"done"
    # On a plain URL the TLS options are a mistake, said at once.
    p = jobq("--redis-tls-insecure", "stats", redis_url="redis://127.0.0.1:1")
    assert p.returncode == 2 and "need a rediss:// URL" in p.stderr, p.stderr


def test_a_tls_failure_after_a_good_start_is_an_outage(tls_redis, tls_consumer, pki):
    """The server comes back with an expired certificate: the consumer
    retries (it does not exit), and serves again once the certificate is
    good."""
    srv = tls_redis()
    c = tls_consumer(srv.url(), *tls_args(pki))
    srv.stop()
    bad = tls_redis(cert="expired", port=srv.port)
    c.wait_log(r"TLS refused: certificate verify failed: certificate has expired; retrying",
               timeout=20)
    assert c.proc.poll() is None
    bad.stop()
    good = tls_redis(port=srv.port)
    r = good.client()
    c.wait_log(r"back up", timeout=20)
    jid = xadd(r, type="echo", enc="json", payload='"again"', notify="1")
    assert wait_result(r, jid, timeout=20)["state"] == b"done"


def test_a_server_that_never_answers_the_handshake_times_out(tls_consumer, pki):
    """TCP accepted, not a byte of TLS back: the connect timeout covers the
    handshake. The consumer calls it an outage and retries; jobq gives up
    within its connect timeout (5 s), exit 3."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    url = "rediss://127.0.0.1:%d" % lsock.getsockname()[1]
    try:
        c = tls_consumer(url, *tls_args(pki), ready=False)
        c.wait_log(r"no TLS handshake in 2000 ms; reconnecting", timeout=20)
        assert c.proc.poll() is None
        p = jobq(*tls_args(pki), "stats", redis_url=url, timeout=30)
        assert p.returncode == 3, p.stderr
        assert "no TLS handshake within the connect timeout" in p.stderr, p.stderr
    finally:
        lsock.close()
