# ---- assets/host-ops.sh: the body of every codex-fleet host script (SSM AWS-RunShellScript).
# Runs as root on the EC2 host, after the payload header (CFH_* variables, all data) and the
# embedded files in "$CFH_DIR" (probe.sh, agent-ops.sh). Every value is used quoted; nothing from
# the payload or from a container is ever evaluated. Output format: src/fleet/aws/host_script.rs.
#
# Operations (CFH_<n>_OP), fields (CFH_<n>_F_<NAME>):
#   scan    FILTER AGENT_USER GITEA NONCE   list codex containers, inspect, probe, diff, boot WARN
#   blobs   NONCE HASHES                    texts a scan kept by hash: `b HASH VALUE`, or `m HASH` when not kept
#   read    CONTAINER AGENT_USER GITEA NONCE [KNOWN]  one container, full probe (files); a text
#                                           whose hash is in KNOWN (the console holds it) as `@HASH:LEN`
#   backup  CONTAINER PATH RUN              agent-ops.sh backup, in the container
#   write   CONTAINER PATH BEFORE CONTENT RUN [BEFORE_TEXT]   agent-ops.sh write (conditional on
#                                           the sha256 and, with BEFORE_TEXT, on the content;
#                                           atomic, backed up; placeholders restored from the
#                                           current file)
#   restore CONTAINER PATH BACKUP EXPECTED  agent-ops.sh restore (conditional)
#   lock    CONTAINER RUN TOKEN HOLDER PREV / unlock CONTAINER RUN TOKEN PREV   agent-ops.sh lock / unlock
#   restart CONTAINER                       docker restart
#   wait    CONTAINER TIMEOUT AGENT_USER GITEA NONCE [KNOWN]  running, restart count unchanged; then read
#
# A text's HASH is khash's: 12 hex digits of sha256(NONCE LF TEXT), keyed by the console's
# random nonce so that no container can search for a text with another agent's text's hash
# before the scan begins (blob_hash and texts.rs in src/fleet/aws).
#
# A container speaks only for itself. Each scanned container is one record whose lines this
# script writes: `c id=FULL_ID ...` (what docker, not the container, says), `d`/`w`/`e` lines
# percent-encoded, and the probe's whole output as ONE percent-encoded `p` line; nothing a
# container prints can start a line of the frame. CONTAINER is always the full 64-hex id the
# console got from a scan; every operation checks it against `docker inspect` before acting.
LC_ALL=C; export LC_ALL
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
# The docker CLI (a stand-in in tests).
docker() { command "${CODEX_FLEET_DOCKER:-docker}" "$@"; }
SELF=${AWS_SSM_INSTANCE_ID:-$(cat /var/lib/amazon/ssm/instance-id 2>/dev/null || hostname)}
STORE=/var/lib/codex-fleet/scan
EMITTER=/usr/local/bin/codex_mcp_config.sh

PCT_AWK='BEGIN { for (i = 1; i < 256; i++) { c = sprintf("%c", i); h[c] = sprintf("%02x", i) }
  safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/:@+=-" }
{ n = length($0); for (i = 1; i <= n; i++) { c = substr($0, i, 1); if (index(safe, c)) printf "%s", c; else printf "%%%s", h[c] }
  if (nl) printf "%%0a"; else if (NR > 0) nl1 = 1 }
END { printf "\n" }'
# pline: stdin as the one `p` line of a record (`%`, CR, LF encoded: it cannot end early;
# probe_line in src/fleet/aws/host_script.rs).
pline() { awk 'BEGIN { printf "p " } { gsub(/%/, "%25"); gsub(/\r/, "%0d"); printf "%s%%0a", $0 } END { printf "\n" }'; }
# pct1 VALUE: one line, percent-encoded; pctl: stdin lines, each with its newline.
pct1() { printf '%s\n' "$1" | awk -v nl=0 "$PCT_AWK"; }
pctl() { awk -v nl=1 "$PCT_AWK"; }
# redact [-v MODE=1]: assets/redact.awk (options before the program text, where awk reads them).
redact() { awk "$@" "$(sed -n '/^REDACT_AWK=\$(cat <<.CFP_AWK_EOF.$/,/^CFP_AWK_EOF$/p' "$CFH_DIR/probe.sh" | sed '1d;$d')"; }
sha() { if [ -e "$1" ]; then sha256sum <"$1" | cut -c1-64; else echo -; fi; }
# khash TEXT: the name a text travels by (the operation's NONCE, a line feed, the text).
khash() { { printf '%s\n' "$F_NONCE"; printf '%s' "$1"; } | sha256sum | cut -c1-12; }

