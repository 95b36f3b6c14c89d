"""``weightinit fetch URL REQUEST.json -o model.safetensors --parallel N``: one artifact, fetched in
parallel byte ranges from any replica, assembled into a file byte-identical to ``weightinit generate``,
and renamed into place only once the server has proven every byte of it. ``-o DIR/`` (``fetch_folder``):
the hf format's tar, proven so, then unpacked into the folder (``unpack_hf``).

1. ``POST URL/v1/plan``: the artifact's exact length (``totals.bytes``) and the ETag every part
   must carry (the plan's ``"<tag>-plan"`` with the format, and the options it reads, instead of
   ``plan``: ``output.options.Options.tag``; the tag covers the
   request, the engine and NumPy versions and, for orthogonal tensors, the LAPACK build:
   ``service.core.linalg_identity``).
2. npy, safetensors and hf: parts of at most ``PART_SIZE`` (``--part-size``) go to ``N`` threads, each
   ``POST URL/v1/weights`` with ``Range`` and ``If-Range: <ETag>`` (a replica whose bytes could
   differ answers 200, which fails the fetch). Every part must be a 206 with the exact
   ``Content-Range``, ``Content-Length``, ETag and ``Content-Digest`` (the sha-256 of the part,
   RFC 9530): its bytes are hashed as they are written at their offset and compared. A server
   proves parts up to its ``X-Weightinit-Digest-Max-Bytes``: a larger part is cut to it and
   asked again; a server that proves none (a bound of 0) fails the fetch.
3. npz and JSON (their bytes depend on all before them) come in one request: JSON against its
   ``Repr-Digest`` (always sent), npz against ``Repr-Digest`` when sent and always entry by entry
   against the CRC-32s the server wrote, every other byte against the ZIP records it writes.
4. The file (``.OUT.<random>.partial`` beside OUT, created exclusively, never through a symlink)
   is checked (the written parts tile it; the safetensors or npy header; for hf every tar header and
   the folder's files, ``_check_hf``; ``Repr-Digest`` where sent), synced and renamed to OUT.

Any failure in any thread, a bad or unproven byte, or Ctrl-C stops the fetch (the workers end
before the file is closed): the partial file is removed, one line goes to stderr, the exit code is
1 (a plan the service refuses, 400/413/422, is ``Refused``: the document's fault, exit code 2). ``--retries`` re-asks a part that failed in transit (connection, short read, digest) that many
times. README ("Byte ranges and sharded downloads") has the whole contract.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import http.client
import json
import math
import os
import queue
import re
import secrets
import socket
import struct
import sys
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass
from urllib.parse import urlsplit

from numpy.lib import format as npformat

from .output import formats, hf, tar
from .output.npz import Entry, end_records  # the npz encoder's own record writers: one layout, one owner

MIB = 1 << 20
RANGED = tuple(f.name for f in formats.FORMATS.values() if f.ranges)
#: The default part size: 8 MiB, the largest part a server with the default ``WEIGHTINIT_DIGEST_MAX_BYTES``
#: proves with a ``Content-Digest`` (a server with a smaller bound says so, and parts are cut to it).
PART_SIZE = 8 * MIB
#: The header of every 206 that states that bound.
DIGEST_BOUND = "X-Weightinit-Digest-Max-Bytes"
#: The safetensors format's own bound on its JSON header (the reference implementation's).
SAFETENSORS_MAX_HEADER = 100_000_000
_SHA256 = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/]{43}=):\s*(?=,|$)")


class FetchError(Exception):
    """The fetch failed: one line for stderr. ``transient``: a transport failure worth a retry."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class Refused(FetchError):
    """The service refused the request document (a 400, 413 or 422 problem to ``POST /v1/plan``): the
    document is at fault, not the transfer, so the CLI exits as it does for a bad document (2)."""


#: The plan's answers that refuse the document itself (malformed, over this server's limits, invalid).
REFUSALS = (400, 413, 422)


class BadURL(ValueError):
    """A URL argument that is not an http(s) URL: a usage error."""


class _Stopped(Exception):
    """The fetch is being stopped (another part failed, or Ctrl-C): this worker ends quietly."""


class _Unproven(FetchError):
    """A 206 without ``Content-Digest``: its part is larger than the server's bound (``bound``)."""

    def __init__(self, message: str, bound: int | None):
        super().__init__(message)
        self.bound = bound


