#!/usr/bin/env bash
# Set up everything the tests need (cached when already there), then run the whole suite.
# Safe to run again and again; this is what .ci/run calls.
#
#   scripts/test.sh            # set up + cargo nextest run
#   scripts/test.sh -E 'test(fix)'   # extra arguments go to nextest
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${CODEX_FLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/codex-fleet}"
export CODEX_FLEET_CACHE="$CACHE"
# Builds are cached across clones of the repo (CI runs in a fresh clone on the same machine).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
CODEX_VERSIONS="0.133.0 0.136.0 0.144.4 0.149.0 0.153.4 0.163.0"   # the incident's generation ... the current one: tests/real_codex.rs judges the fixer with each
mkdir -p "$CACHE"

log() { printf '[test.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- apt packages: bubblewrap (the probe's bwrap step), util-linux (unshare, setpriv), tmux
#     (end-to-end console tests), mmdebstrap (test images), mawk (the probe's awk dialect),
#     man-db (tests/cli_generate.rs renders docs/man/ with `man -l`).
need_pkgs=()
for p in bubblewrap util-linux tmux mmdebstrap mawk curl ca-certificates man-db; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  log "installing apt packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- the real codex binaries, from their PyPI wheels (each bundles bwrap).
for v in $CODEX_VERSIONS; do
  dir="$CACHE/codex-$v"
  if [[ ! -x "$dir/codex_cli_bin/bin/codex" ]]; then
    log "fetching openai-codex-cli-bin==$v"
    mkdir -p "$CACHE/wheels"
    python3 -m pip download -q --no-deps -d "$CACHE/wheels" "openai-codex-cli-bin==$v"
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    python3 -m zipfile -e "$CACHE"/wheels/openai_codex_cli_bin-"$v"-*.whl "$dir.partial"
    # zipfile drops the executable bits.
    chmod +x "$dir.partial/codex_cli_bin/bin/codex" "$dir.partial"/codex_cli_bin/codex-resources/* \
      "$dir.partial"/codex_cli_bin/codex-path/* 2>/dev/null || true
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
done

# --- the demo's judge: the real codex of each version above answers the simulated agents'
#     `codex debug prompt-input` (src/sim/judge.rs), so every demo test is judged by codex itself.
#     Answers are cached by content in $CACHE/judge-cache, shared by all test processes and
#     runs (the demo has few distinct file sets: after the first scan nearly all are hits).
#     A CODEX_FLEET_DEMO_CODEX set by the caller wins; set it empty for the built-in model.
if [[ -z "${CODEX_FLEET_DEMO_CODEX+set}" ]]; then
  judge=""
  for v in $CODEX_VERSIONS; do judge="${judge:+$judge,}$v=$CACHE/codex-$v/codex_cli_bin/bin/codex"; done
  export CODEX_FLEET_DEMO_CODEX="$judge"
fi
export CODEX_FLEET_DEMO_CODEX_CACHE="${CODEX_FLEET_DEMO_CODEX_CACHE:-$CACHE/judge-cache}"
mkdir -p -m 700 "$CODEX_FLEET_DEMO_CODEX_CACHE"
# entries of binaries long gone (a key names the binary's path, size and mtime) age out
find "$CODEX_FLEET_DEMO_CODEX_CACHE" -maxdepth 1 \( -name '*.json' -o -name '*.lock' \) -mtime +30 -delete 2>/dev/null || true

# --- moto (EC2 discovery tests, tests/aws_moto.rs): `moto[server]` from PyPI in a cached venv.
#     Each test starts its own server on loopback from it (`python -m moto.server`) and resets it.
MOTO_VERSION=5.2.5
if [[ ! -x "$CACHE/moto-venv/bin/python" ]] || ! "$CACHE/moto-venv/bin/python" -c "import moto, flask" 2>/dev/null; then
  log "installing moto[server]==$MOTO_VERSION into $CACHE/moto-venv"
  rm -rf "$CACHE/moto-venv.partial"
  python3 -m venv "$CACHE/moto-venv.partial"
  "$CACHE/moto-venv.partial/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  rm -rf "$CACHE/moto-venv" && mv "$CACHE/moto-venv.partial" "$CACHE/moto-venv"
fi

# --- the Docker images of the test fleet (no registry; cached by content hash)
bash scripts/build-test-images.sh >/dev/null

# --- the tools the tests drive
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

log "building and running the tests (target: $CARGO_TARGET_DIR)"
export CODEX_FLEET_REQUIRE_TOOLS=1   # a test whose tool is missing fails instead of skipping
cargo nextest run --profile ci "$@"
