#!/bin/sh
# codex-fleet agent-ops, output format 1.
#
# The mutating operations of a rollout, run INSIDE an agent container as root (the boot emitter
# in /usr/local/bin is root's), by `docker exec` or through SSM: the same script for every
# backend. Every value arrives as a positional argument or on stdin, never inside the script's
# text. Plain POSIX sh (dash, busybox ash) + coreutils/busybox + awk (mawk-safe).
#
#   backup  PATH RUN_ID                      keep a copy of PATH in this run's backup directory
#   write   PATH EXPECTED_SHA256|- RUN_ID [PREVIEW_BYTES]
#                                            stdin: the new content as previewed, with the
#                                            <redacted:N> placeholders of the CURRENT file; with
#                                            PREVIEW_BYTES, stdin is that many bytes of new
#                                            content followed by the (redacted) content the plan
#                                            was made from, which the current file must redact to
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
#
# Root never follows a path the agent can change. A file whose directories (up to /) are all
# root's and writable by nobody else is read and replaced by root. A file below a directory a
# non-root user owns (config.toml in the agent's CODEX_HOME) is read and replaced AS THAT USER
# (setpriv, else chroot --userspec): a link swapped in between check and use then leads only
# where that user could write anyway. Everything else (two different owners on the way, a
# directory anybody may write, a file owned by somebody other than its directory's owner, no
# way to change uid) is refused with err=refused, nothing written. Root's own copies (backups,
# work files) live under /var/backups/codex-fleet, which must be root's all the way up.

LC_ALL=C; export LC_ALL
# Never the container's PATH: it may name a directory the agent writes to.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
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

# whose PATH: sets AS to "" (root may act: every directory above PATH is root's and writable by
# root only) or to UID:GID (the one non-root user owning a directory above it; GID: the file's
# group, else the user's uid); fails (refused) when neither holds.
whose() {
	AS=; wu=; d=$(dirname "$1")
	while :; do
		[ -L "$d" ] && fail refused "$d is a symbolic link; $1 left as is"
		st=$(stat -c '%u %g %a' "$d" 2>/dev/null) || fail io "cannot stat $d"
		u=${st%% *}; r=${st#* }; g=${r%% *}; m=${r#* }
		case $m in [0-7][0-7][0-7]) m=0$m ;; [0-7][0-7][0-7][0-7]) ;; *) fail io "cannot read the mode of $d" ;; esac
		sticky=$(( ${m%???} & 1 )); gw=$(( (0$m >> 3) & 2 )); ow=$(( 0$m & 2 ))
		# Anybody may write (and, without the sticky bit, rename anybody's entries): refused.
		[ "$ow" != 0 ] && [ "$sticky" = 0 ] && fail refused "$d is writable by anybody; $1 left as is"
		if [ "$u" != 0 ]; then
			[ -n "$wu" ] && [ "$wu" != "$u" ] && fail refused "$1 lies below directories of two users ($wu, $u); left as is"
			wu=$u
		elif [ "$gw" != 0 ] && [ "$g" != 0 ]; then
			fail refused "$d is root's but writable by group $g; $1 left as is"
		fi
		[ "$d" = / ] && break
		d=$(dirname "$d")
	done
	[ -n "$wu" ] || return 0
	if [ -e "$1" ] || [ -L "$1" ]; then
		fo=$(stat -c '%u:%g' "$1" 2>/dev/null) || fail io "cannot stat $1"
		[ "${fo%%:*}" = "$wu" ] || fail refused "$1 belongs to uid ${fo%%:*} in a directory uid $wu controls; its owner cannot be kept safely; left as is"
		wg=${fo#*:}
	else
		wg=$(stat -c '%g' "$(dirname "$1")" 2>/dev/null) || wg=$wu
	fi
	AS=$wu:$wg
	as_user true || fail refused "cannot act as uid $wu in this container (no setpriv or chroot --userspec); $1 left as is"
}
# as_user CMD...: CMD as $AS (root when AS is empty), no other group, no new privileges.
as_user() {
	if [ -z "$AS" ]; then "$@"
	elif have setpriv; then setpriv --reuid="${AS%%:*}" --regid="${AS#*:}" --clear-groups -- "$@"
	elif chroot --help 2>&1 | grep -q userspec; then chroot --userspec="$AS" --skip-chdir / "$@"
	else return 125; fi
}
# snap PATH OUT: PATH's bytes into OUT (root's), read as $AS; sets CUR (sha256, - when absent),
# OWN (uid:gid) and MODE. A symbolic link or anything but a regular file is refused.
SNAP_SH='[ -e "$1" ] || [ -L "$1" ] || exit 3; [ -L "$1" ] && exit 4; [ -f "$1" ] || exit 5
m=$(stat -c "%u:%g %a" -- "$1") || exit 6; printf "%s\n" "$m" >&2; exec cat -- "$1"'
snap() {
	as_user sh -c "$SNAP_SH" codex-fleet-snap "$1" >"$2" 2>"$2.meta"; r=$?
	case $r in
	0) CUR=$(sha "$2"); OWN=$(head -n 1 "$2.meta" | cut -d' ' -f1); MODE=$(head -n 1 "$2.meta" | cut -d' ' -f2) ;;
	3) CUR=-; OWN=; MODE= ;;
	4) fail refused "$1 is a symbolic link; left as is" ;;
	5) fail refused "$1 is not a regular file" ;;
	*) fail io "cannot read $1" ;;
	esac
	case $MODE in '' | [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *) fail io "cannot read the mode of $1" ;; esac
}
# put NEWFILE PATH MODE [OWNER]: atomic replace as $AS (a temporary file in PATH's directory,
# then rename); root also gives it OWNER. The content comes on stdin: nothing is opened by path
# as root where the agent could have put a link.
PUT_SH='umask 077; t=$(mktemp "$(dirname -- "$1")/.codex-fleet-write.XXXXXX") || exit 10
cat >"$t" || { rm -f "$t"; exit 11; }
if [ -n "$3" ]; then chown -- "$3" "$t" || { rm -f "$t"; exit 12; }; fi
chmod -- "$2" "$t" || { rm -f "$t"; exit 13; }
mv -f -- "$t" "$1" || { rm -f "$t"; exit 14; }'
put() {
	o=; [ -z "$AS" ] && o=$4
	as_user sh -c "$PUT_SH" codex-fleet-put "$2" "$3" "$o" <"$1"; r=$?
	case $r in
	0) ;;
	10) fail io "cannot create a temporary file next to $2" ;;
	12) fail io "cannot keep the owner $4 of $2" ;;
	13) fail io "cannot keep the mode $3 of $2" ;;
	14) fail io "cannot rename the temporary file onto $2" ;;
	*) fail io "cannot write a temporary file next to $2" ;;
	esac
}
# bk_dir RUN_ID: this run's backup directory, made, and root's all the way up.
bk_dir() {
	mkdir -p "$BK_ROOT/$1" || fail io "cannot create the backup directory"
	chmod 700 "$BK_ROOT" "$BK_ROOT/$1" || fail io "cannot make the backup directory owner-only"
	AS_KEEP=$AS; whose "$BK_ROOT/$1/x"
	[ -z "$AS" ] || fail refused "$BK_ROOT is not root's alone; nothing written"
	AS=$AS_KEEP
}
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

