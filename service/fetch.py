"""``weightinit fetch URL REQUEST.json -o model.safetensors --parallel N``: one artifact, fetched in
parallel byte ranges from any replica, assembled into a file byte-identical to ``weightinit generate``.

1. ``POST URL/v1/plan`` with the document: the artifact's exact length (``totals.bytes``) and
   its fingerprint, hence the ETag every part must carry: ``"<fingerprint>-<format>"`` (the
   fingerprint covers the request, the engine version and NumPy's version).
2. The length is cut into parts (``--part-size``, default: about four parts per connection, at
   least 8 MiB, in whole MiB); ``N`` threads take parts from a queue and ``POST URL/v1/weights``
   with ``Range: bytes=a-b`` and ``If-Range: <ETag>`` (a replica on another engine version then
   answers 200 with its whole artifact instead of a part, which fails the fetch: parts of two
   engine versions never mix). ``URL`` may list several replicas separated by commas: parts go
   round-robin over them; behind a load balancer, one URL is enough.
3. Every part must answer 206 with ``Content-Range: bytes a-b/length``, ``Content-Length``
   ``b-a+1``, the expected ETag, and exactly that many bytes; each is written at its offset
   (``os.pwrite``) into ``OUT.partial``.
4. The assembled file is checked (size; safetensors: the header parses and its tensors tile the
   data; npy: the header parses and matches the size; ``Repr-Digest``, which the server sends for
   artifacts up to ``WEIGHTINIT_DIGEST_MAX_BYTES``: the sha-256 of the whole file) and renamed.

Any failure (connection error, status, header mismatch, short read, a failed check) stops the
fetch: the partial file is removed, one line goes to stderr, the exit code is 1. ``--retries``
re-asks a failed part that many times (each retry is reported) before giving up. JSON and npz
cannot be cut into ranges (their bytes depend on all before them): they are fetched in one
request, with the same checks. A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import queue
import struct
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .output import formats

EXIT_FAILED = 1
MIB = 1 << 20
RANGED = tuple(f.name for f in formats.FORMATS.values() if f.ranges)


class FetchError(Exception):
    """The fetch failed: one line for stderr. ``transient``: a transport failure worth a retry."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Replica:
    scheme: str
    host: str
    port: int | None
    base: str          # path prefix ("" or "/something")

    @classmethod
    def parse(cls, url: str) -> "Replica":
        u = urlsplit(url.strip())
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        return cls(u.scheme, u.hostname, u.port, u.path.rstrip("/"))

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.base}"


