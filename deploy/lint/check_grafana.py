"""Checks deploy/grafana/mediahost.json: the fields Grafana needs to import a dashboard, and that
every metric a query names is one the host exposes at /metrics (names taken from host/src)."""

import json
import re
import sys
from pathlib import Path

HISTOGRAMS = {"mediahost_job_queue_wait_seconds", "mediahost_job_run_seconds"}


def exposed(host_src):
    names = set()
    for path in Path(host_src).rglob("*.rs"):
        names.update(re.findall(r"\bmediahost_[a-z_]+[a-z]\b", path.read_text()))
    # Histogram families are rendered as _bucket, _sum and _count.
    for family in HISTOGRAMS & names:
        names.update({family + "_bucket", family + "_sum", family + "_count"})
    return names


def main(path, host_src):
    errors = []
    dash = json.load(open(path))
    for field, kind in [("title", str), ("uid", str), ("panels", list), ("schemaVersion", int),
                        ("time", dict), ("templating", dict)]:
        if not isinstance(dash.get(field), kind):
            errors.append(f"{path}: no {field} ({kind.__name__})")
    if errors:
        return errors
    names = exposed(host_src)
    variables = {v.get("name") for v in dash["templating"].get("list", [])}
    ids = set()
    for panel in dash["panels"]:
        where = f"{path}: panel {panel.get('id')} {panel.get('title')!r}"
        for field in ("id", "type", "title", "gridPos", "targets", "datasource"):
            if field not in panel:
                errors.append(f"{where}: no {field}")
        if panel.get("id") in ids:
            errors.append(f"{where}: id used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "xywh") or grid.get("x", 0) + grid.get("w", 0) > 24:
            errors.append(f"{where}: gridPos needs integer x, y, w, h within 24 columns")
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            if not expr or "refId" not in target:
                errors.append(f"{where}: a target without expr or refId")
            for name in re.findall(r"\bmediahost_[a-z_]+[a-z]\b", expr):
                if name not in names:
                    errors.append(f"{where}: queries {name}, which the host does not expose")
            for var in re.findall(r"\$(\w+)", expr):
                if not var.startswith("__") and var not in variables:
                    errors.append(f"{where}: uses ${var}, which is no template variable")
    return errors


if __name__ == "__main__":
    problems = main(sys.argv[1], sys.argv[2])
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)
