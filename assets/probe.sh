#!/bin/sh
# codex-fleet probe, output format 1.
#
# Runs inside an agent container AS THE AGENT USER (e.g. `docker exec -u agent C sh -s -- ARGS`
# or through SSM) and reports, on stdout, what the console needs to diagnose a codex sandbox
# that cannot start. It changes nothing: codex runs only on a temporary copy of config.toml in
# a temporary CODEX_HOME (not under /tmp: codex refuses helper links under a temporary dir),
# removed on exit. Plain POSIX sh (dash, busybox ash) + coreutils/busybox + awk (mawk-safe).
# Every step is time-bounded when `timeout` exists and reports `absent` when its tool is
# missing; no step can fail the whole probe.
#
# Inputs (positional only: the container's environment is the agent's, and an agent must not
# steer where the console later writes as root, so no CFP_* variable is ever read from it):
#   $1  summary (default) | detail | files (= detail + redacted file contents)
#   $2  Gitea base URL (default https://git.moleculesai.app)
#   $3  the agent's CODEX_HOME (default $CODEX_HOME, else $HOME/.codex)
#   $4  the boot emitter (default /usr/local/bin/codex_mcp_config.sh)
#   $5  seconds per step (default 10), $6 seconds per codex run (default 30)
# Of the container's environment only HOME and CODEX_HOME are used; no value is read out.
#
# Output (parsed by src/probe/parse.rs, which documents every item):
#   #cfp 1 s|d                header: format version, s(ummary) or d(etail)
#   k=v k=v ...               items; summary: one line; detail: one item per line
#   #cfp 1 end N              trailer: N items were written (missing = truncated)
# Values never contain blanks: anything that could is percent-encoded (%XX, lower-case hex,
# bytes outside [A-Za-z0-9._~/:@+=-]). Secrets are redacted here, before anything leaves.
# Step values: outcome letter (o ok, d denied, a absent, e error), exit code, then an optional
# signature letter of a known stderr (l RTM_NEWADDR/NEWLINK, m uid map, u new namespace /
# unshare failed, b bwrap unavailable, c config error, p permission denied, t timeout). These
# rules are the only classifier: the console's verdict reads the letter, never the stderr.

LC_ALL=C; export LC_ALL
umask 077
CFP_MODE=${1:-summary}
CFP_GITEA=${2:-https://git.moleculesai.app}
CH=${3:-${CODEX_HOME:-${HOME:-/}/.codex}}
EMITTER=${4:-/usr/local/bin/codex_mcp_config.sh}
TS=${5:-10}; case $TS in *[!0-9]* | '') TS=10 ;; esac
TC=${6:-30}; case $TC in *[!0-9]* | '') TC=30 ;; esac
case $CFP_MODE in summary) M=s ;; detail) M=d ;; files) M=f ;; *) M=s ;; esac

REDACT_AWK=$(cat <<'CFP_AWK_EOF'
#@@REDACT_AWK@@
CFP_AWK_EOF
)

# Percent-encoder: stdin -> one line. nonl=1: the input had no final newline.
# lines=N / width=W: keep only the first N lines, each cut to W bytes (stderr evidence).
# sep=S: join lines with S instead of an encoded newline (argv); base1=1: argv[0] as basename,
# and argv[1] too when argv[0] is node (the npm launcher: `node /usr/local/bin/codex ...`).
ENC_AWK='BEGIN { for (i = 1; i < 256; i++) { c = sprintf("%c", i); h[c] = sprintf("%02x", i) }
  safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/:@+=-" }