@dataclass(frozen=True)
class Replica:
    scheme: str
    host: str
    port: int | None
    base: str          # path prefix ("" or "/something")

    @classmethod
    def parse(cls, url: str) -> "Replica":
        try:
            u = urlsplit(url.strip())
            port = u.port
        except ValueError as e:
            raise BadURL(f"not an http(s) URL: {url!r} ({e})") from None
        if u.scheme not in ("http", "https") or not u.hostname:
            raise BadURL(f"not an http(s) URL: {url!r}")
        return cls(u.scheme, u.hostname, port, u.path.rstrip("/"))

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
    """': <detail>' of a problem body, or '' when it is none (not JSON, not an object, unreadable)."""
    try:
        body = json.loads(resp.read(65536) or b"{}")
    except (ValueError, RecursionError, OSError, http.client.HTTPException):
        return ""
    return f": {body.get('detail', body)}" if isinstance(body, dict) else ""


def _sha256_of(value: str | None, header: str, where: str) -> bytes | None:
    """The sha-256 in an RFC 9530 digest field (``sha-256=:<base64>:``), None when absent."""
    if value is None:
        return None
    m = _SHA256.search(value)
    if m is None:
        raise FetchError(f"{where}: malformed {header} {value[:120]!r} (expected sha-256=:<base64>:)")
    return base64.b64decode(m.group(1))


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _content_length(resp, where: str) -> int:
    value = resp.getheader("Content-Length")
    if value is None or not value.strip().isdigit():
        raise FetchError(f"{where}: Content-Length {value!r} is not a byte count")
    return int(value)


def plan_of(replica: Replica, document: dict, fmt: str, timeout: float, tag: str | None = None) -> tuple[int | None, str]:
    """(exact artifact length, None for JSON; the ETag every part must carry) from ``POST /v1/plan``.
    ``tag``: the artifact's ETag suffix (``output.options.Options.tag``), default the format's name."""
    where = f"{replica}/v1/plan"
    conn, resp = _post(replica, "/v1/plan", json.dumps(document).encode(), {"Accept": "application/json"}, timeout)
    try:
        if resp.status != 200:
            error = Refused if resp.status in REFUSALS else FetchError
            raise error(f"{where} answered {resp.status} {resp.reason}{_problem(resp)}")
        etag = resp.getheader("ETag") or ""
        try:
            report = json.loads(resp.read())
        except (OSError, http.client.HTTPException) as e:
            raise FetchError(f"{where}: {type(e).__name__} while reading the plan: {e}", transient=True) from None
        except (ValueError, RecursionError) as e:
            raise FetchError(f"{where} answered 200 with a body that is not JSON ({e})") from None
    finally:
        conn.close()
    totals = report.get("totals") if isinstance(report, dict) else None
    sizes = totals.get("bytes") if isinstance(totals, dict) else None
    if not isinstance(sizes, dict):
        raise FetchError(f"{where} answered a plan without totals.bytes: not a weightinit plan")
    length = sizes.get(fmt)
    if fmt == "json":
        length = None  # not known before the values are drawn: fetched whole
    elif fmt == "hf" and "hf" not in sizes:
        raise FetchError("the plan gives no hf size: the hf format takes an architecture.hf_config document "
                         "without `tensors`")
    elif length is None and fmt == "hf":
        raise FetchError("the plan gives no hf size: the folder's headers would pass the server's "
                         "max_hf_header_bytes; ask for metadata: minimal or a larger max_shard_size")
    elif length is None:
        raise FetchError(f"the plan gives no {fmt} size (npy holds exactly one tensor: select it with `tensors`)")
    elif type(length) is not int or length < 0:
        raise FetchError(f"{where}: totals.bytes.{fmt} is {length!r}, not a byte count")
    m = re.fullmatch(r'"([0-9a-f]{64})-plan(?:\.[a-z0-9]+)*"', etag)  # -plan, then the options' suffix
    if m is None:
        raise FetchError(f"{where} sent no plan ETag (got {etag[:120]!r})")
    return length, f'"{m.group(1)}-{tag or fmt}"'

def split(length: int, part_size: int, start: int = 0) -> list[tuple[int, int]]:
    """Byte ranges ``[a, b)`` of at most ``part_size`` bytes tiling ``[start, length)``."""
    return [(a, min(a + part_size, length)) for a in range(start, length, part_size)]


