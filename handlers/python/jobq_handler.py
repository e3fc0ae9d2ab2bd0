"""jobq handler processes in Python: one file, no dependency but Python 3.

    from jobq_handler import handler, run, PermanentError

    @handler("resize")
    def resize(payload):
        if "w" not in payload:
            raise PermanentError("payload needs w")   # dead at once, no retry
        return {"w": payload["w"] // 2}              # the job's result

    run()

and `jobq-consumer --proc 'resize=python3 /path/to/this_script.py'`. Each
worker keeps the script running and sends it the jobs of the types it
names; the function gets the payload (msgpack or JSON, decoded) and its
return value is the result. An exception fails the attempt (retried while
the job has attempts left), PermanentError fails the job for good.
RetryAfter(ms) retries it after ms without using an attempt.
`current()` is the running job (id, type, queue, attempt, deadline_ms),
`progress(fraction, message)` reports how far it is. Jobs run one at a time, in the order
they come, unless run(threads=N) runs N at once on threads.

stdin and stdout carry the frames of docs/HANDLERS.md: this module moves
sys.stdout (and fd 1) to stderr before anything else runs, so a print() in
a handler goes to jobq's log instead of breaking the protocol.
"""
import os
import struct
import sys
import threading
import traceback

__all__ = ["handler", "run", "PermanentError", "RetryAfter", "current", "progress", "packb",
           "unpackb"]

PROTOCOL = 1


class PermanentError(Exception):
    """Raised by a handler: the job is dead at once, never retried."""


class RetryAfter(Exception):
    """Raised by a handler: try the job again after ms milliseconds (rate
    limited, say), without using an attempt; jobq reads the queue no more
    for that long."""

    def __init__(self, ms, message="retry later"):
        super().__init__(message)
        self.ms = int(ms)


# ---- msgpack, the subset jobq uses ----

def _head(n, fix, fixmax, c8, c16, c32):
    """The header of a str, bin, array or map of n items: the fix form
    below fixmax, else the 8 (when c8), 16 or 32-bit length."""
    if n < fixmax:
        return bytes((fix | n,))
    if c8 and n < 1 << 8:
        return bytes((c8, n))
    if n < 1 << 16:
        return bytes((c16,)) + struct.pack(">H", n)
    return bytes((c32,)) + struct.pack(">I", n)


def _pack(o, out):
    if o is None:
        out.append(b"\xc0")
    elif o is True:
        out.append(b"\xc3")
    elif o is False:
        out.append(b"\xc2")
    elif isinstance(o, int):
        if 0 <= o < 0x80:
            out.append(bytes((o,)))
        elif -32 <= o < 0:
            out.append(struct.pack(">b", o))
        elif 0 <= o < 1 << 64:
            out.append(b"\xcf" + struct.pack(">Q", o))
        elif -(1 << 63) <= o < 0:
            out.append(b"\xd3" + struct.pack(">q", o))
        else:
            raise ValueError("integer out of msgpack's range: %d" % o)
    elif isinstance(o, float):
        out.append(b"\xcb" + struct.pack(">d", o))
    elif isinstance(o, str):
        b = o.encode("utf-8")
        out.append(_head(len(b), 0xa0, 32, 0xd9, 0xda, 0xdb))
        out.append(b)
    elif isinstance(o, (bytes, bytearray, memoryview)):
        b = bytes(o)
        out.append(_head(len(b), 0, 0, 0xc4, 0xc5, 0xc6))
        out.append(b)
    elif isinstance(o, (list, tuple)):
        out.append(_head(len(o), 0x90, 16, 0, 0xdc, 0xdd))
        for v in o:
            _pack(v, out)
    elif isinstance(o, dict):
        out.append(_head(len(o), 0x80, 16, 0, 0xde, 0xdf))
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise TypeError("cannot encode %s as msgpack" % type(o).__name__)


def packb(o):
    """o as msgpack bytes (None, bool, int, float, str, bytes, list, dict)."""
    out = []
    _pack(o, out)
    return b"".join(out)


_FIXED = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b", 0xd1: ">h", 0xd2: ">i",
          0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
_LEN = {0xc4: ">B", 0xc5: ">H", 0xc6: ">I", 0xd9: ">B", 0xda: ">H", 0xdb: ">I",
        0xdc: ">H", 0xdd: ">I", 0xde: ">H", 0xdf: ">I"}


