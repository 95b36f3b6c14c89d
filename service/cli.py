"""The offline CLI: ``weightinit generate | plan | schemes | fetch`` (the client: ``service.fetch``).

``generate REQUEST.json -o OUT.{json,npy,npz,safetensors,tar}`` writes exactly the bytes
``POST /v1/weights`` returns for the same document; ``-o DIR/`` writes the hf format's folder (the
files its tar holds). Bad input: one line naming the field on
stderr, exit code 2, no traceback; every command's exit statuses are ``EXIT_STATUSES``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import orjson

from . import document
from .core import SpecError, build_plan
from .core.schemes import SCHEMES
from .document import ValidationError, flatten_messages
from .fetch import (MIB, PART_SIZE, RANGED, BadURL, FetchError, PartialFile, Refused, fetch, fetch_folder,
                    make_folder, place)
from .output import formats, hf, plantable
from .output.artifact import segment_chunks
from .output.report import Report

EXIT_USAGE = 2
EXIT_FAILED = 1
#: ``fetch``'s connections when ``--parallel`` is not given.
PARALLEL = 4
#: Every command's exit statuses: the epilog of ``--help`` and of each command's, and README's CLI section.
EXIT_STATUSES = """exit statuses (every command):
  0  done
  1  the work failed: a fetch (the network, a server error, a byte the server
     did not prove), a file that could not be written (a full disk, a missing
     folder), Ctrl-C, or a closed output pipe
  2  usage: bad arguments, or a request document that cannot be read or is
     invalid (one line naming the field; for fetch, also the service's 400,
     413 or 422 answer to it)"""


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


def _read_document(path: str) -> dict:
    try:
        if path == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except OSError as e:
        raise CLIError(f"cannot read {path}: {e.strerror}") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise CLIError(f"{path} is not valid JSON: {e}") from None


def _plan(path: str):
    """(the plan of the request document at ``path``, its ``format`` or None, its output options),
    validated once."""
    return _load(_read_document(path))


def _load(doc) -> tuple:
    """``_plan`` of a document already read: a bad document is a CLIError (exit 2) naming the field."""
    try:
        request, fmt, options = document.load_weights_request(doc)
        return build_plan(request), fmt, options
    except ValidationError as e:
        field, msgs = next(iter(flatten_messages(e.messages).items()))
        raise CLIError(f"{field}: {msgs[0]}") from None
    except SpecError as e:
        raise CLIError(str(e)) from None


def _format_for(out: str, explicit: str | None, in_document: str | None) -> str:
    if explicit:
        return explicit
    if in_document:
        return in_document
    found = formats.for_filename(out)
    if found is not None:
        return found.name
    raise CLIError(f"cannot tell the format from {out!r}: use a "
                   f"{'/'.join(f.extension for f in formats.FORMATS.values())} name, a folder (DIR/) or --format")


def is_folder(path: str) -> bool:
    """An output that names a folder: it ends with a slash, or is an existing directory."""
    return path.endswith(("/", os.sep)) or os.path.isdir(path)


def cmd_generate(args) -> int:
    plan, doc_fmt, options = _plan(args.request)
    if args.output != "-" and is_folder(args.output):
        return _generate_folder(plan, args.format or doc_fmt or "hf", options, args.output)
    fmt = _format_for(args.output, args.format, doc_fmt)
    try:
        artifact = formats.artifact(plan, fmt, options=options)
    except SpecError as e:
        raise CLIError(str(e)) from None
    if args.output == "-":
        sink = sys.stdout.buffer
        for chunk in artifact.chunks():
            sink.write(chunk)
        sink.flush()
        return 0
    tmp = f"{args.output}.partial"
    try:
        with open(tmp, "wb") as f:
            for chunk in artifact.chunks():
                f.write(chunk)
        os.replace(tmp, args.output)  # never leave a truncated artifact under the real name
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        print(f"weightinit: generate failed: cannot write {args.output}: {e.strerror}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {args.output} ({fmt}, {artifact.length} bytes, {len(plan.selected)} tensors)", file=sys.stderr)
    return 0


def _generate_folder(plan, fmt: str, options, directory: str) -> int:
    """``-o DIR/``: the hf format's folder itself (config.json, the shards, their index): the files the
    tar of ``POST /v1/weights`` holds, byte for byte. Each is written to a partial file first (never
    through a symlink), and all are renamed into place once all are written; the files of an earlier
    folder that this one does not hold are removed (``fetch.place``). A failure to write leaves no
    partial file: one line, exit code 1."""
    if fmt != "hf":
        raise CLIError(f"{directory!r} is a folder: only the hf format writes one (the document asks for {fmt!r})")
    report = Report(plan)
    try:
        files = hf.folder(report, options)
    except SpecError as e:
        raise CLIError(str(e)) from None
    written: dict[str, PartialFile] = {}
    try:
        make_folder(directory)
        for f in files:
            out = written[f.name] = PartialFile(os.path.join(directory, f.name))
            out.reserve(f.size)
            at = 0
            for chunk in segment_chunks(f.segments):
                out.write(chunk, at, f.name)
                at += memoryview(chunk).nbytes
        removed = place(directory, list(written.values()))
    except FetchError as e:
        print(f"weightinit: generate failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for out in written.values():
            out.discard()
    total = sum(f.size for f in files)
    stale = f"; removed the earlier folder's {', '.join(removed)}" if removed else ""
    print(f"wrote {directory} (hf: {', '.join(f.name for f in files)}; {total} bytes, {len(plan.selected)} tensors"
          f"{stale})", file=sys.stderr)
    return 0


def cmd_plan(args) -> int:
    """A table (``plantable``) by default; ``--json``: the document ``POST /v1/plan`` answers, indented."""
    plan, _, options = _plan(args.request)
    doc = formats.document(Report(plan), options)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(plantable.render(doc))
    return 0


def cmd_schemes(args) -> int:
    if args.json:
        sys.stdout.buffer.write(orjson.dumps([s.describe() for s in SCHEMES.values()], option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    for s in SCHEMES.values():
        alias = f" (= {', '.join(s.aliases)})" if s.aliases else ""
        print(f"{s.name}{alias}\n    {s.formula}\n    {s.summary}")
    return 0


class _Help(argparse.HelpFormatter):
    """Wraps descriptions as argparse does, but prints a text that has its own lines (the exit
    statuses' table) as it is written."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


#: What every parser and command parser takes: the exit statuses under its --help.
HELP = {"epilog": EXIT_STATUSES, "formatter_class": _Help}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weightinit", description="Seeded, reproducible neural-network initial weights.",
                                **HELP)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write the weights of a request document to a file", **HELP)
    g.add_argument("request", help="request document (JSON file, or - for stdin)")
    g.add_argument("-o", "--output", required=True,
                   help="output file (.json/.npy/.npz/.safetensors/.tar), - for stdout, or a folder (DIR/ or an "
                        "existing directory: the hf format's files, for an hf_config document; an earlier folder's "
                        "hf files it does not hold are removed)")
    g.add_argument("--format", choices=formats.NAMES, help="output format (default: from the extension)")
    g.set_defaults(func=cmd_generate)
    pl = sub.add_parser("plan", help="print every tensor's theory, without values", **HELP,
                        description="Print a table of every tensor's theory (shape, scheme, distribution, fans, "
                                    "bounds, std, warnings) without drawing values; --json prints the document "
                                    "POST /v1/plan answers.")
    pl.add_argument("request", help="request document (JSON file, or - for stdin)")
    pl.add_argument("--json", action="store_true", help="the plan document (JSON) instead of the table")
    pl.set_defaults(func=cmd_plan)
    s = sub.add_parser("schemes", help="list the scheme registry", **HELP)
    s.add_argument("--json", action="store_true", help="machine-readable")
    s.set_defaults(func=cmd_schemes)
    add_fetch_parser(sub)
    return p