# The container's agent user: --agent-user, else the uid of its codex process, else agent.
agent_user() {
	if [ -n "$1" ]; then printf '%s\n' "$1"; return; fi
	u=$(docker top "$2" -eo uid,args 2>/dev/null | awk 'NR > 1 && $2 ~ /(^|\/)codex$/ { print $1; exit }')
	[ -n "$u" ] || u=$(docker top "$2" -eo uid,args 2>/dev/null | awk 'NR > 1 && /codex/ { print $1; exit }')
	printf '%s\n' "${u:-agent}"
}

matches() { # FILTER CONTAINER
	case $1 in
	label=*) kv=${1#label=}; k=${kv%%=*}; v=${kv#*=}; [ "$k" = "$kv" ] && v=
		got=$(docker inspect --format '{{range $k, $v := .Config.Labels}}{{println $k}}{{println $v}}{{end}}' "$2" 2>/dev/null | awk -v k="$k" 'NR % 2 == 1 { key = $0; next } key == k { print; found = 1; exit } END { if (!found) exit 1 }') || return 1
		[ -z "$v" ] || [ "$got" = "$v" ] ;;
	name=*) n=$(docker inspect --format '{{.Name}}' "$2" 2>/dev/null); n=${n#/}
		case $n in ${1#name=}) return 0 ;; *) return 1 ;; esac ;;
	*) s=${1#image=}; img=$(docker inspect --format '{{.Config.Image}}' "$2" 2>/dev/null)
		case $img in *"$s"*) return 0 ;; *) return 1 ;; esac ;;
	esac
}