# ------------------------------------------------------------------------------------ progress
class Progress:
    """A one-line progress bar on stderr (redrawn at most 10 times a second), when it is a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.t0 = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        frac = self.done / self.total if self.total else 1.0
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta_s = f"{eta:5.1f}s" if eta != float("inf") else "  ?  "
        sys.stderr.write(f"\r[{bar}] {frac * 100:5.1f}% {self.done / MIB:9.1f}/{self.total / MIB:.1f} MiB "
                         f"{rate / MIB:7.1f} MiB/s ETA {eta_s}")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ------------------------------------------------------------------------------------ HTTP
def _post(replica: Replica, path: str, body: bytes, headers: dict, timeout: float, conn=None):
    """(connection, response) of a POST; the caller reads the body and may reuse the connection."""
    conn = conn or replica.connect(timeout)
    try:
        conn.request("POST", replica.base + path, body=body,
                     headers={"Content-Type": "application/json", **headers})
        return conn, conn.getresponse()
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        raise FetchError(f"{replica}{path}: {type(e).__name__}: {e}", transient=True) from None


def _problem(resp) -> str:
    try:
        body = json.loads(resp.read(65536) or b"{}")
        return f": {body.get('detail', body)}" if isinstance(body, dict) else ""
    except ValueError:
        return ""


def plan_of(replica: Replica, document: dict, fmt: str, timeout: float) -> tuple[int, str]:
    """(exact artifact length, the ETag every part must carry) from ``POST /v1/plan``."""
    conn, resp = _post(replica, "/v1/plan", json.dumps(document).encode(), {"Accept": "application/json"}, timeout)
    try:
        if resp.status != 200:
            raise FetchError(f"{replica}/v1/plan answered {resp.status} {resp.reason}{_problem(resp)}")
        report = json.loads(resp.read())
        etag = resp.getheader("ETag") or ""
    finally:
        conn.close()
    length = (report.get("totals") or {}).get("bytes", {}).get(fmt)
    if fmt == "json":
        length = None  # not known before the values are drawn: fetched whole
    elif not isinstance(length, int):
        raise FetchError(f"the plan gives no {fmt} size (npy holds exactly one tensor: select it with `tensors`)")
    if not (etag.startswith('"') and etag.endswith('-plan"')):
        raise FetchError(f"{replica}/v1/plan sent no plan ETag (got {etag!r})")
    return length, etag[: -len('-plan"')] + f'-{fmt}"'


def split(length: int, parallel: int, part_size: int | None) -> list[tuple[int, int]]:
    """Byte ranges ``[start, stop)`` tiling ``[0, length)``."""
    if part_size is None:
        part_size = max(8 * MIB, -(-length // (4 * parallel)))
        part_size = -(-part_size // MIB) * MIB
    return [(a, min(a + part_size, length)) for a in range(0, length, part_size)]


class _Fetcher:
    def __init__(self, replicas, body: bytes, etag: str, length: int, fd: int, timeout: float, retries: int,
                 progress: Progress):
        self.replicas = replicas
        self.body = body
        self.etag = etag
        self.length = length
        self.fd = fd
        self.timeout = timeout
        self.retries = retries
        self.progress = progress
        self.digests: set[str] = set()
        self.failed: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def part(self, replica: Replica, conn, start: int, stop: int, buf: memoryview):
        """Fetch bytes ``[start, stop)`` and write them at ``start``; returns the connection to reuse."""
        headers = {"Range": f"bytes={start}-{stop - 1}", "If-Range": self.etag}
        conn, resp = _post(replica, "/v1/weights", self.body, headers, self.timeout, conn)
        where = f"{replica} bytes {start}-{stop - 1}"
        try:
            if resp.status != 206:
                raise FetchError(f"{where}: answered {resp.status} {resp.reason}, not 206 Partial Content"
                                 + (" (a replica with another engine version or request?)" if resp.status == 200
                                    else _problem(resp)))
            etag = resp.getheader("ETag")
            if etag != self.etag:
                raise FetchError(f"{where}: ETag {etag} is not the plan's {self.etag}: replicas differ "
                                 f"(engine or NumPy version); parts would not fit together")
            want_range = f"bytes {start}-{stop - 1}/{self.length}"
            if resp.getheader("Content-Range") != want_range:
                raise FetchError(f"{where}: Content-Range {resp.getheader('Content-Range')!r}, expected {want_range!r}")
            if resp.getheader("Content-Length") != str(stop - start):
                raise FetchError(f"{where}: Content-Length {resp.getheader('Content-Length')!r}, "
                                 f"expected {stop - start}")
            digest = resp.getheader("Repr-Digest")
            if digest:
                with self._lock:
                    self.digests.add(digest)
            offset = start
            try:
                while offset < stop:
                    if self.stop.is_set():
                        raise FetchError("stopped")
                    want = min(len(buf), stop - offset)
                    try:
                        n = resp.readinto(buf[:want])
                    except (OSError, http.client.HTTPException) as e:
                        raise FetchError(f"{where}: {type(e).__name__} after {offset - start} bytes: {e}",
                                         transient=True) from None
                    if not n:
                        raise FetchError(f"{where}: short read: the connection closed after {offset - start} of "
                                         f"{stop - start} bytes", transient=True)
                    written = 0
                    while written < n:
                        written += os.pwrite(self.fd, buf[written:n], offset + written)
                    offset += n
                    self.progress.add(n)
            except BaseException:
                self.progress.add(start - offset)  # a retry counts this part again
                raise
        except BaseException:
            conn.close()
            raise
        if resp.getheader("Connection", "").lower() == "close" or resp.will_close:
            conn.close()
            return None
        return conn

    def worker(self, index: int, parts: queue.Queue):
        buf = memoryview(bytearray(MIB))
        conn = None
        k = index
        while not self.stop.is_set():
            try:
                start, stop = parts.get_nowait()
            except queue.Empty:
                break
            attempt = 0
            while True:
                replica = self.replicas[k % len(self.replicas)]
                k += 1
                try:
                    conn = self.part(replica, conn, start, stop, buf)
                    break
                except FetchError as e:
                    conn = None
                    if self.stop.is_set():
                        return
                    if attempt < self.retries and e.transient:
                        attempt += 1
                        sys.stderr.write(f"\nweightinit fetch: retrying ({attempt}/{self.retries}): {e}\n")
                        continue
                    with self._lock:
                        self.failed.append(str(e))
                    self.stop.set()
                    return
        if conn is not None:
            conn.close()


def fetch(urls: str, document: dict, output: str, fmt: str, *, parallel: int = 4, part_size: int | None = None,
          timeout: float = 300.0, retries: int = 0, progress: bool | None = None) -> dict:
    """Fetch the artifact of ``document`` into ``output``; returns a summary; raises FetchError."""
    replicas = [Replica.parse(u) for u in urls.split(",") if u.strip()]
    if not replicas:
        raise FetchError("no URL given")
    document = {k: v for k, v in document.items() if k != "format"}
    length, etag = plan_of(replicas[0], document, fmt, timeout)
    body = json.dumps({**document, "format": fmt}).encode()
    if progress is None:
        progress = sys.stderr.isatty()
    tmp = f"{output}.partial"
    t0 = time.monotonic()
    try:
        if fmt not in RANGED:
            parts_done, digest = 1, _fetch_whole(replicas[0], body, etag, length, tmp, timeout)
            length = os.path.getsize(tmp)
            digests = {digest} if digest else set()
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.ftruncate(fd, length)
                ranges = split(length, parallel, part_size)
                parts: queue.Queue = queue.Queue()
                for r in ranges:
                    parts.put(r)
                bar = Progress(length, progress)
                f = _Fetcher(replicas, body, etag, length, fd, timeout, retries, bar)
                threads = [threading.Thread(target=f.worker, args=(i, parts), daemon=True)
                           for i in range(min(parallel, len(ranges)))]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                bar.finish()
                if f.failed:
                    raise FetchError(f.failed[0])
                if not parts.empty():
                    raise FetchError("some parts were not fetched")
                os.fsync(fd)
            finally:
                os.close(fd)
            parts_done, digests = len(ranges), f.digests
        if len(digests) > 1:
            raise FetchError(f"the parts carry different Repr-Digest values: {sorted(digests)}")
        checked = verify(tmp, fmt, length, next(iter(digests), None))
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    elapsed = time.monotonic() - t0
    return {"output": output, "format": fmt, "bytes": length, "parts": parts_done, "etag": etag,
            "seconds": elapsed, "checked": checked, "replicas": [str(r) for r in replicas]}


def _fetch_whole(replica: Replica, body: bytes, etag: str, length: int | None, tmp: str, timeout: float):
    conn, resp = _post(replica, "/v1/weights", body, {}, timeout)
    try:
        if resp.status != 200:
            raise FetchError(f"{replica}/v1/weights answered {resp.status} {resp.reason}{_problem(resp)}")
        if resp.getheader("ETag") != etag:
            raise FetchError(f"ETag {resp.getheader('ETag')} is not the plan's {etag}: replicas differ")
        declared = int(resp.getheader("Content-Length", "-1"))
        if length is not None and declared != length:
            raise FetchError(f"Content-Length {declared}, the plan says {length}")
        got = 0
        with open(tmp, "wb") as f:
            while True:
                chunk = resp.read(MIB)
                if not chunk:
                    break
                f.write(chunk)
                got += len(chunk)
        if got != declared:
            raise FetchError(f"short read: {got} of {declared} bytes")
        return resp.getheader("Repr-Digest")
    finally:
        conn.close()


# ------------------------------------------------------------------------------------ checks
def verify(path: str, fmt: str, length: int, repr_digest: str | None) -> list[str]:
    """Check the assembled file; returns what was checked; raises FetchError."""
    checked = []
    size = os.path.getsize(path)
    if size != length:
        raise FetchError(f"the assembled file has {size} bytes, expected {length}")
    checked.append(f"size {size}")
    with open(path, "rb") as f:
        if fmt == "safetensors":
            head = f.read(8)
            if len(head) != 8:
                raise FetchError("not a safetensors file: shorter than 8 bytes")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise FetchError(f"safetensors header length {n} exceeds the file")
            try:
                header = json.loads(f.read(n))
            except ValueError as e:
                raise FetchError(f"the safetensors header is not JSON: {e}") from None
            spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
            pos = 0
            for a, b in spans:
                if a != pos or b < a:
                    raise FetchError("the safetensors tensors do not tile the data section")
                pos = b
            if 8 + n + pos != size:
                raise FetchError(f"the safetensors data section ends at {8 + n + pos}, the file at {size}")
            checked.append(f"safetensors header ({len(spans)} tensors)")
        elif fmt == "npy":
            import numpy as np
            from numpy.lib import format as npformat

            try:
                version = npformat.read_magic(f)
                read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                shape, _, dtype = read(f)
            except ValueError as e:
                raise FetchError(f"not a .npy file: {e}") from None
            expect = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if expect != size:
                raise FetchError(f"the npy header describes {expect} bytes, the file has {size}")
            checked.append(f"npy header {dtype.str}{list(shape)}")
    if repr_digest:
        want = repr_digest.strip()
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(MIB), b""):
                h.update(block)
        got = f"sha-256=:{base64.b64encode(h.digest()).decode()}:"
        if got != want:
            raise FetchError(f"sha-256 of the assembled file {got} differs from the server's Repr-Digest {want}")
        checked.append("Repr-Digest sha-256")
    return checked


# ------------------------------------------------------------------------------------ CLI
def add_fetch_parser(sub) -> None:
    p = sub.add_parser("fetch", help="download an artifact in parallel byte ranges from one or more replicas",
                       description="Download the artifact of REQUEST from a weightinit service in parallel byte "
                                   "ranges (npy, safetensors), verify every part and the result, and write it "
                                   "to OUTPUT: the same bytes as `weightinit generate`.")
    p.add_argument("url", help="the service's base URL (a load balancer, or several replicas separated by commas)")
    p.add_argument("request", help="request document (JSON file, or - for stdin)")
    p.add_argument("-o", "--output", required=True, help="output file (.safetensors, .npy, .npz or .json)")
    p.add_argument("--parallel", type=int, default=4, help="concurrent connections (default 4)")
    p.add_argument("--format", choices=formats.NAMES, help="output format (default: from the extension)")
    p.add_argument("--part-size", type=int, default=None, help="bytes per range request (default: automatic)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds of socket inactivity before failing")
    p.add_argument("--retries", type=int, default=0, help="re-ask a failed part this many times (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fetch)


def cmd_fetch(args) -> int:
    from .cli import CLIError, _format_for, _read_document

    if args.parallel < 1:
        raise CLIError("--parallel must be at least 1")
    if args.part_size is not None and args.part_size < 1:
        raise CLIError("--part-size must be at least 1")
    if args.output == "-":
        raise CLIError("fetch writes parts at their offsets: give a file name, not -")
    doc = _read_document(args.request)
    if not isinstance(doc, dict):
        raise CLIError(f"{args.request}: the request document must be a JSON object")
    fmt = _format_for(args.output, args.format, doc.get("format"))
    try:
        summary = fetch(args.url, doc, args.output, fmt, parallel=args.parallel, part_size=args.part_size,
                        timeout=args.timeout, retries=args.retries, progress=False if args.no_progress else None)
    except ValueError as e:
        raise CLIError(str(e)) from None
    except FetchError as e:
        print(f"weightinit: fetch failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("weightinit: fetch interrupted; partial file removed", file=sys.stderr)
        return EXIT_FAILED
    mb = summary["bytes"] / MIB
    print(f"wrote {summary['output']} ({fmt}, {summary['bytes']} bytes in {summary['parts']} parts, "
          f"{mb / max(summary['seconds'], 1e-9):.1f} MiB/s; checked: {', '.join(summary['checked'])})",
          file=sys.stderr)
    return 0