lines && NR > lines { exit }
{ l = $0; if (width && length(l) > width) l = substr(l, 1, width)
  if (NR == 1 && base1) { sub(/.*\//, "", l); node = l ~ /^node/ }
  if (NR == 2 && node) sub(/.*\//, "", l)
  if (NR > 1) printf "%s", (sep == "" ? "%0a" : sep)
  n = length(l)
  for (i = 1; i <= n; i++) { c = substr(l, i, 1); if (index(safe, c)) printf "%s", c; else printf "%%%s", h[c] } }
END { if (NR > 0 && !nonl && !lines && sep == "") printf "%%0a"; printf "\n" }'

NITEMS=0
SUM=
item() {
	NITEMS=$((NITEMS + 1))
	if [ "$M" = s ]; then SUM="$SUM${SUM:+ }$1=$2"; else printf '%s=%s\n' "$1" "$2"; fi
}
# enc VALUE: the value percent-encoded (without a fork when it is already safe).
enc() {
	case $1 in
	*[!A-Za-z0-9._~/:@+=-]*) printf '%s' "$1" | awk -v nonl=1 "$ENC_AWK" ;;
	*) printf '%s\n' "$1" ;;
	esac
}
have() { command -v "$1" >/dev/null 2>&1; }

# A scratch dir that is neither CODEX_HOME nor inside it, preferably not under /tmp.
T=
CWD1=
PX=
pi=
for base in "${HOME:-}" /var/tmp /dev/shm /tmp; do
	[ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] || continue
	case "$base/" in "$CH/"*) continue ;; esac
	if have mktemp; then T=$(mktemp -d "$base/.cfp.XXXXXX" 2>/dev/null) || T=
	else T="$base/.cfp.$$"; mkdir "$T" 2>/dev/null || T=
	fi
	[ -n "$T" ] && break
done
# codex also creates /tmp/codex-daemon-<uid> and /tmp/codex-bwrap-synthetic-mount-targets-<uid>
# whatever TMPDIR says. They are left alone on purpose: they are codex's per-user runtime dirs,
# shared with any codex of the agent running at the same time, and removing them under it breaks
# its sandbox (`bwrap: Can't mkdir /tmp/codex-daemon-1000: Read-only file system`, seen in tests).
cleanup() {
	if [ -n "$T" ] && [ -d "$T" ]; then chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

printf '#cfp 1 %s\n' "$(if [ "$M" = s ]; then echo s; else echo d; fi)"
if [ -z "$T" ]; then
	item err "$(enc 'no writable scratch directory')"
	printf '#cfp 1 end %s\n' "$NITEMS"
	exit 0
fi

TRUE=/bin/true; [ -x "$TRUE" ] || TRUE=/usr/bin/true
TO=
if have timeout; then
	if timeout -k 1 5 "$TRUE" >/dev/null 2>&1; then TO=k
	elif timeout 5 "$TRUE" >/dev/null 2>&1; then TO=p
	elif timeout -t 5 "$TRUE" >/dev/null 2>&1; then TO=b
	fi
fi
tmo() {
	s=$1; shift
	case $TO in
	k) timeout -k 2 "$s" "$@" ;;
	p) timeout "$s" "$@" ;;
	b) timeout -t "$s" "$@" ;;
	*) "$@" ;;
	esac
}
# step NAME SECONDS CMD...: stdout/stderr/rc into $T/NAME.{out,err,rc}.
step() {
	n=$1; s=$2; shift 2
	tmo "$s" "$@" >"$T/$n.out" 2>"$T/$n.err" </dev/null
	echo $? >"$T/$n.rc"
}
# result NAME: the step value (outcome letter, rc, signature letter) from its files.
result() {
	r=; read r <"$T/$1.rc" 2>/dev/null
	sg=$(awk '/RTM_NEWADDR|RTM_NEWLINK/ { f["l"] = 1 }
		/uid map|uid_map|gid_map|setgroups/ { f["m"] = 1 }
		/new namespace|unshare failed/ { f["u"] = 1 }
		/bubblewrap is unavailable/ { f["b"] = 1 }
		/duplicate key|TOML parse error|config|unknown variant|no longer supported|^Error/ { f["c"] = 1 }
		/Operation not permitted|Permission denied|EPERM|EACCES/ { f["p"] = 1 }
		END { n = split("l m u b c p", o, " "); for (i = 1; i <= n; i++) if (o[i] in f) { printf "%s", o[i]; exit } }' "$T/$1.err" 2>/dev/null)
	if [ -n "$TO" ] && { [ "$r" = 124 ] || [ "$r" = 137 ] || [ "$r" = 143 ]; }; then echo et; return; fi
	if [ "$r" = 0 ]; then echo "o0$sg"; return; fi
	case $sg in l | m | u | p) echo "d$r$sg" ;; *) echo "e$r$sg" ;; esac
}
# evidence NAME: first lines of its stderr, temp paths put back, redacted, encoded.
evidence() {
	[ -s "$T/$1.err" ] || { echo; return; }
	awk -v from="$T/home" -v to="$CH" '{ l = $0; o = ""
		while ((p = index(l, from)) > 0) { o = o substr(l, 1, p - 1) to; l = substr(l, p + length(from)) }
		print o l }' "$T/$1.err" | awk "$REDACT_AWK" | awk -v lines=6 -v width=300 "$ENC_AWK"
}
put_evidence() { [ "$M" = s ] || { e=$(evidence "$1"); [ -n "$e" ] && item "e.$1" "$e"; }; }