# agent_lines CONTAINER AGENT_USER GITEA MODE(files) REDUCE(0/1) BLOBDIR
agent_lines() {
	c=$1
	f='{{.Id}}|{{.Name}}|{{.Config.Image}}|{{.Image}}|{{.State.Status}}|{{.RestartCount}}|{{.State.StartedAt}}'
	line=$(docker inspect --format "$f" "$c" 2>/dev/null) || return 1
	id=$(printf '%s' "$line" | cut -d'|' -f1); name=$(printf '%s' "$line" | cut -d'|' -f2); name=${name#/}
	full_id "$id" || return 1
	image=$(printf '%s' "$line" | cut -d'|' -f3); iid=$(printf '%s' "$line" | cut -d'|' -f4)
	st=$(printf '%s' "$line" | cut -d'|' -f5); rc=$(printf '%s' "$line" | cut -d'|' -f6); at=$(printf '%s' "$line" | cut -d'|' -f7)
	# Whole seconds are enough to tell boots apart on screen, and the 10 characters of nanoseconds
	# per agent are what 8 agents with full ids need to stay within the 2,500-character listing.
	case $at in *.*Z) at=${at%%.*}Z ;; esac
	u=$(agent_user "$2" "$c")
	# One argument a line (the last line is the one docker adds after the template's output).
	cmd=$(docker inspect --format '{{range .Config.Entrypoint}}{{println .}}{{end}}{{range .Config.Cmd}}{{println .}}{{end}}' "$c" | sed '$d' | redact -v argvmode=1 | pctl)
	# Labels as JSON strings (a value may hold blanks and lines), redacted per label: `K=V` lines.
	lb=$(docker inspect --format '{{range $k, $v := .Config.Labels}}{{json $k}} {{json $v}}{{println}}{{end}}' "$c" | redact -v labelmode=1 | pctl)
	iidv=$(pct1 "$iid")
	if [ "$5" = 1 ]; then # by reference in a scan: random hex that does not compress (reduce_value)
		h=$(khash "$iidv"); printf '%s' "$iidv" >"$6/$h"; iidv="@$h:${#iidv}"
	fi
	printf 'c id=%s name=%s image=%s iid=%s st=%s rc=%s at=%s u=%s cmd=%s lb=%s\n' "$id" "$(pct1 "$name")" "$(pct1 "$image")" \
		"$iidv" "$(pct1 "$st")" "$rc" "$(pct1 "$at")" "$(pct1 "$u")" "$cmd" "$lb"
	# CODEX_HOME from the container's configuration (nothing run inside it for this).
	ch=$(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$c" 2>/dev/null | awk '
		/^CODEX_HOME=/ { ch = substr($0, 12) } /^HOME=/ { h = substr($0, 6) }
		END { if (ch != "") print ch; else if (h != "") { sub(/\/+$/, "", h); print h "/.codex" } }')
	[ -n "$ch" ] || ch=$(docker exec -u "$u" "$c" sh -c 'printf %s "${CODEX_HOME:-$HOME/.codex}"' 2>/dev/null)
	docker diff "$c" 2>/dev/null | while IFS= read -r dl; do
		case $dl in "C $EMITTER" | "A $EMITTER" | "C $ch/config.toml" | "A $ch/config.toml") printf 'd %s\n' "$(pct1 "$dl")" ;; esac
	done
	# The boot check's WARN line: the Docker backend's rule (is_boot_warn, boot_warn_text in
	# src/fleet/docker.rs): selected, trimmed, redacted and cut to 300 characters here.
	w=$(docker logs --tail 400 "$c" 2>&1 | redact -v bootmode=1)
	[ -n "$w" ] && printf 'w %s\n' "$(pct1 "$w")"
	if [ "$st" != running ]; then
		printf 'e %s\n' "$(pct1 "Error response from daemon: container $id is not running")"
		return 0
	fi
	out=$(docker exec -u "$u" -i "$c" sh -s -- "$4" "$3" <"$CFH_DIR/probe.sh" 2>"$CFH_DIR/exec.err")
	if ! printf '%s\n' "$out" | grep -q '^#cfp '; then
		printf 'e %s\n' "$(pct1 "$(head -c 400 "$CFH_DIR/exec.err")")"
		return 0
	fi
	if [ "$5" = 1 ]; then
		printf '%s\n' "$out" | while IFS= read -r pl; do
			k=${pl%%=*}; v=${pl#*=}
			case $k in
			e.* | cfx | emx | cf | em | sy | rq | mc | pj | syx | rqx | mcx | pjx)
				# Short values travel inline: a reference would be as long (BLOB_MIN in sim/world.rs).
				# A value starting with `@` always goes by reference: inline, it would read as one.
				if [ "$k" != "$pl" ] && { [ "${#v}" -gt 24 ] || [ "${v#@}" != "$v" ]; }; then
					h=$(khash "$v")
					printf '%s' "$v" >"$6/$h"
					printf '%s=@%s:%s\n' "$k" "$h" "${#v}"
				else printf '%s\n' "$pl"; fi ;;
			*) printf '%s\n' "$pl" ;;
			esac
		done | pline
	else
		printf '%s\n' "$out" | known_refs "$7" | pline
	fi
}

# known_refs "HASHES" (a read's KNOWN): the probe's lines, each free-text value whose hash the
# console named (it holds that text already) replaced by its reference `@HASH:LEN`; any other
# value starting with `@` is written `%40...` (decoded the same, it cannot read as a reference).
known_refs() {
	while IFS= read -r pl; do
		k=${pl%%=*}; v=${pl#*=}
		case $k in
		e.* | cfx | emx | cf | em | sy | rq | mc | pj | syx | rqx | mcx | pjx)
			if [ "$k" != "$pl" ]; then
				if [ -n "$1" ] && [ "${#v}" -gt 24 ]; then
					h=$(khash "$v")
					case " $1 " in *" $h "*) printf '%s=@%s:%s\n' "$k" "$h" "${#v}"; continue ;; esac
				fi
				case $v in @*) printf '%s=%%40%s\n' "$k" "${v#@}"; continue ;; esac
			fi ;;
		esac
		printf '%s\n' "$pl"
	done
}