# ------------------------------------------------------------------------------------ the file
class PartialFile:
    """A file being written (a download, a file of a folder): ``.<name>.<random>.partial`` beside the
    output, created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so that a planted symlink, another run's
    partial file or any existing name is never opened, followed or overwritten. ``commit`` syncs it and renames it over
    the output; ``discard`` removes it. The descriptor is read back for the checks, never the name."""

    def __init__(self, output: str):
        directory, name = os.path.split(os.path.abspath(output))
        self.output, self.directory = output, directory
        self.path = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.partial")
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            raise FetchError(f"cannot create a file in {directory}: {e.strerror}") from None

    def reserve(self, length: int) -> None:
        """Allocate the file's blocks now, so that a full disk fails before the download, not in it."""
        if length <= 0:
            return
        try:
            os.posix_fallocate(self.fd, 0, length)
            return
        except AttributeError:  # no posix_fallocate on this platform: a sparse file
            pass
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise FetchError(f"cannot reserve {length} bytes for {self.output} in {self.directory}: "
                                 f"{e.strerror}") from None
        os.ftruncate(self.fd, length)

    def write(self, data, offset: int, where: str) -> None:
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(self.fd, view[done:], offset + done)
        except OSError as e:
            raise FetchError(f"cannot write {where} to {self.directory}: {e.strerror}") from None

    def reader(self):
        """A binary file object reading the partial file from its start (its own descriptor)."""
        f = os.fdopen(os.dup(self.fd), "rb")
        f.seek(0)
        return f

    def commit(self) -> None:
        try:
            os.fsync(self.fd)
            os.replace(self.path, self.output)
        except OSError as e:
            raise FetchError(f"cannot write {self.output}: {e.strerror}") from None
        self._close()
        try:  # the rename itself survives a crash once its directory is synced
            dfd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass

    def discard(self) -> None:
        if self.fd is None:  # committed: the name is the output's now
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._close()

    def _close(self) -> None:
        fd, self.fd = self.fd, None
        os.close(fd)


