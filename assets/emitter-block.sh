# >>> codex-fleet managed block v2 (core#2128) >>>
# Managed by codex-fleet: `codex-fleet apply` replaces this block as a whole; edit it there.
# Why: codex's bubblewrap sandbox cannot start in these containers (core#2128) and the container
# already is the isolation boundary, so codex runs with its inner sandbox off. Earlier hotpatches
# prepended the keys on every start and left duplicate keys (invalid TOML: codex would not start).
# Which file: the one codex reads, named when the plan was made (_cf_cfg below: the agent's
# config.toml as the scan found it for the agent user, else the file this script writes through
# its own variable), whoever runs this script and whatever its HOME. Empty: computed at boot as
# ${CODEX_HOME:-$HOME/.codex}/config.toml of whoever runs it (codex-fleet v1's behaviour).
# What, on every start: that file holds sandbox_mode = "danger-full-access" and approval_policy =
# "never" exactly once, at the top level (before the first table); other top-level copies, copies
# trapped in tables (except [profiles.*]) and [sandbox_workspace_write] tables or keys that only
# carry network_access are removed; every other byte is kept. No rewrite when already right; else
# temp file (mktemp, in the file's directory) + mv, keeping mode and owner. A symlinked
# config.toml is never followed. Run as root on a path that a user owns (the first directory on
# it not owned by root): the edit runs AS THAT USER (setpriv, gosu or su-exec, whichever the image
# has; none: left as is), so a file, temp file or symlink the agent controls is never read or
# written with root's rights, and the file keeps that user as its owner.
# A table-valued approval_policy (granular) is left alone. POSIX sh + awk; never fails the boot.
if ! (
  _cf_cfg=''
  if [ -z "$_cf_cfg" ]; then
    _cf_home="${CODEX_HOME:-}"
    if [ -z "$_cf_home" ]; then
      if [ -z "${HOME:-}" ]; then
        echo "[codex-fleet] neither CODEX_HOME nor HOME is set" >&2
        exit 1
      fi
      _cf_home="$HOME/.codex"
    fi
    _cf_cfg="$_cf_home/config.toml"
  fi
  case $_cf_cfg in
  /*) ;;
  *) echo "[codex-fleet] $_cf_cfg is not an absolute path; left as is" >&2; exit 1 ;;
  esac
  # Who controls the path: the owner of its first component not owned by root (lstat: a
  # symlink counts as its own owner). Root owns all of it: run as is.
  _cf_uid=0
  _cf_gid=0
  _cf_p=
  _cf_rest="${_cf_cfg#/}"
  while [ -n "$_cf_rest" ]; do
    _cf_c="${_cf_rest%%/*}"
    case $_cf_rest in */*) _cf_rest="${_cf_rest#*/}" ;; *) _cf_rest= ;; esac
    [ -n "$_cf_c" ] || continue
    _cf_p="$_cf_p/$_cf_c"
    [ -e "$_cf_p" ] || [ -L "$_cf_p" ] || break
    _cf_o="$(stat -c '%u:%g' "$_cf_p")" || exit 1
    if [ "${_cf_o%%:*}" != 0 ]; then
      _cf_uid="${_cf_o%%:*}"
      _cf_gid="${_cf_o#*:}"
      break
    fi
  done
  set --
  if [ "$_cf_uid" != 0 ] && [ "$(id -u 2>/dev/null)" = 0 ]; then
    if command -v setpriv >/dev/null 2>&1; then
      set -- setpriv --reuid="$_cf_uid" --regid="$_cf_gid" --clear-groups
    elif command -v gosu >/dev/null 2>&1; then
      set -- gosu "$_cf_uid:$_cf_gid"
    elif command -v su-exec >/dev/null 2>&1; then
      set -- su-exec "$_cf_uid:$_cf_gid"
    else
      echo "[codex-fleet] $_cf_cfg belongs to uid $_cf_uid and none of setpriv, gosu, su-exec is here to act as that user; left as is" >&2
      exit 1
    fi
  fi
  "$@" sh -s -- "$_cf_cfg" "$#" <<'CODEX_FLEET_BLOCK_V2'
  _cf_cfg="$1"
  _cf_dropped="$2"
  _cf_home="${_cf_cfg%/*}"
  [ -n "$_cf_home" ] || _cf_home=/
  if [ -L "$_cf_cfg" ] || { [ -e "$_cf_cfg" ] && [ ! -f "$_cf_cfg" ]; }; then
    echo "[codex-fleet] $_cf_cfg is not a regular file; left as is" >&2
    exit 1
  fi
  mkdir -p "$_cf_home" || exit 1
  _cf_src=/dev/null
  _cf_nonl=0
  if [ -f "$_cf_cfg" ]; then
    _cf_src="$_cf_cfg"
    if [ -s "$_cf_cfg" ] && [ -n "$(tail -c 1 "$_cf_cfg")" ]; then
      _cf_nonl=1
    fi
  fi
  _cf_tmp="$(mktemp "$_cf_home/.config.toml.codex-fleet.XXXXXX")" || exit 1
  LC_ALL=C awk -v nonl="$_cf_nonl" '