# full_id ID: a full container id (64 lower-case hex), nothing else.
full_id() { case $1 in *[!0-9a-f]* | '') return 1 ;; esac; [ ${#1} -eq 64 ]; }

# The container-side mutations are agent-ops.sh's (src/fleet/ops.rs parses its `#cfo` output):
# run as root in the container, values as positional arguments, the new content on stdin.
# /bin/sh by absolute path and a fixed PATH: the container's PATH may name a directory the agent
# writes to (its own `sh` would then run as root). ROOT_PATH in src/fleet/ops.rs.
agent_ops() { c=$1; shift; docker exec -u 0 -e PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -i "$c" /bin/sh -c "$(cat "$CFH_DIR/agent-ops.sh")" codex-fleet-agent-ops "$@"; }
# ops_item CONTAINER ARGS...: print agent-ops' answer; fail the item when it says err=.
ops_item() {
	a=$(agent_ops "$@" 2>"$CFH_DIR/ops.err")
	printf '%s\n' "$a"
	case $a in *'#cfo 1 end'*) ;; *) printf 'x %s\n' "$(pct1 "$(head -c 300 "$CFH_DIR/ops.err")")"; return 1 ;; esac
	case $a in *"
err="*) return 1 ;; esac
	return 0
}
op_backup() { ops_item "$1" backup "$2" "$3" </dev/null; }
op_write() { # C PATH BEFORE CONTENT RUN [BEFORE_TEXT]: with it, agent-ops compares the content too
	if [ $# -ge 6 ]; then
		n=$(printf '%s' "$4" | wc -c | tr -d ' ')
		{ printf '%s' "$4"; printf '%s' "$6"; } | ops_item "$1" write "$2" "$3" "$5" "$n"
	else printf '%s' "$4" | ops_item "$1" write "$2" "$3" "$5"; fi
}
op_restore() { ops_item "$1" restore "$2" "$3" "$4" </dev/null; }
op_lock() { ops_item "$1" lock "$2" "$3" "$4" "$5" </dev/null; } # C RUN TOKEN HOLDER PREV
op_unlock() { ops_item "$1" unlock "$2" "$3" "$4" </dev/null; } # C RUN TOKEN PREV

op_wait() { # C TIMEOUT AGENT_USER GITEA KNOWN
	end=$(( $(date +%s) + $2 )); last=; same=0
	while [ "$(date +%s)" -lt "$end" ]; do
		s=$(docker inspect --format '{{.State.Status}} {{.RestartCount}}' "$1" 2>/dev/null)
		if [ "$s" = "$last" ] && [ "${s%% *}" = running ]; then same=$((same + 1)); else same=0; fi
		last=$s
		[ "$same" -ge 5 ] && { echo "ok stable rc=${s#* }"; agent_lines "$1" "$3" "$4" files 0 "" "$5"; return 0; }
		sleep 1
	done
	printf 'err unstable %s\n' "$(pct1 "state ${last:-unknown} after $2s")"
	return 1
}

run_item() { # N
	eval "op=\$CFH_${1}_OP"
	for f in CONTAINER FILTER AGENT_USER GITEA NONCE HASHES PATH BEFORE CONTENT RUN HOLDER BACKUP EXPECTED TIMEOUT BEFORE_TEXT; do
		eval "F_$f=\${CFH_${1}_F_$f-}"
	done
	for f in TOKEN PREV; do eval "F_$f=\${CFH_${1}_F_$f-}"; done # the lock's process token
	F_KNOWN=; eval "F_KNOWN=\${CFH_${1}_F_KNOWN-}"; case $F_KNOWN in *[!0-9a-f\ ]*) F_KNOWN= ;; esac # read, wait: texts the console holds
	eval "H_BEFORE_TEXT=\${CFH_${1}_F_BEFORE_TEXT+1}"
	case $op in scan | blobs) ;; *)
		# Only the full id names a container (a name or prefix could name another one).
		if ! full_id "$F_CONTAINER"; then
			printf 'err refused %s\n' "$(pct1 "not a full container id: $F_CONTAINER")"
			return 1
		fi
		if [ "$(docker inspect --format '{{.Id}}' "$F_CONTAINER" 2>/dev/null)" != "$F_CONTAINER" ]; then
			printf 'gone %s\n' "$(pct1 "Error response from daemon: No such container: $F_CONTAINER")"
			return 3
		fi ;;
	esac
	case $op in
	scan)
		dir="$STORE/$F_NONCE"; mkdir -p "$dir"; chmod 700 "$STORE" "$dir"; TEXTS_DIR=$dir
		find "$STORE" -mindepth 1 -maxdepth 1 -mmin +120 -exec rm -rf {} + 2>/dev/null
		list=$(docker ps -a --no-trunc --format '{{.ID}}' 2>"$CFH_DIR/ps.err") || { printf 'h docker=- n=0\n'; printf 'x %s\n' "$(pct1 "$(cat "$CFH_DIR/ps.err")")"; return 1; }
		sel=; n=0
		for c in $list; do
			full_id "$c" || continue
			case " $sel " in *" $c "*) continue ;; esac
			if matches "${F_FILTER:-image=codex}" "$c"; then sel="$sel $c"; n=$((n + 1)); fi
		done
		printf 'h docker=%s n=%s\n' "$(pct1 "$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo -)")" "$n"
		for c in $sel; do agent_lines "$c" "$F_AGENT_USER" "$F_GITEA" files 1 "$dir"; done ;;
	blobs)
		for h in $F_HASHES; do
			case $h in *[!0-9a-f]*) continue ;; esac
			if [ -f "$STORE/$F_NONCE/$h" ]; then printf 'b %s %s\n' "$h" "$(cat "$STORE/$F_NONCE/$h")"; else printf 'm %s\n' "$h"; fi
		done ;;
	read) agent_lines "$F_CONTAINER" "$F_AGENT_USER" "$F_GITEA" files 0 "" "$F_KNOWN" ;;
	backup) op_backup "$F_CONTAINER" "$F_PATH" "$F_RUN" ;;
	write) if [ -n "$H_BEFORE_TEXT" ]; then op_write "$F_CONTAINER" "$F_PATH" "$F_BEFORE" "$F_CONTENT" "$F_RUN" "$F_BEFORE_TEXT"
		else op_write "$F_CONTAINER" "$F_PATH" "$F_BEFORE" "$F_CONTENT" "$F_RUN"; fi ;;
	restore) op_restore "$F_CONTAINER" "$F_PATH" "$F_BACKUP" "$F_EXPECTED" ;;
	lock) op_lock "$F_CONTAINER" "$F_RUN" "$F_TOKEN" "$F_HOLDER" "${F_PREV:--}" ;;
	unlock) op_unlock "$F_CONTAINER" "$F_RUN" "$F_TOKEN" "${F_PREV:--}" ;;
	restart) docker restart "$F_CONTAINER" >/dev/null 2>"$CFH_DIR/r.err" && printf 'ok restart st=%s\n' "$(docker inspect --format '{{.State.Status}}' "$F_CONTAINER")" \
		|| { printf 'err restart %s\n' "$(pct1 "$(head -c 300 "$CFH_DIR/r.err")")"; return 1; } ;;
	wait) op_wait "$F_CONTAINER" "${F_TIMEOUT:-60}" "$F_AGENT_USER" "$F_GITEA" "$F_KNOWN" ;;
	*) printf 'err op %s\n' "$(pct1 "unknown operation $op")"; return 1 ;;
	esac
}

