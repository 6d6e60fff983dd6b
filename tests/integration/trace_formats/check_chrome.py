#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks rewire's Chrome trace-event JSON against a reference.

    check_chrome.py FILE --oracle FILE
    check_chrome.py FILE --text FILE --json FILE --kinds SPEC

(the reference as for check_ctf.py). An independent reading of the file:
  - strict JSON (Python's json module; numbers kept as decimals);
  - the JSON Object Format: "traceEvents" a list, "displayTimeUnit" "ns";
  - every event: the keys its phase requires ("ph", "pid", "tid"; "ts"
    but for "M"; "name" but for "E"; "dur" for "X"; "s" of t/p/g for
    "i"; "args" objects), integer pid/tid, ts (from otherData's
    ts_base_s) and dur in microseconds with three decimals: ns exact, also
    when read as a double;
  - a process_name and a thread_name metadata event for every thread;
  - per thread: complete events ("X") and "B"/"E" spans nest properly (a
    span ends before its parent does), "X" and "B" in the order of their
    start (but for a return without its entry), "E" never without its "B";
  - the same tracepoint events per thread as the reference, in order, with
    the same ts and arguments (integers exact, doubles exact, strings
    with U+FFFD for bytes that are not UTF-8, pointers "0x...");
  - function calls: as many "X" + "E" as returns, as many "X" with an
    entry + "B" + "i" (entries left without a return) as entries, with
    their names and times; drops per thread as "rewire" instants.
"""
import argparse
import decimal
import json
import math
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_ctf  # noqa: E402  (the reference loaders)

errors = []


def err(msg):
    errors.append(msg)


def report():
    for e in errors[:40]:
        print("check_chrome:", e)
    if len(errors) > 40:
        print("check_chrome: ... and %d more" % (len(errors) - 40))
    sys.exit(1 if errors else 0)


def us_to_ns(v, where, signed=False):
    """A ts (from the base) or dur: a number with three decimals, in ns.
    Parsed as a double too, as most readers do: the ns must survive."""
    if not isinstance(v, (decimal.Decimal, int)):
        err("%s: not a number: %r" % (where, v))
        return 0
    d = decimal.Decimal(v)
    if d.as_tuple().exponent != -3:
        err("%s: %s is not microseconds with three decimals" % (where, v))
    ns = d * 1000
    if ns != ns.to_integral_value() or (ns < 0 and not signed):
        err("%s: %s is not a whole number of ns" % (where, v))
    if round(float(v) * 1000) != ns:
        err("%s: %s loses its ns when read as a double" % (where, v))
    return int(ns)


def check_structure(doc):
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"),
                                                   list):
        err("not the JSON Object Format: no traceEvents list")
        report()
    if doc.get("displayTimeUnit") != "ns":
        err("displayTimeUnit is %r" % doc.get("displayTimeUnit"))
    base = doc.get("otherData", {}).get("ts_base_s")
    if not isinstance(base, int) or base < 0:
        err("otherData has no ts_base_s: %r" % doc.get("otherData"))
        base = 0
    base *= 10**9
    names = {}
    procs = set()
    per = defaultdict(list)
    for n, e in enumerate(doc["traceEvents"]):
        where = "event %d %r" % (n, e)[:200]
        if not isinstance(e, dict):
            err("%s: not an object" % where)
            continue
        ph = e.get("ph")
        req = {"M": ("name", "args"), "X": ("name", "ts", "dur"),
               "i": ("name", "ts", "s"), "B": ("name", "ts"),
               "E": ("ts",)}.get(ph)
        if req is None:
            err("%s: phase %r" % (where, ph))
            continue
        for k in ("pid", "tid") + req:
            if k not in e:
                err("%s: no %r" % (where, k))
        if not all(isinstance(e.get(k), int) for k in ("pid", "tid")):
            err("%s: pid/tid not integers" % where)
            continue
        if "args" in e and not isinstance(e["args"], dict):
            err("%s: args not an object" % where)
        if "name" in e and not isinstance(e["name"], str):
            err("%s: name not a string" % where)
        if ph == "M":
            if e["name"] == "process_name":
                procs.add(e["pid"])
            elif e["name"] == "thread_name":
                names[(e["pid"], e["tid"])] = e["args"]["name"]
            else:
                err("%s: metadata %r" % (where, e["name"]))
            if not isinstance(e["args"].get("name"), str):
                err("%s: no name in args" % where)
            continue
        if ph == "i" and e.get("s") not in ("t", "p", "g"):
            err("%s: scope %r" % (where, e.get("s")))
        e["_ns"] = base + us_to_ns(e.get("ts"), where, signed=True)
        if ph == "X":
            e["_dur"] = us_to_ns(e.get("dur"), where)
        per[(e["pid"], e["tid"])].append(e)
    for (pid, tid), evs in per.items():
        if pid not in procs:
            err("process %d has no process_name" % pid)
        if (pid, tid) not in names and any(e.get("s") != "p" for e in evs):
            err("thread %d has no thread_name" % tid)
        check_spans(tid, evs)
    return per


def check_spans(tid, evs):
    # Order of start in the file: X (with an entry) and B.
    last = -1
    for e in evs:
        if e["ph"] in ("X", "B") and e.get("args", {}).get("entry", True):
            if e["_ns"] < last:
                err("thread %d: %s %s starts at %d, before the previous "
                    "span (%d)" % (tid, e["ph"], e["name"], e["_ns"], last))
            last = e["_ns"]
    # Nesting: spans as intervals; B/E paired as a stack.
    spans, open_b = [], []
    for e in evs:
        if e["ph"] == "X":
            spans.append((e["_ns"], e["_ns"] + e["_dur"], e["name"]))
        elif e["ph"] == "B":
            open_b.append(e)
        elif e["ph"] == "E":
            if not open_b:
                err("thread %d: E at %d without a B" % (tid, e["_ns"]))
                continue
            b = open_b.pop()
            if e["_ns"] < b["_ns"]:
                err("thread %d: E before its B" % tid)
            spans.append((b["_ns"], e["_ns"], b["name"]))
    end = max([e["_ns"] for e in evs] + [s[1] for s in spans] + [0])
    for b in open_b:  # did not end: open to the end of the trace
        spans.append((b["_ns"], end, b["name"]))
    spans.sort(key=lambda s: (s[0], -s[1]))
    stack = []
    for s in spans:
        while stack and stack[-1][1] <= s[0] and stack[-1][1] < s[1]:
            stack.pop()
        if stack and s[1] > stack[-1][1]:
            err("thread %d: span %r [%d, %d] overlaps %r [%d, %d]" %
                (tid, s[2], s[0], s[1], stack[-1][2], stack[-1][0],
                 stack[-1][1]))
            continue
        stack.append(s)


def json_str(data):
    s = data.split(b"\0")[0].decode("utf-8", "replace")
    return re.sub("\ufffd+", "\ufffd", s)


def check_reference(per, ref, ref_drops):
    bytid = defaultdict(list)
    for (pid, tid), evs in per.items():
        bytid[tid] += evs
    for tid in sorted(set(ref) | set(bytid)):
        evs = bytid.get(tid, [])
        tps = [e for e in evs if e.get("cat") == "tracepoint"]
        rtp = [e for e in ref.get(tid, []) if "func" not in e]
        if len(tps) != len(rtp):
            err("thread %d: %d tracepoint events, the reference has %d" %
                (tid, len(tps), len(rtp)))
        for n, (g, r) in enumerate(zip(tps, rtp)):
            where = "thread %d tracepoint %d (%s)" % (tid, n, r["name"])
            if g["name"] != r["name"] or g["_ns"] != r["ns"]:
                err("%s: %s at %d, expected at %d" % (where, g["name"],
                                                      g["_ns"], r["ns"]))
                continue
            args = g.get("args", {})
            for fname, kind, val in r["fields"]:
                v = args.get(fname, "(missing)")
                if kind in (0, 1):
                    ok = v == val
                elif kind == 2:
                    ok = v is bool(val)
                elif kind == 5:
                    ok = v == "0x%x" % val
                elif kind == 3:
                    if not isinstance(val, float):
                        continue
                    ok = (v is None if not math.isfinite(val) else
                          isinstance(v, decimal.Decimal) and float(v) == val
                          and math.copysign(1, float(v)) ==
                          math.copysign(1, val))
                else:
                    ok = (v is None if val[1] & 2 else
                          isinstance(v, str) and
                          re.sub("\ufffd+", "\ufffd", v) == json_str(val[0]))
                    if (val[1] & 1) != (fname in args.get(
                            "rewire.truncated", [])):
                        err("%s: %s truncated flag" % (where, fname))
                if not ok:
                    err("%s: %s is %r, expected %r" % (where, fname, v, val))
        # Function calls.
        entries = [e for e in ref.get(tid, []) if e["name"] ==
                   "rewire:func_entry"]
        returns = [e for e in ref.get(tid, []) if e["name"] ==
                   "rewire:func_return"]
        fx = [e for e in evs if e.get("cat") == "function"]
        x = [e for e in fx if e["ph"] == "X"]
        x_entry = [e for e in x if e["args"].get("entry", True)]
        nb = sum(1 for e in fx if e["ph"] == "B")
        ni = sum(1 for e in fx if e["ph"] == "i")
        ne = sum(1 for e in evs if e["ph"] == "E")
        if len(x) + ne != len(returns):
            err("thread %d: %d X + %d E, %d returns" % (tid, len(x), ne,
                                                       len(returns)))
        if len(x_entry) + nb + ni != len(entries):
            err("thread %d: %d X + %d B + %d i, %d entries" %
                (tid, len(x_entry), nb, ni, len(entries)))
        starts = sorted((e["func"][0], e["ns"]) for e in entries)
        got = sorted([(e["name"], e["_ns"]) for e in x_entry] +
                     [(e["name"], e["_ns"]) for e in fx if e["ph"] != "X"])
        if starts != got:
            err("thread %d: calls start\n  %r\n  expected %r" %
                (tid, got[:10], starts[:10]))
        ends = sorted((e["func"][0], e["ns"], e["func"][5]) for e in returns)
        got = sorted((e["name"], e["_ns"] + e["_dur"], e["args"]
                      ["duration_ns"]) for e in x)
        if ne == 0 and ends != got:
            err("thread %d: calls end\n  %r\n  expected %r" %
                (tid, got[:10], ends[:10]))
        drops = sum(e["args"]["dropped"] for e in evs if
                    e.get("cat") == "rewire" and "dropped" in e["args"]
                    and e.get("s") == "t")
        if drops != ref_drops.get(tid, 0) and tid:
            err("thread %d: %d dropped, expected %d" %
                (tid, drops, ref_drops.get(tid, 0)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--oracle")
    ap.add_argument("--text")
    ap.add_argument("--json")
    ap.add_argument("--kinds", default="")
    a = ap.parse_args()
    with open(a.file, "rb") as f:
        raw = f.read()
    try:
        doc = json.loads(raw, parse_float=decimal.Decimal,
                         parse_constant=lambda c: err("constant %s" % c))
    except ValueError as e:
        err("not valid JSON: %s" % e)
        report()
    per = check_structure(doc)
    if a.oracle:
        ref, ref_drops = check_ctf.load_oracle(a.oracle)
    else:
        ref, ref_drops = check_ctf.load_session(a.text, a.json, a.kinds)
        errors.extend(check_ctf.errors)
    check_reference(per, ref, ref_drops)
    if not errors:
        print("check_chrome: %d events on %d threads: valid, and as the "
              "reference" % (sum(len(v) for v in per.values()), len(per)))
    report()


if __name__ == "__main__":
    main()
