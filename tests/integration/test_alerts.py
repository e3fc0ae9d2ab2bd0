"""The alert rules shipped for Prometheus (issue 10):
docker/prometheus/alerts.yml passes `promtool check rules`, each rule fires
on the series of alerts_test.yml that should trip it (`promtool test
rules`), and every series the rules use is one that /metrics serves."""
import os
import re
import subprocess

from test_httpd import served  # noqa: F401  (fixture)
from test_metrics import scrape

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DIR = os.path.join(ROOT, "docker", "prometheus")
RULES = os.path.join(DIR, "alerts.yml")


def promtool(*args):
    p = subprocess.run(["promtool"] + list(args), capture_output=True, text=True, cwd=DIR)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_rules_are_valid():
    out = promtool("check", "rules", RULES)
    assert "SUCCESS: 7 rules found" in out


def test_rules_fire_on_their_series():
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_rules_use_only_series_that_metrics_serves(served):
    c, port = served()
    served_names = set(re.findall(r"^# TYPE (\w+) ", scrape(port), re.M))
    text = open(RULES).read()
    used = set(re.findall(r"\b(jobq_\w+)", text)) - {"jobq_"}
    # Histogram and counter names as written in PromQL.
    missing = {n for n in used if n not in served_names}
    assert not missing, missing
    alerts = set(re.findall(r"- alert: (\w+)", text))
    assert {"JobqBacklogGrowing", "JobqDeadJobsRising", "JobqNoLiveWorkers", "JobqHighLoopLag",
            "JobqWorkersRecycledOften"} <= alerts
