#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks a `rewire build-patch --json` report against a case's .expect.

    check_report.py EXPECT REPORT RC PATCH|-

REPORT is the command's stdout, RC its exit status, PATCH the -o file (or
"-" for --dry-run). The .expect lines (tests/buildpatch/corpus/cases/):

    exit N              the exit status (0 patch written, 3 refused)
    unit FILE           "units" names FILE (a path ending in /FILE)
    replace NAME        NAME: state "changed", action "replace"
    carry NAME          NAME: action "carry" (a .cold piece, ...)
    new NAME            NAME: state "new", action "carry"
    deleted NAME        NAME: state "deleted", action "none"
    inlined NAME C...   NAME's "inlined_into" holds every C
    carried NAME        NAME's code is in the patch (action replace or
                        carry)
    any                 the patch may carry functions other than those
                        named (a real program: what GCC inlined varies)
    refuse SYM REGEX    a refusal of SYM whose reason matches REGEX
                        (case-insensitive)
    program, probe      for the live run (test_bp_case.sh), not here

Without "any", the functions the patch carries (action replace or carry)
must be exactly those of the replace, carry, carried and new lines. A C++ name matches its mangled
or its demangled spelling. Prints the report's functions, then each
mismatch; exit status 1 on any.
"""
import json
import os
import re
import subprocess
import sys


def demangle(names):
    try:
        r = subprocess.run(["c++filt"], input="\n".join(names),
                           capture_output=True, text=True, check=True)
        return dict(zip(names, r.stdout.splitlines()))
    except (OSError, subprocess.CalledProcessError):
        return {}


def main():
    expect_path, report_path, rc, patch = sys.argv[1:5]
    rc = int(rc)
    exp = {"exit": None, "unit": [], "replace": [], "carry": [], "new": [],
           "deleted": [], "inlined": [], "refuse": [], "carried": [],
           "any": False}
    for line in open(expect_path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "exit":
            exp["exit"] = int(rest)
        elif word == "any":
            exp["any"] = True
        elif word in ("unit", "replace", "carry", "new", "deleted",
                      "carried"):
            exp[word].append(rest.strip())
        elif word == "inlined":
            exp["inlined"].append(rest.split())
        elif word == "refuse":
            sym, _, regex = rest.partition(" ")
            exp["refuse"].append((sym, regex.strip()))
        elif word in ("program", "probe"):
            pass
        else:
            sys.exit(f"{expect_path}: unknown line '{line}'")

    errors = []
    if rc != exp["exit"]:
        errors.append(f"exit status {rc}, expected {exp['exit']}")
    text = open(report_path).read()
    try:
        rep = json.loads(text)
    except ValueError as e:
        print(f"the report is not one JSON object ({e}): {text[:2000]}")
        return 1
    for key in ("units", "functions", "refusals", "notes", "patch"):
        if key not in rep:
            errors.append(f"the report has no '{key}'")
    funcs = rep.get("functions") or []
    names = [f.get("name", "") for f in funcs]
    dem = demangle(names)
    byname = {}
    for f in funcs:
        byname[f.get("name")] = f
        if dem.get(f.get("name")):
            byname.setdefault(dem[f.get("name")], f)
    for f in funcs:
        if f.get("action", "none") != "none" or f.get("state") != "same":
            print("  %-32s %-8s %-8s %s%s" % (
                f.get("name"), f.get("state"), f.get("action"),
                f.get("why", ""),
                " inlined into " + ",".join(f["inlined_into"])
                if f.get("inlined_into") else ""))
    for r in rep.get("refusals") or []:
        print(f"  refused: {r.get('symbol')}: {r.get('reason')}")
    for n in rep.get("notes") or []:
        print(f"  note: {n.get('symbol')}: {n.get('text')}")

    def find(name):
        f = byname.get(name)
        if f is None:
            errors.append(f"no function '{name}' in the report")
        return f

    for u in exp["unit"]:
        if not any(x == u or x.endswith("/" + u) for x in rep.get("units") or []):
            errors.append(f"units {rep.get('units')} do not name {u}")
    for name in exp["replace"]:
        f = find(name)
        if f and (f.get("state"), f.get("action")) != ("changed", "replace"):
            errors.append(f"{name}: {f.get('state')}/{f.get('action')}, "
                          "expected changed/replace")
    for name in exp["carry"]:
        f = find(name)
        if f and f.get("action") != "carry":
            errors.append(f"{name}: action {f.get('action')}, expected carry")
    for name in exp["carried"]:
        f = find(name)
        if f and f.get("action") not in ("replace", "carry"):
            errors.append(f"{name}: action {f.get('action')}, expected its "
                          "code in the patch")
    for name in exp["new"]:
        f = find(name)
        if f and (f.get("state"), f.get("action")) != ("new", "carry"):
            errors.append(f"{name}: {f.get('state')}/{f.get('action')}, "
                          "expected new/carry")
    for name in exp["deleted"]:
        f = find(name)
        if f and (f.get("state"), f.get("action", "none")) != ("deleted", "none"):
            errors.append(f"{name}: {f.get('state')}/{f.get('action')}, "
                          "expected deleted/none")
    for name, *callers in exp["inlined"]:
        f = find(name)
        if not f:
            continue
        got = set(f.get("inlined_into") or [])
        got |= {dem.get(c, c) for c in got}
        missing = [c for c in callers if c not in got]
        if missing:
            errors.append(f"{name}: inlined_into {f.get('inlined_into')} "
                          f"lacks {missing}")
    if exp["exit"] == 0:
        want = set(exp["replace"] + exp["carry"] + exp["carried"] +
                   exp["new"])
        got = set()
        for f in funcs:
            if f.get("action") in ("replace", "carry"):
                n = f.get("name")
                got.add(dem.get(n, n) if dem.get(n) in want else n)
        if got != want and not (exp["any"] and got >= want):
            errors.append("the patch carries " + str(sorted(got)) +
                          ", expected " + str(sorted(want)))
        if rep.get("refusals"):
            errors.append(f"refusals in a patch that was written: "
                          f"{rep.get('refusals')}")
    for sym, regex in exp["refuse"]:
        hits = [r for r in rep.get("refusals") or []
                if r.get("symbol") == sym]
        if not hits:
            errors.append(f"no refusal of '{sym}' (refusals: "
                          f"{rep.get('refusals')})")
        elif not any(re.search(regex, r.get("reason") or "", re.I)
                     for r in hits):
            errors.append(f"the refusal of '{sym}' does not say "
                          f"/{regex}/: {hits}")
    if patch != "-" and rc == 0:
        if rep.get("patch") != os.path.abspath(patch):
            errors.append(f"\"patch\" is {rep.get('patch')!r}, expected "
                          f"{os.path.abspath(patch)!r}")
        if not os.path.isfile(patch):
            errors.append(f"{patch} was not written")
    else:
        if rep.get("patch") is not None:
            errors.append(f"\"patch\" is {rep.get('patch')!r}, expected null")
        if patch != "-" and os.path.exists(patch):
            errors.append(f"{patch} was written")
    for e in errors:
        print("MISMATCH: " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