# do_backup PATH RUN_ID SNAPSHOT: sets BK (the backup file), a copy of SNAPSHOT (PATH as read by
# snap, OWN and MODE with it); the first copy in a run is kept.
do_backup() {
	BK=$(backup_of "$1" "$2")
	bk_dir "$2"
	[ -f "$BK" ] && return 0
	{ cp "$3" "$BK.partial" && chown "$OWN" "$BK.partial" && chmod "$MODE" "$BK.partial"; } 2>/dev/null \
		|| { rm -f "$BK.partial"; fail io "cannot copy $1 to the backup directory"; }
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

case $OP in
backup)
	[ $# -eq 3 ] || fail usage "backup PATH RUN_ID"
	P=$2; check_path "$P"; check_run "$3"
	item path "$(enc "$P")"
	whose "$P"; bk_dir "$3"
	W=$(mktemp -d "$BK_ROOT/$3/.work.XXXXXX") || fail io "cannot create a work directory"
	trap 'rm -rf "$W"' EXIT
	snap "$P" "$W/cur"
	if [ "$CUR" = - ]; then item absent 1; ok; fi
	do_backup "$P" "$3" "$W/cur"
	item backup "$(enc "$BK")"
	item sha "$(sha "$BK")"
	ok
	;;
write)
	[ $# -eq 4 ] || [ $# -eq 5 ] || fail usage "write PATH EXPECTED_SHA256|- RUN_ID [PREVIEW_BYTES] (content on stdin)"
	P=$2; EXP=$3; R=$4; PB=${5:-}
	check_path "$P"; check_sha "$EXP"; check_run "$R"
	case $PB in *[!0-9]*) fail usage "PREVIEW_BYTES must be a number" ;; esac
	item path "$(enc "$P")"
	whose "$P"; bk_dir "$R"
	W=$(mktemp -d "$BK_ROOT/$R/.work.XXXXXX") || fail io "cannot create a work directory"
	trap 'rm -rf "$W"' EXIT
	if [ -n "$PB" ]; then
		cat >"$W/in" || fail io "cannot read the new content from stdin"
		[ "$(wc -c <"$W/in")" -ge "$PB" ] || fail usage "stdin is shorter than PREVIEW_BYTES"
		head -c "$PB" "$W/in" >"$W/preview"; tail -c +"$((PB + 1))" "$W/in" >"$W/was"
	else
		cat >"$W/preview" || fail io "cannot read the new content from stdin"
	fi
	pnl=$(nonl_of "$W/preview")
	awk "$CANON_AWK" <"$W/preview" >"$W/preview.canon"
	snap "$P" "$W/cur"
	item before "$CUR"
	BK=$(backup_of "$P" "$R")
	if [ "$CUR" != "$EXP" ]; then
		# Idempotent within a run: this run already wrote exactly this content.
		if [ "$CUR" != - ] && [ -f "$BK" ] && [ "$(cursha "$BK")" = "$EXP" ]; then
			redact_file "$W/cur" "$W/cur.red" "$W/cur.sec"
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
		redact_file "$W/cur" "$W/cur.red" "$W/cur.sec" || fail io "cannot read $P"
		# The content itself, read here, against what the plan was made from: a sha256 alone
		# is what the container said about itself.
		if [ -n "$PB" ]; then
			awk "$CANON_AWK" <"$W/cur.red" >"$W/cur.canon"
			awk "$CANON_AWK" <"$W/was" >"$W/was.canon"
			if ! cmp -s "$W/cur.canon" "$W/was.canon" || [ "$(nonl_of "$W/cur")" != "$(nonl_of "$W/was")" ]; then
				item found "$CUR"
				fail changed "$P does not hold the content the plan was made from; nothing written"
			fi
		fi
	fi
	awk -v secfile="$W/cur.sec" -v nonl="$pnl" "$RESTORE_AWK" <"$W/preview" >"$W/new" 2>"$W/restore.err"
	rc=$?
	if [ "$rc" -eq 3 ]; then fail refused "the new content has a placeholder <redacted:$(head -n 1 "$W/restore.err" | tr -cd 0-9)> that $P does not have; nothing written"; fi
	[ "$rc" -eq 0 ] || fail io "cannot restore the redacted values"
	redact_file "$W/new" "$W/new.red" "$W/new.sec"
	awk "$CANON_AWK" <"$W/new.red" >"$W/new.canon"
	cmp -s "$W/new.canon" "$W/preview.canon" || fail refused "the restored content does not redact to the previewed content; nothing written"
	if [ "$CUR" != - ]; then
		do_backup "$P" "$R" "$W/cur"
		item backup "$(enc "$BK")"
		own=$OWN; mode=$MODE
	else
		own=$(owner_of "$(dirname "$P")"); mode=644
	fi
	put "$W/new" "$P" "$mode" "$own"
	item sha "$(sha "$W/new")"
	ok
	;;