function fail(msg) {
  printf "[codex-fleet] %s line %d: %s\n", FILENAME, ln, msg > "/dev/stderr"
  exit 3
}
function skipws(s, p) {
  while (substr(s, p, 1) == " " || substr(s, p, 1) == "\t") p++
  return p
}
# Reads a (dotted) key at s[p..]: kseg[1..kn], kpos just after it. 0 when there is none.
function parse_key(s, p,    c, q, st) {
  kn = 0
  while (1) {
    p = skipws(s, p)
    c = substr(s, p, 1)
    if (c == DQ) {
      st = ++p
      while (p <= length(s) && substr(s, p, 1) != DQ) {
        if (substr(s, p, 1) == "\\") p++
        p++
      }
      if (p > length(s)) return 0
      kseg[++kn] = substr(s, st, p - st)
      p++
    } else if (c == SQ) {
      st = p + 1
      q = index(substr(s, st), SQ)
      if (q == 0) return 0
      kseg[++kn] = substr(s, st, q - 1)
      p = st + q
    } else {
      st = p
      while (p <= length(s) && substr(s, p, 1) ~ /[A-Za-z0-9_-]/) p++
      if (p == st) return 0
      kseg[++kn] = substr(s, st, p - st)
    }
    p = skipws(s, p)
    if (substr(s, p, 1) != ".") break
    p++
  }
  kpos = p
  return 1
}
# Scans value text s[p..] to the end of the line, tracking multi-line strings (mls) and
# array / inline-table nesting (depth) so that a later line is known to continue a value.
function scan(s, p,    n, c, r, q) {
  n = length(s)
  while (p <= n) {
    c = substr(s, p, 1)
    if (mls != "") {
      if (mls == DQ && c == "\\") { p += 2; continue }
      if (c == mls) {
        r = 0
        while (substr(s, p + r, 1) == mls) r++
        p += r
        if (r >= 3) mls = ""
        continue
      }
      p++
      continue
    }
    if (c == "#") return 1
    if (c == DQ || c == SQ) {
      if (substr(s, p, 3) == c c c) { mls = c; p += 3; continue }
      p++
      if (c == SQ) {
        q = index(substr(s, p), SQ)
        if (q == 0) return 0
        p += q
        continue
      }
      while (p <= n && substr(s, p, 1) != DQ) {
        if (substr(s, p, 1) == "\\") p++
        p++
      }
      if (p > n) return 0
      p++
      continue
    }
    if (c == "[" || c == "{") depth++
    else if (c == "]" || c == "}") depth--
    p++
  }
  return 1
}
# 1 when value text v is the single-line string w (basic or literal), maybe with a comment.
function is_str(v, w,    r) {
  if (substr(v, 1, length(w) + 2) != DQ w DQ && substr(v, 1, length(w) + 2) != SQ w SQ) return 0
  r = substr(v, length(w) + 3)
  sub(/^[ \t]+/, "", r)
  return r == "" || substr(r, 1, 1) == "#"
}
function rmst(i,    j) { for (j = i; j <= send[i]; j++) rm[j] = 1 }
{ raw[NR] = $0 }
END {
  DQ = "\""; SQ = "\047"
  MARK = "# codex-fleet (core#2128): codex inner sandbox off, the container is the isolation boundary"
  n = NR
  bom = ""
  if (n > 0 && substr(raw[1], 1, 3) == "\357\273\277") { bom = substr(raw[1], 1, 3); raw[1] = substr(raw[1], 4) }
  for (i = 1; i <= n; i++) {
    term[i] = "\n"
    if (substr(raw[i], length(raw[i]), 1) == "\r") { term[i] = "\r\n"; raw[i] = substr(raw[i], 1, length(raw[i]) - 1) }
  }
  if (n > 0 && nonl == 1) term[n] = (term[n] == "\r\n") ? "\r" : ""
  deft = (n > 0 && term[1] == "\r\n") ? "\r\n" : "\n"
  tn = 0; cur = 0; instmt = 0
  for (i = 1; i <= n; i++) {
    ln = i; s = raw[i]
    if (instmt) {
      kind[i] = "cont"
      if (!scan(s, 1)) fail("unterminated string")
      if (mls == "" && depth == 0) { instmt = 0; send[st] = i }
      continue
    }
    p = skipws(s, 1)
    if (p > length(s)) { kind[i] = "blank"; continue }
    c = substr(s, p, 1)
    if (c == "#") {
      kind[i] = "comment"
      if (tn == 0 && s == MARK) marks[++nm] = i
      continue
    }
    if (c == "[") {
      arr = (substr(s, p, 2) == "[[")
      if (!parse_key(s, p + 1 + arr)) fail("bad table header")
      p = kpos
      if (substr(s, p, 1 + arr) != (arr ? "]]" : "]")) fail("bad table header")
      p = skipws(s, p + 1 + arr)
      if (p <= length(s) && substr(s, p, 1) != "#") fail("text after table header")
      kind[i] = "header"; send[i] = i
      tn = kn
      for (j = 1; j <= kn; j++) tseg[j] = kseg[j]
      cur = 0
      if (!arr && tn == 1 && tseg[1] == "sandbox_workspace_write") { cur = ++nr; rhead[nr] = i }
      if (tseg[1] == "approval_policy") aptable = 1
      continue
    }
    if (!parse_key(s, p)) fail("expected a key, a table header or a comment")
    p = kpos
    if (substr(s, p, 1) != "=") fail("expected = after the key")
    v = substr(s, skipws(s, p + 1))
    mls = ""; depth = 0
    if (!scan(s, p + 1)) fail("unterminated string")
    kind[i] = "kv"; st = i; send[i] = i
    if (mls != "" || depth != 0) instmt = 1
    if (tn == 0) {
      if (kn == 1 && kseg[1] == "sandbox_mode") {
        sml[++smn] = i
        if (is_str(v, "danger-full-access")) smok++
      } else if (kn == 1 && kseg[1] == "approval_policy") {
        if (substr(v, 1, 1) == "{") aptable = 1
        else { apl[++apn] = i; if (is_str(v, "never")) apok++ }
      } else if (kseg[1] == "approval_policy") {
        aptable = 1
      } else if (kseg[1] == "sandbox_workspace_write") {
        if ((kn == 2 && kseg[2] == "network_access") || (kn == 1 && v ~ /^[{][ \t]*network_access[ \t]*=[ \t]*(true|false)[ \t]*[}][ \t]*(#.*)?$/)) rsl[++rsn] = i
        else rsmore = 1
      }
    } else if (kn == 1 && (kseg[1] == "sandbox_mode" || kseg[1] == "approval_policy") && tseg[1] != "profiles") {
      trap[++ntrap] = i
    } else if (cur && kn == 1 && kseg[1] == "network_access") {
      rnet[cur] = rnet[cur] " " i
    } else if (cur) {
      rmore[cur] = 1
    }
  }
  if (instmt) { ln = n; fail("value not terminated at end of file") }
  if (aptable) print "[codex-fleet] approval_policy is a table here (granular policy): left as is" > "/dev/stderr"
  ins = !(smn == 1 && smok == 1) || !(aptable ? apn == 0 : (apn == 1 && apok == 1))
  if (ins) {
    for (j = 1; j <= smn; j++) rmst(sml[j])
    for (j = 1; j <= apn; j++) rmst(apl[j])
    for (j = 1; j <= nm; j++) rm[marks[j]] = 1
  }
  for (j = 1; j <= ntrap; j++) rmst(trap[j])
  if (!rsmore) for (j = 1; j <= rsn; j++) rmst(rsl[j])
  for (r = 1; r <= nr; r++) {
    if (rmore[r]) continue
    rm[rhead[r]] = 1
    m = split(rnet[r], parts, " ")
    for (j = 1; j <= m; j++) rmst(parts[j] + 0)
  }
  # Blank lines left between two removed lines were the removed blocks own spacing.
  for (i = 1; i <= n; i++) {
    if (kind[i] != "blank" || rm[i]) continue
    for (j = i; j <= n && kind[j] == "blank"; j++) ;
    if (i > 1 && rm[i - 1] && j <= n && rm[j]) for (k = i; k < j; k++) rm[k] = 1
    i = j - 1
  }
  changed = ins
  for (i = 1; i <= n; i++) if (rm[i]) changed = 1
  if (!changed) exit 0
  # Insert after a leading comment header that is not the comment of the first table (so a
  # generated file still starts with its generator header), else at the very top.
  at = 0
  for (i = 1; i <= n && rm[i]; i++) ;
  first = i
  last = 0
  for (i = first; i <= n && (rm[i] || kind[i] == "comment"); i++) if (!rm[i]) last = i
  if (last) {
    for (i = last + 1; i <= n && rm[i]; i++) ;
    if (i > n || kind[i] == "blank" || kind[i] == "kv") at = last
  }
  for (i = at + 1; i <= n && rm[i]; i++) ;
  sep = (i <= n && kind[i] != "blank" && kind[i] != "kv")
  out = bom
  lastout = 0
  for (i = 0; i <= n; i++) {
    if (i > 0 && !rm[i]) {
      if (lastout) printf "%s", term[lastout] == "" || term[lastout] == "\r" ? deft : term[lastout]
      printf "%s%s", out, raw[i]
      out = ""
      lastout = i
    }
    if (ins && i == at) {
      if (lastout) printf "%s", term[lastout] == "" || term[lastout] == "\r" ? deft : term[lastout]
      printf "%s%s%s", out, MARK, deft
      out = ""
      printf "sandbox_mode = \"danger-full-access\"%s", deft
      if (!aptable) printf "approval_policy = \"never\"%s", deft
      if (sep) printf "%s", deft
      lastout = 0
    }
  }
  if (lastout) printf "%s", term[lastout]
  exit 10
}' "$_cf_src" > "$_cf_tmp"
  _cf_rc=$?
  if [ "$_cf_rc" -eq 0 ]; then
    rm -f "$_cf_tmp"
    exit 0
  fi
  if [ "$_cf_rc" -ne 10 ]; then
    rm -f "$_cf_tmp"
    exit 1
  fi
  if [ -f "$_cf_cfg" ]; then
    _cf_own="$(stat -c '%u:%g' "$_cf_cfg")" && _cf_mode="$(stat -c '%a' "$_cf_cfg")" || {
      rm -f "$_cf_tmp"
      exit 1
    }
  else
    _cf_own="$(stat -c '%u:%g' "$_cf_home")" || _cf_own=""
    _cf_mode="$(printf '%o' "$((0666 & ~0$(umask)))")"
  fi
  chmod "$_cf_mode" "$_cf_tmp" || { rm -f "$_cf_tmp"; exit 1; }
  if [ -n "$_cf_own" ] && ! chown "$_cf_own" "$_cf_tmp" 2>/dev/null && [ -f "$_cf_cfg" ]; then
    if [ "$_cf_dropped" = 0 ]; then
      echo "[codex-fleet] cannot keep the owner $_cf_own of $_cf_cfg" >&2
      rm -f "$_cf_tmp"
      exit 1
    fi
    # Acting as the user who owns the directory: the file becomes theirs (they could replace it anyway).
    echo "[codex-fleet] $_cf_cfg was owned by $_cf_own; now by uid $(id -u), the owner of its directory" >&2
  fi
  mv -f "$_cf_tmp" "$_cf_cfg" || { rm -f "$_cf_tmp"; exit 1; }
  echo "[codex-fleet] $_cf_cfg: sandbox_mode = \"danger-full-access\", approval_policy = \"never\" (core#2128)"
CODEX_FLEET_BLOCK_V2
); then
  echo "[codex-fleet] WARNING: could not ensure the codex sandbox keys in config.toml; it is left as it was" >&2
fi
# <<< codex-fleet managed block v2 (core#2128) <<<