# ------------------------------------------------------------------------------------ ranges
class _Ranged:
    """``parallel`` threads take parts from a queue and write each at its offset, once proven."""

    def __init__(self, replicas, body: bytes, etag: str, length: int, out: PartialFile, timeout: float,
                 retries: int, part_size: int, progress: Progress):
        self.replicas, self.body, self.etag, self.length = replicas, body, etag, length
        self.out, self.timeout, self.retries, self.progress = out, timeout, retries, progress
        self.parts: queue.Queue = queue.Queue()
        for r in split(length, part_size):
            self.parts.put(r)
        self.done: list[tuple[int, int]] = []   # parts written and proven
        self.repr_digests: set[bytes] = set()
        self.failed: list[str] = []
        self.stop = threading.Event()
        self._conns: set = set()                 # in use, so that a stop can cut their reads short
        self._lock = threading.Lock()
        self.ended: list[threading.Event] = []   # one per worker, set as its last step

    def run(self, parallel: int) -> None:
        """Fetch every part. Returns only once every worker is past its last use of the file, whatever
        happens (Ctrl-C included), so that none can write into it after its descriptor is closed.

        Each worker sets its ``ended`` event as its very last step; the main thread waits on those
        events rather than on ``Thread.join``, which, interrupted by Ctrl-C, can mark a thread that is
        still running as stopped (CPython 3.11) and then return at once."""
        n = min(parallel, self.parts.qsize())
        self.ended = [threading.Event() for _ in range(n)]
        threads = [threading.Thread(target=self.worker, args=(i,), name=f"weightinit-fetch-{i}", daemon=True)
                   for i in range(n)]
        try:
            for th in threads:
                th.start()
            self._wait(threads)
        except BaseException:
            self.halt()
            self._wait(threads, through_interrupts=True)
            raise
        if self.failed:
            raise FetchError(self.failed[0])
        _check_tiling(self.done, self.length)

    def _wait(self, threads, through_interrupts: bool = False) -> None:
        """Wait for every started worker's ``ended`` event (through further Ctrl-C presses if asked)."""
        for th, ended in zip(threads, self.ended):
            while th.ident is not None and not ended.is_set():  # ident: set once the thread runs
                try:
                    ended.wait()
                except KeyboardInterrupt:
                    if not through_interrupts:
                        raise

    def halt(self) -> None:
        """Stop every worker now: set the flag, and shut the sockets they may be blocked reading."""
        self.stop.set()
        with self._lock:
            socks = [c.sock for c in self._conns if c.sock is not None]
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def worker(self, index: int) -> None:
        """Any exception of any worker fails the fetch (not only a FetchError: a full disk, a bug)."""
        try:
            self._work(index)
        except _Stopped:
            pass
        except BaseException as e:
            message = str(e) if isinstance(e, FetchError) else f"{type(e).__name__} in a fetch worker: {e}"
            with self._lock:
                self.failed.append(message)
            self.halt()
        finally:
            self.ended[index].set()  # past its last use of the file: it may be closed now

    def _work(self, index: int) -> None:
        buf = memoryview(bytearray(MIB))
        conn = None
        k = index
        try:
            while not self.stop.is_set():
                try:
                    start, stop = self.parts.get_nowait()
                except queue.Empty:
                    return
                attempt = 0
                while True:
                    replica = self.replicas[k % len(self.replicas)]
                    k += 1
                    try:
                        conn = self.part(replica, conn, start, stop, buf)
                        break
                    except _Unproven as e:
                        conn = None
                        if e.bound is None or not 0 < e.bound < stop - start:
                            raise
                        for piece in split(stop, e.bound, start):  # the server proves smaller parts
                            self.parts.put(piece)
                        break
                    except FetchError as e:
                        conn = None
                        if self.stop.is_set():
                            raise _Stopped() from None
                        if attempt < self.retries and e.transient:
                            attempt += 1
                            sys.stderr.write(f"\nweightinit fetch: retrying ({attempt}/{self.retries}): {e}\n")
                            continue
                        raise
        finally:
            if conn is not None:
                self._close(conn)

    def _close(self, conn) -> None:
        with self._lock:
            self._conns.discard(conn)
        conn.close()

    def part(self, replica: Replica, conn, start: int, stop: int, buf: memoryview):
        """Fetch bytes ``[start, stop)``, write them at ``start`` and check them against the part's
        ``Content-Digest``; returns the connection to reuse (None when it closes)."""
        if self.stop.is_set():
            raise _Stopped()
        conn = conn or replica.connect(self.timeout)
        with self._lock:
            self._conns.add(conn)
        where = f"{replica} bytes {start}-{stop - 1}"
        try:
            _, resp = _post(replica, "/v1/weights", self.body,
                            {"Range": f"bytes={start}-{stop - 1}", "If-Range": self.etag}, self.timeout, conn)
            want = self._check_headers(resp, where, start, stop)
            h = hashlib.sha256()
            offset = start
            try:
                while offset < stop:
                    try:
                        n = resp.readinto(buf[: min(len(buf), stop - offset)])
                    except (OSError, http.client.HTTPException) as e:
                        if self.stop.is_set():
                            raise _Stopped() from None
                        raise FetchError(f"{where}: {type(e).__name__} after {offset - start} bytes: {e}",
                                         transient=True) from None
                    if self.stop.is_set():
                        raise _Stopped()
                    if not n:
                        raise FetchError(f"{where}: short read: the connection closed after {offset - start} of "
                                         f"{stop - start} bytes", transient=True)
                    h.update(buf[:n])
                    self.out.write(buf[:n], offset, where)
                    offset += n
                    self.progress.add(n)
            except BaseException:
                self.progress.add(start - offset)  # a retry counts this part again
                raise
            if h.digest() != want:
                raise FetchError(f"{where}: the sha-256 of the bytes received, {_b64(h.digest())}, differs from the "
                                 f"part's Content-Digest {_b64(want)}: they were altered on the way", transient=True)
        except BaseException:
            self._close(conn)
            raise
        with self._lock:
            self.done.append((start, stop))
        if resp.will_close:
            self._close(conn)
            return None
        return conn

    def _check_headers(self, resp, where: str, start: int, stop: int) -> bytes:
        """Every header a part must carry, as expected; returns the part's sha-256 (Content-Digest)."""
        if resp.status != 206:
            hint = (" (a replica whose bytes may differ: another engine, NumPy or, for an orthogonal tensor, "
                    "LAPACK build, or a proxy dropping Range)" if resp.status == 200 else _problem(resp))
            raise FetchError(f"{where}: answered {resp.status} {resp.reason}, not 206 Partial Content{hint}")
        etag = resp.getheader("ETag")
        if etag != self.etag:
            raise FetchError(f"{where}: ETag {etag} is not the plan's {self.etag}: replicas differ "
                             f"(engine, NumPy or LAPACK build); parts would not fit together")
        want_range = f"bytes {start}-{stop - 1}/{self.length}"
        if resp.getheader("Content-Range") != want_range:
            raise FetchError(f"{where}: Content-Range {resp.getheader('Content-Range')!r}, expected {want_range!r}")
        if resp.getheader("Content-Length") != str(stop - start):
            raise FetchError(f"{where}: Content-Length {resp.getheader('Content-Length')!r}, expected {stop - start}")
        whole = _sha256_of(resp.getheader("Repr-Digest"), "Repr-Digest", where)
        if whole is not None:
            with self._lock:
                self.repr_digests.add(whole)
        want = _sha256_of(resp.getheader("Content-Digest"), "Content-Digest", where)
        if want is None:
            raise _unproven(resp.getheader(DIGEST_BOUND), where, stop - start)
        return want


def _unproven(stated: str | None, where: str, size: int) -> _Unproven:
    """The error for a 206 without ``Content-Digest``, from the bound the server states."""
    if stated is None:
        return _Unproven(f"{where}: the part carries no Content-Digest and the server states no "
                         f"{DIGEST_BOUND} (an older weightinit?): its bytes cannot be verified", None)
    if not stated.strip().isdigit():
        return _Unproven(f"{where}: malformed {DIGEST_BOUND} {stated[:40]!r}", None)
    bound = int(stated)
    if bound == 0:
        return _Unproven(f"{where}: the server proves no part (its WEIGHTINIT_DIGEST_MAX_BYTES is 0), so these "
                         f"bytes cannot be verified; ask for a bound above 0, or fetch npz (checked by its CRC-32s)",
                         0)
    return _Unproven(f"{where}: no Content-Digest on a part of {size} bytes although the server proves parts of up "
                     f"to {bound}", bound)


