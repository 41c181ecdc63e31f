#!/usr/bin/env bash
# Build the Docker images of the test fleet on this machine's engine, with no registry:
#   codex-fleet-test/base:<hash>           Debian bookworm minbase (mmdebstrap) + curl, bwrap, ...,
#                                          turned into an image with `docker import`
#   codex-fleet-test/runtime:<hash>        shaped like the codex workspace runtime: user agent
#                                          (uid 1000), /home/agent/.codex, the pre-fix boot emitter
#                                          /usr/local/bin/codex_mcp_config.sh, entrypoint start.sh
#                                          that runs it at every start; no codex binary
#   codex-fleet-test/runtime-codex:<hash>  the same with the real codex 0.133.0 (its wheel's
#                                          codex_cli_bin tree, bundled bwrap) linked onto PATH
#   codex-fleet-test/noshell:<hash>        a container image without any shell (sleep + libc)
# Each image carries the label codex-fleet-test.hash=<hash of its inputs>; an image whose hash
# label already exists is not built again. Prints the image names as KEY=VALUE lines on stdout
# (also kept in $CACHE/test-images.env). Safe to run concurrently (flock).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE="${CODEX_FLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/codex-fleet}"
CODEX_VERSION=0.133.0
CODEX_TREE="$CACHE/codex-$CODEX_VERSION/codex_cli_bin"
EMITTER="$ROOT/tests/fixtures/emitter/scripts/original.sh"
PKGS="curl,ca-certificates,util-linux,bubblewrap,procps,python3,mawk"
mkdir -p "$CACHE"
exec 9>"$CACHE/test-images.lock"
flock 9

