#!/usr/bin/env python3
"""An example handler process: two job types in one long-lived Python
process. Run it under jobq (from the repository's root):

    bin/jobq-consumer --proc 'py.noop+greet=python3 examples/handlers/python/handler.py'
    bin/jobq enqueue greet '{"name":"Ada","scores":[3,4,5]}' --wait
"""
import os
import sys

# jobq_handler.py is one file with no dependencies: copy it next to your
# handler, or put its folder on the path as here.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "handlers", "python"))
from jobq_handler import PermanentError, handler, run  # noqa: E402


@handler("py.noop")
def noop(payload):
    return None


@handler("greet")
def greet(payload):
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        raise PermanentError("payload must be {name: str, scores: [numbers]}")
    scores = payload.get("scores") or []
    return {"greeting": "hello " + payload["name"], "total": sum(scores), "count": len(scores)}


if __name__ == "__main__":
    run()
