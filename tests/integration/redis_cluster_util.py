"""A Redis Cluster of a test's own: N masters (and a replica each, when
asked) on free
loopback ports, cluster-enabled, joined by `redis-cli --cluster create`,
each stopped by its pid afterwards."""
import os
import random
import socket
import subprocess

import redis as redislib
from redis.cluster import RedisCluster

from conftest import RedisServer, wait_for


def cluster_port():
    """A free loopback port whose cluster bus port (10000 higher, so at
    most 55535) is free too."""
    for _ in range(200):
        port = random.randint(20000, 55535)
        try:
            for p in (port, port + 10000):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                s.close()
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class Node(RedisServer):
    """One cluster node: its own nodes.conf, a short node timeout."""

    def __init__(self, tmpdir, node_timeout=2000):
        self.dir = tmpdir
        self.node_timeout = node_timeout
        self.aof = False
        self.port = cluster_port()
        self.proc = None
        self.start()

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no", "--appendonly", "no",
                "--logfile", os.path.join(self.dir, "redis.log"),
                "--cluster-enabled", "yes",
                "--cluster-config-file", os.path.join(self.dir, "nodes.conf"),
                "--cluster-node-timeout", str(self.node_timeout)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._ping, timeout=10, what="redis-server on port %d" % self.port)

    def _ping(self):
        try:
            return self.client().ping()
        except (redislib.exceptions.RedisError, OSError):
            return False

    def role(self):
        return self.client().info("replication")["role"]

    def node_id(self):
        return self.client().execute_command("CLUSTER", "MYID").decode()


class Cluster:
    def __init__(self, tmpdir, masters=3, replicas=0, node_timeout=2000):
        self.nodes = []
        try:
            for i in range(masters * (1 + replicas)):
                d = os.path.join(tmpdir, "node%d" % i)
                os.makedirs(d)
                self.nodes.append(Node(d, node_timeout))
            subprocess.run(["redis-cli", "--cluster", "create"] +
                           ["127.0.0.1:%d" % n.port for n in self.nodes] +
                           ["--cluster-replicas", str(replicas), "--cluster-yes"],
                           check=True, capture_output=True, timeout=30)
            wait_for(self._ok, timeout=15, what="the cluster to be ok on every node")
        except Exception:
            self.stop()
            raise

    def _ok(self):
        for n in self.live():
            info = n.client().execute_command("CLUSTER", "INFO").decode()
            if "cluster_state:ok" not in info:
                return False
        return True

    def live(self):
        return [n for n in self.nodes if n.proc.poll() is None]

    def masters(self):
        return [n for n in self.live() if n.role() == "master"]

    def replica_of(self, master):
        mid = master.node_id()
        for n in self.live():
            if n is not master and n.role() == "slave" and \
                    n.client().info("replication").get("master_port") == master.port:
                return n
        raise AssertionError("no replica of %d (%s)" % (master.port, mid))

    def synced(self):
        """Every live replica has all its master's writes."""
        for n in self.live():
            info = n.client().info("replication")
            if info["role"] == "slave":
                m = next(x for x in self.live() if x.port == info["master_port"])
                if m.client().info("replication")["master_repl_offset"] != \
                        info.get("slave_repl_offset"):
                    return False
        return True

    @property
    def url(self):
        return "redis+cluster://" + ",".join("127.0.0.1:%d" % n.port for n in self.nodes[:2])

    def client(self):
        """python3-redis's RedisCluster: a foreign, slot-aware client."""
        return RedisCluster(host="127.0.0.1", port=self.live()[0].port)

    def keyslot(self, key):
        return self.live()[0].client().execute_command("CLUSTER", "KEYSLOT", key)

    def owner(self, slot):
        """The node that serves slot."""
        for n in self.live():
            for lo, hi in self._ranges(n):
                if lo <= slot <= hi:
                    return n
        return None

    def _ranges(self, n):
        me = n.node_id()
        out = []
        for row in n.client().execute_command("CLUSTER", "SLOTS"):
            if row[2][2].decode() == me:
                out.append((row[0], row[1]))
        return out

    def stop(self):
        for n in self.nodes:
            n.kill()
