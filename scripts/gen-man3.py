#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate the man3 pages of rewire's API from the public headers' comments.

    gen-man3.py --outdir DIR [--version V] [--date D] HEADER...

Every public item of a header gets a page: the functions it declares with
RW_EXPORT and its static inline functions named rw_* (not rw__*), and the
macros it defines named rw_* or RW_* (not rw__* or RW__*, and not the
header plumbing listed in PLUMBING). An item is documented by the comment
that names it kernel-doc style at the start of a line ("name - summary",
"name(args) - summary", "name / _suffix - summary", "name(args): summary"),
or else by the comment that ends on the line right before the run of
declarations the item starts in (no blank line, no other comment between).
Items documented by one comment share one page, named after the first of
them; the others are ".so" links to it. An item without a comment gets no
page and a warning: test_man3 then fails, which is how a missing comment is
caught. A macro with the name of a function of its header (a type-generic
wrapper such as rw_static_key_enable) is part of the function's page.

The pages: NAME, SYNOPSIS (the #include and the prototypes or macro forms),
DESCRIPTION (the comment: paragraphs, "- " lists, "@param:" lists, indented
blocks kept as they are), RETURN VALUE (the comment's "Return:" paragraphs
and its sentences from "Returns ..." on), SEE ALSO (the other pages of the
header, and rewire(3)); plus rewire.3, the overview of every page by header.
Only python3's standard library is used.
"""

import argparse
import os
import re
import sys

# Macros that the headers define for their own use: they have no page.
PLUMBING = {
    "RW_EXPORT",  # the visibility attribute of the exported functions
    "RW_EXTERN_C_BEGIN",  # extern "C" { in C++, nothing in C
    "RW_EXTERN_C_END",
    "RW_TSAN",  # set by the headers when the includer is built with TSan
    "RW_TRACEPOINT_TEST_DELAY",  # a hook of rewire's own torture tests
}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# "name - ", "name(args) - ", "name / _disable - ", "name(args): "
NAMING = re.compile(
    r"^(?P<name>" + IDENT + r")(?P<args>\([^)]*\))?"
    r"(?P<alts>(?:\s*/\s*_[A-Za-z0-9_]+)*)\s*(?:\s-\s|:\s)(?P<rest>.*)$")


def is_public(name):
    if name.startswith(("rw__", "RW__")):
        return False
    return name.startswith(("rw_", "RW_")) and name not in PLUMBING


class Comment:
    def __init__(self, start, end, lines):
        self.start = start  # first and last line numbers (0-based)
        self.end = end
        self.lines = lines  # text, " * " removed, indentation kept
        self.items = []  # the items it documents, in order


class Item:
    def __init__(self, name, kind, line, decl):
        self.name = name
        self.kind = kind  # "function", "inline" or "macro"
        self.line = line
        self.decl = decl  # the declaration's text, one line
        self.comment = None


def comment_lines(raw):
    """The text of a comment's lines, without the comment markers."""
    out = []
    for i, line in enumerate(raw):
        # Tabs are expanded where they stand in the file, so that columns
        # aligned with tabs after " * " stay aligned without it.
        s = line.expandtabs(8)
        if i == 0:
            s = re.sub(r"^\s*/\*+", "", s)
        else:
            s = re.sub(r"^\s*\*(?!/)", "", s, count=1)
        s = re.sub(r"\s*\*+/\s*$", "", s)
        if i == 0:
            s = s.strip()
        elif s.startswith(" "):
            s = s[1:]
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def parse_header(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    comments, items = [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("/*"):
            j = i
            while "*/" not in lines[j]:
                j += 1
            comments.append(Comment(i, j, comment_lines(lines[i:j + 1])))
            i = j + 1
            continue
        m = re.match(r"^\s*#\s*define\s+(" + IDENT + r")(\([^)]*\))?(.*)$",
                     line)
        if m:
            j = i
            while lines[j].rstrip().endswith("\\"):
                j += 1
            name, args, value = m.group(1), m.group(2), m.group(3)
            value = re.sub(r"/\*.*?\*/", "", value).strip()
            # Multi-line, long, or a CMake placeholder (config.h.in): the
            # synopsis shows the name only.
            if j > i or value.endswith("\\") or len(value) > 50 or \
                    "@" in value:
                value = ""
            decl = "#define " + name + (args or "")
            if value and not args:
                decl += " " + value
            items.append(Item(name, "macro", i, decl))
            items[-1].args = args
            items[-1].end = j
            i = j + 1
            continue
        if s.startswith("RW_EXPORT") or re.match(
                r"^static inline(\s+__attribute__\(\(.*\)\))?\s+\w", s):
            inline = s.startswith("static")
            j = i
            text = []
            while True:
                t = lines[j].strip()
                text.append(t)
                if (";" in t and not inline) or (inline and
                                                 (t.endswith(")") or
                                                  t.startswith("{"))):
                    break
                j += 1
            decl = " ".join(text)
            decl = decl.split("{")[0].strip().rstrip(";").strip()
            decl = re.sub(r"^RW_EXPORT\s+", "", decl)
            decl = re.sub(r"^static inline\s+(__attribute__\(\(.*?\)\)\s+)?",
                          "", decl)
            decl = re.sub(r"\s+", " ", decl).replace("( ", "(")
            m = re.search(r"(" + IDENT + r")\s*\(", decl)
            if m and "(" in decl:
                items.append(Item(m.group(1), "inline" if inline else
                                  "function", i, decl + ";"))
                items[-1].end = j
            i = j + 1
            continue
        i += 1
    return lines, comments, items


def overview_index(comments, lines):
    """The index of the header's overview, the comment after SPDX's."""
    for k, c in enumerate(comments):
        if not lines[c.start].lstrip().startswith("/* SPDX"):
            return k
    return 0


def associate(path):
    """(the header's lines, its comments, its public items with pages)."""
    lines, comments, items = parse_header(path)
    funcs = {it.name for it in items if it.kind != "macro"}
    public = []
    seen = {}
    for it in items:
        if not is_public(it.name):
            continue
        if it.kind == "macro" and it.name in funcs:
            continue  # the function's type-generic wrapper
        if it.name in seen:
            seen[it.name].alts.append(it)
            continue
        it.alts = []
        seen[it.name] = it
        public.append(it)
    # Explicit naming first; the header's overview (its first comment)
    # mentions functions in passing and documents none.
    for c in comments[overview_index(comments, lines) + 1:]:
        for t in c.lines:
            m = NAMING.match(t)
            if not m or m.group("name") not in seen:
                continue
            names = [m.group("name")]
            for alt in re.findall(r"_[A-Za-z0-9_]+", m.group("alts") or ""):
                base = m.group("name").rsplit("_", 1)[0]
                names.append(base + alt)
            for n in names:
                it = seen.get(n)
                if it and it.comment is None:
                    it.comment = c
                    c.items.append(it)
    # Then position: the comment right before the run of lines that holds
    # the item (or one of its alternative definitions).
    ends = {c.end: c for c in comments}
    for it in public:
        if it.comment is not None:
            continue
        for cand in [it] + it.alts:
            k = cand.line - 1
            while k >= 0 and k not in ends and lines[k].strip() and \
                    not re.match(r"^\s*#\s*(if|else|elif|endif)",
                                 lines[k]):
                k -= 1
            if k in ends:
                it.comment = ends[k]
                ends[k].items.append(it)
                break
    return lines, comments, public


# --- roff ------------------------------------------------------------------


def esc(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    s = re.sub(r"[^\x00-\x7f]", lambda m: "\\[u%04X]" % ord(m.group(0)), s)
    return s


def inline(s):
    """Filled text: escaped, @params in italics."""
    s = esc(s)
    s = re.sub(r"@(" + IDENT + r")", r"\\fI\1\\fR", s)
    return s


def line_out(s):
    """A text line that roff must not take for a request."""
    s = s.rstrip()
    if s.startswith((".", "'")):
        s = "\\&" + s
    return s


def indent_of(t):
    n = 0
    for ch in t:
        if ch == " ":
            n += 1
        elif ch == "\t":
            n = (n // 8 + 1) * 8
        else:
            break
    return n


def paragraphs(lines):
    paras, cur = [], []
    for t in lines:
        if t.strip():
            cur.append(t)
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def render(paras):
    """roff for a list of paragraphs (each a list of comment lines)."""
    out = []
    for p in paras:
        out.append(".PP")
        mode = None  # None, "pre", "bullet", "param"
        for t in p:
            ind = indent_of(t)
            body = t.strip()
            m = re.match(r"^@(" + IDENT + r"|\.\.\.):\s*(.*)$", body)
            n = NAMING.match(t) if ind == 0 else None
            if n and is_public(n.group("name")):
                if mode == "pre":
                    out.append(".EE")
                if out[-1] != ".PP":
                    out.append(".PP")
                args = n.group("args") or ""
                out.append(line_out("\\fB%s\\fR%s%s \\- %s" % (
                    esc(n.group("name")), esc(args),
                    esc(n.group("alts") or ""), inline(n.group("rest")))))
                mode = None
            elif ind == 0 and body.startswith("- "):
                if mode == "pre":
                    out.append(".EE")
                out += [".IP \\(bu 2", line_out(inline(body[2:]))]
                mode = "bullet"
            elif ind == 0 and m:
                if mode == "pre":
                    out.append(".EE")
                out += [".TP", ".I " + m.group(1)]
                if m.group(2):
                    out.append(line_out(inline(m.group(2))))
                mode = "param"
            elif mode in ("bullet", "param") and (ind > 0 or mode == "param")\
                    and indent_of(t) < 16:
                out.append(line_out(inline(body)))
            elif ind >= 2:
                if mode != "pre":
                    if mode in ("bullet", "param"):
                        out.append(".PP")
                    out += [".EX"]
                    mode = "pre"
                out.append(("pre", t.expandtabs(8)))
            else:
                if mode == "pre":
                    out.append(".EE")
                if mode in ("bullet", "param", "pre"):
                    out.append(".PP")
                mode = None
                out.append(line_out(inline(body)))
        if mode == "pre":
            out.append(".EE")
    # Indented blocks keep their layout, moved left as a whole.
    res, k = [], 0
    while k < len(out):
        if not isinstance(out[k], tuple):
            res.append(out[k])
            k += 1
            continue
        j = k
        while j < len(out) and isinstance(out[j], tuple):
            j += 1
        block = [t for _, t in out[k:j]]
        cut = min(indent_of(t) for t in block)
        for t in block:
            e = re.sub(r"@(" + IDENT + r")", r"\\fI\1\\fR", esc(t[cut:]))
            res.append(line_out(e))
        k = j
    return res


SENT = re.compile(r"(?<=[.;])\s+(?=[A-Z])")
NOT_RETURN = ("Takes", "Not async", "Async-signal-safe", "Lock-free",
              "When ", "Calling", "Sleeps", "Never", "Must", "Checks",
              "Orders", "On success", "Use it", "Same restrictions")


def split_return(lines):
    """(description paragraphs, return value paragraphs)."""
    desc, ret = [], []
    for p in paragraphs(lines):
        first = p[0].strip()
        if first.startswith("Return:"):
            rest = first[len("Return:"):].strip()
            rest = rest[:1].upper() + rest[1:]
            ret.append(([rest] if rest else []) + p[1:])
            continue
        # A paragraph with a list or a table is kept whole.
        if any(indent_of(t) > 0 for t in p):
            (ret if first.startswith("Returns") else desc).append(p)
            continue
        # Else its sentences from "Returns" on are the return value, but
        # for the locking and signal-safety ones that follow them.
        text = " ".join(t.strip() for t in p)
        sents = SENT.split(text)
        k = next((i for i, s in enumerate(sents)
                  if s.startswith("Returns ")), None)
        if k is None:
            desc.append(p)
            continue
        before, r, after = sents[:k], [], []
        for s in sents[k:]:
            if after or (r and s.startswith(NOT_RETURN)):
                after.append(s)
            else:
                r.append(s)
        if before:
            desc.append([" ".join(before)])
        ret.append([" ".join(r)])
        if after:
            desc.append([" ".join(after)])
    return desc, ret


def summary_of(c, names):
    """The first sentence after the first name, or of the comment."""
    lines = c.lines
    # A comment that opens with prose before naming its items (a group's
    # introduction) is summed up by that prose.
    m = NAMING.match(lines[0]) if lines else None
    if not m or m.group("name") not in names:
        lines = []
    for k, t in enumerate(lines):
        m = NAMING.match(t)
        if m and m.group("name") in names:
            text = [m.group("rest")]
            for t2 in lines[k + 1:]:
                if not t2.strip() or NAMING.match(t2) or indent_of(t2):
                    break
                text.append(t2.strip())
            s = " ".join(text)
            break
    else:
        s = " ".join(t.strip() for t in paragraphs(c.lines)[0])
    # The first sentence; a colon ends it too, unless inside quotes or
    # parentheses or too early ("8 bytes: S + A").
    for m in re.finditer(r"[.:]\s", s + " "):
        head = s[:m.start()]
        if m.group(0)[0] == "." or (len(head) >= 20 and
                                    head.count('"') % 2 == 0 and
                                    head.count("(") == head.count(")")):
            s = s[:m.start()]
            break
    s = s.strip().rstrip(".:;,").replace("@", "")
    return s


def wrap_proto(decl, name):
    """A prototype, its name in bold, wrapped at commas under 72 columns."""
    if len(decl) <= 72 or "(" not in decl:
        parts = [decl]
    else:
        head, _, tail = decl.partition(name + "(")
        head += name + "("
        args, depth, cur = [], 0, ""
        for ch in tail:
            cur += ch
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 0:
                args.append(cur)
                cur = ""
        args.append(cur)
        parts, line = [], head
        pad = " " * min(len(head), 24)
        for a in args:
            a = a.strip() if line.endswith((" ", "(")) else a
            if len(line) + len(a) > 72 and line.strip() != head.strip():
                parts.append(line.rstrip())
                line = pad + a.strip()
            else:
                line += a if line.endswith("(") else a
        parts.append(line)
    out = []
    for p in parts:
        e = esc(p)
        e = e.replace(esc(name) + "(", "\\fB" + esc(name) + "\\fP(", 1)
        if p.strip() == p and e == esc(p) and p.startswith("#define"):
            e = e.replace(" " + esc(name), " \\fB" + esc(name) + "\\fP", 1)
        out.append(line_out(e))
    return out


def th(name, section, date, version):
    return ['.TH "%s" %s "%s" "rewire %s" "rewire Library Functions"' %
            (name, section, date, version)]


def error_codes(lines):
    """[(name, value, comment)] of the RW_ERR_* enumerators of a header."""
    out = []
    for k, line in enumerate(lines):
        m = re.match(r"^\s*(RW_ERR_[A-Z0-9_]+)\s*=\s*(\d+)", line)
        if not m or m.group(1) == "RW_ERR_BASE":
            continue
        j = k
        if lines[k - 1].rstrip().endswith("*/"):
            j = k - 1
            while not lines[j].lstrip().startswith("/*"):
                j -= 1
        text = " ".join(t.strip() for t in comment_lines(lines[j:k]))
        out.append((m.group(1), m.group(2), text))
    return out


def write(path, text):
    old = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    if old != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--version", default="")
    ap.add_argument("--date", default="")
    ap.add_argument("--docdir", default="",
                    help="where the guides (doc/*.md) are installed")
    ap.add_argument("headers", nargs="+")
    a = ap.parse_args()

    os.makedirs(a.outdir, exist_ok=True)
    pages = {}  # file name -> text
    overview = []  # (header, summary, [(page, names, summary)])
    errors = []
    missing = 0
    for path in a.headers:
        base = os.path.basename(path)
        header = "rewire/" + (base[:-3] if base.endswith(".h.in") else base)
        lines, comments, public = associate(path)
        errors += error_codes(lines)
        hsum = ""
        ov = overview_index(comments, lines)
        if comments and comments[ov].lines:
            first = paragraphs(comments[ov].lines)[0]
            hsum = " ".join(t.strip() for t in first)
            hsum = re.sub(r"^" + re.escape(header) + r"\s+-\s+", "", hsum)
        for it in public:
            if it.comment is None:
                print("gen-man3: %s:%d: %s has no comment: no page" %
                      (path, it.line + 1, it.name), file=sys.stderr)
                missing += 1
        groups = []
        for c in comments:
            its = [it for it in c.items if it.comment is c]
            if its:
                groups.append((c, its))
        groups.sort(key=lambda g: min(it.line for it in g[1]))
        entries = []
        for c, its in groups:
            names = [it.name for it in its]
            entries.append((names[0], names, summary_of(c, names)))
        for c, its in groups:
            names = [it.name for it in its]
            primary = names[0]
            summ = summary_of(c, names)
            out = th(primary, 3, a.date, a.version)
            out += [".SH NAME", esc(", ".join(names)) + " \\- " + esc(summ)]
            out += [".SH SYNOPSIS", ".nf",
                    ".B #include <%s>" % header, ""]
            for it in its:
                if it.kind == "inline":
                    out.append("/* inline */")
                out += wrap_proto(it.decl, it.name)
            out += [".fi"]
            desc, ret = split_return(c.lines)
            # A page of one name does not repeat "name(args) - " in front
            # of its description.
            m = NAMING.match(desc[0][0]) if desc and len(names) == 1 \
                else None
            if m and m.group("name") == primary:
                rest = m.group("rest")
                if not re.match(r"^\S*_", rest):
                    rest = rest[:1].upper() + rest[1:]
                desc[0] = [rest] + desc[0][1:]
            out += [".SH DESCRIPTION"] + render(desc)
            if ret:
                out += [".SH RETURN VALUE"] + render(ret)
            others = [e[0] for e in entries if e[0] != primary]
            out += [".SH SEE ALSO", ".nh", ".ad l"]
            refs = ["rewire(3)"] + [o + "(3)" for o in others]
            for k, r in enumerate(refs):
                n, sec = r[:-3], r[-2]
                out.append(".BR %s (%s)%s" % (esc(n), sec,
                                             "," if k < len(refs) - 1 else ""))
            pages[primary + ".3"] = "\n".join(x for x in out if x) + "\n"
            for n in names[1:]:
                pages[n + ".3"] = ".so man3/%s.3\n" % primary
        overview.append((header, hsum, entries))

    out = th("rewire", 3, a.date, a.version)
    out += [".SH NAME", "rewire \\- change the code of a running program "
            "safely: the C API"]
    out += [".SH SYNOPSIS", ".nf", ".B #include <rewire/rewire.h>", ".fi",
            ".PP", "Link with", ".BR \"pkg\\-config \\-\\-libs rewire\" ,",
            "or the CMake target", ".BR rewire::rewire ."]
    out += [".SH DESCRIPTION",
            "Every function and macro of rewire's public headers has a page "
            "of its own, generated from the comments of its header; "
            "functions documented together share a page.",
            "The headers, and their pages:"]
    for header, hsum, entries in overview:
        if not entries:
            continue
        out += [".SS <%s>" % header, line_out(inline(hsum))]
        for primary, names, summ in entries:
            out += [".TP", ", ".join("\\fB%s\\fR(3)" % esc(n)
                                     for n in names),
                    line_out(inline(summ)) + "."]
    if errors:
        out += [".SH ERRORS",
                "Functions return 0 or a negative errno value, or one of "
                "rewire's own codes, negated; " + "\\fBrw_strerror\\fR(3) "
                "describes both kinds. rewire's codes (<rewire/common.h>):"]
        for name, value, text in errors:
            out += [".TP", ".BR %s \" (%s)\"" % (esc(name), value),
                    line_out(inline(text))]
    out += [".SH SEE ALSO", ".BR rewire (1)"]
    if a.docdir:
        out[-1] += ","
        out += ["and the guides in", ".IR %s ." % esc(a.docdir)]
    pages["rewire.3"] = "\n".join(out) + "\n"

    for name, text in pages.items():
        write(os.path.join(a.outdir, name), text)
    for f in os.listdir(a.outdir):
        if f.endswith(".3") and f not in pages:
            os.remove(os.path.join(a.outdir, f))
    print("gen-man3: %d pages in %s%s" %
          (len(pages), a.outdir,
           ", %d items without a comment" % missing if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