def _check_tiling(done: list[tuple[int, int]], length: int) -> None:
    """The parts written tile ``[0, length)`` exactly: no byte missing or written by two parts."""
    pos = 0
    for a, b in sorted(done):
        if a > pos:
            raise FetchError(f"bytes {pos}-{a - 1} of {length} were never written")
        if a < pos:
            raise FetchError(f"bytes {a}-{min(b, pos) - 1} were written by two parts")
        pos = b
    if pos != length:
        raise FetchError(f"bytes {pos}-{length - 1} of {length} were never written")


# ------------------------------------------------------------------------------------ whole
def _fetch_whole(replica: Replica, body: bytes, etag: str, length: int | None, out: PartialFile,
                 timeout: float) -> tuple[int, bytes, bytes | None]:
    """One request for the whole artifact: (bytes written, their sha-256, the Repr-Digest sent or None)."""
    where = f"{replica}/v1/weights"
    conn, resp = _post(replica, "/v1/weights", body, {}, timeout)
    try:
        if resp.status != 200:
            raise FetchError(f"{where} answered {resp.status} {resp.reason}{_problem(resp)}")
        if resp.getheader("ETag") != etag:
            raise FetchError(f"ETag {resp.getheader('ETag')} is not the plan's {etag}: replicas differ")
        declared = _content_length(resp, where)
        if length is not None and declared != length:
            raise FetchError(f"Content-Length {declared}, the plan says {length}")
        repr_digest = _sha256_of(resp.getheader("Repr-Digest"), "Repr-Digest", where)
        out.reserve(declared)
        h = hashlib.sha256()
        got = 0
        while got < declared:
            try:
                chunk = resp.read(min(MIB, declared - got))
            except (OSError, http.client.HTTPException) as e:
                raise FetchError(f"{where}: short read: {type(e).__name__} after {got} of {declared} bytes: {e}") \
                    from None
            if not chunk:
                raise FetchError(f"{where}: short read: the connection closed after {got} of {declared} bytes")
            h.update(chunk)
            out.write(chunk, got, f"bytes {got}-{got + len(chunk) - 1}")
            got += len(chunk)
        return got, h.digest(), repr_digest
    finally:
        conn.close()


# ------------------------------------------------------------------------------------ fetch
def fetch(urls: str, document: dict, output: str, fmt: str, *, tag: str | None = None, **kw) -> dict:
    """Fetch the artifact of ``document`` into ``output``; returns a summary; raises FetchError
    (BadURL for a malformed URL). Never leaves a file behind unless every byte was proven. ``tag``: the
    artifact's ETag suffix when the document's output options change it (``Options.tag``); ``kw``:
    ``parallel``, ``part_size``, ``timeout``, ``retries``, ``progress`` (``_download``)."""
    replicas, body, length, etag = _prepare(urls, document, fmt, kw.get("timeout", 300.0), tag)
    out = PartialFile(output)
    try:
        summary = _download(replicas, body, etag, length, fmt, out, **kw)
        out.commit()
    except BaseException:
        out.discard()
        raise
    return {"output": output, **summary}


def fetch_folder(urls: str, document: dict, directory: str, *, tag: str | None = None, **kw) -> dict:
    """``fetch -o DIR/``: the hf format's tar, fetched and proven as ``fetch`` proves it into a hidden
    partial file in ``directory``, then unpacked there (``unpack_hf``); the tar never stays. The disk
    holds at most the folder plus its largest file."""
    replicas, body, length, etag = _prepare(urls, document, "hf", kw.get("timeout", 300.0), tag)
    make_folder(directory)
    out = PartialFile(os.path.join(directory, "weightinit.tar"))
    try:
        summary = _download(replicas, body, etag, length, "hf", out, **kw)
        summary["files"], summary["removed"] = unpack_hf(out, directory)
    finally:
        out.discard()
    return {"output": directory, **summary}


def _prepare(urls: str, document: dict, fmt: str, timeout: float, tag: str | None):
    """(the replicas, the body every part posts, the artifact's length, its ETag) from the plan."""
    replicas = [Replica.parse(u) for u in urls.split(",") if u.strip()]
    if not replicas:
        raise BadURL("no URL given")
    document = {k: v for k, v in document.items() if k != "format"}
    length, etag = plan_of(replicas[0], document, fmt, timeout, tag)
    return replicas, json.dumps({**document, "format": fmt}).encode(), length, etag


