# run_docs.awk: run the ```console blocks of one Markdown file and compare their output.
# Called by run_docs.sh (which puts kvlab on PATH); see tests/docs/README.md for the
# convention. Variables: file (for messages), work (a scratch directory for this file).
# Prints one line per block ("ok"/"FAIL"), a diff per mismatch; exit status = failures (max 1).

function reset_block() { ncmd = 0 }

# Glob match of one line against an expected line where {{ANY}} stands for any text
# (possibly empty). Leftmost search of the middle pieces is enough for "*"-only globs.
function line_match(pat, act,    n, p, i, pos, k) {
    if (index(pat, "{{ANY}}") == 0) return pat == act
    n = 0
    while ((k = index(pat, "{{ANY}}")) > 0) { p[++n] = substr(pat, 1, k - 1); pat = substr(pat, k + 7) }
    p[++n] = pat
    if (substr(act, 1, length(p[1])) != p[1]) return 0
    pos = length(p[1]) + 1
    for (i = 2; i < n; i++) {
        k = index(substr(act, pos), p[i])
        if (k == 0) return 0
        pos += k - 1 + length(p[i])
    }
    # the last piece must end the line and must not overlap what was already matched
    if (length(act) - pos + 1 < length(p[n])) return 0
    return substr(act, length(act) - length(p[n]) + 1) == p[n]
}

# Does expected E[ei..en] match actual A[ai..an]? A line "..." matches any number of lines.
function lines_match(ei, ai,    k) {
    while (ei <= en) {
        if (E[ei] == "...") {
            if (ei == en) return 1
            for (k = ai; k <= an; k++)
                if (lines_match(ei + 1, k)) return 1
            return 0
        }
        if (ai > an || !line_match(E[ei], A[ai])) return 0
        ei++; ai++
    }
    return ai > an
}

# Writes E to path f, with "..." and {{ANY}} replaced by the actual text they matched, walking
# both greedily; from the first line that does not match, the rest of E is written as it is.
function fill_expected(f,    i, j, k) {
    i = 1; j = 1
    while (i <= en) {
        if (E[i] == "...") {
            if (i == en) { while (j <= an) print A[j++] > f; return }
            for (k = j; k <= an && !line_match(E[i + 1], A[k]); k++) ;
            if (k > an) break
            while (j < k) print A[j++] > f
            i++
        } else if (j <= an && line_match(E[i], A[j])) {
            print A[j++] > f; i++
        } else break
    }
    while (i <= en) print E[i++] > f
}

function run_cmd(c,    status, out, line, want, i, expf, actf) {
    out = work "/out"
    status = system("cd \"" dir "\" && { " CMD[c] "\n} >\"" out "\" 2>&1 </dev/null")
    an = 0
    while ((getline line < out) > 0) A[++an] = line
    close(out)
    while (an > 0 && A[an] == "") an--
    en = 0; want = 0
    for (i = 1; i <= NEXP[c]; i++) E[++en] = EXP[c, i]
    while (en > 0 && E[en] == "") en--
    if (en > 0 && E[en] ~ /^\[exit [0-9]+\]$/) {
        want = substr(E[en], 7, length(E[en]) - 7) + 0
        en--
        while (en > 0 && E[en] == "") en--
    }
    if (status == want && lines_match(1, 1)) return 1
    printf "%s:%d: FAIL: $ %s\n", file, LINE[c], CMD[c]
    if (status != want) printf "  exit status %d, expected %d\n", status, want
    # Show the diff against the expected text with its wildcards filled in where they matched
    # (up to the first mismatch), so that the diff points at the line that really differs.
    expf = work "/expected"; actf = work "/actual"
    printf "" > expf; printf "" > actf
    fill_expected(expf)
    for (i = 1; i <= an; i++) print A[i] > actf
    close(expf); close(actf)
    printf "  diff -u expected actual:\n"
    system("diff -u \"" expf "\" \"" actf "\" | sed 's/^/  /'")
    return 0
}

function run_block(    c, ok) {
    if (missing != "") {                   # an engine this block needs is not built
        skipped++; skip_missing = 1
        printf "%s:%d: skipped (engine not built:%s)\n", file, bstart, missing
        return
    }
    if (cont && skip_missing) {            # it continues a skipped block: skip it too
        skipped++
        printf "%s:%d: skipped (continues a skipped block)\n", file, bstart
        return
    }
    skip_missing = 0
    if (!cont || dir == "") {
        if (dir != "") system("rm -rf \"" dir "\"")
        dir = work "/block" NR
        system("mkdir -p \"" dir "\"")
    }
    ok = 1
    for (c = 1; c <= ncmd && ok; c++) ok = run_cmd(c)   # later commands depend on earlier ones
    blocks++
    if (!ok) failed++
    printf "%s:%d: %s (%d command%s)\n", file, bstart, ok ? "ok" : "FAIL", ncmd, ncmd == 1 ? "" : "s"
}

BEGIN { inblock = 0; blocks = 0; failed = 0; skipped = 0; skip_missing = 0; dir = "" }

!inblock && /^```console([ \t]|$)/ {
    inblock = 1; bstart = NR; reset_block(); cont = 0; missing = ""
    ntag = split(substr($0, 11), tag, /[ \t]+/)
    for (i = 1; i <= ntag; i++) {
        if (tag[i] == "") continue
        if (tag[i] == "continued") { cont = 1; continue }
        if (tag[i] ~ /^requires=/) {
            nreq = split(substr(tag[i], 10), req, ",")
            for (j = 1; j <= nreq; j++)
                if (index(" " engines " ", " " req[j] " ") == 0) missing = missing " " req[j]
            continue
        }
        printf "%s:%d: unknown console block tag '%s' (known: continued, requires=E1,E2)\n", file, NR, tag[i]
        failed++
    }
    next
}
inblock && /^```[ \t]*$/ { inblock = 0; run_block(); next }
inblock && /^\$ / {
    ncmd++; CMD[ncmd] = substr($0, 3); LINE[ncmd] = NR; NEXP[ncmd] = 0
    while (CMD[ncmd] ~ /\\$/ && (getline nxt) > 0)       # "\" at the end continues the command
        CMD[ncmd] = CMD[ncmd] "\n" nxt
    next
}
inblock {
    if (ncmd == 0) { printf "%s:%d: output before the first $ command\n", file, NR; failed++; next }
    EXP[ncmd, ++NEXP[ncmd]] = $0
}
END {
    if (inblock) { printf "%s:%d: unterminated console block\n", file, bstart; failed++ }
    if (dir != "") system("rm -rf \"" dir "\"")
    printf "%s: %d block%s run, %d failed, %d skipped\n", file, blocks, blocks == 1 ? "" : "s", failed, skipped
    exit failed > 0
}
