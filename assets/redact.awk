# redact.awk: the on-host secret redactor, embedded into probe.sh.
# The same algorithm as src/codex/redact.rs (read its module doc for the rule); the two must
# produce the same bytes on every input, which tests/redact_parity.rs checks. Keep it
# mawk/busybox compatible: no regex intervals, no gawk extensions; run it with LC_ALL=C so
# every byte is one character and tolower() only folds ASCII.
# Variables: nonl=1  the input does not end with a newline (so none is added at the end);
#            argvmode=1  each input line is one argument of a command line (redact_argv).
#            labelmode=1  each input line is a container label as docker's template prints
#              `{{json $k}} {{json $v}}`; out: one `K=V` line per label, `%` CR LF (and `=` in
#              K) percent-encoded, V redacted as fleet::docker::redact_label does.
#            bootmode=1  the input is a container log; out: its last boot-check WARN line as
#              fleet::docker::boot_warn_in_log makes it (trimmed, redacted, 300 characters).
# Pass them before the program text (`awk -v labelmode=1 "$prog"`).
BEGIN {
	CONT = ""
	for (k = 128; k < 192; k++) CONT = CONT sprintf("%c", k)
	UP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"; LO = "abcdefghijklmnopqrstuvwxyz"; DG = "0123456789"
	ALNUM = UP LO DG; B64U = ALNUM "_-"; KEYC = ALNUM "_.-"; BEAR = ALNUM "._~+/=-"
	NSCH = split("bearer basic token digest", SCH, " ")
	nsec = 0; open = 0
}
function placeholder(v) {
	if (!(v in sid)) sid[v] = ++nsec
	return "<redacted:" sid[v] ">"
}
function isblank(c) { return c == " " || c == "\t" }
function run(s, f, cls,   n) {
	n = length(s)
	while (f <= n && index(cls, substr(s, f, 1))) f++
	return f
}
function runnot(s, f, cls,   n) {
	n = length(s)
	while (f <= n && !index(cls, substr(s, f, 1))) f++
	return f
}
function starts(s, i, p) { return substr(s, i, length(p)) == p }
function endswith(s, p) { return length(s) >= length(p) && substr(s, length(s) - length(p) + 1) == p }
function issecret(name,   n, p) {
	n = name
	while ((p = index(n, ".")) > 0) n = substr(n, p + 1)
	n = tolower(n)
	if (n == "env_key" || n == "env_key_instructions" || n == "env_vars" || n == "cli_auth_credentials_store" || n == "mcp_oauth_credentials_store" || n == "preferred_auth_method" || n == "forced_login_method") return 0
	if (endswith(n, "_env_var") || endswith(n, "_env_vars") || endswith(n, "_tokens") || index(n, "token_limit") || index(n, "max_token")) return 0
	return index(n, "key") || index(n, "token") || index(n, "secret") || index(n, "passw") || index(n, "credential") || index(n, "auth") || index(n, "cookie") || index(n, "bearer")
}
function issecretflag(a,   nm) {
	if (length(a) < 2 || substr(a, 1, 1) != "-") return 0
	nm = a
	while (substr(nm, 1, 1) == "-") nm = substr(nm, 2)
	if (length(a) - length(nm) > 2 || nm == "") return 0
	if (run(nm, 1, KEYC) <= length(nm)) return 0
	return issecret(nm)
}
function tw(l, i, f, min, cls,   e) {
	e = run(l, f, cls)
	if (e - f >= min) { TS = i; TE = e; return 1 }
	return 0
}
# A known token shape at i (a word boundary): sets TS..TE (exclusive) to the secret.
function tok(l, i,   c, p, e, e1, e2, e3, s) {
	c = substr(l, i, 1)
	if (c == "s" && starts(l, i, "sk-")) return tw(l, i, i + 3, 20, B64U)
	if (c == "g") {
		p = substr(l, i, 4)
		if (p == "ghp_" || p == "gho_" || p == "ghu_" || p == "ghs_" || p == "ghr_") return tw(l, i, i + 4, 20, ALNUM)
		if (starts(l, i, "github_pat_")) return tw(l, i, i + 11, 20, ALNUM "_")
		if (starts(l, i, "glpat-")) return tw(l, i, i + 6, 20, B64U)
		return 0
	}
	if (c == "x" && starts(l, i, "xox") && substr(l, i + 4, 1) == "-" && index("abposr", substr(l, i + 3, 1))) return tw(l, i, i + 5, 10, ALNUM "-")
	if (c == "A") {
		if (starts(l, i, "AKIA") || starts(l, i, "ASIA")) return tw(l, i, i + 4, 16, UP DG)
		if (starts(l, i, "AIza")) return tw(l, i, i + 4, 30, B64U)
		return 0
	}
	if (c == "e" && starts(l, i, "eyJ")) {
		e1 = run(l, i, B64U)
		if (e1 - i < 10 || substr(l, e1, 1) != ".") return 0
		e2 = run(l, e1 + 1, B64U)
		if (e2 - e1 - 1 < 4 || substr(l, e2, 1) != ".") return 0
		e3 = run(l, e2 + 1, B64U)
		if (e3 - e2 - 1 < 4) return 0
		TS = i; TE = e3; return 1
	}
	if ((c == "b" || c == "B") && tolower(substr(l, i, 6)) == "bearer" && isblank(substr(l, i + 6, 1))) {
		s = run(l, i + 6, " \t")
		e = run(l, s, BEAR)
		if (e - s >= 8 && substr(l, s, e - s) ~ /[0-9]/) { TS = s; TE = e; return 1 }
		return 0
	}
	return 0
}
# Bytes of an auth scheme word and its blanks at the start of v when a credential follows.
function schemelen(v,   k, w, s, e) {
	for (k = 1; k <= NSCH; k++) {
		w = SCH[k]; s = length(w)
		if (tolower(substr(v, 1, s)) == w && length(v) > s && isblank(substr(v, s + 1, 1))) {
			e = run(v, s + 1, " \t")
			if (e <= length(v)) return e - 1
		}
	}
	return 0
}
function isref(v) {
	if (v ~ /^\$[A-Za-z_][A-Za-z0-9_]*$/) return 1
	return length(v) >= 3 && substr(v, 1, 2) == "${" && substr(v, length(v)) == "}" && index(substr(v, 3, length(v) - 3), "}") == 0
}
function scalar(v, bare,   s) {
	if (v == "" || v ~ /^<redacted:[0-9]+>$/ || isref(v) || (bare && (v == "true" || v == "false"))) return v
	s = schemelen(v)
	return substr(v, 1, s) placeholder(substr(v, s + 1))
}
# The value of a secret key at v; appends to OUT, sets VI past it; 1 when a multi-line
# string opened (OD its quote, OB the value so far).
function value(l, v, sep,   n, c, d, e, term, s) {
	n = length(l); VI = v
	if (v > n) return 0
	c = substr(l, v, 1)
	if ((c == "\"" || c == "'") && substr(l, v, 3) == c c c) {
		d = c c c; OUT = OUT d
		e = index(substr(l, v + 3), d)
		if (e) {
			e = v + 3 + e - 1
			OUT = OUT scalar(substr(l, v + 3, e - v - 3), 0) d; VI = e + 3
			return 0
		}
		VI = n + 1; OD = c; OB = substr(l, v + 3)
		return 1
	}
	if (c == "\"" || c == "'") {
		e = v + 1
		while (e <= n && substr(l, e, 1) != c) {
			if (c == "\"" && substr(l, e, 1) == "\\") e += 2; else e++
		}
		if (e > n + 1) e = n + 1
		OUT = OUT c scalar(substr(l, v + 1, e - v - 1), 0)
		if (e <= n) { OUT = OUT c; VI = e + 1 } else VI = n + 1
		return 0
	}
	if (c == "{") return 0
	if (sep == "=") term = " \t,;}]#\"'"; else term = "\",'}"
	e = runnot(l, v, term)
	if (sep == "=") {
		s = schemelen(substr(l, v))
		if (s > 0 && e == run(l, v, UP LO)) e = runnot(l, v + s, term)
	} else {
		while (e > v && isblank(substr(l, e - 1, 1))) e--
	}
	OUT = OUT scalar(substr(l, v, e - v), 1); VI = e
	return 0
}
# An argument (rule 4): 1 with AE set to its replacement, 0 when it is to be scanned as text.
function argvelem(a, af,   d, e) {
	if (af && a != "" && substr(a, 1, 1) != "-") { AE = placeholder(a); return 1 }
	d = run(a, 1, "-"); e = run(a, d, KEYC)
	if (d - 1 > 2 || e == d || e + 1 > length(a) || substr(a, e, 1) != "=" || index("=\"'{[", substr(a, e + 1, 1))) return 0
	if (!issecret(substr(a, d, e - d))) return 0
	AE = substr(a, 1, e) scalar(substr(a, e + 1), 1)
	return 1
}
# An array element scanned as a line of its own (nothing it opens outlives it).
function elemtext(a,   sa, ss, sf) {
	sa = ARR; ss = ASEC; sf = AFLAG; ARR = 0
	if (scanline(a, 1)) OUT = OUT placeholder(OB)
	ARR = sa; ASEC = ss; AFLAG = sf
}
# One step inside an open array (ARR its depth, ASEC its key is a secret, AFLAG the previous
# element was a secret flag) at l[i]; returns the next offset.
function arrstep(l, i,   n, c, s, e, nx, v) {
	n = length(l); c = substr(l, i, 1)
	if (c == " " || c == "\t" || c == ",") { OUT = OUT c; return i + 1 }
	if (c == "[" || c == "]") {
		OUT = OUT c; AFLAG = 0
		if (c == "[") ARR++; else ARR--
		return i + 1
	}
	if (c == "{" || c == "}") { ARR = 0; return i }
	if (c == "#") { elemtext(substr(l, i)); return n + 1 }
	if (c == "\"" || c == "'") {
		e = i + 1
		while (e <= n && substr(l, e, 1) != c) {
			if (c == "\"" && substr(l, e, 1) == "\\") e += 2; else e++
		}
		if (e > n + 1) e = n + 1
		s = i + 1
		if (e <= n) nx = e + 1; else nx = n + 1
	} else {
		s = i; e = runnot(l, i, " \t,[]{}#\"'"); nx = e
	}
	v = substr(l, s, e - s)
	OUT = OUT substr(l, i, s - i)
	if (ASEC) OUT = OUT scalar(v, s == i)
	else {
		if (argvelem(v, AFLAG)) OUT = OUT AE; else elemtext(v)
		AFLAG = issecretflag(v)
	}
	OUT = OUT substr(l, e, nx - e)
	return nx
}
# Scan line l from i, appending to OUT; 1 when a multi-line secret value opened.
function scanline(l, i,   n, c, hk, ks, ke, k, j, s, sep, nx, v, sk) {
	n = length(l)
	while (i <= n) {
		if (ARR) { i = arrstep(l, i); continue }
		c = substr(l, i, 1)
		if (i == 1 || !index(ALNUM, substr(l, i - 1, 1))) {
			if (tok(l, i)) {
				OUT = OUT substr(l, i, TS - i) placeholder(substr(l, TS, TE - TS)); i = TE
				continue
			}
		}
		hk = 0
		if (c == "\"" || c == "'") {
			j = index(substr(l, i + 1), c)
			if (j) { ks = i + 1; ke = i + j; k = ke + 1; hk = 1 }
		} else if (index(KEYC, c) && (i == 1 || !index(KEYC, substr(l, i - 1, 1)))) {
			ks = i; ke = run(l, i, KEYC); k = ke; hk = 1
		}
		if (hk) {
			s = run(l, k, " \t"); sep = substr(l, s, 1); nx = substr(l, s + 1, 1)
			if ((sep == "=" && nx != "=") || (sep == ":" && nx != "/" && nx != ":")) {
				v = run(l, s + 1, " \t")
				OUT = OUT substr(l, i, v - i); i = v
				sk = issecret(substr(l, ks, ke - ks))
				if (substr(l, v, 1) == "[") {
					OUT = OUT "["; ARR = 1; ASEC = sk; AFLAG = 0; i = v + 1
				} else if (sk) {
					if (value(l, v, sep)) return 1
					i = VI
				}
				continue
			}
		}
		OUT = OUT c; i++
	}
	return 0
}
# The text redactor on a whole string t (Redactor::text): placeholders go on numbering.
function redtext(t,   body, nl, n, L, k, o, d, p, st, op) {
	if (t == "") return ""
	nl = 0; body = t
	if (substr(t, length(t)) == "\n") { body = substr(t, 1, length(t) - 1); nl = 1 }
	n = split(body, L, "\n")
	if (n == 0) { n = 1; L[1] = "" }
	ARR = 0; op = 0; o = ""
	for (k = 1; k <= n; k++) {
		st = 1; OUT = ""
		if (op) {
			OB = OB "\n"; d = OD OD OD; p = index(L[k], d)
			if (!p) { OB = OB L[k]; continue }
			OB = OB substr(L[k], 1, p - 1); OUT = placeholder(OB) d; st = p + 3; op = 0
		} else if (k > 1) OUT = "\n"
		op = scanline(L[k], st)
		o = o OUT
	}
	if (op) o = o placeholder(OB)
	ARR = 0
	if (nl) o = o "\n"
	return o
}
function hexval(h,   k, v) {
	v = 0; h = tolower(h)
	for (k = 1; k <= length(h); k++) v = v * 16 + index("0123456789abcdef", substr(h, k, 1)) - 1
	return v
}
# The JSON string at l[i] (docker's `json`): JV its bytes; returns the offset after it.
function jstr(l, i,   n, c, e, u) {
	n = length(l); JV = ""
	if (substr(l, i, 1) != "\"") return n + 1
	i++
	while (i <= n) {
		c = substr(l, i, 1)
		if (c == "\"") return i + 1
		if (c != "\\") { e = runnot(l, i, "\"\\"); JV = JV substr(l, i, e - i); i = e; continue }
		c = substr(l, i + 1, 1); i += 2
		if (c == "n") JV = JV "\n"; else if (c == "r") JV = JV "\r"; else if (c == "t") JV = JV "\t"
		else if (c == "b") JV = JV "\b"; else if (c == "f") JV = JV "\f"
		else if (c == "u") {
			u = hexval(substr(l, i, 4)); i += 4
			if (u >= 2048) JV = JV sprintf("%c%c%c", 224 + int(u / 4096), 128 + int(u / 64) % 64, 128 + u % 64)
			else if (u >= 128) JV = JV sprintf("%c%c", 192 + int(u / 64), 128 + u % 64)
			else if (u > 0) JV = JV sprintf("%c", u)
		} else JV = JV c
	}
	return n + 1
}
function lesc(s, eq) {
	gsub(/%/, "%25", s); gsub(/\n/, "%0a", s); gsub(/\r/, "%0d", s)
	if (eq) gsub(/=/, "%3d", s)
	return s
}
function isbootwarn(l,   t) {
	t = tolower(l)
	return index(l, "WARN") && (index(t, "boot check") || index(t, "/api/v1/version"))
}
labelmode {
	if ($0 == "") next
	i = jstr($0, 1); k = JV; jstr($0, i + 1); v = JV
	split("", sid); nsec = 0
	if (issecret(k) && v != "") v = "<redacted>"
	else if (argvelem(v, 0)) v = AE
	else v = redtext(v)
	print lesc(k, 1) "=" lesc(v, 0)
	next
}
bootmode {
	if (isbootwarn($0)) { BW = $0; hbw = 1 }
	next
}
argvmode {
	ARR = 0
	if (argvelem($0, NR > 1 && issecretflag(prev))) print AE
	else {
		OUT = ""
		if (scanline($0, 1)) OUT = OUT placeholder(OB)
		print OUT
	}
	prev = $0
	next
}
{
	l = $0; OUT = ""; st = 1
	if (open) {
		OB = OB "\n"; d = OD OD OD; p = index(l, d)
		if (!p) { OB = OB l; next }
		OB = OB substr(l, 1, p - 1); OUT = placeholder(OB) d; st = p + 3; open = 0
	} else if (NR > 1) OUT = "\n"
	open = scanline(l, st)
	printf "%s", OUT
}
END {
	if (bootmode && hbw) {
		while (BW != "" && index(" \t\n\f\r", substr(BW, 1, 1))) BW = substr(BW, 2)
		while (BW != "" && index(" \t\n\f\r", substr(BW, length(BW)))) BW = substr(BW, 1, length(BW) - 1)
		BW = redtext(BW); n = 0
		for (k = 1; k <= length(BW); k++) if (!index(CONT, substr(BW, k, 1)) && ++n > 300) { BW = substr(BW, 1, k - 1); break }
		printf "%s", BW
	}
	if (argvmode || labelmode || bootmode) exit
	if (open) printf "%s", placeholder(OB)
	if (NR > 0 && !nonl) printf "\n"
}