# --- identity -------------------------------------------------------------------------
uid=$(awk '/^Uid:/ { print $3 }' /proc/self/status 2>/dev/null)
gid=$(awk '/^Gid:/ { print $3 }' /proc/self/status 2>/dev/null)
user=$(id -un 2>/dev/null) || user=
[ -z "$user" ] && [ -n "$uid" ] && user=$(awk -F: -v u="$uid" '$3 == u { print $1; exit }' /etc/passwd 2>/dev/null)
item id "$uid:$gid:$(enc "$user")"
cap=$(awk '/^CapEff:/ { print $2 }' /proc/self/status 2>/dev/null)
if [ "$M" = s ]; then cap=$(echo "$cap" | sed 's/^0*//'); [ -z "$cap" ] && cap=0; fi
item cap "${cap:--}"
if [ -r /proc/self/uid_map ]; then
	# numbers only: blanks sent as `_` (the summary is tight)
	item um "$(enc "$(awk '{ $1 = $1; gsub(/ /, "_"); printf "%s%s", (NR > 1 ? ";" : ""), $0 }' /proc/self/uid_map)")"
else item um -; fi
if [ ! -e /etc/subuid ]; then su=a
elif [ ! -r /etc/subuid ]; then su=e
elif awk -F: -v u="$user" -v i="$uid" '$1 != "" && ($1 == u || $1 == i) { f = 1 } END { exit !f }' /etc/subuid; then su=o
else su=a; fi
item su "$su"
sc=
for f in /proc/sys/kernel/unprivileged_userns_clone /proc/sys/user/max_user_namespaces /proc/sys/kernel/apparmor_restrict_unprivileged_userns; do
	# (not `read`: dash reads /proc/sys files byte by byte and gets only the first byte)
	v=-; [ -r "$f" ] && v=$(enc "$(cat "$f" 2>/dev/null)")
	sc="$sc${sc:+,}$v"
done
item sc "$sc"

