"""Processes on this machine, from /proc: free loopback ports, a process's children, its memory
and its CPU time, which process holds a loopback connection, and stopping one. Linux only, as the
servers the tests and benchmarks start are."""

from __future__ import annotations

import os
import signal
import socket
import subprocess


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, up to 30 s to exit (a server finishing its responses), then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def children(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers are its master's)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                # The command name (field 2) may contain spaces; the fields after its ')' are fixed.
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return sorted(out)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in KiB (VmRSS, VmHWM, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM (the peak RSS) of a process to its current RSS; False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def socket_owner(pids: list[int], port: int, peer_port: int) -> int | None:
    """The process among ``pids`` holding the server end of the loopback TCP connection between
    ``port`` and ``peer_port`` (which gunicorn worker accepted a client's connection), or None
    while nobody has accepted it: its inode from /proc/net/tcp, then whose fd points at it."""
    local, remote = f"0100007F:{port:04X}", f"0100007F:{peer_port:04X}"  # 127.0.0.1, little-endian
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                inode = fields[9]
    if inode in (None, "0"):
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                pass
    return None
