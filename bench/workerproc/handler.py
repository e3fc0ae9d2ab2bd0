"""bench/workerproc.py's Python handler process: noop and the JSON
transform, on handlers/python/jobq_handler.py."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "handlers", "python"))
from jobq_handler import handler, run  # noqa: E402


@handler("py.noop")
def noop(payload):
    return None


@handler("py.transform")
def transform(p):
    scores = p["scores"]
    return {"greeting": "hello " + p["name"], "total": sum(scores), "count": len(scores),
            "top": max(scores)}


run()