# Items on containers (every operation but scan and blobs) run side by side, each in a private
# directory of its own (its temporary files are its own), its output kept until its turn: a
# command carrying several agents' operations takes as long as its slowest item, not their sum.
# Each item still acts on its own container only, on its own conditions, and answers in its own
# frame, printed in order.
start_items() {
	i=1
	while [ "$i" -le "$CFH_N" ]; do
		eval "inst=\$CFH_${i}_INSTANCE; op=\$CFH_${i}_OP"
		case $op in scan | blobs) ;; *)
			if [ "$inst" = "$SELF" ]; then
				mkdir "$CFH_DIR/j$i" && for f in "$CFH_DIR"/*.sh; do [ -e "$f" ] && ln -s "$f" "$CFH_DIR/j$i/"; done
				( CFH_DIR=$CFH_DIR/j$i; run_item "$i" >"$CFH_DIR/out" 2>"$CFH_DIR/err"; echo $? >"$CFH_DIR/rc" ) &
				eval "CFH_PID_$i=\$!"
			fi ;;
		esac
		i=$((i + 1))
	done
}

main() {
	printf '#cfh 1 begin %s\n' "$SELF"
	start_items
	i=1; done_n=0; failed=0
	while [ "$i" -le "$CFH_N" ]; do
		eval "inst=\$CFH_${i}_INSTANCE; op=\$CFH_${i}_OP; pid=\${CFH_PID_$i-}"
		if [ "$inst" = "*" ] || [ "$inst" = "$SELF" ]; then
			printf '#cfh 1 item %s %s\n' "$i" "$op"
			if [ -n "$pid" ]; then
				wait "$pid"; cat "$CFH_DIR/j$i/out"; cat "$CFH_DIR/j$i/err" >&2; r=$(cat "$CFH_DIR/j$i/rc" 2>/dev/null || echo 99)
			else run_item "$i"; r=$?; fi
			printf '#cfh 1 item %s end %s\n' "$i" "$r"
			[ "$r" = 0 ] || failed=1
			done_n=$((done_n + 1))
		fi
		i=$((i + 1))
	done
	printf '#cfh 1 end %s\n' "$done_n"
	return $failed
}

# texts DIR BUDGET: the texts a scan kept by hash, as one more frame after the summary (`b HASH
# VALUE` lines, gzip+base64 between `#cft 1 LEN` and `#cft 1 end`) within BUDGET characters:
# those of at most 4x BUDGET bytes, else of at most half that, ... (4 tries). The listing
# (2,500 characters) stops within or after the summary; GetCommandInvocation (24,000) reads
# the texts without another command. pack_texts in src/fleet/aws/host_script.rs.
texts() {
	lim=$(($2 * 4)); try=0
	while [ "$try" -lt 4 ]; do
		: >"$CFH_DIR/texts"
		for f in "$1"/*; do
			[ -f "$f" ] || continue
			z=$(wc -c <"$f"); [ $((z)) -le "$lim" ] || continue
			printf 'b %s %s\n' "${f##*/}" "$(cat "$f")" >>"$CFH_DIR/texts"
		done
		[ -s "$CFH_DIR/texts" ] || return 0
		t=$(gzip -9c <"$CFH_DIR/texts" | base64 -w0)
		if [ "${#t}" -le "$2" ]; then printf '#cft 1 %s\n%s\n#cft 1 end\n' "${#t}" "$t"; return 0; fi
		lim=$((lim / 2)); try=$((try + 1))
	done
}

TEXTS_DIR=
if [ "$CFH_Z" = 1 ]; then
	main >"$CFH_DIR/out" 2>"$CFH_DIR/err"; rc=$?
	b=$(gzip -9c <"$CFH_DIR/out" | base64 -w0)
	printf '#cfz 1 %s\n%s\n#cfz 1 end\n' "${#b}" "$b"
	# ANSWER_LIMIT (23,900) less the summary frame
	[ -n "$TEXTS_DIR" ] && [ -d "$TEXTS_DIR" ] && texts "$TEXTS_DIR" $((23900 - ${#b} - 40))
	exit $rc
else
	main 2>"$CFH_DIR/err"
fi