# --- codex processes of this container (same cgroup as the probe; --pid=host sees all) ---
selfcg=; { while IFS= read -r l; do selfcg="$selfcg$l;"; done </proc/self/cgroup; } 2>/dev/null
for d in /proc/[0-9]*; do
	p=${d#/proc/}
	[ "$p" = "$$" ] && continue
	cg=; { while IFS= read -r l; do cg="$cg$l;"; done <"$d/cgroup"; } 2>/dev/null || continue
	[ "$cg" = "$selfcg" ] || continue
	{ tr '\0' '\n' <"$d/cmdline" >"$T/argv"; } 2>/dev/null || continue
	[ -s "$T/argv" ] || continue
	iscodex=$(awk 'NR == 1 { a0 = $0; sub(/.*\//, "", a0) } NR == 2 { a1 = $0; sub(/.*\//, "", a1) }
		END { if (a0 == "codex" || a0 ~ /^codex-(x86_64|aarch64)/ || (a0 ~ /^node/ && (a1 == "codex" || a1 == "codex.js"))) print 1 }' "$T/argv")
	[ "$iscodex" = 1 ] || continue
	cwd=$(readlink "$d/cwd" 2>/dev/null) || cwd=
	[ -z "$CWD1" ] && [ -n "$cwd" ] && [ -d "$cwd" ] && CWD1=$cwd
	# redacted argv, elements encoded and joined by commas (summary: argv[0] as basename)
	b1=0; [ "$M" = s ] && b1=1
	av=$(awk -v argvmode=1 "$REDACT_AWK" <"$T/argv" | awk -v sep=, -v base1=$b1 "$ENC_AWK")
	if [ "$M" = s ]; then PX="$PX${PX:+;}$p/$av"
	else item p "$p,$(if [ -n "$cwd" ]; then enc "$cwd"; else echo -; fi),$av"; fi
done
if [ "$M" = s ] && [ -n "$PX" ]; then
	# keep the summary small: drop npm's `node .../codex` launchers when a native codex (their
	# child, same argv) is listed; argv only while it fits, else the pids and a `*` (see detail)
	PX=$(echo "$PX" | awk -F';' '{ for (i = 1; i <= NF; i++) if ($i !~ /^[0-9]+\/node/) k = 1
		for (i = 1; i <= NF; i++) if (!k || $i !~ /^[0-9]+\/node/) { o = o (o == "" ? "" : ";") $i; p = p (p == "" ? "" : ";") substr($i, 1, index($i, "/") - 1) }
		if (length(o) > 90) o = p "*"; print o }')
	item px "$PX"
fi

# --- user namespaces and codex's bwrap start-up probe -------------------------------------
if have unshare; then
	step un "$TS" unshare --user "$TRUE"; s1=$(result un)
	step ur "$TS" unshare --user --map-root-user "$TRUE"; s2=$(result ur)
else s1=a; s2=a; fi
CX=$(command -v codex 2>/dev/null)
case $CX in /*) ;; *) CX= ;; esac
BW=$(command -v bwrap 2>/dev/null)
case $BW in /*) ;; *) BW= ;; esac
BWB=0
if [ -z "$BW" ] && [ -n "$CX" ]; then
	real=$(readlink -f "$CX" 2>/dev/null) || real=$CX
	dir=${real%/*}
	for b in "$dir/codex-resources/bwrap" "$dir/../codex-resources/bwrap" "$dir"/../vendor/*/codex-resources/bwrap "$dir"/../vendor/*/*/codex-resources/bwrap; do
		[ -x "$b" ] && { BW=$b; BWB=1; break; }
	done
fi
if [ -n "$BW" ]; then step bw "$TS" "$BW" --unshare-user --unshare-net --ro-bind / / /bin/true; s3=$(result bw)
else s3=a; fi
item ns "$s1,$s2,$s3"
put_evidence un; put_evidence ur; put_evidence bw
if [ -z "$BW" ]; then item bw -
elif [ "$M" = s ] && [ "$BWB" = 1 ]; then item bw +
else item bw "$(enc "$BW")"; [ "$BWB" = 1 ] && item bwb 1; fi

# --- codex: version, effective permissions on a temporary copy of CODEX_HOME ---------------
SM=; AP=; NA=
if [ -n "$CX" ]; then
	item cx "$(enc "$CX")"
	mkdir -p "$T/home" "$T/tmp"
	# every codex invocation writes into CODEX_HOME (even --version): only ever the copy
	(HOME=$T/home CODEX_HOME=$T/home TMPDIR=$T/tmp; export HOME CODEX_HOME TMPDIR; step cv "$TC" "$CX" --version)
	ver=$(awk 'NF { print; exit }' "$T/cv.out")
	case $ver in
	"codex-cli "*) item cv "$(enc "${ver#codex-cli }")" ;;
	"") item cv - ;;
	*) item cv "!$(enc "$ver")" ;;
	esac
	cp_ok=1
	for f in "$CH"/config.toml "$CH"/*.config.toml; do
		[ -f "$f" ] || continue
		cat "$f" >"$T/home/${f##*/}" 2>/dev/null || cp_ok=0
	done
	wd=${CWD1:-$T}
	if [ "$cp_ok" = 1 ]; then
		(cd "$wd" 2>/dev/null || cd "$T"; HOME=$T/home CODEX_HOME=$T/home TMPDIR=$T/tmp; export HOME CODEX_HOME TMPDIR
			step pi "$TC" "$CX" debug prompt-input)
		pi=$(result pi)
		eff=$(awk 'function grab(re, pre,   s) { if (match($0, re)) { s = substr($0, RSTART + length(pre), RLENGTH - length(pre)); sub(/`$/, "", s); return s } return "" }
			sm == "" { sm = grab("`sandbox_mode` is `[a-z-]+`", "`sandbox_mode` is `") }
			ap == "" { ap = grab("Approval policy is currently [a-z-]+", "Approval policy is currently ") }
			ap == "" { ap = grab("`approval_policy` is `[a-z-]+`", "`approval_policy` is `") }
			na == "" && /Network access is enabled/ { na = "1" }
			na == "" && /Network access is restricted/ { na = "0" }
			/require_escalated/ { esc = 1 }
			END { if (ap == "" && esc) ap = "on-request"; if (ap == "unless-trusted") ap = "untrusted"
				print (sm == "" ? "-" : sm), (ap == "" ? "-" : ap), (na == "" ? "-" : na) }' "$T/pi.out")
		set -- $eff
		[ "$1" != - ] && SM=$1; [ "$2" != - ] && AP=$2; [ "$3" != - ] && NA=$3
	else
		echo "cannot read $CH/config.toml" >"$T/pi.err"; pi=ep
	fi
	item pi "$pi"
	put_evidence pi
	if [ -n "$SM$AP$NA" ]; then
		case $SM in danger-full-access) e1=D ;; workspace-write) e1=W ;; read-only) e1=R ;; "") e1=- ;; *) e1="($SM)" ;; esac
		case $AP in never) e2=N ;; on-request) e2=R ;; on-failure) e2=F ;; untrusted) e2=U ;; "") e2=- ;; *) e2="($AP)" ;; esac
		item ef "$e1$e2${NA:--}"
	fi