def _download(replicas: list, body: bytes, etag: str, length: int | None, fmt: str, out: PartialFile, *,
              parallel: int = 4, part_size: int | None = None, timeout: float = 300.0, retries: int = 0,
              progress: bool | None = None) -> dict:
    """Write the artifact into ``out`` and check it (``verify``); a summary without the output's name."""
    if progress is None:
        progress = sys.stderr.isatty()
    t0 = time.monotonic()
    if fmt in RANGED:
        out.reserve(length)
        bar = Progress(length, progress)
        ranged = _Ranged(replicas, body, etag, length, out, timeout, retries, part_size or PART_SIZE, bar)
        try:
            ranged.run(parallel)
        finally:
            bar.finish()
        if len(ranged.repr_digests) > 1:
            raise FetchError(f"the parts carry different Repr-Digest values: "
                             f"{sorted(map(_b64, ranged.repr_digests))}")
        parts = len(ranged.done)
        checked = [f"Content-Digest sha-256 of every part ({parts})"]
        checked += verify(out, fmt, length, next(iter(ranged.repr_digests), None))
    else:
        length, received, repr_digest = _fetch_whole(replicas[0], body, etag, length, out, timeout)
        parts = 1
        if repr_digest is None and fmt == "json":
            raise FetchError("the JSON arrived without Repr-Digest: its bytes cannot be verified")
        if repr_digest is not None and received != repr_digest:
            raise FetchError(f"the sha-256 of the {fmt} received, {_b64(received)}, differs from the server's "
                             f"Repr-Digest {_b64(repr_digest)}: the bytes were altered on the way")
        checked = verify(out, fmt, length, None)
        if repr_digest is not None:
            checked.append("Repr-Digest sha-256")
    return {"format": fmt, "bytes": length, "parts": parts, "etag": etag, "seconds": time.monotonic() - t0,
            "checked": checked, "replicas": [str(r) for r in replicas]}


# ------------------------------------------------------------------------------------ checks
def verify(out: PartialFile, fmt: str, length: int, repr_digest: bytes | None) -> list[str]:
    """Check the assembled file (read through its descriptor); returns what was checked; raises FetchError."""
    size = os.fstat(out.fd).st_size
    if size != length:
        raise FetchError(f"the assembled file has {size} bytes, expected {length}")
    checked = [f"size {size}"]
    with out.reader() as f:
        if fmt == "safetensors":
            checked.append(_check_safetensors(f, size))
        elif fmt == "npy":
            checked.append(_check_npy(f, size))
        elif fmt == "npz":
            checked.append(_check_npz(f, size))
        elif fmt == "hf":
            checked.append(_check_hf(f, size))
        if repr_digest is not None:
            f.seek(0)
            h = hashlib.sha256()
            for block in iter(lambda: f.read(MIB), b""):
                h.update(block)
            if h.digest() != repr_digest:
                raise FetchError(f"sha-256 of the assembled file {_b64(h.digest())} differs from the server's "
                                 f"Repr-Digest {_b64(repr_digest)}")
            checked.append("Repr-Digest sha-256")
    return checked


def _check_safetensors(f, size: int) -> str:
    return f"safetensors header ({sum(1 for k in _safetensors_header(f, size) if k != '__metadata__')} tensors)"


def _safetensors_header(f, size: int, where: str = "") -> dict:
    """The header of the safetensors file of ``size`` bytes starting at ``f``'s position, once checked:
    every tensor has [begin, end] offsets, and they tile the data section to the end of the file."""
    where = f"{where}: " if where else ""
    head = f.read(8)
    if len(head) != 8:
        raise FetchError(f"{where}not a safetensors file: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", head)
    if n > min(size - 8, SAFETENSORS_MAX_HEADER):
        raise FetchError(f"{where}malformed safetensors header: its length {n} exceeds the file or the format's bound")
    try:
        header = json.loads(f.read(n))
    except (ValueError, RecursionError) as e:
        raise FetchError(f"{where}malformed safetensors header: not JSON ({e})") from None
    if not isinstance(header, dict):
        raise FetchError(f"{where}malformed safetensors header: not a JSON object")
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(x) is int for x in offsets)):
            raise FetchError(f"{where}malformed safetensors header: tensor {name[:80]!r} has no [begin, end] "
                             f"data_offsets")
        spans.append(offsets)
    pos = 0
    for a, b in sorted(spans):
        if a != pos or b < a:
            raise FetchError(f"{where}malformed safetensors header: the tensors do not tile the data section")
        pos = b
    if 8 + n + pos != size:
        raise FetchError(f"{where}the safetensors data section ends at {8 + n + pos}, the file at {size}")
    return header


