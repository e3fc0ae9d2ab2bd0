"""The JSON transform as an exec command (one process per job): the
payload as JSON on stdin (--exec-stdin json), the result on stdout."""
import json
import sys

p = json.load(sys.stdin)
s = p["scores"]
json.dump({"greeting": "hello " + p["name"], "total": sum(s), "count": len(s), "top": max(s)},
          sys.stdout)
