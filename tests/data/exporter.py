"""A stand-in supplier exporter for the fuzz-export tests: copies NDJSON, optionally lossy."""

import json
import sys
from pathlib import Path

source, target, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
for f in sorted(source.glob("*.ndjson")):
    lines = []
    for line in f.read_text(encoding="utf-8").splitlines():
        resource = json.loads(line)
        names = resource.get("name")
        if mode == "drop-second-given" and isinstance(names, list):
            for name in names:
                if len(name.get("given", [])) > 1:
                    name["given"] = name["given"][:1]
        lines.append(json.dumps(resource, ensure_ascii=False))
    (target / f.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
