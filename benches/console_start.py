#!/usr/bin/env python3
"""The console's start and idle costs, measured on the real binary in a pseudo-terminal.

  python3 benches/console_start.py [BINARY] [RUNS]

1. First frame: time from spawning `codex-fleet --demo` to the first frame's text
   ("codex-fleet" after the switch to the alternate screen) arriving on the terminal, RUNS
   times (default 20): min, median, p95, max.
2. Idle CPU: `--demo-scale 1250x8 --demo-latency 0` (10,000 agents), once the scan is done,
   CPU ticks used over 5 s of no input (clock ticks of /proc/PID/stat utime+stime).

BINARY defaults to target/release/codex-fleet (build it with `cargo build --release`).
Figures go in docs/benchmarks.md with the command that produced them.
"""
import os
import pty
import re
import select
import signal
import statistics
import sys
import tempfile
import time


def spawn(argv, env):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    # 200x50, as the table benchmark.
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    return pid, fd


def read_until(fd, needle, timeout, buf=b""):
    """Read until `needle` (bytes, or a compiled bytes regex) has arrived."""
    end = time.monotonic() + timeout
    found = (lambda b: needle.search(b)) if hasattr(needle, "search") else (lambda b: needle in b)
    while not found(buf):
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {needle!r} within {timeout}s; got {buf[-400:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                raise TimeoutError(f"terminal closed before {needle!r}")
            buf += chunk
    return buf


def stop(pid, fd):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    os.close(fd)


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/codex-fleet"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    state = tempfile.mkdtemp(prefix="cf-bench-")
    env = dict(os.environ, TERM="xterm-256color", CODEX_FLEET_STATE_DIR=state, XDG_STATE_HOME=state)

    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        pid, fd = spawn([binary, "--demo"], env)
        buf = read_until(fd, b"\x1b[?1049h", 10)
        read_until(fd, b"codex-fleet", 10, buf)
        times.append((time.monotonic() - t0) * 1000)
        stop(pid, fd)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(f"first frame of --demo over {runs} runs: min {times[0]:.1f} ms, median {statistics.median(times):.1f} ms, "
          f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms")

    pid, fd = spawn([binary, "--demo", "--demo-scale", "1250x8", "--demo-latency", "0"], env)
    t0 = time.monotonic()
    # ratatui moves the cursor over unchanged cells: words arrive apart.
    read_until(fd, re.compile(rb"scan(?: |\x1b\[[0-9;]*H)done"), 300)
    loaded = time.monotonic() - t0
    # Drain whatever the last frame still sends, then measure 5 s of no input.
    time.sleep(1)
    while select.select([fd], [], [], 0)[0]:
        os.read(fd, 65536)
    before = ticks(pid)
    time.sleep(5)
    used = ticks(pid) - before
    hz = os.sysconf("SC_CLK_TCK")
    print(f"idle with 10,000 agents loaded (scan done after {loaded:.1f} s): {used} tick(s) of CPU in 5 s "
          f"({used / hz * 1000 / 5:.1f} ms CPU per second, tick = {1000 / hz:.0f} ms)")
    stop(pid, fd)


if __name__ == "__main__":
    main()
