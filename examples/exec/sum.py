#!/usr/bin/env python3
"""An exec handler in Python: reads the job's payload as JSON on stdin
(--exec-stdin json), writes its result on stdout, fails with a message on
stderr and a non-zero exit: 65 (EX_DATAERR) for a payload it can never
handle, so the job is dead at once instead of retried.

    jobq-consumer --exec "sum=examples/exec/sum.py" --exec-stdin json --exec-env PATH
    jobq enqueue sum '{"numbers":[1,2,3.5]}' --wait
"""
import json
import os
import sys

job = json.load(sys.stdin)
numbers = job.get("numbers") if isinstance(job, dict) else None
if not isinstance(numbers, list) or not all(isinstance(n, (int, float)) for n in numbers):
    # A bad payload stays bad: exit 65 (EX_DATAERR), the exec handler's
    # permanent failure, rather than 1, which would be retried.
    print("sum: payload must be {\"numbers\": [numbers]}", file=sys.stderr)
    sys.exit(65)
json.dump({"sum": sum(numbers), "job": os.environ["JOBQ_JOB_ID"],
           "attempt": int(os.environ["JOBQ_ATTEMPT"])}, sys.stdout)