def _check_npy(f, size: int) -> str:
    readers = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}
    try:
        version = npformat.read_magic(f)
        if version not in readers:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = readers[version](f)
        expect = f.tell() + math.prod(shape) * dtype.itemsize
    except (ValueError, SyntaxError, TypeError, KeyError, OverflowError, RecursionError) as e:
        raise FetchError(f"malformed .npy header: {e}") from None
    if expect != size:
        raise FetchError(f"the npy header describes {expect} bytes, the file has {size}")
    return f"npy header {dtype.str}{list(shape)}"


def _check_npz(f, size: int) -> str:
    """Every byte of an npz is one the server proves: each entry's data by the CRC-32 it computed while
    streaming it (zipfile checks it on reading), every other byte (local headers, data descriptors,
    central directory, end records) by being exactly what its encoder writes for those names, sizes
    and CRC-32s (``service.output.npz``)."""
    try:
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
            for info in infos:
                with z.open(info) as member:
                    while member.read(MIB):
                        pass
    except zipfile.BadZipFile as e:
        raise FetchError(f"the npz does not match the CRC-32s and records the server wrote: {e}") from None
    except (ValueError, OSError, EOFError, NotImplementedError, struct.error, zipfile.LargeZipFile) as e:
        raise FetchError(f"malformed npz: {type(e).__name__}: {e}") from None
    for zip64 in (False, True):  # the encoder writes zip64 records only when sizes need them (or forced)
        try:
            entries, regions, offset = [], [], 0
            for info in infos:
                e = Entry(info.filename, info.file_size, offset, zip64)
                e.crc = info.CRC
                regions += [(offset, e.local_header()), (offset + e.local_length() - len(e.descriptor()),
                                                         e.descriptor())]
                offset += e.local_length()
                entries.append(e)
        except (UnicodeEncodeError, struct.error) as e:
            raise FetchError(f"malformed npz: an entry is not one the server writes ({e})") from None
        central = b"".join(e.central(zip64) for e in entries)
        regions.append((offset, central + end_records(entries, offset, len(central), zip64)))
        if regions[-1][0] + len(regions[-1][1]) == size:
            break
    else:
        raise FetchError(f"the npz's ZIP records do not add up to its {size} bytes: not the archive the server wrote")
    for at, expected in regions:
        f.seek(at)
        if f.read(len(expected)) != expected:
            raise FetchError(f"the npz's ZIP records at byte {at} differ from the ones the server writes for these "
                             f"entries: the bytes were altered on the way")
    return f"npz: CRC-32 of every entry ({len(infos)}) and every ZIP record"


# ------------------------------------------------------------------------------------ hf folders
#: The files an hf folder may hold (``service.output.hf``): nothing else is ever unpacked.
HF_FILE = re.compile(hf.FILE_NAMES)


@dataclass(frozen=True)
class _Member:
    """A file of the hf tar: its name in the folder, where its header and its bytes start, its size."""

    name: str
    offset: int
    data: int
    size: int


def _hf_members(f, size: int) -> list[_Member]:
    """The tar's files: one top folder holding names the hf format writes, each once, and every header,
    padding and end block byte for byte what ``output.tar`` writes for those names and sizes (the bytes
    between the files' contents are the server's too, not only proven in transit); raises FetchError."""
    try:
        with tarfile.open(fileobj=f, mode="r:") as archive:
            infos = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError, UnicodeError) as e:
        raise FetchError(f"malformed hf tar: {e}") from None
    if not infos or not infos[0].isdir() or "/" in infos[0].name.rstrip("/"):
        raise FetchError("malformed hf tar: it does not start with one top folder")
    root = infos[0].name.rstrip("/")
    regions, members, seen = [(0, tar.folder_header(root))], [], set()
    at = len(regions[0][1])
    for info in infos[1:]:
        name = info.name[len(root) + 1:] if info.name.startswith(root + "/") else ""
        if not info.isreg() or not HF_FILE.fullmatch(name) or name in seen:
            raise FetchError(f"malformed hf tar: unexpected member {info.name[:120]!r}")
        seen.add(name)
        header = tar.member_header(info.name, info.size)
        if info.offset != at or info.offset_data != at + len(header):
            raise FetchError(f"malformed hf tar: {name}'s header is not where the server writes it")
        regions.append((at, header))
        members.append(_Member(name, at, info.offset_data, info.size))
        at = info.offset_data + info.size
        regions.append((at, tar.padding(info.size)))
        at += len(regions[-1][1])
    regions.append((at, tar.end(at)))
    if at + len(regions[-1][1]) != size:
        raise FetchError(f"malformed hf tar: its files end at byte {at}, so the archive would have "
                         f"{at + len(regions[-1][1])} bytes, not {size}")
    for offset, expected in regions:
        if _pread(f, offset, len(expected)) != expected:
            raise FetchError(f"the hf tar's headers at byte {offset} differ from the ones the server writes for "
                             f"these files: the bytes were altered on the way")
    return members