log() { printf '[build-test-images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have_image() { [ -n "$(docker image ls -q --filter "label=codex-fleet-test.hash=$1" 2>/dev/null)" ]; }
hash_of() { sha256sum | cut -c1-16; }

command -v docker >/dev/null || { echo "docker CLI missing" >&2; exit 1; }
docker version >/dev/null || { echo "no Docker engine reachable" >&2; exit 1; }

# --- base: mmdebstrap minbase + docker import ---------------------------------------------
# (bump BASE_RECIPE when the way the base is made changes)
BASE_RECIPE=1
BASE_H=$(printf 'base %s %s\n' "$BASE_RECIPE" "$PKGS" | hash_of)
BASE="codex-fleet-test/base:$BASE_H"
if ! have_image "$BASE_H"; then
  log "building $BASE (mmdebstrap bookworm minbase)"
  work=$(mktemp -d "$CACHE/base.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mmdebstrap --quiet --variant=minbase --include="$PKGS" bookworm "$work/rootfs.tar" >&2
  docker import \
    --change "LABEL codex-fleet-test=1 codex-fleet-test.hash=$BASE_H codex-fleet-test.role=base" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "$BASE" >/dev/null
  rm -rf "$work"
  trap - EXIT
fi

# --- runtime (without and with codex) -------------------------------------------------------
ctx=$(mktemp -d "$CACHE/ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$EMITTER" "$ctx/codex_mcp_config.sh"

# start.sh: what the runtime's entrypoint does at every start, in this order: the boot emitter
# (as root, like the real one), the network boot check (a failure only logs a WARN line), then
# the long-running process as the agent user. The stand-in for `codex app-server` is a process
# whose argv[0] is `codex` (so the probe sees a codex process) that exits on SIGTERM.
cat >"$ctx/start.sh" <<'EOF'
#!/bin/bash
# codex-fleet test runtime: entrypoint (runs as root).
export HOME=/home/agent CODEX_HOME=/home/agent/.codex
echo "[start] boot $(date -u +%FT%TZ) uid=$(id -u)"
if ! /usr/local/bin/codex_mcp_config.sh; then
  echo "[start] codex_mcp_config.sh failed"
fi
URL="${CODEX_BOOT_CHECK_URL:-https://git.moleculesai.app/api/v1/version}"
code=$(setpriv --reuid=1000 --regid=1000 --init-groups curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$URL" 2>/dev/null)
if [ "$code" != 200 ]; then
  echo "WARN: network boot check failed: GET $URL returned ${code:-000}; continuing boot"
fi
[ "$#" -gt 0 ] || set -- codex app-server
if [ "$1" = codex ]; then shift; fi
exec setpriv --reuid=1000 --regid=1000 --init-groups bash -c 'exec -a codex bash /usr/local/lib/codex-fleet-test/app-server "$@"' start "$@"
EOF
cat >"$ctx/app-server" <<'EOF'
# Stand-in for `codex app-server` (the runtime's long-running codex child): waits, exits on TERM.
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
EOF

# The emitter resolves a python that can import molecule_runtime (the real runtime ships it).
mkdir -p "$ctx/molecule_runtime"
printf '%s\n' '"""Stand-in for the runtime package the boot emitter looks for (codex-fleet tests)."""' \
  >"$ctx/molecule_runtime/__init__.py"
printf '%s\n' 'def resolve():' '    return "/configs"' >"$ctx/molecule_runtime/configs_dir.py"
# A minimal MCP stdio server: answers the handshake (codex waits up to startup_timeout_sec for it).
cat >"$ctx/molecule_runtime/a2a_mcp_server.py" <<'PY'
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if "id" not in msg:
        continue
    method = msg.get("method")
    if method == "initialize":
        result = {"protocolVersion": msg.get("params", {}).get("protocolVersion", "2025-06-18"),
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "molecule", "version": "0"}}
    elif method == "tools/list":
        result = {"tools": []}
    else:
        result = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\n")
    sys.stdout.flush()
PY

cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY molecule_runtime /usr/lib/python3/dist-packages/molecule_runtime
RUN groupadd -g 1000 agent && useradd -m -u 1000 -g 1000 -s /bin/bash agent \\
 && install -d -o agent -g agent -m 0755 /home/agent/.codex \\
 && install -d -o agent -g agent -m 0755 /configs
COPY codex_mcp_config.sh start.sh /usr/local/bin/
COPY app-server /usr/local/lib/codex-fleet-test/app-server
RUN chmod 0755 /usr/local/bin/codex_mcp_config.sh /usr/local/bin/start.sh \\
 && python3 -m compileall -q /usr/lib/python3/dist-packages/molecule_runtime \\
 && chmod 0644 /usr/local/lib/codex-fleet-test/app-server
ENV HOME=/home/agent CODEX_HOME=/home/agent/.codex WORKSPACE_ID=ws-test PLATFORM_URL=http://platform:8080
ENTRYPOINT ["/usr/local/bin/start.sh"]
CMD ["codex", "app-server"]
EOF
RT_H=$(cat "$ctx/Dockerfile" "$ctx/start.sh" "$ctx/app-server" "$EMITTER" "$ctx"/molecule_runtime/* | hash_of)
RT="codex-fleet-test/runtime:$RT_H"
if ! have_image "$RT_H"; then
  log "building $RT"
  DOCKER_BUILDKIT=0 docker build -q --label codex-fleet-test=1 --label "codex-fleet-test.hash=$RT_H" \
    --label codex-fleet-test.role=runtime -t "$RT" "$ctx" >/dev/null
fi

if [ ! -x "$CODEX_TREE/bin/codex" ]; then
  echo "codex $CODEX_VERSION is not unpacked at $CODEX_TREE (scripts/test.sh fetches it)" >&2
  exit 1
fi
cctx=$(mktemp -d "$CACHE/cctx.XXXXXX")
trap 'rm -rf "$ctx" "$cctx"' EXIT
cp -a "$CODEX_TREE" "$cctx/codex_cli_bin"
rm -f "$cctx/codex_cli_bin/__init__.py"
cat >"$cctx/Dockerfile" <<EOF
FROM $RT
COPY codex_cli_bin /opt/codex/codex_cli_bin
RUN ln -s /opt/codex/codex_cli_bin/bin/codex /usr/local/bin/codex \\
 && mkdir /root/.cx && HOME=/root CODEX_HOME=/root/.cx codex --version && rm -rf /root/.cx
EOF
CX_H=$( { cat "$cctx/Dockerfile"; echo "$CODEX_VERSION"; (cd "$cctx" && find codex_cli_bin -type f -printf '%P %s %m\n' | sort);
  sha256sum "$CODEX_TREE/bin/codex" | cut -c1-64; } | hash_of)
CX="codex-fleet-test/runtime-codex:$CX_H"
if ! have_image "$CX_H"; then
  log "building $CX (with the real codex $CODEX_VERSION)"
  DOCKER_BUILDKIT=0 docker build -q --label codex-fleet-test=1 --label "codex-fleet-test.hash=$CX_H" \
    --label codex-fleet-test.role=runtime-codex -t "$CX" "$cctx" >/dev/null
fi

# --- an image without a shell: sleep and the libraries it needs ------------------------------
NS_H=$( { echo noshell 2; sha256sum /usr/bin/sleep; } | hash_of)
NS="codex-fleet-test/noshell-codex:$NS_H"
if ! have_image "$NS_H"; then
  log "building $NS"
  st="$cctx/noshell"
  mkdir -p "$st/bin" "$st/etc" "$st/home/agent/.codex"
  cp -L /usr/bin/sleep "$st/bin/sleep"
  printf '%s\n' 'root:x:0:0:root:/root:/nonexistent' 'agent:x:1000:1000:agent:/home/agent:/nonexistent' >"$st/etc/passwd"
  printf '%s\n' 'root:x:0:' 'agent:x:1000:' >"$st/etc/group"
  for lib in $(ldd /usr/bin/sleep | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$st$(dirname "$lib")"
    cp -L "$lib" "$st$lib"
  done
  tar -C "$st" -cf "$cctx/noshell.tar" .
  docker import \
    --change "LABEL codex-fleet-test=1 codex-fleet-test.hash=$NS_H codex-fleet-test.role=noshell" \
    --change 'ENV HOME=/home/agent CODEX_HOME=/home/agent/.codex' \
    --change 'CMD ["/bin/sleep", "infinity"]' \
    "$cctx/noshell.tar" "$NS" >/dev/null
fi

# Older builds of these images (other hashes) that no container uses: removed, unless
# CODEX_FLEET_KEEP_IMAGES=1 (several work trees of this repo testing side by side on one engine,
# each with its own recipe, would otherwise remove each other's images).
[ "${CODEX_FLEET_KEEP_IMAGES:-0}" = 1 ] ||
for ref in $(docker image ls --filter label=codex-fleet-test=1 --format '{{.Repository}}:{{.Tag}}'); do
  case $ref in "$BASE" | "$RT" | "$CX" | "$NS") ;; *) docker image rm "$ref" >/dev/null 2>&1 || true ;; esac
done

out="CF_IMAGE_BASE=$BASE
CF_IMAGE_RUNTIME=$RT
CF_IMAGE_RUNTIME_CODEX=$CX
CF_IMAGE_NOSHELL=$NS"
printf '%s\n' "$out" >"$CACHE/test-images.env"
printf '%s\n' "$out"