def add_fetch_parser(sub) -> None:
    p = sub.add_parser("fetch", help="download an artifact in parallel byte ranges from one or more replicas",
                       **HELP,
                       description="Download the artifact of REQUEST from a weightinit service in parallel byte "
                                   "ranges (npy, safetensors, hf), verify every part and the result, and write it "
                                   "to OUTPUT: the same bytes as `weightinit generate` (a folder: the same files as "
                                   "`weightinit generate -o DIR/`).")
    p.add_argument("url", help="the service's base URL (a load balancer, or several replicas separated by commas)")
    p.add_argument("request", help="request document (JSON file, or - for stdin)")
    p.add_argument("-o", "--output", required=True,
                   help="output file (.safetensors, .npy, .npz, .json or .tar), or a folder (DIR/: the hf format's "
                        "files, unpacked once every byte is proven; DIR's disk needs the folder's size plus its "
                        "largest file free, as the tar is truncated behind each file unpacked)")
    p.add_argument("--parallel", type=int, default=None,
                   help=f"concurrent connections (default {PARALLEL}); npy, safetensors and hf only: npz and json "
                        f"come in one request (each byte depends on all before it), and the summary says so")
    p.add_argument("--format", choices=formats.NAMES, help="output format (default: from the extension)")
    p.add_argument("--part-size", type=int, default=None,
                   help=f"bytes per range request (default {PART_SIZE}: the largest part the server proves "
                        f"by default; cut smaller when the server's bound is)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds of socket inactivity before failing")
    p.add_argument("--retries", type=int, default=0,
                   help="re-ask a part that failed in transit (connection, short read, digest) this many times "
                        "(default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fetch)


def cmd_fetch(args) -> int:
    """``weightinit fetch``: the exit statuses of ``generate`` (``EXIT_STATUSES``). The document is
    validated here first, as ``generate`` validates it (same messages, status 2), then the service's
    refusal of it (``Refused``: 400, 413, 422) is status 2 too; any failure of the fetch itself is 1."""
    if args.parallel is not None and args.parallel < 1:
        raise CLIError("--parallel must be at least 1")
    if args.part_size is not None and args.part_size < 1:
        raise CLIError("--part-size must be at least 1")
    if args.retries < 0:
        raise CLIError("--retries must be at least 0")
    if args.output == "-":
        raise CLIError("fetch writes parts at their offsets: give a file name, not -")
    doc = _read_document(args.request)
    plan, doc_fmt, options = _load(doc)
    folder = is_folder(args.output)
    if folder:
        fmt = args.format or doc_fmt or "hf"
    else:
        fmt = _format_for(args.output, args.format, doc_fmt)
    if folder and fmt != "hf":
        raise CLIError(f"{args.output!r} is a folder: only the hf format writes one (asked for {fmt!r})")
    try:
        formats.artifact(plan, fmt, options=options)  # lazy: draws nothing; says what the format cannot hold
    except SpecError as e:
        raise CLIError(str(e)) from None
    kw = {"parallel": args.parallel or PARALLEL, "part_size": args.part_size, "timeout": args.timeout,
          "retries": args.retries, "progress": False if args.no_progress else None, "tag": options.tag(fmt)}
    try:
        if folder:
            summary = fetch_folder(args.url, doc, args.output, **kw)
        else:
            summary = fetch(args.url, doc, args.output, fmt, **kw)
    except BadURL as e:
        raise CLIError(str(e)) from None
    except Refused as e:
        raise CLIError(f"the service refused the request document: {e}") from None
    except FetchError as e:
        print(f"weightinit: fetch failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("weightinit: fetch interrupted; partial file removed", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:  # one line, never a traceback, whatever went wrong
        print(f"weightinit: fetch failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    n = summary["parts"]
    parts = f"{n} part{'' if n == 1 else 's'}"
    if fmt not in RANGED and (args.parallel or 1) > 1:  # asked for, and cannot apply: say so
        parts += f" (--parallel ignored: {fmt} comes in one request, each byte depending on all before it)"
    mb = summary["bytes"] / MIB
    files = f"; files: {', '.join(summary['files'])}" if folder else ""
    if folder and summary["removed"]:
        files += f"; removed the earlier folder's {', '.join(summary['removed'])}"
    print(f"wrote {summary['output']} ({fmt}, {summary['bytes']} bytes in {parts}, "
          f"{mb / max(summary['seconds'], 1e-9):.1f} MiB/s; checked: {', '.join(summary['checked'])}{files})",
          file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as e:
        print(f"weightinit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("weightinit: interrupted", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