restore)
	[ $# -eq 4 ] || fail usage "restore PATH BACKUP EXPECTED_CURRENT_SHA256|-"
	P=$2; B=$3; EXP=$4
	check_path "$P"; check_sha "$EXP"
	case $B in "$BK_ROOT"/*) ;; *) fail refused "backups are restored only from $BK_ROOT" ;; esac
	case /$B/ in */../* | */./*) fail refused "backup path with . or .. components" ;; esac
	item path "$(enc "$P")"
	AS=; whose "$B"; [ -z "$AS" ] || fail refused "$B is not root's alone; not restored"
	[ -L "$B" ] && fail refused "the backup $B is a symbolic link; not restored"
	[ -f "$B" ] || fail absent "the backup $B is not there"
	whose "$P"
	W=$(mktemp -d "$BK_ROOT/.restore.XXXXXX") || fail io "cannot create a work directory"
	trap 'rm -rf "$W"' EXIT
	cp "$B" "$W/bk" || fail io "cannot read the backup $B"
	BO=$(owner_of "$B"); BM=$(mode_of "$B")
	BS=$(sha "$W/bk"); snap "$P" "$W/cur"
	item before "$CUR"
	if [ "$CUR" = "$BS" ]; then item sha "$CUR"; item idem 1; ok; fi
	if [ "$CUR" != "$EXP" ]; then
		item found "$CUR"
		fail changed "$P no longer holds what the run left there; not restored"
	fi
	[ -z "$AS" ] || [ "${BO%%:*}" = "${AS%%:*}" ] || fail refused "the backup of $P belongs to uid ${BO%%:*}, the file's directory to uid ${AS%%:*}; not restored"
	put "$W/bk" "$P" "$BM" "$BO"
	item sha "$BS"
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
