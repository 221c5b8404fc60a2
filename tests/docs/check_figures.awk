# check_figures.awk: checks every figure marker of the Markdown files it reads against the
# committed CSV it names (convention: tests/docs/README.md, "Figures"). Run by check_figures.sh
# with -v root=DIR (where the markers' paths start). Prints one line per mismatch or broken
# marker, naming FILE:LINE; exits 1 if there was any, else 0.
#
# A marker is an HTML comment right after the figure it checks, on the same line:
#   1.31x <!-- fig: results/default/results.csv ratio ops_per_sec engine=btree,workload=readrandom / engine=lmdb,workload=readrandom -->
#   1,426,427 <!-- fig: results/default/results.csv ops_per_sec engine=btree,workload=readrandom -->
# The quoted figure is the last number between the previous marker (or the line's start) and
# this one; it is compared with the computed value rounded to as many decimals as it shows (a
# value exactly halfway passes either way). COLUMN/N or COLUMN*N scales the value for the unit
# the text uses (peak_mem_bytes/1048576: MiB).

function fail(msg) {
    printf "%s:%d: %s\n", FILENAME, FNR, msg
    bad++
}

# Loads FILE into the csv_* arrays once; returns 0 if it cannot be read.
function load(file,    path, line, n, i, r) {
    if (file in loaded) return loaded[file]
    path = (file ~ /^\//) ? file : root "/" file
    r = 0
    while ((getline line < path) > 0) {
        sub(/\r$/, "", line)
        if (r == 0) {
            n = split(line, hdr, ",")
            for (i = 1; i <= n; i++) col[file, hdr[i]] = i
        } else {
            rows[file] = r
            row[file, r] = line
        }
        r++
    }
    close(path)
    loaded[file] = (r > 0)
    return loaded[file]
}

# The value of COLUMN in the single row of FILE matching FILTERS (col=val,col=val); sets err
# and returns "" if the column, the row or a filter's column is missing, or if several rows match.
function lookup(file, column, filters,    nf, f, kv, i, r, c, fields, found, v) {
    err = ""
    if (!((file, column) in col)) { err = "no column " column " in " file; return "" }
    nf = split(filters, f, ",")
    for (i = 1; i <= nf; i++) {
        split(f[i], kv, "=")
        if (!((file, kv[1]) in col)) { err = "no column " kv[1] " in " file; return "" }
    }
    found = 0
    for (r = 1; r <= rows[file]; r++) {
        split(row[file, r], fields, ",")
        for (i = 1; i <= nf; i++) {
            split(f[i], kv, "=")
            if (fields[col[file, kv[1]]] != substr(f[i], length(kv[1]) + 2)) break
        }
        if (i > nf) { found++; v = fields[col[file, column]] }
    }
    if (found == 0) { err = "no row " filters " in " file; return "" }
    if (found > 1) { err = found " rows match " filters " in " file " (add a filter)"; return "" }
    if (v !~ /^-?[0-9]+(\.[0-9]*)?$/) { err = column " of " filters " is not a number: '" v "'"; return "" }
    return v
}

# One marker: SPEC is what follows "fig:", BEFORE the text before it.
function check(spec, before,    w, n, c, d, file, quoted, q, dec, a, b, val, got, scale) {
    markers++
    n = split(spec, w, " ")
    # COLUMN/N: the column divided by N (bytes to MiB: peak_mem_bytes/1048576); COLUMN*N: times N
    scale = 1
    c = (w[2] == "ratio") ? 3 : 2
    if (match(w[c], /[\/*][0-9.]+$/)) {
        scale = substr(w[c], RSTART + 1) + 0
        if (substr(w[c], RSTART, 1) == "/") scale = (scale == 0) ? 0 : 1 / scale
        w[c] = substr(w[c], 1, RSTART - 1)
    }
    # the quoted figure: the last number in BEFORE
    if (!match(before, /[0-9][0-9,]*(\.[0-9]+)?[^0-9]*$/)) {
        fail("figure marker with no number before it: " spec); return
    }
    quoted = substr(before, RSTART)
    match(quoted, /^[0-9][0-9,]*(\.[0-9]+)?/)
    quoted = substr(quoted, 1, RLENGTH)
    q = quoted; gsub(/,/, "", q)
    dec = index(q, ".") ? length(q) - index(q, ".") : 0
    file = w[1]
    if (n < 3) { fail("malformed figure marker: " spec); return }
    if (!load(file)) { fail("figure " quoted ": cannot read " file); return }
    if (w[2] == "ratio") {
        if (n != 6 || w[5] != "/") { fail("malformed ratio marker (FILE ratio COLUMN ROW / ROW): " spec); return }
        a = lookup(file, w[3], w[4]); if (err != "") { fail("figure " quoted ": " err); return }
        b = lookup(file, w[3], w[6]); if (err != "") { fail("figure " quoted ": " err); return }
        if (b + 0 == 0) { fail("figure " quoted ": division by zero (" w[6] ")"); return }
        val = a / b
    } else {
        if (n != 3) { fail("malformed figure marker (FILE COLUMN ROW): " spec); return }
        val = lookup(file, w[2], w[3]); if (err != "") { fail("figure " quoted ": " err); return }
    }
    val *= scale
    got = sprintf("%." dec "f", val + 0)
    # a value exactly halfway (1.085 quoted as 1.08 or 1.09) passes either way: the CSV's own last
    # digit is already rounded, so either may be the true rounding
    d = q - val; if (d < 0) d = -d
    if (got + 0 != q + 0 && d > 0.5 * 10 ^ -dec * (1 + 1e-9)) fail("figure " quoted " does not match " file ": computed " got " (" sprintf("%.10g", val) ")")
}

{
    line = $0
    start = 1
    while ((p = index(substr(line, start), "<!-- fig:")) > 0) {
        p += start - 1
        e = index(substr(line, p), "-->")
        if (e == 0) { fail("unterminated figure marker"); break }
        spec = substr(line, p + 9, e - 10)
        gsub(/^[ \t]+|[ \t]+$/, "", spec)
        check(spec, substr(line, start, p - start))
        start = p + e + 2
    }
}

END {
    printf "%d figures checked, %d failed\n", markers, bad
    exit bad > 0
}
