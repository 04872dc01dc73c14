#!/usr/bin/env python3
"""Checks the monitoring overlay (manifests/overlays/monitoring).

1. Extracts .spec of the PrometheusRule (the single source of the rules) into a plain rule file
   and runs `promtool check rules` on it.
2. Runs `promtool test rules` on tests/*.yaml against that file. The tests check labels only:
   they run against a copy of the rules without annotations (promtool would otherwise need every
   annotation's full rendered text); step 1 parses the annotation templates, and step 3 checks
   that every alert has a summary, a description and a runbook.
3. Checks that every alert has at least one test case where it fires and one where it does not.
4. Checks that every metric name used by an alert or recording rule expression and by every
   dashboard query is one the binaries register (AddGauge/AddCounter/AddHistogram and
   AddCallbackGauge/AddCallbackGaugeFamily calls in the C++ sources; a histogram's name also
   with _bucket/_sum/_count). Nothing else is allowed: not `up` (a scrape-health series that
   depends on the Prometheus setup; MeshStorNoOperatorLeader covers an operator that is not
   scraped) nor kube-state-metrics (not part of the install).

Exit status 0 when all pass, 1 with the failures listed otherwise.
Usage: check-monitoring.py [--source DIR] [--rules FILE] [--dashboard FILE] [--tests DIR]
Requires promtool (Debian package prometheus) and PyYAML (python3-yaml): tools/setup-deps.sh.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("check-monitoring: PyYAML is missing; install python3-yaml (tools/setup-deps.sh)")

RULES_FILE = "meshstor-rules.yaml"
# Directories whose C++ sources register the metrics of the shipped binaries.
CODE_DIRS = ["operator", "agent", "csi-shim", "common"]
REGISTER_RE = re.compile(r"\bAdd(Gauge|Counter|Histogram|CallbackGauge|CallbackGaugeFamily)"
                         r"\s*\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan", "atan2",
}


def registered_metrics(source):
    names = set()
    for d in CODE_DIRS:
        for path in glob.glob(os.path.join(source, d, "**", "*.cc"), recursive=True):
            if path.endswith("_test.cc") or "/testing/" in path or "/sim/" in path:
                continue
            with open(path, encoding="utf-8") as f:
                for kind, name in REGISTER_RE.findall(f.read()):
                    if kind == "Histogram":  # exposed only as these three series
                        names.update(name + s for s in ("_bucket", "_sum", "_count"))
                    else:
                        names.add(name)
    return names


def metric_names(expr):
    """Metric names in a PromQL (or Grafana-templated PromQL) expression."""
    lv = re.fullmatch(r"\s*label_values\(\s*(?:([^,]*),)?\s*\w+\s*\)\s*", expr)
    if lv:  # a Grafana variable: label_values(metric-selector, label) or label_values(label)
        return metric_names(lv.group(1)) if lv.group(1) else set()
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "1", e)  # Grafana variables ($__rate_interval, ${node})
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # range and subquery selectors
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\b\d[\w.]*", " ", e)  # numbers and durations (offset 30m)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in KEYWORDS:
            continue  # a function or a keyword
        names.add(word)
    return names


def dashboard_queries(node):
    """Panel target expressions and the queries of "query" template variables."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str) and node["expr"].strip():
            yield node["expr"]
        if node.get("type") == "query" and "query" in node:
            q = node["query"]
            yield q["query"] if isinstance(q, dict) else q
        for v in node.values():
            yield from dashboard_queries(v)
    elif isinstance(node, list):
        for v in node:
            yield from dashboard_queries(v)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    overlay_default = os.path.join(os.path.dirname(here), "manifests", "overlays", "monitoring")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default=os.path.dirname(here), help="repository root")
    p.add_argument("--rules", default=os.path.join(overlay_default, "prometheusrule.yaml"))
    p.add_argument("--dashboard",
                   default=os.path.join(overlay_default, "dashboards", "meshstor.json"))
    p.add_argument("--tests", default=os.path.join(overlay_default, "tests"))
    p.add_argument("--promtool", default=os.environ.get("PROMTOOL", "promtool"))
    args = p.parse_args()

    promtool = shutil.which(args.promtool)
    if promtool is None:
        print(f"check-monitoring: FAIL: {args.promtool} not found; it comes with the Debian "
              "package 'prometheus' (run tools/setup-deps.sh)", file=sys.stderr)
        return 1

    failures = []
    with open(args.rules, encoding="utf-8") as f:
        cr = yaml.safe_load(f)
    if cr.get("kind") != "PrometheusRule" or "groups" not in cr.get("spec", {}):
        print(f"check-monitoring: FAIL: {args.rules} is not a PrometheusRule with spec.groups",
              file=sys.stderr)
        return 1
    spec = cr["spec"]
    rules = [r for g in spec["groups"] for r in g.get("rules", [])]
    alerts = [r["alert"] for r in rules if "alert" in r]

    with tempfile.TemporaryDirectory(prefix="check-monitoring-") as tmp:
        full = os.path.join(tmp, "full", RULES_FILE)
        os.makedirs(os.path.dirname(full))
        with open(full, "w", encoding="utf-8") as f:
            yaml.safe_dump(spec, f, sort_keys=False)
        r = subprocess.run([promtool, "check", "rules", full], capture_output=True, text=True)
        print(r.stdout + r.stderr, end="")
        if r.returncode != 0:
            failures.append("promtool check rules failed")

        # The test copy: same rules without annotations, next to copies of the test files.
        stripped = json.loads(json.dumps(spec))
        for g in stripped["groups"]:
            for rule in g.get("rules", []):
                rule.pop("annotations", None)
        with open(os.path.join(tmp, RULES_FILE), "w", encoding="utf-8") as f:
            yaml.safe_dump(stripped, f, sort_keys=False)
        tests = sorted(glob.glob(os.path.join(args.tests, "*.yaml")))
        if not tests:
            failures.append(f"no promtool tests in {args.tests}")
        fires, quiet = set(), set()
        for t in tests:
            with open(t, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
            if doc.get("rule_files") != [RULES_FILE]:
                failures.append(f"{t}: rule_files must be [{RULES_FILE}]")
            for case in doc.get("tests", []):
                for a in case.get("alert_rule_test", []):
                    (fires if a.get("exp_alerts") else quiet).add(a.get("alertname"))
            shutil.copy(t, tmp)
        if tests:
            r = subprocess.run([promtool, "test", "rules"] + [os.path.basename(t) for t in tests],
                               cwd=tmp, capture_output=True, text=True)
            print(r.stdout + r.stderr, end="")
            if r.returncode != 0:
                failures.append("promtool test rules failed")
        for a in alerts:
            if a not in fires:
                failures.append(f"alert {a} has no test case where it fires")
            if a not in quiet:
                failures.append(f"alert {a} has no test case where it does not fire")
        for a in sorted((fires | quiet) - set(alerts)):
            failures.append(f"tests name alert {a}, which no rule defines")

    for rule in rules:
        if "alert" not in rule:
            continue
        ann = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            if not str(ann.get(key, "")).strip():
                failures.append(f"alert {rule['alert']} has no {key} annotation")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            failures.append(f"alert {rule['alert']} has no severity label")

    known = registered_metrics(args.source)
    if not known:
        failures.append(f"found no registered metrics under {args.source}")
    used = []  # (where, expression)
    for rule in rules:
        used.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    queries = list(dashboard_queries(dashboard))
    if not queries:
        failures.append(f"{args.dashboard} has no queries")
    used += [(f"dashboard {args.dashboard}", q) for q in queries]
    checked = set()
    for where, expr in used:
        for name in sorted(metric_names(expr)):
            checked.add(name)
            if name not in known:
                failures.append(f"{where}: metric {name} is not registered by the binaries")

    print(f"check-monitoring: {len(alerts)} alerts, {len(queries)} dashboard queries, "
          f"{len(checked)} metric names used, {len(known)} registered")
    for f in failures:
        print(f"check-monitoring: FAIL: {f}", file=sys.stderr)
    if failures:
        return 1
    print("check-monitoring: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
