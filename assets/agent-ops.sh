#!/bin/sh
# codex-fleet agent-ops, output format 1.
#
# The mutating operations of a rollout, run INSIDE an agent container as root (the boot emitter
# in /usr/local/bin is root's), by `docker exec` or through SSM: the same script for every
# backend. Every value arrives as a positional argument or on stdin, never inside the script's
# text. Plain POSIX sh (dash, busybox ash) + coreutils/busybox + awk (mawk-safe).
#
#   backup  PATH RUN_ID                      keep a copy of PATH in this run's backup directory
#   write   PATH EXPECTED_SHA256|- RUN_ID    stdin: the new content as previewed, with the
#                                            <redacted:N> placeholders of the CURRENT file
#   restore PATH BACKUP EXPECTED_CURRENT_SHA256|-
#   lock    RUN_ID TOKEN HOLDER PREV_TOKENS|-|*
#   unlock  RUN_ID TOKEN PREV_TOKENS|-|*
#
# Backups live in /var/backups/codex-fleet/<run_id>/ (0700, root, not on PATH), named after the
# path they keep (percent-encoded, `/` included); the first copy of a path in a run is kept, so
# the backup is always the original the run started from. Locks are directories made with an
# atomic mkdir under /var/lib/codex-fleet/locks, holding the run id, the holder and the time.
#
# Output (parsed by src/fleet/ops.rs):
#   #cfo 1 OP            header: format version and operation
#   key=value            items, one per line, values percent-encoded like the probe's
#   #cfo 1 end N         trailer: N items were written (missing = truncated)
# Items: ok=1 | err=CODE (changed, held, refused, absent, io, usage) with msg=TEXT;
# path, backup, sha (after the operation), before (sha before), found (sha found when
# refused as changed), idem=1 (already done by this run), run/holder/since (a lock).
# No secret value is ever written to stdout or stderr: contents are handled only in files
# under the backup directory (0700) and restored in place.

LC_ALL=C; export LC_ALL
umask 077
BK_ROOT=/var/backups/codex-fleet
LK_ROOT=/var/lib/codex-fleet/locks

REDACT_AWK=$(cat <<'CFP_AWK_EOF'
#@@REDACT_AWK@@
CFP_AWK_EOF
)

ENC_AWK='BEGIN { for (i = 1; i < 256; i++) { c = sprintf("%c", i); h[c] = sprintf("%02x", i) }
  safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/:@+=-" }
{ if (NR > 1) printf "%%0a"; n = length($0)
  for (i = 1; i <= n; i++) { c = substr($0, i, 1); if (index(safe, c)) printf "%s", c; else printf "%%%s", h[c] } }
END { printf "\n" }'

NITEMS=0
OP=${1:-}
printf '#cfo 1 %s\n' "$(printf '%s' "$OP" | tr -c 'a-z' '_')"
item() { NITEMS=$((NITEMS + 1)); printf '%s=%s\n' "$1" "$2"; }
enc() {
	case $1 in
	*[!A-Za-z0-9._~/:@+=-]*) printf '%s' "$1" | awk "$ENC_AWK" ;;
	*) printf '%s\n' "$1" ;;
	esac
}
finish() { printf '#cfo 1 end %s\n' "$NITEMS"; exit 0; }
fail() { item err "$1"; item msg "$(enc "$2")"; finish; }
ok() { item ok 1; finish; }
have() { command -v "$1" >/dev/null 2>&1; }

sha() { # sha256 of file $1 (lower-case hex), empty when it cannot be computed
	if have sha256sum; then sha256sum <"$1" | awk '{ print $1 }'
	elif have openssl; then openssl dgst -sha256 <"$1" | awk '{ print $NF }'
	elif have python3; then python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())' <"$1"
	fi
}
cursha() { if [ -f "$1" ]; then sha "$1"; else echo -; fi; }
nonl_of() { if [ -s "$1" ] && [ "$(tail -c 1 "$1" | wc -l)" -eq 0 ]; then echo 1; else echo 0; fi; }
owner_of() { stat -c '%u:%g' "$1" 2>/dev/null; }
mode_of() { stat -c '%a' "$1" 2>/dev/null; }