else
	item cx -
fi
item ch "$(enc "$CH")"

# --- config.toml and the boot emitter: hash of the real bytes (content only on request) ----
fileinfo() { # KEY PATH
	if [ ! -e "$2" ]; then item "$1" -; return; fi
	if [ ! -r "$2" ]; then item "$1" !; return; fi
	h=
	if have sha256sum; then h=$(sha256sum <"$2" | awk '{ print $1 }')
	elif have openssl; then h=$(openssl dgst -sha256 <"$2" | awk '{ print $NF }')
	elif have python3; then h=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())' <"$2")
	fi
	z=$(wc -c <"$2" | awk '{ print $1 }')
	[ -z "$h" ] && h=?
	[ "$M" = s ] && [ "$h" != "?" ] && h=$(printf '%.12s' "$h")
	item "$1" "$h:$z"
	if [ "$M" = f ]; then
		nl=0; [ -s "$2" ] && [ "$(tail -c 1 "$2" | wc -l)" -eq 0 ] && nl=1
		item "${1}x" "$(awk -v nonl=$nl "$REDACT_AWK" <"$2" | awk -v nonl=$nl "$ENC_AWK")"
	fi
}
fileinfo cf "$CH/config.toml"
[ "$EMITTER" != /usr/local/bin/codex_mcp_config.sh ] && item emp "$(enc "$EMITTER")"
fileinfo em "$EMITTER"

