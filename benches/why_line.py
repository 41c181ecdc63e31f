#!/usr/bin/env python3
"""Launch -> the whole "why stalled" line on the console's screen, on the real binary in a
pseudo-terminal (issue 15: goal <= 1 SSM latency + 1.0 s).

  python3 benches/why_line.py BINARY [SCALE ...] [--latency MS] [--runs N]

  e.g. python3 benches/why_line.py target/debug/codex-fleet 1x8 1000x8 --latency 1500 --runs 3

For each `--demo-scale` SCALE (default 1x8 and 1000x8):
1. The whole line: `BINARY --demo --demo-scale SCALE --demo-latency 0 scan` prints the fleet's
   why line ("stalled: N cause; ..."), the same text the console's header shows once every
   host has answered (the demo's fleet is the same each run).
2. RUNS times: spawn `BINARY --demo --demo-scale SCALE --demo-latency MS` in a 200x50
   pseudo-terminal, follow the screen (a small emulator of what the console writes: cursor
   moves, clears, text) and take the time from spawn until that whole text is on screen in the
   header (after "why: " or "why (so far): "), and until "scan done" is in the status line.
Prints min / median / max of each. Figures go in docs/benchmarks.md with the command.
"""
import codecs
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console_start import spawn, stop  # noqa: E402  (200x50 pty, SIGKILL + reap)

ROWS, COLS = 50, 200
CSI = re.compile(r"\x1b\[([0-9;?]*)([ -/]*)([@-~])")
OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


class Screen:
    """Enough of a terminal for what crossterm writes: CUP/HVP, cursor moves, ED/EL, SGR
    (ignored), mode switches (ignored), printable text (one cell a character)."""

    def __init__(self):
        self.grid = [[" "] * COLS for _ in range(ROWS)]
        self.r = self.c = 0
        self.pending = ""
        self.dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data):
        s = self.pending + self.dec.decode(data)
        i, n = 0, len(s)
        while i < n:
            ch = s[i]
            if ch == "\x1b":
                if i + 1 >= n:
                    break
                if s[i + 1] == "[":
                    m = CSI.match(s, i)
                    if not m:
                        if re.fullmatch(r"\x1b\[[0-9;?]*[ -/]*", s[i:]):
                            break  # incomplete: wait for the rest
                        i += 2
                        continue
                    self.csi(m.group(1), m.group(3))
                    i = m.end()
                elif s[i + 1] == "]":
                    m = OSC.match(s, i)
                    if not m:
                        break
                    i = m.end()
                else:
                    i += 2
                continue
            if ch == "\r":
                self.c = 0
            elif ch == "\n":
                self.r = min(ROWS - 1, self.r + 1)
            elif ch == "\b":
                self.c = max(0, self.c - 1)
            elif ch >= " ":
                if self.c < COLS:
                    self.grid[self.r][self.c] = ch
                self.c = min(COLS, self.c + 1)
            i += 1
        self.pending = s[i:]

    def csi(self, params, final):
        priv = params.startswith("?")
        nums = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] if params.lstrip("?") else []
        arg = lambda k, d: nums[k] if len(nums) > k and nums[k] else d  # noqa: E731
        if priv:
            return
        if final in "Hf":
            self.r, self.c = min(ROWS, arg(0, 1)) - 1, min(COLS, arg(1, 1)) - 1
        elif final == "A":
            self.r = max(0, self.r - arg(0, 1))
        elif final == "B":
            self.r = min(ROWS - 1, self.r + arg(0, 1))
        elif final == "C":
            self.c = min(COLS - 1, self.c + arg(0, 1))
        elif final == "D":
            self.c = max(0, self.c - arg(0, 1))
        elif final == "G":
            self.c = min(COLS, arg(0, 1)) - 1
        elif final == "J":
            mode = arg(0, 0)
            if mode in (2, 3):
                self.grid = [[" "] * COLS for _ in range(ROWS)]
            elif mode == 0:
                self.grid[self.r][self.c:] = [" "] * (COLS - self.c)
                for r in range(self.r + 1, ROWS):
                    self.grid[r] = [" "] * COLS
        elif final == "K":
            mode = arg(0, 0)
            if mode == 0:
                self.grid[self.r][self.c:] = [" "] * (COLS - self.c)
            elif mode == 2:
                self.grid[self.r] = [" "] * COLS

    def text(self, rows=ROWS):
        """The first `rows` rows, joined, blanks and frame lines collapsed to one space."""
        raw = " ".join("".join(line) for line in self.grid[:rows])
        return " ".join(re.sub(r"[│─┌┐└┘├┤┬┴┼]", " ", raw).split())


def expected_why(binary, scale, env):
    out = subprocess.run([binary, "--demo", "--demo-scale", scale, "--demo-latency", "0", "scan"],
                         env=env, capture_output=True, text=True, timeout=1800).stdout
    lines = [l for l in out.splitlines() if l.startswith("stalled: ") or l == "nothing is stalled"]
    if not lines:
        raise SystemExit(f"{scale}: no why line in the scan's output:\n{out[-2000:]}")
    return " ".join(lines[-1].split())


def one_run(binary, scale, latency, want, env, timeout):
    t0 = time.monotonic()
    pid, fd = spawn([binary, "--demo", "--demo-scale", scale, "--demo-latency", str(latency)], env)
    screen, whole, done = Screen(), None, None
    try:
        while whole is None or done is None:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{scale}: after {timeout}s, whole={whole} done={done}; screen:\n{screen.text(8)}")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                raise TimeoutError(f"{scale}: the terminal closed; screen:\n{screen.text(8)}")
            now = time.monotonic() - t0
            screen.feed(chunk)
            head = screen.text(8)  # the header: title, summary, why (at most a few lines)
            if whole is None and re.search(r"why(?: \(so far\))?: " + re.escape(want), head):
                whole = now
            if done is None and "scan done" in screen.text():
                done = now
    finally:
        stop(pid, fd)
    return whole, done


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        raise SystemExit(__doc__)
    binary, scales, latency, runs = args[0], [], 1500, 3
    i = 1
    while i < len(args):
        if args[i] == "--latency":
            latency, i = int(args[i + 1]), i + 2
        elif args[i] == "--runs":
            runs, i = int(args[i + 1]), i + 2
        else:
            scales.append(args[i])
            i += 1
    scales = scales or ["1x8", "1000x8"]
    state = tempfile.mkdtemp(prefix="cf-bench-")
    env = dict(os.environ, TERM="xterm-256color", CODEX_FLEET_STATE_DIR=state, XDG_STATE_HOME=state)
    load = os.getloadavg()
    print(f"binary {binary}, latency {latency} ms, {runs} run(s) per scale, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for scale in scales:
        want = expected_why(binary, scale, env)
        wholes, dones = [], []
        for _ in range(runs):
            w, d = one_run(binary, scale, latency, want, env, timeout=600)
            wholes.append(w)
            dones.append(d)
        fmt = lambda v: f"min {min(v):.2f} s, median {statistics.median(v):.2f} s, max {max(v):.2f} s"  # noqa: E731
        print(f"{scale}: whole why line ({len(want)} chars): {fmt(wholes)}; scan done: {fmt(dones)}")
        print(f"  why: {want}")


if __name__ == "__main__":
    main()
