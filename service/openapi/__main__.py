"""``python -m service.openapi [--check] [--output PATH]``: write openapi.yaml from ``build()``, or
(``--check``) exit 1 naming the first line where the committed file differs from it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import build, dump, stale

#: The repository's top-level openapi.yaml (service/openapi.yaml links to it).
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "openapi.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.openapi",
                                     description="Generate openapi.yaml from service/openapi/template.yaml and the "
                                                 "service's declarations.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the file differs from what would be written")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    if args.check:
        try:
            committed = args.output.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(f"{args.output} does not exist: run `python -m service.openapi`", file=sys.stderr)
            return 1
        difference = stale(committed)
        if difference:
            print(f"{args.output} is stale ({difference}): run `python -m service.openapi`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(dump(build()), encoding="utf-8", newline="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