# --- codex's other config layers (codex-rs config_loader): /etc/codex/config.toml below the
# user's file, a trusted project's .codex/config.toml above it, and the managed constraints no
# config can lift (requirements.toml; legacy managed_config.toml). Hashed like config.toml,
# redacted contents with mode `files`; a summary says only which exist (`ly`, letters s r m p).
LY=
layer() { # KEY LETTER PATH
	if [ "$M" = s ]; then [ -e "$3" ] && LY="$LY$2"; return 0; fi
	fileinfo "$1" "$3"
}
layer sy s /etc/codex/config.toml
layer rq r /etc/codex/requirements.toml
layer mc m /etc/codex/managed_config.toml
# The project codex loads: from its working directory up to the project root (the nearest
# directory with .git, else the working directory itself), the nearest .codex/config.toml
# that is not CODEX_HOME's own. Whether codex trusts it is the user config's business.
PJ=
if [ -n "$CWD1" ]; then
	root=$CWD1; d=$CWD1
	while [ -n "$d" ]; do
		[ -e "$d/.git" ] && { root=$d; break; }
		[ "$d" = / ] && break
		d=${d%/*}; [ -z "$d" ] && d=/
	done
	d=$CWD1
	while [ -n "$d" ]; do
		if [ -f "$d/.codex/config.toml" ] && [ "${d%/}/.codex" != "${CH%/}" ]; then PJ=${d%/}; [ -z "$PJ" ] && PJ=/; break; fi
		[ "$d" = "$root" ] || [ "$d" = / ] && break
		d=${d%/*}; [ -z "$d" ] && d=/
	done
fi
if [ -n "$PJ" ]; then
	[ "$M" = s ] || item pjd "$(enc "$PJ")"
	layer pj p "${PJ%/}/.codex/config.toml"
elif [ "$M" != s ]; then item pj -; fi
[ "$M" = s ] && [ -n "$LY" ] && item ly "$LY"

# --- evidence of harm: codex's session records (rollout-*.jsonl under $CODEX_HOME/sessions/
# YYYY/MM/DD) of the last 24 h. Only counts and a time leave: never a command or its output.
# Bounded: the newest 8 files of the newest two days, the last 512 KiB of each, one timeout.
# hs=N,D,S,A: N tool-call outputs, D of them carrying a sandbox failure (bwrap's and codex's
# own namespace errors), S that exited 0, A minutes since the current run of sandbox failures
# began (no success after it), `-` when there is none.
if [ -d "$CH/sessions" ] && [ -r "$CH/sessions" ]; then
	now=$(date -u +%s 2>/dev/null)
	: >"$T/rollouts"
	for day in $(ls -d "$CH"/sessions/[0-9]*/[0-9]*/[0-9]* 2>/dev/null | sort | tail -n 2); do
		ls "$day"/rollout-*.jsonl 2>/dev/null
	done | sort | tail -n 8 >"$T/rollout-files"
	while IFS= read -r f; do
		[ -f "$f" ] && tail -c 524288 "$f" 2>/dev/null >>"$T/rollouts" && echo >>"$T/rollouts"
	done <"$T/rollout-files"
	hs=$(tmo "$TS" awk -v now="${now:-0}" '
		function days(y, m, d) { if (m <= 2) { y--; m += 12 } return 365 * y + int(y / 4) - int(y / 100) + int(y / 400) + int((153 * (m - 3) + 2) / 5) + d - 719469 }
		function epoch(ts) { return days(substr(ts, 1, 4) + 0, substr(ts, 6, 2) + 0, substr(ts, 9, 2) + 0) * 86400 + substr(ts, 12, 2) * 3600 + substr(ts, 15, 2) * 60 + substr(ts, 18, 2) }
		/"type":"function_call_output"|"type":"custom_tool_call_output"|"type":"local_shell_call_output"/ {
			if (!match($0, /"timestamp":"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/)) next
			t = epoch(substr($0, RSTART + 13, 19)); if (now > 0 && t < now - 86400) next
			n++
			if ($0 ~ /bwrap: |RTM_NEWADDR|RTM_NEWLINK|setting up uid map|No permissions to create (a )?new namespace|bubblewrap is unavailable|codex-linux-sandbox/) { dn++; if (!streak) { streak = 1; since = t } }
			else if ($0 ~ /Exit code: 0[^0-9]|exit_code\\?":0[^0-9]|Process exited with code 0[^0-9]/) { ok++; streak = 0 }
		}
		END { a = "-"; if (streak && now > 0) a = int((now - since) / 60); if (a != "-" && a < 0) a = 0; printf "%d,%d,%d,%s\n", n, dn, ok, a }' "$T/rollouts" 2>/dev/null)
	case $hs in [0-9]*,[0-9]*,[0-9]*,*) item hs "$hs" ;; *) item hs e ;; esac
fi

# --- Gitea: plain, then the way codex makes the request -------------------------------------
URL="${CFP_GITEA%/}/api/v1/version"
HC=
if have curl; then HC=curl; set -- curl -sS -o /dev/null -w '%{http_code}' --max-time "$TS" "$URL"
elif have python3; then HC=python3; set -- python3 -c 'import sys, urllib.request as u, urllib.error as e
try: print(u.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status)
except e.HTTPError as x: print(x.code)' "$URL" "$TS"
elif have wget; then HC=wget; set -- wget -q -S -O /dev/null -T "$TS" "$URL"
fi
http() { # NAME: the step value plus ":" and the status code, if any answered
	v=$(result "$1")
	if [ "$HC" = wget ]; then c=$(awk '/HTTP\/[0-9.]+ [0-9][0-9][0-9]/ { for (i = 1; i <= NF; i++) if ($i ~ /^HTTP\//) c = $(i + 1) } END { print c }' "$T/$1.err")
	else c=$(awk 'NF { c = $1 } END { print c }' "$T/$1.out"); fi
	case $c in [1-9][0-9][0-9]) ;; *) c= ;; esac
	[ "$HC" = wget ] && [ -n "$c" ] && v="o0${v#??}" # wget exits 8 on 4xx/5xx: an answer is an answer
	echo "$v:$c"
}
if [ -n "$HC" ]; then step gp "$TC" "$@"; item gp "$(http gp)"; put_evidence gp
else item gp a; fi
if [ -z "$CX" ] || [ -z "$HC" ]; then item gc a
elif [ "$pi" != "${pi#e}" ] && [ -z "$SM" ]; then
	# codex could not even read its config: running it again shows the same error
	item gc "$(echo "$pi" | sed 's/^e[0-9]*/e/'):"
