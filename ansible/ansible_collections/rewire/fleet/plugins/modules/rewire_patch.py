#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
#
# rewire.fleet.rewire_patch: the desired live-patch state of the running
# processes of a host, through `rewire apply --json` (doc/FLEET.md).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rewire_patch
short_description: Apply or remove live patches in running processes with rewire
version_added: "0.1.0"
description:
  - Makes the rewire-enabled processes of the managed host that I(pid) or
    the selectors (I(all), I(exe), I(build_id), I(comm)) name hold a live
    patch (I(state=present)) or not hold it (I(state=absent)), without
    restarting them.
  - Runs C(rewire apply --json) on the managed host, which does nothing in a
    process where the state already holds, so the task is idempotent and
    reports C(changed) only when some process changed.
  - In check mode, C(rewire apply --check) reports what would be done in
    each process and changes nothing.
  - With C(--diff), shows each changed process's patches before and after.
  - The task fails when the patch could not be applied (or removed) in one
    of the selected processes; the other processes are done all the same,
    and the message names each process that failed and why.
requirements:
  - The C(rewire) command on the managed host (rewire 0.1 or later, with
    C(rewire apply))
  - The processes run rewire's control server (started by C(rewire run),
    C(REWIRE_CTL=1) or C(rw_ctl_start))
options:
  patch:
    description:
      - The patch files (C(.so), built with C(rewire_add_patch) or
        C(rewire build-patch)) on the managed host.
      - With I(state=present), each is loaded and enabled in every selected
        process; a patch of the same name from another build of the patch
        is replaced.
      - With I(state=absent), the patches of these files' names are
        removed.
      - Copy the file to the host first (M(ansible.builtin.copy)); it must be
        owned by the processes' user or root and not writable by others.
    type: list
    elements: path
  name:
    description:
      - With I(state=absent), the names of the patches to remove (the name
        given to C(RW_PATCH) in the patch's source, as C(rewire ls) shows
        it). Either I(name) or I(patch) is required then.
    type: list
    elements: str
  state:
    description:
      - C(present) the patches are loaded and enabled; C(absent) they are
        disabled and unloaded. Patches not named are left alone.
    type: str
    choices: [present, absent]
    default: present
  pid:
    description:
      - One process, by its pid on the managed host. Mutually exclusive with
        the selectors.
    type: int
  all:
    description:
      - Every rewire-enabled process that the user the module runs as may
        control (as root, all of them, in containers too).
    type: bool
    default: false
  exe:
    description:
      - The processes that run this executable (the same file, by device and
        inode, then the path).
    type: path
  build_id:
    description:
      - The processes whose executable has this GNU build-id (a prefix of at
        least 8 hex digits).
    type: str
  comm:
    description:
      - The processes of this command name (C(/proc/PID/comm)); a glob with
        C(*) and C(?) matches several.
    type: str
  persist:
    description:
      - Also make each process's patch directory (C(REWIRE_PATCH_DIR)) hold
        the same state, so that the process starts patched when it
        restarts. A process without a patch directory fails.
    type: bool
    default: false
  jobs:
    description:
      - How many processes are handled at once (rewire's default is 8, at
        most 256).
    type: int
  timeout:
    description:
      - Seconds to wait for each process's transition to complete (every
        thread switched) before that process fails.
    type: int
  require_match:
    description:
      - Fail when no rewire-enabled process matches the selectors. By default
        that is not an error (a host that does not run the program); the
        task is ok, unchanged, with a warning.
    type: bool
    default: false
  rewire:
    description:
      - The C(rewire) command, a name looked up in C(PATH) or a path.
    type: path
    default: rewire
attributes:
  check_mode:
    support: full
    description: C(rewire apply --check) says what would be done; nothing is changed.
  diff_mode:
    support: full
    description: Each changed process's patches, before and after.
  platform:
    platforms: linux
    description: x86-64 Linux, where rewire live patches.
notes:
  - The processes are found through their control sockets. A process whose
    socket lives in another directory than the default (C(REWIRE_CTL_DIR))
    is found when the task has the same C(REWIRE_CTL_DIR) in its
    C(environment).
  - Run the task as root (C(become)) to reach the processes of every user
    and every container; as another user, the processes of other users are
    skipped (and listed with a warning), never touched.
  - See C(doc/FLEET.md) in rewire's sources for a roll-out playbook (a
    canary host first, then the rest in batches, stopping at the first
    failure).
author:
  - rewire developers
"""

EXAMPLES = r"""
- name: Fix the value bug in every kvserver of the host
  rewire.fleet.rewire_patch:
    patch: /usr/lib/kvserver/patches/fix_value.so
    exe: /usr/bin/kvserver
  become: true

- name: The same, and keep it across restarts (the patch directory)
  rewire.fleet.rewire_patch:
    patch: /usr/lib/kvserver/patches/fix_value.so
    exe: /usr/bin/kvserver
    persist: true
  become: true

