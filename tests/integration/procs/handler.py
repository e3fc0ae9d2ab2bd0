"""A handler process for test_workerproc.py, built on handlers/python's
jobq_handler: each type misbehaves in its own way."""
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "handlers", "python"))
import jobq_handler  # noqa: E402
from jobq_handler import PermanentError, RetryAfter, current, handler, progress, run  # noqa: E402

hog = None
napping = [0]
nap_lock = threading.Lock()


@handler("t.echo")
def echo(payload):
    print("t.echo got", payload)  # must reach stderr, not the protocol
    progress(0.25, "a quarter")  # kept in the result hash
    return {"got": payload, "sum": sum(payload.get("n", [])), "pid": os.getpid()}


@handler("t.fail")
def fail(payload):
    raise ValueError("no luck, attempt %d" % current().attempt)


@handler("t.perm")
def perm(payload):
    raise PermanentError("bad input: %r" % (payload,))


@handler("t.crash")
def crash(payload):
    if current().attempt == 1:
        os._exit(3)
    return "survived"


@handler("t.hang")
def hang(payload):
    time.sleep(3600)


@handler("t.bad")
def bad(payload):
    if current().attempt == 1:
        os.write(jobq_handler._out, struct.pack(">I", 3) + b"\xc1\xc1\xc1")
        time.sleep(3600)
    return "fine"


@handler("t.big")
def big(payload):
    return "x" * payload["n"]


@handler("t.grow")
def grow(payload):
    global hog
    hog = b"x" * (payload["mb"] << 20)  # written: resident
    return os.getpid()


later_calls = [0]


@handler("t.later")
def later(payload):
    later_calls[0] += 1
    if later_calls[0] == 1:
        raise RetryAfter(200, "busy, call again")
    return "later ok"


@handler("t.nap")
def nap(payload):
    with nap_lock:
        napping[0] += 1
        seen = napping[0]
    time.sleep(payload["ms"] / 1000)
    with nap_lock:
        napping[0] -= 1
    return {"seen": seen, "pid": os.getpid()}


@handler("t.fds")
def fds(payload):
    """What this process holds open: the worker's sockets must not be here."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass  # the listing's own descriptor, closed already
    return {"fds": out, "frames": [0, jobq_handler._out]}  # stdin, and stdout's dup


@handler("t.env")
def env(payload):
    return sorted(os.environ)


# The environment is the worker's: the test picks the threads.
run(threads=int(os.environ.get("JQ_TEST_THREADS", "1")))