def _unpack(b, i):
    c = b[i]
    i += 1
    if c < 0x80:
        return c, i
    if c >= 0xe0:
        return c - 0x100, i
    if 0xa0 <= c <= 0xbf:
        n = c & 0x1f
        return b[i:i + n].decode("utf-8"), i + n
    if 0x90 <= c <= 0x9f:
        return _unpack_array(b, i, c & 0x0f)
    if 0x80 <= c <= 0x8f:
        return _unpack_map(b, i, c & 0x0f)
    if c == 0xc0:
        return None, i
    if c == 0xc2:
        return False, i
    if c == 0xc3:
        return True, i
    if c in _FIXED:
        f = _FIXED[c]
        return struct.unpack_from(f, b, i)[0], i + struct.calcsize(f)
    if c in _LEN:
        f = _LEN[c]
        n = struct.unpack_from(f, b, i)[0]
        i += struct.calcsize(f)
        if c <= 0xc6:
            return bytes(b[i:i + n]), i + n
        if c <= 0xdb:
            return b[i:i + n].decode("utf-8"), i + n
        if c <= 0xdd:
            return _unpack_array(b, i, n)
        return _unpack_map(b, i, n)
    raise ValueError("msgpack type 0x%02x is not supported" % c)


def _unpack_array(b, i, n):
    a = []
    for _ in range(n):
        v, i = _unpack(b, i)
        a.append(v)
    return a, i


def _unpack_map(b, i, n):
    m = {}
    for _ in range(n):
        k, i = _unpack(b, i)
        v, i = _unpack(b, i)
        m[k] = v
    return m, i


def unpackb(b):
    """The value msgpack bytes b hold (all of b)."""
    v, i = _unpack(b, 0)
    if i != len(b):
        raise ValueError("%d bytes after the msgpack value" % (len(b) - i))
    return v


# ---- the process ----

_handlers = {}
_local = threading.local()  # .job: the job this thread runs
_out = None
_write_lock = threading.Lock()


def handler(type_name):
    """Decorator: the function runs the jobs of type type_name."""
    def register(fn):
        _handlers[type_name] = fn
        return fn
    return register


class Job:
    """The job a handler runs: id, type, queue, attempt (1 for the first),
    deadline_ms (Unix ms at which jobq times it out) and payload."""
    __slots__ = ("seq", "id", "type", "queue", "attempt", "deadline_ms", "payload")

    def __init__(self, f):
        self.seq = f["seq"]
        self.id = f.get("id")
        self.type = f.get("type")
        self.queue = f.get("queue")
        self.attempt = f.get("attempt")
        self.deadline_ms = f.get("deadline_ms")
        self.payload = f.get("payload")


def current():
    """The job running now (a Job), or None."""
    return getattr(_local, "job", None)


def _send(frame):
    body = packb(frame)
    data = struct.pack(">I", len(body)) + body
    with _write_lock:
        while data:
            n = os.write(_out, data)
            data = data[n:]


def progress(fraction, message=None):
    """Reports how far the running job is (0.0 to 1.0, and a short text):
    jobq keeps the latest in the job's result hash while it runs."""
    job = current()
    if job is not None:
        _send({"op": "progress", "seq": job.seq, "fraction": float(fraction), "message": message})


def _run_job(f):
    job = Job(f)
    fn = _handlers.get(job.type)
    _local.job = job
    try:
        if fn is None:
            raise PermanentError("this process has no handler for type %r" % job.type)
        result = fn(job.payload)
        try:
            reply = {"op": "result", "seq": job.seq, "result": result}
            packb(reply)
        except (TypeError, ValueError) as e:
            raise TypeError("the result cannot be sent: %s" % e)
    except PermanentError as e:
        reply = {"op": "error", "seq": job.seq, "error": str(e), "permanent": True}
    except RetryAfter as e:
        reply = {"op": "error", "seq": job.seq, "error": str(e), "retry_after_ms": max(1, e.ms)}
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        reply = {"op": "error", "seq": job.seq, "error": "%s: %s" % (type(e).__name__, e),
                 "permanent": False}
    finally:
        _local.job = None
    _send(reply)


def _frames(fd):
    """The frames read from fd, decoded, until its end."""
    buf = bytearray()
    while True:
        while len(buf) >= 4:
            n = struct.unpack_from(">I", buf)[0]
            if len(buf) < 4 + n:
                break
            frame = unpackb(bytes(buf[4:4 + n]))
            del buf[:4 + n]
            yield frame
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buf += chunk


def run(threads=1):
    """Says hello with the registered types, then runs jobs until stdin
    ends (jobq closes it to recycle the process). threads > 1 runs that
    many jobs at once on threads (for handlers that wait on I/O; the GIL
    keeps CPU work to one at a time): a job jobq cancels (its timeout)
    cannot be stopped on its thread, so the process is killed after 1 s,
    and the other jobs it holds are retried."""
    global _out
    if not _handlers:
        raise RuntimeError("no @handler registered")
    # Frames go to a copy of fd 1; fd 1 itself (and sys.stdout) become
    # stderr, so that nothing else can write into the protocol.
    sys.stdout.flush()
    _out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _send({"op": "hello", "protocol": PROTOCOL, "types": sorted(_handlers),
           "max_inflight": threads})
    pool = None
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(threads)
    for f in _frames(0):
        if f.get("op") != "job":
            # A cancel: with one thread it comes only between jobs, once
            # the job it names has been answered.
            continue
        if pool:
            pool.submit(_run_job, f)
        else:
            _run_job(f)
    if pool:
        pool.shutdown(wait=True)
