"""deploy/k8s/ checked offline (no cluster runs here, docs/DEPLOY.md
"Kubernetes and KEDA"), and the group's `lag` that KEDA's redis-streams
scaler reads (XINFO GROUPS) kept exact by the trimming of PROTOCOL §6.

The manifests are parsed with PyYAML; the consumer's container arguments
are given to the real bin/jobq-consumer, which must start with them and
answer the probe's path on the probe's port; the ScaledObjects' stream and
group names must be the ones PROTOCOL.md gives; the grace period must
outlast the drain the manifests configure."""
import glob
import os
import re
import subprocess
import time
import urllib.request

import pytest

from conftest import CONSUMER, ROOT, jobq, key, scale, stream, wait_for, wait_result, xadd

K8S = os.path.join(ROOT, "deploy", "k8s")


def lag(r, queue="default", level=""):
    """The group's lag as KEDA's lagCount mode reads it (None: NULL)."""
    for g in r.xinfo_groups(stream(queue) + level):
        if g["name"] == b"workers":
            return g["lag"]
    raise AssertionError("no group workers on %s" % stream(queue))


def test_lag_stays_exact_when_acked_entries_above_a_running_job_are_trimmed(r, redis_server, consumer):
    # A long job (A) pending, a short one (B) done after it, then the queue
    # paused and jobs enqueued: B was the group's last delivered entry.
    # Deleting it (XDEL, the trim's later pass) while jobs wait behind it
    # made Redis answer lag NULL until the next delivery, which a paused
    # queue or busy workers do not make: KEDA saw no backlog.
    consumer("--io-concurrency", "2")
    a = xadd(r, type="sleep", payload={"ms": 3000})
    b = xadd(r, type="noop", payload={})
    assert wait_result(r, b)["state"] == b"done"
    assert jobq("pause", "-q", "default", redis_url=redis_server.url).returncode == 0
    time.sleep(0.3)  # the pause bites within 100 ms (§5)
    waiting = [xadd(r, type="noop", payload={}) for _ in range(5)]
    # The trim's passes run 100 to 200 ms after a batch: give them several.
    for _ in range(6):
        assert lag(r) == 5, "lag %r, XINFO GROUPS %r" % (lag(r), r.xinfo_groups(stream()))
        time.sleep(0.1)
    assert r.xpending(stream(), "workers")["pending"] == 1  # A
    r.delete(key("paused"))
    for j in waiting:
        assert wait_result(r, j)["state"] == b"done"
    assert wait_result(r, a)["state"] == b"done"
    wait_for(lambda: r.xlen(stream()) == 0, timeout=3, what="the stream to empty")
    assert lag(r) == 0


def docs():
    """Every document of deploy/k8s/*.yaml, with the file it came from."""
    yaml = pytest.importorskip("yaml")  # python3-yaml, scripts/deps.sh
    out = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    out.append((os.path.basename(path), d))
    return out


def of_kind(kind):
    return [d for _, d in docs() if d["kind"] == kind]


def consumer_containers():
    """(Deployment, container) of every jobq-consumer container."""
    out = []
    for dep in of_kind("Deployment"):
        for c in dep["spec"]["template"]["spec"]["containers"]:
            if c["image"].split("/")[-1].startswith("jobq-consumer"):
                out.append((dep, c))
    assert out, "no jobq-consumer container in deploy/k8s"
    return out


def opt(args, name, default=None):
    """The value of --name in a container's args (--name=V or --name V)."""
    for i, a in enumerate(args):
        if a.startswith("--%s=" % name):
            return a.split("=", 1)[1]
        if a == "--" + name:
            return args[i + 1]
    return default


def help_options():
    """Option names and environment variables jobq-consumer --help lists."""
    out = subprocess.run([CONSUMER, "--help"], capture_output=True, text=True, timeout=10).stdout
    return set(re.findall(r"^  --([a-z0-9-]+)", out, re.M)), set(re.findall(r"env (JOBQ_[A-Z0-9_]+)", out))


def config_env():
    """The ConfigMap's data, as the Deployment's envFrom gives it."""
    (cm,) = of_kind("ConfigMap")
    return {k: str(v) for k, v in cm["data"].items()}


def test_manifests_parse_and_commit_no_secret():
    kinds = [(f, d["kind"]) for f, d in docs()]
    for f, d in docs():
        assert d.get("apiVersion") and d.get("metadata", {}).get("name"), (f, d)
    assert ("consumer.yaml", "Deployment") in kinds and ("keda-default.yaml", "ScaledObject") in kinds
    assert "Secret" not in [k for _, k in kinds], "the Redis URL's Secret is made with kubectl, never committed"
    for dep, c in consumer_containers():
        refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})]
        assert "JOBQ_REDIS_URL" in [e["name"] for e in c["env"]] and refs


def test_every_container_argument_and_setting_is_a_consumer_option():
    names, envs = help_options()
    assert "metrics-addr" in names and "JOBQ_REDIS_URL" in envs  # the parse works
    for dep, c in consumer_containers():
        assert "command" not in c, "the image's entrypoint is jobq-consumer"
        for a in c["args"]:
            assert a.startswith("--"), a
            assert a[2:].split("=", 1)[0] in names, "%s: not an option of jobq-consumer" % a
        for e in c["env"]:
            if e["name"].startswith("JOBQ_"):
                assert e["name"] in envs, e["name"]
    for k in config_env():
        if k.startswith("JOBQ_"):
            assert k in envs, "ConfigMap key %s is not a jobq-consumer setting" % k