def _check_hf(f, size: int) -> str:
    """The tar holds an hf folder as the server writes it (``_hf_members``): config.json, then
    model.safetensors alone, or the index and the shards model-0000k-of-0000N in order; config.json is
    a JSON object; every shard's safetensors header tiles its data; the index's weight_map names every
    tensor of every shard, in its shard, and its total_size is their size."""
    members = _hf_members(f, size)
    names = [m.name for m in members]
    shards = [m for m in members if m.name.endswith(".safetensors")]
    expected = ["config.json"] + ([] if len(shards) == 1 else [hf.INDEX]) + [hf.shard_name(i, len(shards))
                                                                           for i in range(len(shards))]
    if not shards or names != expected:
        raise FetchError(f"malformed hf tar: it holds {names}, not an hf folder ({expected})")
    try:
        config = json.loads(_pread(f, members[0].data, members[0].size))
    except (ValueError, RecursionError) as e:
        raise FetchError(f"malformed config.json: {e}") from None
    if not isinstance(config, dict):
        raise FetchError("malformed config.json: not a JSON object")
    held, total = {}, 0
    for m in shards:
        f.seek(m.data)
        header = _safetensors_header(f, m.size, m.name)
        held.update((t, m.name) for t in header if t != "__metadata__")
        total += sum(e["data_offsets"][1] - e["data_offsets"][0] for t, e in header.items() if t != "__metadata__")
    if len(shards) > 1:
        index = members[1]
        try:
            loaded = json.loads(_pread(f, index.data, index.size))
            weight_map, total_size = loaded["weight_map"], loaded["metadata"]["total_size"]
        except (ValueError, RecursionError, KeyError, TypeError) as e:
            raise FetchError(f"malformed {hf.INDEX}: {type(e).__name__}: {e}") from None
        if weight_map != held:
            first = next((k for k in sorted(set(held) | set(weight_map)) if weight_map.get(k) != held.get(k)), None) \
                if isinstance(weight_map, dict) else None
            where = f": {first[:120]!r} is in {held.get(first)}, the index says {weight_map.get(first)!r}" \
                if first else ""
            raise FetchError(f"{hf.INDEX}'s weight_map differs from the shards' headers{where}")
        if total_size != total:
            raise FetchError(f"{hf.INDEX}'s metadata.total_size {total_size!r} is not the shards' {total} bytes")
    return f"hf folder: {len(members)} files, every tar header and shard header ({len(shards)}), the index"


def _pread(f, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


def unpack_hf(archive: PartialFile, directory: str) -> tuple[list[str], list[str]]:
    """Write the files of a checked hf tar (``archive``) into ``directory``: (their names, the files of an
    earlier folder removed, ``remove_stale``).

    From the last file to the first, each is copied into its own partial file and the tar is truncated
    behind it, so that the disk holds the folder plus one file more, never two folders. Once every file
    is written they are renamed into place; on any failure they are removed (and the tar is gone)."""
    with archive.reader() as f:
        members = _hf_members(f, os.fstat(archive.fd).st_size)
    written: dict[str, PartialFile] = {}
    try:
        for m in reversed(members):
            out = written[m.name] = PartialFile(os.path.join(directory, m.name))
            out.reserve(m.size)
            done = 0
            while done < m.size:
                chunk = os.pread(archive.fd, min(m.size - done, 8 * MIB), m.data + done)
                if not chunk:
                    raise FetchError(f"the tar ends inside {m.name}")
                out.write(chunk, done, m.name)
                done += len(chunk)
            try:
                os.ftruncate(archive.fd, m.offset)
            except OSError as e:
                raise FetchError(f"cannot shrink the tar in {directory}: {e.strerror}") from None
        removed = place(directory, [written[m.name] for m in members])
    except BaseException:
        for out in written.values():
            out.discard()
        raise
    return [m.name for m in members], removed


def place(directory: str, files: list[PartialFile]) -> list[str]:
    """Rename the written ``files`` of an hf folder into place, in order, then remove the files of an
    earlier folder that this one does not hold (``remove_stale``); returns their names. The caller
    discards the files on failure (a committed one is in place: discarding it does nothing)."""
    for out in files:
        out.commit()
    return remove_stale(directory, [os.path.basename(out.output) for out in files])


def make_folder(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise FetchError(f"cannot create the folder {directory}: {e.strerror}") from None


def remove_stale(directory: str, keep: list[str]) -> list[str]:
    """Remove the files of an earlier hf folder in ``directory`` that this one does not hold (a
    model.safetensors beside a new index would be loaded instead of the shards); returns their names."""
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if HF_FILE.fullmatch(name) and name not in keep and (os.path.islink(path) or os.path.isfile(path)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise FetchError(f"cannot remove {path}, a file of an earlier folder: {e.strerror}") from None
            removed.append(name)
    return removed