- name: Only the processes of one build
  rewire.fleet.rewire_patch:
    patch: /tmp/fix_value.so
    build_id: 9e058bbf050e4286
    timeout: 30

- name: Remove it everywhere it is applied
  rewire.fleet.rewire_patch:
    name: fix_value
    state: absent
    all: true
  become: true

- name: One process, controlled with a private socket directory
  rewire.fleet.rewire_patch:
    patch: /srv/app/fix.so
    pid: "{{ app_pid }}"
    rewire: /opt/rewire/bin/rewire
  environment:
    REWIRE_CTL_DIR: /srv/app/ctl
"""

RETURN = r"""
changed:
  description: Whether some process changed (in check mode, would change).
  returned: always
  type: bool
cmd:
  description: The C(rewire apply) command line that was run.
  returned: always
  type: list
  elements: str
  sample: [rewire, apply, --exe, /usr/bin/kvserver, /tmp/fix_value.so, --json]
rc:
  description:
    - Its exit code (0 all done, 1 some process failed, 3 nothing matched).
    - Not returned when nothing matched and I(require_match) is false (Ansible
      would take a non-zero C(rc) for a failure).
  returned: except when nothing matched, and that is not an error
  type: int
counts:
  description: How many processes matched, were done, failed, were skipped and changed.
  returned: when rewire printed its report
  type: dict
  sample: {matched: 3, ok: 2, failed: 1, skipped: 0, changed: 2}