else
	minor=$(echo "$ver" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+/) { split($i, v, "."); print (v[1] > 0 ? 9999 : v[2] + 0); exit } }')
	if [ -n "$minor" ]; then if [ "$minor" -lt 147 ]; then sub=linux; else sub=; fi
	elif (HOME=$T/home CODEX_HOME=$T/home TMPDIR=$T/tmp; export HOME CODEX_HOME TMPDIR; tmo "$TC" "$CX" sandbox --help 2>/dev/null </dev/null) | grep -q '^  linux '; then sub=linux
	else sub=; fi
	mode=${SM:-read-only}
	(cd "$wd" 2>/dev/null || cd "$T"; HOME=$T/home CODEX_HOME=$T/home TMPDIR=$T/tmp; export HOME CODEX_HOME TMPDIR
		if [ "$mode" = workspace-write ] && [ "$NA" = 1 ]; then
			step gc "$TC" "$CX" sandbox $sub -c "sandbox_mode=\"$mode\"" -c sandbox_workspace_write.network_access=true -- "$@"
		else
			step gc "$TC" "$CX" sandbox $sub -c "sandbox_mode=\"$mode\"" -- "$@"
		fi)
	item gc "$(http gc)"
	put_evidence gc
fi

[ "$M" = s ] && printf '%s\n' "$SUM"
printf '#cfp 1 end %s\n' "$NITEMS"
