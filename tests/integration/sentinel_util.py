"""A Redis Sentinel setup of a test's own, on free loopback ports: one
master, replicas started with --replicaof, three sentinels monitoring the
master under one name, each stopped by its pid afterwards."""
import os
import subprocess
import time

import redis as redislib

from conftest import RedisServer, free_port, wait_for


def tls_kw(tls):
    """python3-redis's arguments for a TLS server (tls: as Server's)."""
    return {"ssl": True, "ssl_ca_certs": tls["ca"], "ssl_cert_reqs": "required"} if tls else {}


class Server(RedisServer):
    """A redis-server for a replicated setup: diskless full syncs at once
    (Redis 7 waits 5 s by default), and with master_port a replica of it
    (--replicaof)."""

    def __init__(self, tmpdir, master_port=None, tls=None):
        self.master_port = master_port
        self.tls = tls  # {"ca", "cert", "key"}: TLS only, replication too
        super().__init__(tmpdir)

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no", "--appendonly", "no",
                "--logfile", os.path.join(self.dir, "redis.log"),
                "--repl-diskless-sync-delay", "0"]
        if self.master_port:
            args += ["--replicaof", "127.0.0.1", str(self.master_port)]
        if self.tls:
            args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", self.tls["cert"], "--tls-key-file", self.tls["key"],
                     "--tls-ca-cert-file", self.tls["ca"], "--tls-auth-clients", "no",
                     "--tls-replication", "yes"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._ping, timeout=10, what="redis-server on port %d" % self.port)

    def client(self, **kw):
        return redislib.Redis(port=self.port, **tls_kw(self.tls), **kw)

    def _ping(self):
        try:
            return self.client().ping()
        except (redislib.exceptions.RedisError, OSError):
            return False

    def role(self):
        try:
            return self.client(socket_timeout=2).execute_command("ROLE")[0].decode()
        except redislib.exceptions.RedisError:
            return None

    def synced(self):
        info = self.client().info("replication")
        return info.get("master_link_status") == "up"


class SentinelProc:
    def __init__(self, tmpdir, name, master_port, down_after_ms, password=None, quorum=2,
                 tls=None):
        self.dir = tmpdir
        self.port = free_port()
        self.tls = tls
        conf = os.path.join(tmpdir, "sentinel.conf")
        lines = ["port %d" % self.port, "bind 127.0.0.1", "dir %s" % tmpdir,
                 "logfile %s" % os.path.join(tmpdir, "sentinel.log"),
                 "sentinel monitor %s 127.0.0.1 %d %d" % (name, master_port, quorum),
                 "sentinel down-after-milliseconds %s %d" % (name, down_after_ms),
                 "sentinel failover-timeout %s 5000" % name,
                 "sentinel parallel-syncs %s 1" % name]
        if password:
            lines.append("requirepass %s" % password)
        if tls:
            lines[0] = "port 0\ntls-port %d" % self.port
            lines += ["tls-cert-file %s" % tls["cert"], "tls-key-file %s" % tls["key"],
                      "tls-ca-cert-file %s" % tls["ca"], "tls-auth-clients no",
                      "tls-replication yes"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["redis-server", conf, "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.password = password
        wait_for(self._up, timeout=10, what="sentinel on port %d" % self.port)

    def client(self):
        return redislib.Redis(port=self.port, password=self.password, socket_timeout=2,
                              **tls_kw(self.tls))

    def _up(self):
        try:
            return self.client().ping()
        except (redislib.exceptions.RedisError, OSError):
            return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class SentinelSetup:
    """master + `replicas` replicas + `sentinels` sentinels watching
    `name`. url() is the redis+sentinel:// URL for them all."""

    def __init__(self, tmpdir, name="mymaster", replicas=1, sentinels=3, down_after_ms=1000,
                 sentinel_password=None, quorum=2, tls=None):
        self.name = name
        self.tls = tls
        self.servers = []
        self.master = self._server(tmpdir, "master", None)
        self.replicas = [self._server(tmpdir, "replica%d" % i, self.master.port)
                         for i in range(replicas)]
        for r in self.replicas:
            wait_for(r.synced, timeout=20, what="replica %d in sync" % r.port)
        self.sentinels = []
        for i in range(sentinels):
            d = os.path.join(tmpdir, "sentinel%d" % i)
            os.makedirs(d, exist_ok=True)
            self.sentinels.append(SentinelProc(d, name, self.master.port, down_after_ms,
                                               sentinel_password, quorum, tls))

    def _server(self, tmpdir, sub, master_port):
        d = os.path.join(tmpdir, sub)
        os.makedirs(d, exist_ok=True)
        s = Server(d, master_port, self.tls)
        self.servers.append(s)
        return s

    def url(self, extra=""):
        hosts = ",".join("127.0.0.1:%d" % s.port for s in self.sentinels)
        return "%s://%s/%s%s" % ("rediss+sentinel" if self.tls else "redis+sentinel", hosts,
                                 self.name, extra)

    def master_port(self):
        """The master's port as the first sentinel that answers says."""
        for s in self.sentinels:
            try:
                addr = s.client().execute_command("SENTINEL", "get-master-addr-by-name",
                                                  self.name)
                if addr:
                    return int(addr[1])
            except redislib.exceptions.RedisError:
                continue
        return None

    def server(self, port):
        return next(s for s in self.servers if s.port == port)

    def stop(self):
        for s in self.sentinels:
            s.kill()
        for s in self.servers:
            s.kill()
