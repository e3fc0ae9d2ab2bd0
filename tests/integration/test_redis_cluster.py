"""Redis Cluster (issue 24, part 1): libjobq and the jobq command route each
command by its queue's slot. A cluster of three masters of the test's own
(redis_cluster_util.py); what jobq wrote is read back with python3-redis's
RedisCluster, a foreign slot-aware client. (test_cluster.py is the
consumer's cluster of worker processes, another thing.)"""
import subprocess
import threading

import msgpack
import pytest

from conftest import JOBQ, errorstat, jobq, key, scale, stream, wait_for
from redis.cluster import RedisCluster

from redis_cluster_util import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(str(tmp_path_factory.mktemp("rcluster")))
    yield c
    c.stop()


def queues_on_every_master(cluster, n=8, prefix="q"):
    """n queue names (prefix and a number) whose slots fall on all three
    masters (about a third of the names on each)."""
    by_owner = {}
    for i in range(60):
        q = "%s%d" % (prefix, i)
        by_owner.setdefault(cluster.owner(cluster.keyslot(q)).port, []).append(q)
    names = []
    while len(names) < n:
        for owned in by_owner.values():
            if owned and len(names) < n:
                names.append(owned.pop(0))
    return names


def migrate_slot(cluster, slot, src, dst, finish=True):
    """Moves slot from src to dst as redis-cli --cluster reshard does:
    IMPORTING/MIGRATING, MIGRATE of its keys, then (finish) SETSLOT NODE
    on every master."""
    s, d = src.client(), dst.client()
    d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.node_id())
    s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.node_id())
    keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    if keys:
        s.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
    if finish:
        finish_slot(cluster, slot, dst)


def finish_slot(cluster, slot, dst):
    for n in [dst] + [n for n in cluster.nodes if n is not dst]:
        n.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst.node_id())


def test_enqueue_on_every_master_read_back_by_a_foreign_client(cluster):
    rc = cluster.client()
    names = queues_on_every_master(cluster)
    assert len({cluster.owner(cluster.keyslot(q)).port for q in names}) == 3
    ids = {}
    for q in names:
        p = jobq("enqueue", "-q", q, "echo", '{"q":"%s"}' % q, redis_url=cluster.url)
        assert p.returncode == 0, p.stderr
        ids[q] = p.stdout.strip()
    for q in names:
        entries = rc.xrange(stream(q))
        assert [e[0].decode() for e in entries] == [ids[q]], q
        fields = entries[0][1]
        assert fields[b"type"] == b"echo"
        assert q.encode() in fields[b"payload"]
        assert rc.sismember("jobq:queues", q)
    # A plain redis:// URL to one node: the command finds it is a cluster.
    node = cluster.nodes[2]
    p = jobq("stats", "-q", names[0], "--json", redis_url="redis://127.0.0.1:%d" % node.port)
    assert p.returncode == 0, p.stderr
    assert '"queue":"%s","length":1' % names[0] in p.stdout
    # stats over every queue and jobs list on one.
    p = jobq("stats", redis_url=cluster.url)
    assert p.returncode == 0, p.stderr
    for q in names:
        assert any(line.split()[:2] == [q, "1"] for line in p.stdout.splitlines()), p.stdout
    p = jobq("jobs", "list", "-q", names[3], redis_url=cluster.url)
    assert p.returncode == 0, p.stderr
    assert ids[names[3]] in p.stdout
    # A limit (its MULTI on the queue, the queue list apart) and a delayed job.
    p = jobq("limit", "set", names[4], "--rate", "5/s", redis_url=cluster.url)
    assert p.returncode == 0, p.stderr
    assert rc.hget(key("limit", names[4]), "rate") == b"5"
    p = jobq("enqueue", "-q", names[5], "echo", "{}", "--delay", "60000", redis_url=cluster.url)
    assert p.returncode == 0, p.stderr
    assert rc.zcard(key("scheduled", names[5])) == 1