processes:
  description:
    - One entry per selected process, from rewire's JSON report.
    - C(result) is C(changed), C(unchanged), C(would-change) (check mode),
      C(failed) or C(skipped) (another user's process, not examined).
    - C(output) is the process's own report of C(rewire apply) - its
      C(actions) (C(load+enable), C(enable), C(replace), C(disable+unload),
      C(unload), C(persist), C(unpersist)), its patches C(before) and
      C(after) - or null when it printed none.
  returned: when rewire printed its report
  type: list
  elements: dict
  sample:
    - pid: 1234
      comm: kvserver
      uid: 0
      exe: /usr/bin/kvserver
      result: changed
      exit: 0
      error: null
      output:
        pid: 1234
        changed: true
        check: false
        actions: [{patch: fix_value, action: load+enable, done: true, ms: 12}]
        before: [{name: fix_value, state: absent, file_id: null, persisted: false}]
        after: [{name: fix_value, state: enabled, file_id: ab12cd34, persisted: false}]
        patch_dir: null
failed_processes:
  description: The processes that failed, each its pid, its command name and why.
  returned: when some process failed
  type: list
  elements: str
  sample: ["4321 (kvserver): load: fix_value.so was built for another build (RW_ERR_BUILD_ID)"]
diff:
  description: Per changed process, its patches before and after (with C(--diff)).
  returned: when some process changed and diff mode is on
  type: list
  elements: dict
stderr:
  description: rewire's messages on stderr.
  returned: when the task failed
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

# rewire's exit codes (man rewire, EXIT STATUS): 0 done, 1 failed (in one
# process or more), 3 no process (nothing matched the selectors).
EX_OK = 0
EX_NOPROC = 3


def build_command(module, rewire):
    p = module.params
    cmd = [rewire, "apply"]
    if p["pid"] is not None:
        cmd.append(str(p["pid"]))
    else:
        if p["all"]:
            cmd.append("--all")
        if p["exe"]:
            cmd += ["--exe", p["exe"]]
        if p["build_id"]:
            cmd += ["--build-id", p["build_id"]]
        if p["comm"]:
            cmd += ["--comm", p["comm"]]
        if p["jobs"] is not None:
            cmd += ["--jobs", str(p["jobs"])]
    if p["state"] == "present":
        cmd += p["patch"]
    else:
        # One --absent per name: right whether rewire reads the names as
        # the option's argument or as the positional arguments after it.
        for n in p["name"] or p["patch"]:
            cmd += ["--absent", n]
    if module.check_mode:
        cmd.append("--check")
    if p["persist"]:
        cmd.append("--persist")
    if p["timeout"] is not None:
        cmd += ["--timeout", str(p["timeout"])]
    cmd.append("--json")
    return cmd


def parse_report(stdout):
    """rewire's JSON document, or None when it printed none."""
    text = stdout.strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        # A report followed or preceded by other lines: the last line
        # that is a JSON object.
        doc = None
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    doc = json.loads(line)
                    break
                except ValueError:
                    continue
    return doc if isinstance(doc, dict) else None


def read_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip() or None
    except (IOError, OSError):
        return None


def read_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except (IOError, OSError):
        return None


def one_process(pid, rc, doc, stderr):
    """The entry of a single-pid run, shaped like a fan-out's."""
    if rc == EX_OK and doc is not None:
        if doc.get("changed"):
            result = "would-change" if doc.get("check") else "changed"
        else:
            result = "unchanged"
        error = None
    else:
        result = "failed"
        error = (doc or {}).get("error") or stderr.strip() or "exit code %d" % rc
    return {
        "pid": pid,
        "comm": read_comm(pid),
        "uid": None,
        "exe": read_exe(pid),
        "result": result,
        "exit": rc,
        "error": error,
        "output": doc,
    }


def describe(patches):
    lines = []
    for p in patches or []:
        line = "%s: %s" % (p.get("name"), p.get("state"))
        if p.get("file_id"):
            line += " (file %s)" % p["file_id"]
        if p.get("persisted"):
            line += ", persisted"
        lines.append(line)
    return "\n".join(lines) + "\n" if lines else "(no patches)\n"


def process_label(proc):
    label = str(proc.get("pid"))
    if proc.get("comm"):
        label += " (%s)" % proc["comm"]
    return label


def make_diff(processes):
    diffs = []
    for proc in processes:
        if proc.get("result") not in ("changed", "would-change"):
            continue
        out = proc.get("output") or {}
        label = "process " + process_label(proc)
        diffs.append(
            {
                "before_header": label,
                "after_header": label,
                "before": describe(out.get("before")),
                "after": describe(out.get("after")),
            }
        )
    return diffs


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            patch=dict(type="list", elements="path"),
            name=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            pid=dict(type="int"),
            all=dict(type="bool", default=False),
            exe=dict(type="path"),
            build_id=dict(type="str"),
            comm=dict(type="str"),
            persist=dict(type="bool", default=False),
            jobs=dict(type="int"),
            timeout=dict(type="int"),
            require_match=dict(type="bool", default=False),
            rewire=dict(type="path", default="rewire"),
        ),
        mutually_exclusive=[
            ("pid", "all"),
            ("pid", "exe"),
            ("pid", "build_id"),
            ("pid", "comm"),
            ("pid", "jobs"),
        ],
        required_if=[("state", "present", ("patch",))],
        supports_check_mode=True,
    )
    p = module.params
    if p["pid"] is None and not (p["all"] or p["exe"] or p["build_id"] or p["comm"]):
        module.fail_json(
            msg="name the processes: pid, or one of all, exe, build_id, comm"
        )
    if p["state"] == "absent" and not (p["name"] or p["patch"]):
        module.fail_json(msg="state=absent needs name (or patch)")
  
    rewire = p["rewire"]
    if "/" not in rewire:
        rewire = module.get_bin_path(rewire, required=True)
    cmd = build_command(module, rewire)
    rc, stdout, stderr = module.run_command(cmd)
    doc = parse_report(stdout)

    result = dict(changed=False, cmd=cmd, rc=rc)
    single = p["pid"] is not None
    if single:
        processes = [one_process(p["pid"], rc, doc, stderr)]
        counts = None
    elif doc is not None and "processes" in doc:
        processes = doc.get("processes") or []
        counts = dict(
            (k, doc.get(k)) for k in ("matched", "ok", "failed", "skipped", "changed")
        )
    else:
        # No report at all: a usage error, or a rewire without apply.
        result["stdout"] = stdout
        result["stderr"] = stderr
        module.fail_json(
            msg="rewire apply failed (exit code %d): %s"
            % (rc, stderr.strip() or stdout.strip() or "no output"),
            **result
        )

    result["processes"] = processes
    if counts is not None:
        result["counts"] = counts
    result["changed"] = any(
        proc.get("result") in ("changed", "would-change") for proc in processes
    )
    if module._diff and result["changed"]:
        result["diff"] = make_diff(processes)
    for proc in processes:
        if proc.get("result") == "skipped":
            module.warn(
                "process %s skipped: %s"
                % (process_label(proc), proc.get("error") or "not examined")
            )

    if not single and rc == EX_NOPROC and not processes:
        what = stderr.strip() or "no rewire-enabled process matches"
        if p["require_match"]:
            result["stderr"] = stderr
            module.fail_json(msg=what, **result)
        module.warn(what)
        del result["rc"]
        module.exit_json(**result)

    failed = [proc for proc in processes if proc.get("result") == "failed"]
    examined = [proc for proc in processes if proc.get("result") != "skipped"]
    if rc != EX_OK or failed:
        result["stderr"] = stderr
        result["failed_processes"] = [
            "%s: %s" % (process_label(proc), proc.get("error") or "failed")
            for proc in failed
        ]
        if failed:
            msg = "rewire apply failed in %d of %d processes: %s" % (
                len(failed),
                len(examined),
                "; ".join(result["failed_processes"]),
            )
        else:
            msg = "rewire apply failed (exit code %d): %s" % (
                rc,
                stderr.strip() or "no message",
            )
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