def test_the_consumer_starts_with_the_manifest_args_and_answers_the_probes(redis_server, r, tmpdir_path):
    from conftest import Consumer, free_port
    (dep, c), = consumer_containers()
    args = list(c["args"])
    addr = opt(args, "metrics-addr")
    port = int(addr.rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        g = c[probe]["httpGet"]
        assert ports.get(g["port"], g["port"]) == port, "%s on another port than --metrics-addr" % probe
        assert g["path"] == "/healthz"
    # The same args, on a free port of this machine's loopback (9100 may
    # be taken here), against the test's Redis.
    local = free_port()
    args = [a.replace("--metrics-addr=" + addr, "--metrics-addr=127.0.0.1:%d" % local) for a in args]
    env = {k: v for k, v in config_env().items()}
    env["JOBQ_REDIS_URL"] = redis_server.url
    p = Consumer(redis_server.url, args, tmpdir_path, env=env)
    try:
        def healthz():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (local, c["readinessProbe"]["httpGet"]["path"]),
                                            timeout=2) as resp:
                    return resp.status == 200 and resp.read().decode()
            except OSError:
                assert p.proc.poll() is None, "consumer exited on the manifest's args:\n" + p.log()
                return False
        body = wait_for(healthz, timeout=15, what=lambda: "200 from /healthz; log:\n" + p.log())
        assert body.startswith("ok: redis up")
        # The group the ScaledObjects name is the one the consumer made.
        for q in opt(args, "queues").split(","):
            q = q.split("=")[0].split("/")[0]
            prefix = opt(args, "prefix", "jobq")
            groups = [g["name"].decode() for g in r.xinfo_groups(stream(q, prefix))]
            assert groups == [protocol_group()]
    finally:
        p.stop()
    assert p.proc.returncode == 0, p.log()  # drained on SIGTERM


def protocol_group():
    with open(os.path.join(ROOT, "docs", "PROTOCOL.md")) as f:
        m = re.search(r"The group `([a-z]+)` is created", f.read())
    assert m, "PROTOCOL.md no longer names the group as this test reads it"
    return m.group(1)


def test_scaled_objects_name_the_protocol_streams_and_group_in_lag_mode():
    deps = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    group = protocol_group()
    sos = of_kind("ScaledObject")
    assert sos
    for so in sos:
        dep = deps[so["spec"]["scaleTargetRef"]["name"]]
        (c,) = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "consumer"]
        prefix = opt(c["args"], "prefix", "jobq")
        queues = [q.split("=")[0].split("/")[0] for q in opt(c["args"], "queues").split(",")]
        lagged = set()
        for t in so["spec"]["triggers"]:
            assert t["type"] in ("redis-streams", "redis-cluster-streams"), t
            m = t["metadata"]
            assert m["consumerGroup"] == group
            s = re.fullmatch(re.escape(prefix) + r":\{([^}]+)\}:stream(:high|:low)?", m["stream"])
            assert s and s.group(1) in queues, "%s is no stream of %s" % (m["stream"], queues)
            assert "lagCount" in m or "pendingEntriesCount" in m
            if "lagCount" in m:
                int(m["lagCount"]), int(m["activationLagCount"])
                lagged.add(m["stream"])
            # The address and password KEDA reads from the target's env.
            envs = [e["name"] for e in c["env"]] + list(config_env())
            for k in ("addressFromEnv", "passwordFromEnv"):
                if k in m:
                    assert m[k] in envs, "%s %s is not in the container's environment" % (k, m[k])
        # Each stream of a queue with levels has its own lag trigger.
        for q in queues:
            for level in ("", ":high", ":low"):
                assert "%s:{%s}:stream%s" % (prefix, q, level) in lagged


def test_grace_period_outlasts_prestop_and_drain():
    with open(os.path.join(ROOT, "consumer", "master", "master.c")) as f:
        margin_ms = int(re.search(r"#define KILL_MARGIN_MS (\d+)", f.read()).group(1))
    out = subprocess.run([CONSUMER, "--help"], capture_output=True, text=True, timeout=10).stdout
    default = int(re.search(r"--shutdown-timeout-ms N .*default (\d+)\)", out).group(1))
    for dep, c in consumer_containers():
        spec = dep["spec"]["template"]["spec"]
        drain = int(opt(c["args"], "shutdown-timeout-ms",
                        config_env().get("JOBQ_SHUTDOWN_TIMEOUT_MS", default)))
        pre = c["lifecycle"]["preStop"]["exec"]["command"]
        pre_s = int(pre[1]) if pre[0] == "sleep" else 0
        assert spec["terminationGracePeriodSeconds"] * 1000 > pre_s * 1000 + drain + margin_ms
        # What --workers auto counts: the CPU limit (the cgroup's quota).
        assert opt(c["args"], "workers") == "auto" and c["resources"]["limits"]["cpu"]
