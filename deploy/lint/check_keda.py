"""Validates deploy/k8s/keda.yaml against KEDA's ScaledObject model (cloudcoil.models.keda, made
from KEDA's CRDs), rejects fields the model does not know (the model itself ignores them), and
checks that its redis-streams triggers name the host's real streams and consumer group."""

import re
import sys

import yaml
from cloudcoil.models.keda import v1alpha1


def unknown_fields(given, kept, path=""):
    """Keys of `given` that validation dropped (so the CRD does not know them)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                yield f"{path}.{key}"
            else:
                yield from unknown_fields(value, kept[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept)):
            yield from unknown_fields(a, b, f"{path}[{i}]")


def main(path, keys_rs):
    source = open(keys_rs).read()
    group = re.search(r'pub const GROUP: &str = "([^"]+)"', source).group(1)
    prefix = "mediahost"
    streams = {f"{prefix}:queue", f"{prefix}:queue:high", f"{prefix}:queue:low"}
    if '"{}:queue"' not in source or '"{}:queue:{}"' not in source:
        return [f"{keys_rs}: the stream key names changed; update {path} and this check"]
    errors = []
    for doc in yaml.safe_load_all(open(path)):
        kind = doc.get("kind")
        model = getattr(v1alpha1, kind or "", None)
        if doc.get("apiVersion") != "keda.sh/v1alpha1" or model is None:
            errors.append(f"{path}: not a keda.sh/v1alpha1 kind: {kind}")
            continue
        try:
            obj = model.model_validate(doc)
        except Exception as e:  # pydantic's ValidationError names every bad field
            errors.append(f"{path}: {kind} invalid:\n{e}")
            continue
        kept = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
        for field in unknown_fields(doc, kept):
            errors.append(f"{path}: {kind}: unknown field {field}")
        seen = set()
        for trigger in doc.get("spec", {}).get("triggers", []):
            meta = trigger.get("metadata", {})
            if trigger.get("type") != "redis-streams":
                continue
            if meta.get("stream") not in streams:
                errors.append(f"{path}: trigger {trigger.get('name')}: stream "
                              f"{meta.get('stream')!r} is not one of the host's {sorted(streams)}")
            if meta.get("consumerGroup") != group:
                errors.append(f"{path}: trigger {trigger.get('name')}: consumerGroup "
                              f"{meta.get('consumerGroup')!r} is not the host's {group!r}")
            modes = [k for k in ("pendingEntriesCount", "lagCount", "streamLength") if k in meta]
            if len(modes) != 1 or not str(meta[modes[0]]).isdigit():
                errors.append(f"{path}: trigger {trigger.get('name')}: needs exactly one numeric "
                              "pendingEntriesCount, lagCount or streamLength")
            seen.add(meta.get("stream"))
        if kind == "ScaledObject" and seen != streams:
            errors.append(f"{path}: ScaledObject does not watch every job stream: "
                          f"missing {sorted(streams - seen)}")
    return errors


if __name__ == "__main__":
    problems = main(sys.argv[1], sys.argv[2])
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)
