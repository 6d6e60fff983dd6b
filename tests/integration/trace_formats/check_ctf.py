#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks rewire's CTF output through babeltrace2 against a reference.

    check_ctf.py DIR --oracle FILE
    check_ctf.py DIR --text FILE --json FILE --kinds SPEC

The reference is either sink_feed's oracle (exact values of what it fed)
or the text and JSON outputs of the same `rewire trace` session (--also):
tracepoint events from the text lines (strings byte for byte), their
doubles and the function events from the JSON lines, and SPEC naming the
argument kinds of each tracepoint ("tp=s,u,b,f,str,p;tp2=...", the order
of its arguments).

babeltrace2 reads DIR three times:
  1. `babeltrace2 --clock-seconds --no-delta DIR`, what a user sees: per
     thread (the packet context's tid and the stream file), the same
     events in the same order, each with its name, its timestamp to the
     nanosecond, and every field: its name, and its value as babeltrace2
     prints it (doubles with %g, as the text output prints them); the
     "discarded events" warnings add up to the drops per thread.
  2. `babeltrace2 -c sink.text.details -p with-data=no DIR`: every field's
     type (signed/unsigned 64-bit, base 16 for pointers, the enums of bools
     and string status, doubles, strings).
  3. With python3-bt2 (Debian's python3-bt2, used by /usr/bin/python3 if
     the python3 found first lacks it): every value exactly (doubles bit
     for bit, strings byte for byte) and every timestamp.
Exit 0 when everything matches, 1 with the first differences.
"""
import argparse
import json
import math
import re
import struct
import subprocess
import sys

KEYWORDS = {
    "align", "callsite", "const", "char", "clock", "double", "enum", "env",
    "event", "floating_point", "float", "integer", "int", "long", "short",
    "signed", "stream", "string", "struct", "trace", "typealias", "typedef",
    "unsigned", "variant", "void", "_Bool", "_Complex", "_Imaginary",
}
KIND_NAMES = {"s": 0, "u": 1, "b": 2, "f": 3, "str": 4, "p": 5}

errors = []


def err(msg):
    errors.append(msg)
    if len(errors) > 40:
        report()


def report():
    for e in errors[:40]:
        print("check_ctf:", e)
    if len(errors) > 40:
        print("check_ctf: ... and more")
    sys.exit(1 if errors else 0)


# --- The reference ---------------------------------------------------------


def shown_names(fields):
    """The names babeltrace2 shows for the fields of an event class: each
    argument (bytes outside [A-Za-z0-9_] replaced), then each string's
    NAME_status, made unique with _2, _3..."""
    taken, names, status = [], [], []

    def one(name, suffix):
        base = re.sub(r"[^A-Za-z0-9_]", "_", name[:48]) or "arg"
        base += suffix
        out, k = base, 2
        while out in taken:
            out = "%s_%d" % (base, k)
            k += 1
        taken.append(out)
        return out

    for name, kind in fields:
        names.append(one(name, ""))
    for name, kind in fields:
        status.append(one(name, "_status") if kind == 4 else None)
    return names, status


def load_oracle(path):
    """Events per tid, in order, and drops per tid (0: no slot/nested)."""
    events, drops = {}, {}
    for line in open(path):
        o = json.loads(line)
        k = o["k"]
        if k in ("dropped", "noslot", "nested"):
            tid = o["tid"] if k == "dropped" else 0
            drops[tid] = drops.get(tid, 0) + o["n"]
            continue
        if k not in ("tp", "entry", "return"):
            continue
        ev = {"tid": o["tid"], "ns": o["ns"]}
        if k == "tp":
            ev["name"] = o["name"]
            ev["fields"] = []
            for name, kind, v in o["f"]:
                kind = KIND_NAMES[kind]
                if kind == 4:
                    val = (bytes.fromhex(v[0]), v[1])
                elif kind == 3:
                    val = struct.unpack("<d", bytes.fromhex(v)[::-1])[0]
                else:
                    val = int(v, 16)
                    if kind == 0 and val >= 1 << 63:
                        val -= 1 << 64
                ev["fields"].append((name, kind, val))
        else:
            ev["name"] = "rewire:func_" + k
            ev["func"] = (o["function"], o["address"], o["depth"],
                          o["caller"], o["caller_name"],
                          o["dur"] if k == "return" else None)
        events.setdefault(o["tid"], []).append(ev)
    return events, drops


TEXT_ESC = {ord("n"): b"\n", ord('"'): b'"', ord("\\"): b"\\"}


def text_value(s, i):
    """Parses one value of a text line at s[i:]; returns (token, i)."""
    if s.startswith(b'"', i):
        out, i = bytearray(), i + 1
        while s[i] != ord('"'):
            if s[i] == ord("\\"):
                if s[i + 1] == ord("x"):
                    out.append(int(s[i + 2:i + 4], 16))
                    i += 4
                else:
                    out += TEXT_ESC[s[i + 1]]
                    i += 2
            else:
                out.append(s[i])
                i += 1
        i += 1
        flags = 0
        if s.startswith(b"...", i):
            flags, i = 1, i + 3
        return ("str", bytes(out), flags), i
    j = s.find(b" ", i)
    j = len(s) if j < 0 else j
    return ("tok", s[i:j].decode()), j


def load_session(text_path, json_path, kinds_spec):
    kinds = {}
    for part in kinds_spec.split(";"):
        if part:
            name, ks = part.split("=")
            kinds[name] = [KIND_NAMES[k] for k in ks.split(",") if k]
    events, drops = {}, {}
    tps = {}
    for line in open(text_path, "rb"):
        line = line.rstrip(b"\n")
        m = re.match(rb"# rewire: (\d+) events? dropped on thread (-?\d+)",
                     line)
        if m:
            tid = int(m.group(2))
            drops[tid] = drops.get(tid, 0) + int(m.group(1))
            continue
        m = re.match(rb"# rewire: (\d+) events? dropped", line)
        if m:
            drops[0] = drops.get(0, 0) + int(m.group(1))
            continue
        m = re.match(rb"(\d+)\.(\d{9}) (-?\d+) ([^ ]+): ?", line)
        if not m or line.startswith(b"#") or m.group(4) not in (
                n.encode() for n in kinds):
            continue
        name = m.group(4).decode()
        ev = {"tid": int(m.group(3)), "name": name,
              "ns": int(m.group(1)) * 10**9 + int(m.group(2)),
              "fields": []}
        i = m.end()
        for kind in kinds[name]:
            j = line.index(b"=", i)
            fname = line[i:j].decode()
            tok, i = text_value(line, j + 1)
            i += 1
            if kind == 4:
                if tok == ("tok", "(null)"):
                    val = (b"", 2)
                else:
                    val = (tok[1], tok[2])
            elif kind == 3:
                val = tok[1]  # %g text: replaced by the JSON's double
            elif kind == 2:
                val = int(tok[1] == "true")
            elif kind == 5:
                val = 0 if tok[1] == "(nil)" else int(tok[1], 16)
            else:
                val = int(tok[1])
            ev["fields"].append((fname, kind, val))
        events.setdefault(ev["tid"], []).append(ev)
        tps.setdefault(ev["tid"], []).append(ev)
    # The JSON lines: doubles exactly, and the function events.
    jtp = {}
    for line in open(json_path):
        # "-0" is how %.17g writes the double -0.0: keep its sign.
        o = json.loads(line, parse_int=lambda t: -0.0 if t == "-0" else
                       int(t))
        if "tp" in o and o["tp"] in kinds:
            jtp.setdefault(o["tid"], []).append(o)
        elif o.get("event") in ("entry", "return"):
            ev = {"tid": o["tid"], "ns": o["ts"],
                  "name": "rewire:func_" + o["event"],
                  "func": (o["function"], None, o["depth"], None,
                           o["caller"], o.get("duration_ns"))}
            events.setdefault(o["tid"], []).append(ev)
    for tid, evs in tps.items():
        js = jtp.get(tid, [])
        if len(js) != len(evs):
            err("thread %d: %d tracepoint events in the text output, %d "
                "in the JSON output" % (tid, len(evs), len(js)))
            continue
        for ev, o in zip(evs, js):
            if o["ts"] != ev["ns"] or o["tp"] != ev["name"]:
                err("text and JSON outputs differ: %r %r" % (ev, o))
            for k, (fname, kind, val) in enumerate(ev["fields"]):
                if kind == 3:
                    d = o["args"][fname]
                    if d is None:  # NaN or infinity: the text says which
                        d = float(val)
                    ev["fields"][k] = (fname, kind, float(d))
    # Function and tracepoint events of a thread in ts order (a stable
    # sort keeps each one's order, which is the ring's).
    for tid in events:
        events[tid].sort(key=lambda e: e["ns"])
    return events, drops


# --- babeltrace2 ---------------------------------------------------------------

BT_ESC = {ord("n"): b"\n", ord("t"): b"\t", ord("r"): b"\r", ord("a"): b"\a",
          ord("b"): b"\b", ord("f"): b"\f", ord("v"): b"\v", ord('"'): b'"',
          ord("\\"): b"\\"}


class Pretty:
    """A parser of babeltrace2's pretty fields: { a = 1, b = "x", ... }."""

    def __init__(self, s, i):
        self.s, self.i = s, i

    def expect(self, lit):
        if not self.s.startswith(lit, self.i):
            raise ValueError("expected %r at %r" % (lit, self.s[self.i:]))
        self.i += len(lit)

    def struct(self):
        self.expect(b"{ ")
        out = []
        if self.s.startswith(b"}", self.i):
            self.i += 1
            return out
        while True:
            j = self.s.index(b" = ", self.i)
            name = self.s[self.i:j].decode()
            self.i = j + 3
            out.append((name, self.value()))
            if self.s.startswith(b", ", self.i):
                self.i += 2
                continue
            self.expect(b" }")
            return out

    def value(self):
        s, i = self.s, self.i
        if s.startswith(b'"', i):
            out, i = bytearray(), i + 1
            while s[i] != ord('"'):
                if s[i] == ord("\\"):
                    if s[i + 1] == ord("x"):
                        out.append(int(s[i + 2:i + 4], 16))
                        i += 4
                    else:
                        out += BT_ESC[s[i + 1]]
                        i += 2
                else:
                    out.append(s[i])
                    i += 1
            self.i = i + 1
            return ("str", bytes(out))
        if s.startswith(b"( ", i):
            m = re.compile(rb'\( "([^"]*)" : container = (\d+) \)').match(
                s, i)
            self.i = m.end()
            return ("enum", m.group(1).decode(), int(m.group(2)))
        if s.startswith(b"{", i):
            return ("struct", self.struct())
        m = re.compile(rb"[^,} ]+").match(s, i)
        self.i = m.end()
        return ("tok", m.group(0).decode())


def stale_empty():
    """Whether this babeltrace2 shows an empty string field with the value
    of an earlier event's (up to 2.0.4: bt_field_string_clear() reset the
    length, not the text). The trace's NAME_status says "empty" or "null"
    then, and only that is checked."""
    p = subprocess.run(["babeltrace2", "--version"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    m = re.search(rb"Babeltrace (\d+)\.(\d+)\.(\d+)", p.stdout)
    return not m or tuple(int(x) for x in m.groups()) <= (2, 0, 4)


STALE_EMPTY = False


def bt_pretty(path):
    p = subprocess.run(["babeltrace2", "--clock-seconds", "--no-delta", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        err("babeltrace2 %s failed (%d): %s" % (path, p.returncode,
                                                p.stderr.decode()[-2000:]))
        report()
    events = {}
    for line in p.stdout.split(b"\n"):
        if not line:
            continue
        m = re.match(rb"\[(\d+)\.(\d{9})\] ", line)
        k = line.find(b": { tid = ")
        if not m or k < 0:
            err("babeltrace2 printed an unexpected line: %r" % line)
            continue
        name = line[line.rfind(b" ", 0, k) + 1:k].decode()
        pr = Pretty(line, k + 2)
        ctx = pr.struct()
        pr.expect(b", ")
        fields = pr.struct()
        if pr.i != len(line):
            err("babeltrace2 line not fully parsed: %r" % line)
        tid = int(ctx[0][1][1])
        events.setdefault(tid, []).append(
            {"ns": int(m.group(1)) * 10**9 + int(m.group(2)), "name": name,
             "fields": fields})
    drops = {}
    for m in re.finditer(
            rb'Tracer discarded (\d+) events? between .*? within stream '
            rb'"[^"]*/(thread-(-?\d+)(?:\.\d+)?|unattributed)"',
            p.stderr):
        tid = int(m.group(3)) if m.group(3) else 0
        drops[tid] = drops.get(tid, 0) + int(m.group(1))
    if re.search(rb"may have discarded", p.stderr):
        err("babeltrace2 could not count some discarded events")
    return events, drops


def c_g(d):
    """C's %g of a double, as the text output and babeltrace2 print it."""
    if math.isnan(d):
        return "-nan" if math.copysign(1, d) < 0 else "nan"
    if math.isinf(d):
        return "inf" if d > 0 else "-inf"
    return "%g" % d


def check_pretty(ref, bt, ref_drops, bt_drops):
    tids = sorted(set(ref) | set(bt))
    for tid in tids:
        r, b = ref.get(tid, []), bt.get(tid, [])
        if len(r) != len(b):
            err("thread %d: %d events in the reference, %d from "
                "babeltrace2" % (tid, len(r), len(b)))
        for n, (re_, be) in enumerate(zip(r, b)):
            where = "thread %d event %d (%s)" % (tid, n, re_["name"])
            if re_["name"] != be["name"]:
                err("%s: babeltrace2 names it %s" % (where, be["name"]))
                break
            if re_["ns"] != be["ns"]:
                err("%s: ts %d, babeltrace2 %d" % (where, re_["ns"],
                                                   be["ns"]))
            got = be["fields"]
            if "func" in re_:
                func, addr, depth, caller, cname, dur = re_["func"]
                exp = [("function", ("str", func.encode()))]
                if addr is not None:
                    exp.append(("address", ("tok", "0x%X" % addr)))
                exp.append(("depth", ("tok", str(depth))))
                if caller is not None:
                    exp.append(("caller", ("tok", "0x%X" % caller)))
                exp.append(("caller_name", ("str", cname.encode())))
                if dur is not None:
                    exp.append(("duration_ns", ("tok", str(dur))))
                gotd = dict(got)
                for k, v in exp:
                    if gotd.get(k) != v:
                        err("%s: %s is %r, babeltrace2 %r" %
                            (where, k, v, gotd.get(k)))
                continue
            names, status = shown_names([(f[0], f[1])
                                         for f in re_["fields"]])
            exp = []
            for (fname, kind, val), nm, st in zip(re_["fields"], names,
                                                  status):
                if kind == 0 or kind == 1:
                    exp.append((nm, ("tok", str(val))))
                elif kind == 5:
                    exp.append((nm, ("tok", "0x%X" % val)))
                elif kind == 2:
                    exp.append((nm, ("enum", "true" if val else "false",
                                     1 if val else 0)))
                elif kind == 3:
                    exp.append((nm, ("tok", c_g(val) if isinstance(
                        val, float) else val)))
                else:
                    data, flags = val
                    data = data.split(b"\0")[0]
                    label, code = (("null", 2) if flags & 2 else
                                   ("empty", 3) if not data else
                                   ("truncated", 1) if flags & 1 else
                                   ("ok", 0))
                    if not data and STALE_EMPTY:
                        # The reader's bug: whatever it shows.
                        data = dict(got).get(nm, ("str", b""))[1]
                    exp.append((nm, ("str", data)))
                    exp.append((st, ("enum", label, code)))
            if got != exp:
                err("%s: fields\n  expected %r\n  babeltrace2 %r" %
                    (where, exp, got))
    for tid in sorted(set(ref_drops) | set(bt_drops)):
        if ref_drops.get(tid, 0) != bt_drops.get(tid, 0):
            err("thread %d: %d events dropped, babeltrace2 reports %d "
                "discarded" % (tid, ref_drops.get(tid, 0),
                               bt_drops.get(tid, 0)))


# --- Types (sink.text.details) -----------------------------------------------------


def check_types(path, ref):
    p = subprocess.run(["babeltrace2", "-c", "sink.text.details", "-p",
                        "with-data=no", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        err("babeltrace2 details failed: %s" % p.stderr.decode()[-2000:])
        return
    text = p.stdout.decode("utf-8", "replace")
    classes = {}
    for m in re.finditer(r"Event class `(.*)` \(ID [\d,]+\):\n"
                         r"\s+Payload field class: Structure \(\d+ members?\)"
                         r":?\n((?:\s{8,}.*\n)*)", text):
        members = []
        for line in m.group(2).split("\n"):
            mm = re.match(r"^ {8}(\S+): (.*)$", line)
            if mm:
                members.append((mm.group(1), mm.group(2)))
            elif line.strip():
                members[-1] = (members[-1][0],
                               members[-1][1] + " " + line.strip())
        classes[m.group(1)] = members
    want = {
        0: "Signed integer (64-bit, Base 10)",
        1: "Unsigned integer (64-bit, Base 10)",
        2: "Unsigned enumeration (8-bit, Base 10, 2 mappings): "
           "false: [0] true: [1]",
        3: "Double-precision real",
        4: "String",
        5: "Unsigned integer (64-bit, Base 16)",
        "status": "Unsigned enumeration (8-bit, Base 10, 4 mappings): "
                  "empty: [3] null: [2] ok: [0] truncated: [1]",
    }
    seen = set()
    for evs in ref.values():
        for ev in evs:
            if "func" in ev or ev["name"] in seen:
                continue
            seen.add(ev["name"])
            names, status = shown_names([(f[0], f[1])
                                         for f in ev["fields"]])
            exp = []
            for (fname, kind, val), nm, st in zip(ev["fields"], names,
                                                  status):
                exp.append((nm, want[kind]))
                if kind == 4:
                    exp.append((st, want["status"]))
            if classes.get(ev["name"]) != exp:
                err("event class %s: types\n  expected %r\n  babeltrace2 %r"
                    % (ev["name"], exp, classes.get(ev["name"])))


# --- Exact values (python3-bt2) -------------------------------------------------------

BT2_SCRIPT = r"""
import bt2, json, sys
out = []
for m in bt2.TraceCollectionMessageIterator(sys.argv[1]):
    if type(m) is not bt2._EventMessageConst:
        continue
    e = m.event
    fields = []
    for k, v in e.payload_field.items():
        t = type(v).__name__
        if 'String' in t:
            val = str(v).encode('utf-8', 'surrogateescape').hex()
        elif 'Real' in t:
            val = float(v).hex()
        else:
            val = int(v)
        fields.append([k, t, val])
    out.append({'tid': int(e.packet.context_field['tid']),
                'ns': m.default_clock_snapshot.ns_from_origin,
                'name': e.name, 'fields': fields})
json.dump(out, sys.stdout)
"""


def check_exact(path, ref):
    py = None
    for cand in ("python3", "/usr/bin/python3"):
        if subprocess.run([cand, "-c", "import bt2"],
                          stderr=subprocess.DEVNULL).returncode == 0:
            py = cand
            break
    if not py:
        print("check_ctf: python3-bt2 not installed: exact values checked "
              "through babeltrace2's text only")
        return
    p = subprocess.run([py, "-c", BT2_SCRIPT, path], stdout=subprocess.PIPE)
    if p.returncode:
        err("python3-bt2 could not read the trace")
        return
    got = {}
    for e in json.loads(p.stdout):
        got.setdefault(e["tid"], []).append(e)
    for tid, evs in ref.items():
        for n, (re_, be) in enumerate(zip(evs, got.get(tid, []))):
            if "func" in re_:
                continue
            where = "thread %d event %d (%s)" % (tid, n, re_["name"])
            if be["ns"] != re_["ns"]:
                err("%s: bt2 ts %d, expected %d" % (where, be["ns"],
                                                    re_["ns"]))
            args = iter(be["fields"])
            for fname, kind, val in re_["fields"]:
                f = next(args)
                if kind == 3:
                    if not isinstance(val, float):
                        continue
                    d = float.fromhex(f[2])
                    if not (d == val and math.copysign(1, d) ==
                            math.copysign(1, val)) and not (
                                math.isnan(d) and math.isnan(val)):
                        err("%s: %s is %r, bt2 %r" % (where, fname, val, d))
                    if "DoublePrecisionReal" not in f[1]:
                        err("%s: %s has type %s" % (where, fname, f[1]))
                elif kind == 4:
                    data = bytes.fromhex(f[2])
                    want = val[0].split(b"\0")[0]
                    if data != want and (want or not STALE_EMPTY):
                        err("%s: %s is %r, bt2 %r" % (where, fname, val[0],
                                                      data))
                    st = next(args)
                    if st[2] != (2 if val[1] & 2 else 3 if not want else
                                 1 if val[1] & 1 else 0):
                        err("%s: %s status %r, flags %d" % (where, fname,
                                                            st, val[1]))
                else:
                    if f[2] != val:
                        err("%s: %s is %r, bt2 %r" % (where, fname, val,
                                                      f[2]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--oracle")
    ap.add_argument("--text")
    ap.add_argument("--json")
    ap.add_argument("--kinds", default="")
    ap.add_argument("--min-events", type=int, default=1)
    a = ap.parse_args()
    global STALE_EMPTY
    STALE_EMPTY = stale_empty()
    if a.oracle:
        ref, ref_drops = load_oracle(a.oracle)
    else:
        ref, ref_drops = load_session(a.text, a.json, a.kinds)
    nref = sum(len(v) for v in ref.values())
    if nref < a.min_events:
        err("only %d events in the reference" % nref)
    bt, bt_drops = bt_pretty(a.dir)
    check_pretty(ref, bt, ref_drops, bt_drops)
    check_types(a.dir, ref)
    check_exact(a.dir, ref)
    if not errors:
        print("check_ctf: %d events on %d threads, %d dropped: babeltrace2 "
              "agrees" % (nref, len(ref), sum(ref_drops.values())))
    report()


if __name__ == "__main__":
    main()
