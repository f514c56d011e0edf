# Flatten JSON into one "path<TAB>value" line per scalar, e.g. {"a": {"b": "c"}, "l": [1]} gives "a/b	c" and
# "l/0	1". The guest has no JSON tool; this is enough for meta_data.json (hostname, public_keys, ...).
# Escaped newlines and tabs inside strings become spaces (keys and names are single lines).
BEGIN { RS = "\001" }
{ s = $0; n = length(s); i = 1; value("") }

function ws() { while (i <= n && index(" \t\r\n", substr(s, i, 1)) > 0) i++ }

function str(   c, out) {
    i++
    out = ""
    while (i <= n) {
        c = substr(s, i, 1)
        if (c == "\"") { i++; return out }
        if (c == "\\") {
            i++
            c = substr(s, i, 1)
            if (c == "n" || c == "r" || c == "t") out = out " "
            else if (c == "u") { out = out "?"; i += 4 }
            else if (c != "b" && c != "f") out = out c
            i++
            continue
        }
        out = out c
        i++
    }
    return out
}

function join(path, key) { return path == "" ? key : path "/" key }

function value(path,   c, key, k, start) {
    ws()
    c = substr(s, i, 1)
    if (c == "{") {
        i++; ws()
        if (substr(s, i, 1) == "}") { i++; return }
        while (i <= n) {
            ws(); key = str(); ws(); i++
            value(join(path, key))
            ws(); c = substr(s, i, 1); i++
            if (c != ",") return
        }
    } else if (c == "[") {
        i++; ws(); k = 0
        if (substr(s, i, 1) == "]") { i++; return }
        while (i <= n) {
            value(join(path, k)); k++
            ws(); c = substr(s, i, 1); i++
            if (c != ",") return
        }
    } else if (c == "\"") {
        print path "\t" str()
    } else {
        start = i
        while (i <= n && index(",}] \t\r\n", substr(s, i, 1)) == 0) i++
        print path "\t" substr(s, start, i - start)
    }
}