def test_moved_and_ask_are_followed(cluster):
    rc = cluster.client()
    q = "movingq"
    slot = cluster.keyslot(q)
    src = cluster.owner(slot)
    dst = next(n for n in cluster.nodes if n is not src)
    p = jobq("enqueue", "-q", q, "echo", '{"n":1}', redis_url=cluster.url)
    assert p.returncode == 0, p.stderr

    # ASK: the slot half-migrated, its stream already on dst. src answers
    # ASK; the next enqueue lands there after ASKING.
    asks = errorstat(src.client(), "ASK")
    migrate_slot(cluster, slot, src, dst, finish=False)
    p = jobq("enqueue", "-q", q, "echo", '{"n":2}', redis_url=cluster.url)
    assert p.returncode == 0, p.stderr
    assert errorstat(src.client(), "ASK") > asks
    finish_slot(cluster, slot, dst)
    assert dst.client().xlen(stream(q)) == 2

    # MOVED: a waiter started with the slot on dst; the slot moves back to
    # src under it; the result, written there, reaches it.
    p = subprocess.Popen([JOBQ, "--redis", cluster.url, "enqueue", "-q", q, "echo", '{"n":3}',
                          "--wait", "--timeout", "20"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    wait_for(lambda: dst.client().xlen(stream(q)) == 3, what="the third entry on the old owner")
    job_id = dst.client().xrevrange(stream(q), count=1)[0][0].decode()
    moved = errorstat(dst.client(), "MOVED")
    migrate_slot(cluster, slot, dst, src)
    wait_for(lambda: cluster.owner(slot) is src, what="the slot back on its first owner")
    rc = cluster.client()
    rc.hset(key("result", q) + ":" + job_id, mapping={
        "state": "done", "result": msgpack.packb("moved"), "attempts": 1,
        "finished_at": 1, "worker": "test"})
    rc.lpush(key("notify", q) + ":" + job_id, "done")
    out, err = p.communicate(timeout=25)
    assert p.returncode == 0, err
    assert '"state":"done"' in out and '"result":"moved"' in out, out
    assert errorstat(dst.client(), "MOVED") > moved
    assert src.client().xlen(stream(q)) == 3


def enqueue_foreign(rc, q, n, tag):
    """n echo jobs on queue q, XADD by RedisCluster (a foreign client)."""
    ids = []
    for i in range(n):
        jid = "%s-%s-%d" % (tag, q, i)
        rc.xadd(stream(q), {"type": "echo", "enc": "json", "id": jid,
                            "payload": '{"q":"%s","i":%d}' % (q, i)})
        ids.append(jid)
    return ids


def results_done(rc, q, ids):
    return sum(1 for j in ids if rc.hget(key("result", q) + ":" + j, "state") == b"done")


def test_the_consumer_serves_queues_on_every_master(cluster, consumer):
    """One worker, eight queues over three masters: one blocking read per
    slot on the slot's master, each queue's outcomes in its own MULTI on
    its master (PROTOCOL "Redis Cluster")."""
    rc = cluster.client()
    names = queues_on_every_master(cluster, prefix="consq")  # not the queues of the test above
    assert len({cluster.owner(cluster.keyslot(q)).port for q in names}) == 3
    before = enqueue_foreign(rc, names[0], 5, "early")  # waiting before the consumer starts
    c = consumer("--queues", ",".join(names), "--io-concurrency", "8", url=cluster.url)
    ids = {q: enqueue_foreign(rc, q, 12, "j") for q in names}
    ids[names[0]] += before
    for q in names:
        wait_for(lambda: results_done(rc, q, ids[q]) == len(ids[q]), timeout=scale(20),
                 what="every job of %s done" % q)
        res = rc.hget(key("result", q) + ":" + ids[q][3], "result")
        assert msgpack.unpackb(res) == {"q": q, "i": 3}
        # acked and trimmed: nothing pending in the group
        assert rc.xpending(stream(q), "workers")["pending"] == 0, q
    log = c.log()
    assert "CROSSSLOT" not in log and "MOVED" not in log, log
    # the heartbeat's keys, each on its own slot's master
    assert rc.zcard("jobq:workers") == 1
    assert set(names) <= {m.decode() for m in rc.smembers("jobq:queues")}


@pytest.fixture(scope="module")
def cluster6(tmp_path_factory):
    """Three masters, a replica each, a node timeout of one second."""
    c = Cluster(str(tmp_path_factory.mktemp("rcluster6")), replicas=1, node_timeout=1000)
    yield c
    c.stop()


def count_done(rc, jobs):
    """How many of jobs [(queue, id)] have a result hash in state done."""
    p = rc.pipeline()
    for q, j in jobs:
        p.hget(key("result", q) + ":" + j, "state")
    return sum(1 for s in p.execute() if s == b"done")


def test_a_master_killed_under_load_its_replica_takes_over(cluster6, consumer):
    """SIGKILL of the master of a busy queue: its replica is promoted, the
    consumer follows the map to it, and every job ends done (at least
    once: an outcome the dead master took but never replicated is run
    again once its entry is reclaimed)."""
    cl = cluster6
    rc = cl.client()
    names = queues_on_every_master(cl, 6, prefix="foq")
    assert len({cl.owner(cl.keyslot(q)).port for q in names}) == 3
    jobs = []
    p = rc.pipeline()
    for q in names:
        for i in range(100):
            jid = "fo-%s-%d" % (q, i)
            p.xadd(stream(q), {"type": "sleep", "enc": "json", "id": jid, "payload": '{"ms":8}'})
            jobs.append((q, jid))
    p.execute()
    wait_for(cl.synced, what="the replicas to have every entry")
    victim = cl.owner(cl.keyslot(names[0]))
    heir = cl.replica_of(victim)
    url = "redis+cluster://" + ",".join("127.0.0.1:%d" % n.port for n in cl.masters())
    c = consumer("--queues", ",".join(names), "--io-concurrency", "6", "--visibility-ms", "2000",
                 url=url)
    wait_for(lambda: count_done(rc, jobs) >= 100, timeout=scale(20), interval=0.05,
             what="a sixth of the jobs done")
    victim.kill()
    wait_for(lambda: heir.role() == "master", timeout=scale(20), what="the replica promoted")
    wait_for(cl._ok, timeout=scale(20), what="the cluster ok again")
    rc = RedisCluster(host="127.0.0.1", port=heir.port)
    wait_for(lambda: count_done(rc, jobs) == len(jobs), timeout=scale(40), interval=0.3,
             what="every job done after the failover")
    for q in names:
        assert rc.zcard(key("dead", q)) == 0, q
    assert c.proc.poll() is None
    assert "slots moved (to 127.0.0.1:%d" % heir.port in c.log()


def test_a_busy_queue_resharded_under_the_consumer(cluster, consumer, tmp_path):
    """Its slot migrated to another master (IMPORTING/MIGRATING, MIGRATE,
    SETSLOT NODE) while jobs run: ASK, TRYAGAIN and MOVED followed, every
    job done, a chunked payload and a delayed job among them."""
    rc = cluster.client()
    q = "reshq"
    slot = cluster.keyslot(q)
    src = cluster.owner(slot)
    dst = next(n for n in cluster.nodes if n is not src)
    jobs = []
    p = rc.pipeline()
    for i in range(300):
        jid = "rs-%d" % i
        p.xadd(stream(q), {"type": "sleep", "enc": "json", "id": jid, "payload": '{"ms":4}'})
        jobs.append((q, jid))
    p.execute()
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 4096)  # 1 MiB: 4 chunks of 256 KiB
    c = consumer("--queues", q, "--io-concurrency", "4", url=cluster.url)
    wait_for(lambda: count_done(rc, jobs) >= 40, timeout=scale(20), interval=0.05,
             what="some jobs done before the move")
    out = jobq("enqueue", "-q", q, "echo", "@" + str(big), redis_url=cluster.url)
    assert out.returncode == 0, out.stderr
    jobs.append((q, out.stdout.strip()))
    out = jobq("enqueue", "-q", q, "echo", '{"late":1}', "--delay", "1500", redis_url=cluster.url)
    assert out.returncode == 0, out.stderr
    jobs.append((q, out.stdout.strip()))
    migrate_slot(cluster, slot, src, dst)
    rc = cluster.client()
    assert count_done(rc, jobs) < len(jobs)  # moved while busy
    wait_for(lambda: count_done(rc, jobs) == len(jobs), timeout=scale(30), interval=0.3,
             what="every job done after the move")
    assert cluster.owner(slot) is dst and dst.client().exists(stream(q))
    assert rc.zcard(key("dead", q)) == 0
    assert rc.xpending(stream(q), "workers")["pending"] == 0
    assert "moved (to 127.0.0.1:%d" % dst.port in c.log()