check_path() { # an absolute path of a regular file (or of none), not a symlink, no `..`
	case $1 in /*) ;; *) fail usage "not an absolute path" ;; esac
	case /$1/ in */../* | */./*) fail usage "path with . or .. components" ;; esac
	[ -L "$1" ] && fail refused "$1 is a symbolic link; left as is"
	if [ -e "$1" ] && [ ! -f "$1" ]; then fail refused "$1 is not a regular file"; fi
}
check_run() { # run ids become directory names: a safe alphabet only
	case $1 in '' | .* | *[!A-Za-z0-9._-]*) fail usage "run id must be [A-Za-z0-9._-], not starting with a dot" ;; esac
}
check_sha() {
	case $1 in -) ;; *[!0-9a-f]* | '') fail usage "expected a sha256 (lower-case hex) or -" ;; *) [ ${#1} -eq 64 ] || fail usage "expected a sha256 of 64 hex digits" ;; esac
}

# Locks: a directory holding the run id, the token of the process acting for it, the holder
# (user@host) and the time. A process takes over its run's lock only from a token it names
# (an earlier process of the same run, gone); `*` names any (`codex-fleet unlock --run`).
check_token() { case $1 in '' | *[!A-Za-z0-9-]*) fail usage "a lock token is [A-Za-z0-9-]" ;; esac; }
check_prev() { case $1 in - | '*') ;; '' | *[!A-Za-z0-9,-]*) fail usage "takeover tokens are [A-Za-z0-9-], comma-separated, or - or *" ;; esac; }
takeover_ok() { # TOKEN_HELD PREV
	[ "$2" = '*' ] && return 0
	[ -n "$1" ] || return 1
	case ",$2," in *",$1,"*) return 0 ;; esac
	return 1
}
lock_read() { r=; t=; [ -f "$1/run" ] && r=$(head -n 1 "$1/run"); [ -f "$1/token" ] && t=$(head -n 1 "$1/token"); }
lock_held() {
	item run "$(enc "${r:-?}")"
	item token "$(enc "${t:-?}")"
	item holder "$(enc "$(head -n 1 "$1/holder" 2>/dev/null)")"
	item since "$(enc "$(head -n 1 "$1/since" 2>/dev/null)")"
}

# backup_of PATH RUN_ID: where this run keeps PATH.
backup_of() { printf '%s/%s/%s' "$BK_ROOT" "$2" "$(printf '%s' "$1" | awk "$ENC_AWK" | sed 's|/|%2f|g')"; }

# do_backup PATH RUN_ID: sets BK (the backup file); the first copy in a run is kept.
do_backup() {
	BK=$(backup_of "$1" "$2")
	mkdir -p "$BK_ROOT/$2" || fail io "cannot create the backup directory"
	chmod 700 "$BK_ROOT" "$BK_ROOT/$2" || fail io "cannot make the backup directory owner-only"
	[ -f "$BK" ] && return 0
	cp -p "$1" "$BK.partial" 2>/dev/null || { rm -f "$BK.partial"; fail io "cannot copy $1 to the backup directory"; }
	mv -f "$BK.partial" "$BK" || fail io "cannot keep the backup"
	return 0
}

# Redact file $1 (nonl as the probe does) to $2, the values it hid to $3 (`N hex` lines).
redact_file() {
	nl=$(nonl_of "$1")
	awk -v nonl="$nl" -v secfile="$3" "$REDACT_AWK"'
BEGIN { for (i = 1; i < 256; i++) { c = sprintf("%c", i); hx[c] = sprintf("%02x", i) } }
END {
	printf "" > secfile
	for (v in sid) {
		o = ""; n = length(v)
		for (i = 1; i <= n; i++) o = o hx[substr(v, i, 1)]
		printf "%d %s\n", sid[v], o > secfile
	}
	close(secfile)
}' <"$1" >"$2"
}

# canon FILE: placeholders renumbered by order of first appearance (to compare redactions).
CANON_AWK='{ l = $0; o = ""
	while (match(l, /<redacted:[0-9]+>/)) {
		k = substr(l, RSTART + 10, RLENGTH - 11)
		if (!(k in m)) m[k] = ++n
		o = o substr(l, 1, RSTART - 1) "<redacted:" m[k] ">"; l = substr(l, RSTART + RLENGTH)
	}
	print o l }'

# restore_into PREVIEW SECRETS NONL OUT: placeholders put back; exit 3 on an unknown one.
RESTORE_AWK='BEGIN { for (i = 1; i < 256; i++) { c = sprintf("%c", i); dec[sprintf("%02x", i)] = c }
	while ((getline line < secfile) > 0) {
		sp = index(line, " "); k = substr(line, 1, sp - 1); h = substr(line, sp + 1); v = ""
		for (i = 1; i < length(h); i += 2) v = v dec[substr(h, i, 2)]
		sec[k] = v
	}
	close(secfile) }
{ buf = buf (NR > 1 ? "\n" : "") $0 }
END {
	out = ""; l = buf
	while (match(l, /<redacted:[0-9]+>/)) {
		k = substr(l, RSTART + 10, RLENGTH - 11) + 0
		if (!((k "") in sec)) { print k > "/dev/stderr"; exit 3 }
		out = out substr(l, 1, RSTART - 1) sec[k ""]; l = substr(l, RSTART + RLENGTH)
	}
	printf "%s", out l
	if (NR > 0 && !nonl) printf "\n"
}'

# replace_file PATH NEWFILE OWNER MODE: atomic (temp in the same directory, then mv).
replace_file() {
	d=$(dirname "$1")
	t=$(mktemp "$d/.codex-fleet-write.XXXXXX" 2>/dev/null) || fail io "cannot create a temporary file in $d"
	if ! cat "$2" >"$t"; then rm -f "$t"; fail io "cannot write a temporary file in $d"; fi
	if [ -n "$3" ] && ! chown "$3" "$t" 2>/dev/null; then rm -f "$t"; fail io "cannot keep the owner $3 of $1"; fi
	if [ -n "$4" ] && ! chmod "$4" "$t" 2>/dev/null; then rm -f "$t"; fail io "cannot keep the mode $4 of $1"; fi
	mv -f "$t" "$1" || { rm -f "$t"; fail io "cannot rename the temporary file onto $1"; }
}

case $OP in
backup)
	[ $# -eq 3 ] || fail usage "backup PATH RUN_ID"
	P=$2; check_path "$P"; check_run "$3"
	item path "$(enc "$P")"
	if [ ! -e "$P" ]; then item absent 1; ok; fi
	do_backup "$P" "$3"
	item backup "$(enc "$BK")"
	item sha "$(sha "$BK")"
	ok
	;;
write)
	[ $# -eq 4 ] || fail usage "write PATH EXPECTED_SHA256|- RUN_ID (content on stdin)"
	P=$2; EXP=$3; R=$4
	check_path "$P"; check_sha "$EXP"; check_run "$R"
	item path "$(enc "$P")"
	mkdir -p "$BK_ROOT/$R" && chmod 700 "$BK_ROOT" "$BK_ROOT/$R" || fail io "cannot create the backup directory"
	W=$(mktemp -d "$BK_ROOT/$R/.work.XXXXXX") || fail io "cannot create a work directory"
	trap 'rm -rf "$W"' EXIT
	cat >"$W/preview" || fail io "cannot read the new content from stdin"
	pnl=$(nonl_of "$W/preview")
	awk "$CANON_AWK" <"$W/preview" >"$W/preview.canon"
	CUR=$(cursha "$P")
	item before "$CUR"
	BK=$(backup_of "$P" "$R")
	if [ "$CUR" != "$EXP" ]; then
		# Idempotent within a run: this run already wrote exactly this content.
		if [ "$CUR" != - ] && [ -f "$BK" ] && [ "$(cursha "$BK")" = "$EXP" ]; then
			redact_file "$P" "$W/cur.red" "$W/cur.sec"
			awk "$CANON_AWK" <"$W/cur.red" >"$W/cur.canon"
			if cmp -s "$W/cur.canon" "$W/preview.canon"; then
				item backup "$(enc "$BK")"; item sha "$CUR"; item idem 1; ok
			fi
		fi
		item found "$CUR"
		fail changed "$P changed since the plan was made; nothing written"
	fi
	if [ "$CUR" = - ]; then
		: >"$W/cur.sec"
	else
		redact_file "$P" "$W/cur.red" "$W/cur.sec" || fail io "cannot read $P"
	fi
	awk -v secfile="$W/cur.sec" -v nonl="$pnl" "$RESTORE_AWK" <"$W/preview" >"$W/new" 2>"$W/restore.err"
	rc=$?
	if [ "$rc" -eq 3 ]; then fail refused "the new content has a placeholder <redacted:$(head -n 1 "$W/restore.err" | tr -cd 0-9)> that $P does not have; nothing written"; fi
	[ "$rc" -eq 0 ] || fail io "cannot restore the redacted values"
	redact_file "$W/new" "$W/new.red" "$W/new.sec"
	awk "$CANON_AWK" <"$W/new.red" >"$W/new.canon"
	cmp -s "$W/new.canon" "$W/preview.canon" || fail refused "the restored content does not redact to the previewed content; nothing written"
	if [ "$CUR" != - ]; then
		do_backup "$P" "$R"
		item backup "$(enc "$BK")"
		own=$(owner_of "$P"); mode=$(mode_of "$P")
	else
		own=$(owner_of "$(dirname "$P")"); mode=644
	fi
	replace_file "$P" "$W/new" "$own" "$mode"
	item sha "$(sha "$P")"
	ok
	;;
restore)
	[ $# -eq 4 ] || fail usage "restore PATH BACKUP EXPECTED_CURRENT_SHA256|-"
	P=$2; B=$3; EXP=$4
	check_path "$P"; check_sha "$EXP"
	case $B in "$BK_ROOT"/*) ;; *) fail refused "backups are restored only from $BK_ROOT" ;; esac
	case /$B/ in */../* | */./*) fail refused "backup path with . or .. components" ;; esac
	item path "$(enc "$P")"
	[ -f "$B" ] || fail absent "the backup $B is not there"
	BS=$(sha "$B"); CUR=$(cursha "$P")
	item before "$CUR"
	if [ "$CUR" = "$BS" ]; then item sha "$CUR"; item idem 1; ok; fi
	if [ "$CUR" != "$EXP" ]; then
		item found "$CUR"
		fail changed "$P no longer holds what the run left there; not restored"
	fi
	replace_file "$P" "$B" "$(owner_of "$B")" "$(mode_of "$B")"
	item sha "$(sha "$P")"
	ok
	;;
lock)
	[ $# -eq 5 ] || fail usage "lock RUN_ID TOKEN HOLDER PREV_TOKENS|-"
	check_run "$2"; check_token "$3"; check_prev "$5"
	mkdir -p "$LK_ROOT" && chmod 700 "$LK_ROOT" || fail io "cannot create $LK_ROOT"
	L="$LK_ROOT/agent.lock"
	if mkdir "$L" 2>/dev/null; then
		printf '%s\n' "$3" >"$L/token"
		printf '%s\n' "$4" >"$L/holder"
		date -u +%Y-%m-%dT%H:%M:%SZ >"$L/since"
		printf '%s\n' "$2" >"$L/run.new" && mv -f "$L/run.new" "$L/run"
		item run "$2"; ok
	fi
	lock_read "$L"
	if [ "$r" = "$2" ] && [ "$t" = "$3" ]; then item run "$2"; item idem 1; ok; fi
	if [ "$r" = "$2" ] && takeover_ok "$t" "$5"; then
		printf '%s\n' "$3" >"$L/token.new" && mv -f "$L/token.new" "$L/token" || fail io "cannot take the lock over"
		printf '%s\n' "$4" >"$L/holder"
		item run "$2"; item takeover "$(enc "${t:-?}")"; ok
	fi
	lock_held "$L"
	fail held "the agent is locked by another run"
	;;
unlock)
	[ $# -eq 4 ] || fail usage "unlock RUN_ID TOKEN PREV_TOKENS|-"
	check_run "$2"; check_token "$3"; check_prev "$4"
	L="$LK_ROOT/agent.lock"
	if [ ! -d "$L" ]; then item absent 1; ok; fi
	lock_read "$L"
	if [ "$r" != "$2" ] || { [ "$t" != "$3" ] && ! takeover_ok "$t" "$4"; }; then
		lock_held "$L"
		fail held "the lock belongs to another run or process"
	fi
	rm -rf "$L" || fail io "cannot remove the lock"
	ok
	;;
*)
	fail usage "operations: backup, write, restore, lock, unlock"
	;;
esac
