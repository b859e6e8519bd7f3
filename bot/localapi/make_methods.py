"""Generate the compact ``methods.json`` used by the local Bot API server.

Run: ``python -m bot.localapi.make_methods [SPEC] [OUT]``.
SPEC defaults to tests/data/botapi/api-botapi-10.0.json in the repository (Bot API 10.0, the
version python-telegram-bot 22.8 implements; provenance in tests/data/README.md).

Output: ``{"version": "...", "methods": {name: {"fields": [...], "required": [...],
"strings": [...]}}}`` where ``strings`` lists the fields whose only type is String (their
form-encoded value is taken verbatim; every other field value is JSON-decoded).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_SPEC = (
    Path(__file__).resolve().parents[2] / "tests" / "data" / "botapi" / "api-botapi-10.0.json"
)
DEFAULT_OUT = Path(__file__).with_name("methods.json")


def compact(spec: dict) -> dict:
    """Reduce the full API spec to method -> field names, required names and string fields."""
    methods: dict[str, dict[str, list[str]]] = {}
    for name in sorted(spec["methods"]):
        fields = spec["methods"][name].get("fields", [])
        methods[name] = {
            "fields": [f["name"] for f in fields],
            "required": [f["name"] for f in fields if f.get("required")],
            "strings": [f["name"] for f in fields if f.get("types") == ["String"]],
        }
    return {"version": spec.get("version", ""), "methods": methods}


def main(argv: list[str] | None = None) -> int:
    """Write methods.json; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    spec_path = Path(args[0]) if args else DEFAULT_SPEC
    out_path = Path(args[1]) if len(args) > 1 else DEFAULT_OUT
    data = compact(json.loads(spec_path.read_text(encoding="utf-8")))
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    # One method per line keeps diffs readable while staying compact.
    text = text.replace('},"', '},\n"')
    out_path.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {len(data['methods'])} methods to {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
