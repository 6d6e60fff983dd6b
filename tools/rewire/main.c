// SPDX-License-Identifier: MIT
/*
 * rewire - control the static keys, static calls, tracepoints and live
 * patches of running programs that use librewire.
 *
 * This file: global options, subcommand dispatch, option parsing and the
 * help texts (the man page, doc/rewire.1, says the same at more length).
 */
#include "rewire.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct tool g;

#ifndef REWIRE_VERSION
#define REWIRE_VERSION "unknown"
#endif

static const char usage_text[] =
	"usage: rewire [--json] [--quiet] SUBCOMMAND [ARGS...]\n"
	"       rewire help [SUBCOMMAND] | --help | --version\n"
	"\n"
	"Control the static keys, static calls, tracepoints and live patches\n"
	"of running programs that use librewire, and trace their functions.\n"
	"\n"
	"Subcommands:\n"
	"  ps                        processes that can be controlled\n"
	"  ls PID                    keys, static calls, tracepoints, patches,\n"
	"                            threads of a process\n"
	"  key PID NAME on|off       switch a static key\n"
	"  call PID NAME TARGET      retarget a static call\n"
	"  trace PID TRACEPOINT...   stream tracepoint events until Ctrl-C\n"
	"  trace PID --function GLOB trace function calls (and returns, with\n"
	"                            --graph)\n"
	"  snapshot PID              the latest events of a flight recorder\n"
	"                            (rewire trace --snapshot)\n"
	"  funccount PID GLOB...     count function calls, per interval\n"
	"  funclatency PID GLOB...   histogram of function durations\n"
	"  patch PID FILE.so         load and enable a live patch\n"
	"  unpatch PID PATCH         disable and unload a live patch\n"
	"  force PID PATCH           complete a stalled patch transition\n"
	"  apply PID PATCH.so...     make patches present (loaded, enabled),\n"
	"                            or --absent, idempotently\n"
	"  build-patch --object F -o P.so\n"
	"                            make a live patch from a diff and the\n"
	"                            build's compile_commands.json\n"
	"  bind-patch PATCH.so --object FILE\n"
	"                            bind a patch to the build of FILE\n"
	"  run [--] CMD [ARGS...]    run CMD with librewire and its control\n"
	"                            server\n"
	"  help [SUBCOMMAND]         this text, or a subcommand's\n"
	"\n"
	"Selecting processes: every subcommand that takes a PID first (ls,\n"
	"key, call, trace, snapshot, funccount, funclatency, patch, unpatch,\n"
	"force, apply) takes instead, after the subcommand:\n"
	"  --all            every rewire-enabled process this user may\n"
	"                   control\n"
	"  --exe PATH       those running the file PATH (same file, else\n"
	"                   same path: also a program replaced on disk since,\n"
	"                   and PATH as a container's process sees it)\n"
	"  --build-id HEX   those whose executable's GNU build-id starts\n"
	"                   with HEX (at least 8 hex digits)\n"
	"  --comm NAME      those whose name (/proc/PID/comm) is NAME, or\n"
	"                   matches it as a glob ('kv*')\n"
	"  --jobs N         at most N processes at once (default 8, at most\n"
	"                   256; trace, funccount, funclatency: all at once)\n"
	"Given together, all must match. The subcommand runs for each\n"
	"process on its own (one that fails does not stop the others); then a\n"
	"table PID COMM RESULT DETAIL (ls and snapshot: each process's output\n"
	"first, under \"==> PID (COMM) <==\"), or with --json one document\n"
	"{\"command\", \"selector\", \"matched\", \"ok\", \"failed\",\n"
	"\"skipped\", \"changed\", \"processes\": [{\"pid\", \"comm\", \"uid\",\n"
	"\"exe\", \"result\", \"exit\", \"error\", \"output\"}]}. RESULT is ok,\n"
	"changed, unchanged or would-change (apply), failed, or skipped:\n"
	"another user's process, never connected to. trace, funccount and\n"
	"funclatency print each line as it comes, after \"PID: \" (--json:\n"
	"{\"pid\": N, \"line\": ...}); Ctrl-C stops them all. An output path\n"
	"(-o, --also) must contain %p, replaced by each pid. Progress on\n"
	"stderr: [k/N] PID COMM RESULT (not with --quiet). Exit code: 0 when\n"
	"none failed, 1 when one did, 3 when no process matched.\n"
	"\n"
	"Global options (also accepted after the subcommand):\n"
	"  --json      machine-readable output: one JSON object on stdout\n"
	"              (JSON lines for trace); errors too, as {\"error\": ...}\n"
	"  -q, --quiet no progress lines or summaries on stderr\n"
	"  -h, --help  help (of the subcommand, after one)\n"
	"  --version   the version of the command and of its wire protocol\n"
	"\n"
	"A process can be controlled once its control server runs: start it\n"
	"with `rewire run -- CMD`, with REWIRE_CTL=1 in its environment (when\n"
	"it links librewire), or by calling rw_ctl_start(). Its socket is\n"
	"DIR/PID.sock in a 0700 directory of its user: $REWIRE_CTL_DIR,\n"
	"/run/user/UID/rewire, or /tmp/rewire-UID. Only that user and root may\n"
	"connect.\n"
	"\n"
	"Exit codes:\n"
	"  0    success\n"
	"  1    the operation failed (an error reply from the process, or a\n"
	"       local failure such as a missing patch file)\n"
	"  2    usage error\n"
	"  3    the process cannot be reached: no such process, no control\n"
	"       socket, permission denied, stale socket, refused, or it exited\n"
	"       during the command\n"
	"  4    protocol mismatch (wire version, unknown request)\n"
	"  5    timeout (a patch transition did not complete within --timeout)\n"
	"  130  interrupted by Ctrl-C (except trace, which ends with 0)\n"
	"  126, 127  rewire run: CMD cannot be executed, or was not found\n"
	"\n"
	"See `rewire help SUBCOMMAND` and rewire(1).\n";

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct cmd cmds[] = {
	{ "ps", cmd_ps,
	  "usage: rewire ps [--clean] [--json]\n"
	  "\n"
	  "List the rewire-enabled processes this user can see, in this\n"
	  "command's namespaces or in others (containers): every process of\n"
	  "/proc whose control socket is found where the process's own rules\n"
	  "put it ($REWIRE_CTL_DIR of its environment, /run/user/UID/rewire\n"
	  "or /tmp/rewire-UID, inside its root, named after its own pid).\n"
	  "Each is asked HELLO and LS with short timeouts. Processes of other\n"
	  "users (not root) are listed as denied when /proc/net/unix shows a\n"
	  "socket of theirs, and never connected to.\n"
	  "\n"
	  "Columns: PID (in this command's namespace), NSPID (its own pid, when\n"
	  "different), USER, STATUS, COMM, CONTAINER (a container engine's\n"
	  "short id from its cgroup, else its root /proc/PID/root; - in ours),\n"
	  "PATCHES (name[state],...), TRACES (sessions running: N:kinds),\n"
	  "KEYS (static keys changed from their default: name=on|off,...),\n"
	  "VERSION (its librewire), PROGRAM (or why it is not ok). STATUS is\n"
	  "  ok          the control server answered\n"
	  "  stale       nobody listens: the process is gone (or the PID was\n"
	  "              reused by another program)\n"
	  "  no-answer   connected, but no reply in time\n"
	  "  denied      permission denied, the server refused this peer or\n"
	  "              is not the process, or another user's (not examined)\n"
	  "  error       another failure (see the message)\n"
	  "\n"
	  "Options:\n"
	  "  --clean     remove stale sockets (those nobody listens on, and\n"
	  "              those of processes that are gone)\n"
	  "  --json      {\"processes\": [{\"pid\", \"nspid\", \"uid\", \"user\",\n"
	  "              \"status\", \"comm\", \"exe\", \"other_ns\",\n"
	  "              \"container\", \"root\", \"socket\", \"socket_dir\",\n"
	  "              \"program\", \"cmdline\", \"version\", \"note\",\n"
	  "              \"listed\", \"patches\": [{\"name\", \"state\", \"path\",\n"
	  "              \"file_id\", \"from_dir\"}], \"traces\": [{\"session\",\n"
	  "              \"owner\", \"kind\", \"overwrite\", \"since_ns\",\n"
	  "              \"tracepoints\", \"patterns\"}], \"keys_changed\":\n"
	  "              [{\"name\", \"object\", \"enabled\", \"default\"}]}],\n"
	  "              \"removed\": [paths], \"exited\": [paths]}\n"
	  "\n"
	  "Exit status: 0 (even when nothing is listed), 2 usage.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire ps\n"
	  "  sudo rewire ps --clean\n" },
	{ "ls", cmd_ls,
	  "usage: rewire ls PID [--keys] [--calls] [--tracepoints] [--patches]\n"
	  "                 [--threads] [--json]\n"
	  "       rewire ls PID --functions [GLOB...] [--json]\n"
	  "\n"
	  "Show what can be changed in process PID, in sections:\n"
	  "  KEYS          NAME, STATE (on/off), COUNT (reference count),\n"
	  "                DEFAULT (the initial state), SITES, OBJECT\n"
	  "  STATIC CALLS  NAME, TARGET, CANDIDATES (the targets registered\n"
	  "                with RW_STATIC_CALL_TARGET: what `rewire call`\n"
	  "                accepts), OBJECT\n"
	  "  TRACEPOINTS   NAME, PROBES (how many, and their symbols), ARGS\n"
	  "                (the typed arguments), OBJECT\n"
	  "  PATCHES       NAME, STATE (loaded, enabling, enabled, disabling,\n"
	  "                disabled, replaced), THREADS (switched/total in the\n"
	  "                last transition), FUNCS, FLAGS (forced, replace,\n"
	  "                from-dir: applied at start from the patch\n"
	  "                directory), FILE_ID (the file's build-id, its first\n"
	  "                16 digits, or size:BYTES-fnv:HASH; what `rewire\n"
	  "                apply` compares), PATH\n"
	  "  THREADS       TID, NAME, STATE (from /proc), PATCHED (for the\n"
	  "                topmost patch: yes, no or ?)\n"
	  "Keys and static calls that belong to tracepoints are not listed.\n"
	  "\n"
	  "With --functions, the functions of the process instead (all of\n"
	  "them, or those the GLOBs select, as `rewire trace --function`\n"
	  "takes them): FUNCTION (C++: demangled), STATUS, INLINED (copies\n"
	  "inlined into callers that tracing does not see, when the debug\n"
	  "information tells), OBJECT. STATUS is `traceable`, or why not:\n"
	  "  no-entry      no patchable entry (not built with\n"
	  "                -fpatchable-function-entry: most libraries)\n"
	  "  rewire        rewire's own code, or a library it calls while\n"
	  "                tracing\n"
	  "  breakpoint    another tool's breakpoint (int3) is on the entry\n"
	  "A summary on stderr counts them.\n"
	  "\n"
	  "Options:\n"
	  "  --keys, --calls, --tracepoints, --patches, --threads\n"
	  "              show only these sections (several may be given)\n"
	  "  --functions list functions and whether they can be traced\n"
	  "  --json      {\"pid\", \"program\", \"keys\": [...], \"calls\": [...],\n"
	  "              \"tracepoints\": [...], \"patches\": [...],\n"
	  "              \"threads\": [...]}; with --functions {\"pid\",\n"
	  "              \"functions\": [{\"name\", \"demangled\", \"object\",\n"
	  "              \"address\", \"size\", \"traceable\", \"status\",\n"
	  "              \"inlined\"}]}\n"
	  "\n"
	  "Exit status: 0, 1 error reply, 2 usage, 3 process not reachable,\n"
	  "4 protocol.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire ls 4242\n"
	  "  rewire ls 4242 --keys --calls\n"
	  "  rewire ls 4242 --json | python3 -m json.tool\n"
	  "  rewire ls 4242 --functions 'parse_*'\n" },
	{ "key", cmd_key,
	  "usage: rewire key PID NAME on|off [--json]\n"
	  "\n"
	  "Enable (on) or disable (off) the static key NAME in process PID:\n"
	  "every site of the key, in every object, is rewritten in one batch\n"
	  "while the threads run. Prints \"NAME: off -> on (N sites)\".\n"
	  "Also accepted: 1/0, true/false, enable/disable.\n"
	  "\n"
	  "Errors (exit 1, with the process's message): no such key; a name\n"
	  "defined in several objects; a key that belongs to a tracepoint\n"
	  "(use `rewire trace`).\n"
	  "\n"
	  "Options:\n"
	  "  --json      {\"key\", \"old\", \"enabled\", \"sites\"}\n"
	  "\n"
	  "Examples:\n"
	  "  rewire key 4242 verbose on\n"
	  "  rewire key 4242 verbose off\n" },
	{ "call", cmd_call,
	  "usage: rewire call PID NAME TARGET [--json]\n"
	  "\n"
	  "Make the static call NAME of process PID call TARGET. TARGET must\n"
	  "be one of the functions the program registered for that call with\n"
	  "RW_STATIC_CALL_TARGET(NAME, func) (see `rewire ls PID --calls`,\n"
	  "column CANDIDATES); any other name is refused and the process's\n"
	  "message lists the allowed ones. Prints \"NAME: old -> new\".\n"
	  "\n"
	  "Options:\n"
	  "  --json      {\"call\", \"old\", \"target\"}\n"
	  "\n"
	  "Examples:\n"
	  "  rewire ls 4242 --calls\n"
	  "  rewire call 4242 checksum crc32c\n" },
	{ "trace", cmd_trace,
	  "usage: rewire trace PID [TRACEPOINT...] [--function GLOB]... [--graph]\n"
	  "                    [--format text|json|ctf|chrome-json] [-o PATH]\n"
	  "                    [--also FORMAT=PATH]... [--clock realtime|monotonic]\n"
	  "                    [--reorder-window MS] [--drain-ms MS]\n"
	  "                    [--filter EXPR]\n"
	  "                    [--ring-size BYTES] [--duration SEC] [--count N]\n"
	  "\n"
	  "Attach rewire's recording probe to the tracepoints of process PID\n"
	  "(names or shell patterns such as 'req_*': quote them) and write\n"
	  "their events, one line each: timestamp, thread id, tracepoint and\n"
	  "named arguments. Events go through a ring buffer per thread in\n"
	  "shared memory: the traced threads never block, and when a buffer is\n"
	  "full events are dropped and counted; the drops are printed as they\n"
	  "are seen. The threads' events are merged into one timeline: an\n"
	  "event is written once it is older than the reorder window, and one\n"
	  "that comes later than that is still written, marked late. Runs until\n"
	  "Ctrl-C (or SIGTERM, --duration, --count), then detaches the probes\n"
	  "and prints a summary on stderr: events printed, events dropped and,\n"
	  "per thread, what to change so that they are not (--ring-size,\n"
	  "--drain-ms). If the command itself dies, the process detaches the\n"
	  "probes when the connection closes.\n"
	  "\n"
	  "Functions: --function GLOB (repeatable; '!GLOB' excludes what it\n"
	  "matches, 'GLOB@OBJECT' limits it to an object) traces every call\n"
	  "of the functions it selects among those with a patchable entry\n"
	  "(built with -fpatchable-function-entry; see `rewire ls PID\n"
	  "--functions`), with no annotation in their source. C++ functions\n"
	  "match by their demangled name too ('ns::compute(int)',\n"
	  "'ns::compute*'). One line per call: timestamp, thread id, function,\n"
	  "'<-' and the caller (name+0xOFF). With --graph, returns too, laid\n"
	  "out like the kernel's function_graph: durations, and calls nested\n"
	  "by depth (\"foo() {\" ... \"} /* foo() */\", or \"foo();\" for a call\n"
	  "that calls no traced function). Tracepoints and functions can be\n"
	  "traced in one session. A glob that selects nothing is an error, and\n"
	  "the message names functions that come close. The entries are\n"
	  "restored, byte for byte, when the session ends.\n"
	  "\n"
	  "Options:\n"
	  "  -f, --function GLOB\n"
	  "                     trace these functions (repeatable)\n"
	  "  -g, --graph        with --function: returns and durations too\n"
	  "  -F, --format FMT   text (default), json (JSON lines, \"ts\" in integer\n"
	  "                     ns; what --json gives), ctf (a CTF 1.8 trace\n"
	  "                     directory, for babeltrace2 and Trace Compass:\n"
	  "                     needs -o DIR) or chrome-json (Chrome trace-event\n"
	  "                     JSON, for Perfetto's UI)\n"
	  "  -o, --output PATH  write to PATH (a directory for ctf) instead of\n"
	  "                     stdout\n"
	  "  --also FMT=PATH    the same events in another format too\n"
	  "                     (repeatable)\n"
	  "  --clock CLOCK      timestamps of CLOCK_REALTIME (realtime, the\n"
	  "                     default: wall-clock time) or CLOCK_MONOTONIC\n"
	  "                     (monotonic)\n"
	  "  --reorder-window MS\n"
	  "                     how long an event waits for older ones of other\n"
	  "                     threads (default 100; 0: write what each read\n"
	  "                     finds)\n"
	  "  --drain-ms MS      read the rings every MS ms (default 10)\n"
	  "  --filter EXPR      record only the tracepoint events for which EXPR\n"
	  "                     is true, evaluated in the process before\n"
	  "                     anything is recorded: fields by name, numbers,\n"
	  "                     'strings' with * wildcards, true/false,\n"
	  "                     == != < <= > >=, && || ! and parentheses;\n"
	  "                     errors point at the column. Function events\n"
	  "                     are not filtered\n"
	  "  --ring-size BYTES  ring buffer size per thread (suffixes K, M);\n"
	  "                     the process rounds it and has a default\n"
	  "  -d, --duration SEC stop after SEC seconds (fractions allowed)\n"
	  "  -c, --count N      stop after N events\n"
	  "  --json             the same as --format json\n"
	  "  --snapshot         a flight recorder instead: the rings keep the\n"
	  "                     latest events, written on demand (see `rewire\n"
	  "                     help snapshot`)\n"
	  "\n"
	  "Exit status: 0 (also when ended by Ctrl-C), 1 error reply (e.g. a\n"
	  "name that matches no tracepoint, or the process's cap on trace\n"
	  "memory, REWIRE_TRACE_MEM_MAX), 2 usage, 3 the process is not\n"
	  "reachable or exited while traced, 4 protocol.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire trace 4242 req_done\n"
	  "  rewire trace 4242 'req_*' --duration 10 --output /tmp/req.log\n"
	  "  rewire trace 4242 req_done --count 100 --json\n"
	  "  rewire trace 4242 'req_*' -o req.ctf --format ctf --also text=-\n"
	  "  rewire trace 4242 'req_*' --filter 'len >= 200 && op == \"GET\"'\n"
	  "  rewire trace 4242 --function 'parse_*' --function '!parse_debug'\n"
	  "  rewire trace 4242 req_done --function handle_request --graph\n" },
	{ "snapshot", cmd_snapshot,
	  "usage: rewire snapshot PID [-o PATH] [--last SEC] [--session N]\n"
	  "                       [--format text|json|ctf|chrome-json]\n"
	  "                       [--clock realtime|monotonic]\n"
	  "       rewire trace PID TRACEPOINT... [--function GLOB]... --snapshot\n"
	  "                    [--on-signal SIG] [--final] [-o PATH] [--last SEC]\n"
	  "                    [--format F] [--ring-size BYTES] [--duration SEC]\n"
	  "                    [--filter EXPR]\n"
	  "\n"
	  "The flight recorder. `rewire trace ... --snapshot` starts a session\n"
	  "whose per-thread rings keep the latest events: when a ring is full,\n"
	  "the thread writes over its oldest events (the threads never wait,\n"
	  "nothing is read while nothing is asked). A snapshot writes what the\n"
	  "rings hold at that moment, copied while the threads keep writing:\n"
	  "  - `rewire snapshot PID -o FILE` from another terminal, at any time;\n"
	  "  - the signal SIG (default USR1) sent to the `rewire trace` command\n"
	  "    (its pid is printed at the start): each one writes PATH.1,\n"
	  "    PATH.2, ... (-o PATH), or to stdout;\n"
	  "  - with --final, when the session ends (Ctrl-C, SIGTERM,\n"
	  "    --duration) or the process exits: a last snapshot to PATH.\n"
	  "Ctrl-C without --final stops the session and writes nothing.\n"
	  "\n"
	  "A snapshot says what it covers (first line of text and JSON output,\n"
	  "and on stderr): its time, the events and threads, the time span\n"
	  "from the oldest to the newest event kept, the older events --last\n"
	  "left out, and the bytes of each ring's oldest sub-buffer given up:\n"
	  "the copy starts at a sub-buffer boundary the threads cannot have\n"
	  "written over during the copy (at most one sub-buffer per thread,\n"
	  "a 16th of the ring, plus what a thread wrote during the copy).\n"
	  "\n"
	  "Options of rewire snapshot:\n"
	  "  -o, --output PATH  write to PATH (a directory for ctf); default\n"
	  "                     stdout\n"
	  "  --last SEC         only the events of the last SEC seconds\n"
	  "                     (fractions allowed); default: all the rings hold\n"
	  "  --session N        the session to take, when the process has\n"
	  "                     several (the error lists them)\n"
	  "  --format F         text (default; json with --json), json, ctf,\n"
	  "                     chrome-json: as `rewire trace --format`\n"
	  "  --clock C          timestamps in realtime (default) or monotonic ns\n"
	  "Options of rewire trace --snapshot: those of rewire trace that apply,\n"
	  "and\n"
	  "  --on-signal SIG    the signal that asks for a snapshot: USR1\n"
	  "                     (default), USR2, HUP, QUIT, ALRM, WINCH, URG,\n"
	  "                     RTMIN+N\n"
	  "  --final            write a last snapshot when the session ends\n"
	  "  --last SEC         in every snapshot\n"
	  "\n"
	  "Exit status: 0, 1 error reply (no flight-recorder session: the\n"
	  "message says how to start one; several: it lists them), 2 usage,\n"
	  "3 the process is not reachable or exited, 4 protocol.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire trace 4242 'req_*' --snapshot --final -o /tmp/req.txt &\n"
	  "  rewire snapshot 4242 -o /tmp/last-second.txt --last 1\n"
	  "  kill -USR1 %1          # writes /tmp/req.txt.1\n"
	  "  rewire snapshot 4242 --format chrome-json -o /tmp/req.json\n" },
	{ "funccount", cmd_funccount,
	  "usage: rewire funccount PID GLOB... [--interval SEC] [--duration SEC]\n"
	  "                        [--json]\n"
	  "\n"
	  "Count the calls of the functions the GLOBs select (as `rewire trace\n"
	  "--function` takes them: '!GLOB' excludes, C++ demangled names),\n"
	  "in the process itself: a probe adds one to a counter per function,\n"
	  "nothing is streamed, nothing is dropped. Every interval, the calls\n"
	  "of that interval, most called first (FUNC, COUNT; functions not\n"
	  "called are left out). Ctrl-C, SIGTERM or --duration ends it with\n"
	  "the last interval and the totals of the whole run.\n"
	  "\n"
	  "Options:\n"
	  "  -i, --interval SEC  print every SEC seconds (default 1)\n"
	  "  -d, --duration SEC  stop after SEC seconds\n"
	  "  --json              one object per report: {\"ts_ns\", \"total\",\n"
	  "                      \"ms\", \"functions\": [{\"function\",\n"
	  "                      \"symbol\", \"count\"}]}\n"
	  "\n"
	  "Exit status: 0 (also when ended by Ctrl-C), 1 error reply (a glob\n"
	  "that selects nothing, a function without a patchable entry), 2\n"
	  "usage, 3 the process is not reachable or exited, 4 protocol.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire funccount 4242 'parse_*'\n"
	  "  rewire funccount 4242 'kv_*' --interval 5 --duration 60\n" },
	{ "funclatency", cmd_funclatency,
	  "usage: rewire funclatency PID GLOB... [--interval SEC]\n"
	  "                          [--duration SEC] [--per-function] [--json]\n"
	  "\n"
	  "Time the calls of the functions the GLOBs select, in the process\n"
	  "itself (a probe on entry and return puts each call's duration in a\n"
	  "log2 histogram), and draw the histogram of every interval like\n"
	  "bpftrace's hist(): one line per power of two of nanoseconds,\n"
	  "\"[1K, 2K)  123 |@@@@@   |\" (K, M, G are powers of 1024), then\n"
	  "the average, total and count. Ctrl-C, SIGTERM or --duration ends\n"
	  "it with the last interval and the histogram of the whole run. A\n"
	  "call that unwinds (C++ exception, longjmp) is not timed.\n"
	  "\n"
	  "Options:\n"
	  "  -i, --interval SEC  print every SEC seconds (default 1)\n"
	  "  -d, --duration SEC  stop after SEC seconds\n"
	  "  --per-function      one histogram per function (else one for all)\n"
	  "  --json              one object per report: {\"ts_ns\", \"total\",\n"
	  "                      \"ms\", \"all\": {\"count\", \"total_ns\",\n"
	  "                      \"hist\": [{\"from\", \"to\", \"count\"}]},\n"
	  "                      \"functions\": [...]}\n"
	  "\n"
	  "Exit status: as funccount.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire funclatency 4242 handle_request\n"
	  "  rewire funclatency 4242 'ns::compute*' --per-function -d 10\n" },
	{ "patch", cmd_patch,
	  "usage: rewire patch PID FILE.so [--timeout SEC] [--no-wait]\n"
	  "                    [--allow-inlined] [--revert-on-timeout]\n"
	  "                    [--quiet] [--json]\n"
	  "\n"
	  "Load the live patch FILE.so into process PID, enable it and wait\n"
	  "for the transition: each thread switches to the new functions once\n"
	  "none of the patched functions is on its stack. Progress is shown on\n"
	  "stderr (\"patch NAME: enabling, 7/9 threads switched, 120 ms\"); when\n"
	  "no thread switches for 2 s, the threads that block the transition\n"
	  "are listed (tid, name, reason, function). At the end: \"patch NAME\n"
	  "enabled in X ms (N threads)\".\n"
	  "\n"
	  "The command opens FILE.so and passes the open file to the process,\n"
	  "which loads it (even in another mount namespace, where the path\n"
	  "may not exist). It must be a regular file owned by the process's\n"
	  "user (or root) and not writable by group or others, built for this\n"
	  "version of rewire (see doc/LIVEPATCH.md). If it loads but cannot be\n"
	  "enabled, it is unloaded again. A patched function that the\n"
	  "compiler inlined into callers (seen in the target's debug\n"
	  "information) is refused, naming them; without debug information a\n"
	  "warning says that inlining could not be checked.\n"
	  "\n"
	  "A patch of that name loaded already is not loaded again: the\n"
	  "command says in what state it is and what to run (exit 1).\n"
	  "\n"
	  "--timeout bounds the whole command, every request included: a\n"
	  "process that stops answering (stopped, in a debugger) cannot hold\n"
	  "it longer. When it expires the transition goes on in the process\n"
	  "(its control server keeps driving it): watch it with `rewire ls PID\n"
	  "--patches`, revert it with `rewire unpatch PID NAME`, or complete\n"
	  "it without the blocking threads with `rewire force PID NAME`.\n"
	  "With --revert-on-timeout (kpatch's behaviour) the command reverses\n"
	  "the transition itself, waits up to --timeout again for that, and\n"
	  "unloads the patch; it reports what it did and exits 5. A process\n"
	  "that does not answer at all cannot be reverted: the command says\n"
	  "so. Ctrl-C stops waiting the same way as --timeout (exit 130).\n"
	  "\n"
	  "Options:\n"
	  "  -t, --timeout SEC  give up after SEC seconds (default 60; 0 waits\n"
	  "                     forever)\n"
	  "  --no-wait          return once the transition started\n"
	  "  --allow-inlined    load even if callers keep inlined copies of a\n"
	  "                     patched function (they run the old code)\n"
	  "  --revert-on-timeout\n"
	  "                     on --timeout, reverse the transition and\n"
	  "                     unload the patch (not with --no-wait or\n"
	  "                     --timeout 0)\n"
	  "  -q, --quiet        no progress on stderr\n"
	  "  --json             {\"patch\": {name, path, state, threads...},\n"
	  "                     \"result\", \"elapsed_ms\"}\n"
	  "\n"
	  "Exit status: 0 enabled (or started, with --no-wait), 1 error reply\n"
	  "(bad file, unknown symbol, loaded already, another transition\n"
	  "running...) or a missing file, 2 usage, 3 process not reachable,\n"
	  "exited, or not the process its socket names, 5 timeout (reverted\n"
	  "or not), 130 interrupted.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire patch 4242 ./fix_parse.so\n"
	  "  rewire patch 4242 ./fix_parse.so --timeout 10 || rewire unpatch "
	  "4242 fix_parse\n" },
	{ "unpatch", cmd_unpatch,
	  "usage: rewire unpatch PID PATCH [--keep-loaded] [--timeout SEC]\n"
	  "                      [--no-wait] [--quiet] [--json]\n"
	  "\n"
	  "Disable the live patch PATCH of process PID (its name, as `rewire ls`\n"
	  "shows it, or the path of its file), wait for the transition back to\n"
	  "the old functions with the same progress as `rewire patch`, then\n"
	  "unload it. A patch that is still enabling is reverted. A patch that\n"
	  "is loaded, disabled or replaced is only unloaded. Only the topmost\n"
	  "patch of a function can be disabled.\n"
	  "\n"
	  "Options:\n"
	  "  --keep-loaded      disable only; leave the patch loaded\n"
	  "  -t, --timeout SEC  give up waiting after SEC seconds (default 60;\n"
	  "                     0 waits forever); the transition goes on\n"
	  "  --no-wait          return once the transition started (implies\n"
	  "                     --keep-loaded: a patch in transition cannot be\n"
	  "                     unloaded)\n"
	  "  -q, --quiet        no progress on stderr\n"
	  "  --json             {\"patch\": {...}, \"result\", \"elapsed_ms\"}\n"
	  "\n"
	  "Exit status: 0, 1 error reply (no such patch, not the topmost...),\n"
	  "2 usage, 3 process not reachable or exited, 5 timeout,\n"
	  "130 interrupted.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire unpatch 4242 fix_parse\n"
	  "  rewire unpatch 4242 fix_parse --keep-loaded\n" },
	{ "force", cmd_force,
	  "usage: rewire force PID PATCH [--json]\n"
	  "\n"
	  "Complete the transition of PATCH in process PID now, in whichever\n"
	  "direction it goes: the threads that have not switched (see `rewire\n"
	  "ls PID --patches`, or the list `rewire patch` prints when it stalls)\n"
	  "are switched without a check. Use it only when such a thread will\n"
	  "never leave the patched function: a forced thread may run old and\n"
	  "new code mixed, and the patch's object is never unmapped afterwards.\n"
	  "\n"
	  "Options:\n"
	  "  --json      {\"patch\": {...}, \"forced_threads\"}\n"
	  "\n"
	  "Examples:\n"
	  "  rewire force 4242 fix_parse\n" },
	{ "apply", cmd_apply,
	  "usage: rewire apply PID PATCH.so... [--check] [--persist]\n"
	  "                    [--timeout SEC] [--allow-inlined] [--json]\n"
	  "       rewire apply PID --absent NAME|PATCH.so... [--check]\n"
	  "                    [--persist] [--timeout SEC] [--json]\n"
	  "\n"
	  "Make process PID hold a desired patch state, doing only what is\n"
	  "missing: run it again and it says \"unchanged\" (what configuration\n"
	  "tools need). Patches not named are left alone.\n"
	  "\n"
	  "Present (PATCH.so given): the patch is loaded from that file and\n"
	  "enabled. Its name is the one in the file's descriptor (RW_PATCH()).\n"
	  "  not loaded                         load+enable\n"
	  "  the same file, enabled             nothing\n"
	  "  the same file, loaded or disabled  enable\n"
	  "  another build under that name      replace: disable and unload\n"
	  "                                     it, load and enable this one\n"
	  "                                     (if this one fails, the old\n"
	  "                                     one is loaded again)\n"
	  "  a transition in progress           waited for as `rewire patch`\n"
	  "                                     does, then as above\n"
	  "The same file means the same FILE_ID: the GNU build-id of the file,\n"
	  "or its size and FNV-1a hash when it has none (`rewire ls` shows it;\n"
	  "a process whose librewire does not report it is compared by the\n"
	  "path it loaded).\n"
	  "\n"
	  "Absent (--absent): each patch, named or given by its file (the name\n"
	  "is read from it), is disabled (waiting for the transition) and\n"
	  "unloaded; a patch that is not loaded needs nothing.\n"
	  "\n"
	  "Result, per process: \"unchanged\" (nothing was sent that changes\n"
	  "anything), \"changed\" (something was done), or with --check\n"
	  "\"would-change\" (nothing is done; the output says what would be).\n"
	  "Text: one line, \"PID COMM changed: load+enable fix_value\" or\n"
	  "\"PID COMM unchanged: fix_value enabled\".\n"
	  "\n"
	  "--persist also makes the process's patch directory hold the same,\n"
	  "so that the process, restarted, starts with it: the directory its\n"
	  "control server applies at start ($REWIRE_PATCH_DIR, `rewire run\n"
	  "--patch-dir DIR`), as the process reports it, reached through\n"
	  "/proc/PID/root for a process in another mount namespace. Present:\n"
	  "DIR/NAME.so is written atomically (a temporary file in DIR, fsync,\n"
	  "rename), mode 0644, owned by the process's user when run as root;\n"
	  "a DIR/NAME.so with the same bytes is left alone. Absent: DIR/NAME.so\n"
	  "is removed. The result is \"changed\" when the directory changed\n"
	  "even if the process did not. A process without a patch directory\n"
	  "fails, and nothing is changed in it.\n"
	  "\n"
	  "Patches are done in the order given, each in the process first,\n"
	  "then in the directory; the command stops at the first failure.\n"
	  "\n"
	  "Options:\n"
	  "  --absent           the patches named are to be absent\n"
	  "  --check            change nothing; report what would be done\n"
	  "  --persist          also write (or remove) DIR/NAME.so\n"
	  "  -t, --timeout SEC  bound the whole command (default 60; 0: none);\n"
	  "                     a transition still running goes on in the\n"
	  "                     process\n"
	  "  --allow-inlined    as for `rewire patch`\n"
	  "  -q, --quiet        no progress on stderr\n"
	  "  --json             {\"pid\", \"changed\", \"check\", \"actions\":\n"
	  "                     [{\"patch\", \"action\", \"done\", \"ms\"}],\n"
	  "                     \"before\" and \"after\": [{\"name\", \"state\",\n"
	  "                     \"file_id\", \"persisted\"}], \"patch_dir\"}, and\n"
	  "                     \"exit\", \"error\" on a failure; actions are\n"
	  "                     load+enable, enable, replace, disable+unload,\n"
	  "                     unload, persist, unpersist; state is absent\n"
	  "                     or as in `rewire ls`\n"
	  "\n"
	  "Exit status: 0 the state holds (changed or unchanged; with --check,\n"
	  "nothing failed), 1 a patch was refused or failed (that patch's own\n"
	  "step undone, the patches before it stay done) or --persist without\n"
	  "a patch directory, 2 usage, 3 process not reachable or exited,\n"
	  "5 timeout, 130 interrupted.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire apply 4242 ./fix_parse.so\n"
	  "  rewire apply 4242 ./fix_parse.so --check --json\n"
	  "  rewire apply 4242 ./fix_parse.so --persist\n"
	  "  rewire apply 4242 --absent fix_parse --persist\n" },
	{ "bind-patch", cmd_bind_patch,
	  "usage: rewire bind-patch PATCH.so --object FILE [--object FILE...]\n"
	  "\n"
	  "Bind a live patch to the build it was made for: write into its\n"
	  "section .rewire.bind the build-id of each FILE and the size and a\n"
	  "hash of each function of FILE that the patch replaces. The loader\n"
	  "then refuses the patch (RW_ERR_BUILD_ID, both build-ids shown) in\n"
	  "a process that runs another build. An executable FILE is the main\n"
	  "program (functions with no object); a library FILE binds the\n"
	  "functions whose object is its base name or path. The patch is read\n"
	  "as a file (none of its code runs); the section is written with\n"
	  "objcopy ($OBJCOPY), replacing an earlier one; a patch that holds\n"
	  "the same binding already is left as it is.\n"
	  "rewire_add_patch(NAME SRC... BIND TARGET) in CMake runs it after\n"
	  "each link.\n"
	  "\n"
	  "Options:\n"
	  "  -o, --object FILE  an object the patch replaces functions of,\n"
	  "                     with its symbol table (not stripped)\n"
	  "\n"
	  "Exit status: 0, 1 error (not a patch, a function not found, an\n"
	  "object without a symbol table, objcopy failed), 2 usage.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire bind-patch fix.so --object /usr/sbin/memcached\n" },
	{ "run", cmd_run,
	  "usage: rewire run [--lib PATH] [--patch-dir DIR] [--] CMD [ARGS...]\n"
	  "\n"
	  "Run CMD with librewire preloaded and its control server on: sets\n"
	  "REWIRE_CTL=1, puts librewire first in LD_PRELOAD (keeping what was\n"
	  "there) and executes CMD (searched in PATH) in place of rewire: CMD\n"
	  "keeps rewire's PID. A program that links librewire itself gets the\n"
	  "same library; one that does not can still be traced and listed but\n"
	  "has no keys, calls or tracepoints of its own.\n"
	  "\n"
	  "librewire is found, in this order: --lib PATH; $REWIRE_LIB;\n"
	  "<dir of rewire>/../" REWIRE_LIBDIR "/librewire.so." REWIRE_SOVERSION
	  " (installed);\n"
	  "the build tree it was built in.\n"
	  "\n"
	  "Options (before CMD):\n"
	  "  --lib PATH       the librewire to preload\n"
	  "  --patch-dir DIR  set REWIRE_PATCH_DIR=DIR: CMD applies the\n"
	  "                   patches of DIR bound to it before main()\n"
	  "                   (doc/LIVEPATCH.md, \"Patches that survive a\n"
	  "                   restart\")\n"
	  "\n"
	  "Exit status: CMD's, or 1 librewire not found, 2 usage, 126 CMD\n"
	  "cannot be executed, 127 CMD not found.\n"
	  "\n"
	  "Examples:\n"
	  "  rewire run -- ./server --port 8080 &\n"
	  "  rewire ls $!\n" },
	{ "build-patch", cmd_build_patch,
	  "usage: rewire build-patch --object FILE -o PATCH.so [--diff FILE]\n"
	  "                          [-c compile_commands.json|DIR]\n"
	  "                          [--source DIR] [--strip N] [--name NAME]\n"
	  "                          [--dry-run] [--keep DIR] [--cc CC]\n"
	  "                          [--verbose] [--json]\n"
	  "\n"
	  "Make a live patch from a unified diff (`git diff`, `diff -u`) of\n"
	  "the source the program was built from, like kpatch-build. The\n"
	  "source tree is copied (hard links) and the diff applied to the\n"
	  "copy; your tree is never written. Each translation unit the diff\n"
	  "changes (a header changes every unit that includes it) is compiled\n"
	  "before and after the change with the exact command recorded in\n"
	  "compile_commands.json (CMake: -DCMAKE_EXPORT_COMPILE_COMMANDS=ON;\n"
	  "Meson writes it; autotools/make: `bear -- make`), and the objects\n"
	  "are compared function by function. The patch replaces every\n"
	  "function whose code changed: the edited ones, the callers that\n"
	  "inline them, the clones GCC made of them (.constprop, .isra,\n"
	  ".part) and their .cold pieces. Static variables and functions of\n"
	  "the program are reached where the program has them; the patch\n"
	  "carries only the new code and its constants. It is bound to FILE:\n"
	  "it records FILE's build-id and the size and hash of each function\n"
	  "it replaces, and the loader refuses any other build.\n"
	  "\n"
	  "Refused, with the symbol and the reason (exit 3, nothing written):\n"
	  "changed initialised data (a global's initial value or size), a\n"
	  "changed struct layout, the changed signature of a global function\n"
	  "(callers in other files would pass the old arguments), a variable\n"
	  "the new code needs that the program does not have, thread-local\n"
	  "variables. The report says where a shadow variable\n"
	  "(rw_shadow_*) or a callback (pre_patch) is the way.\n"
	  "\n"
	  "The program must have been built with a patchable entry\n"
	  "(-fpatchable-function-entry=5) and keep its symbol table; build it\n"
	  "with -g so that the inlined copies can be checked. See\n"
	  "doc/LIVEPATCH.md, \"From a diff\".\n"
	  "\n"
	  "Options:\n"
	  "  --object FILE        the program or library the patch is for (the\n"
	  "                       file that runs, not stripped)\n"
	  "  -o, --output FILE    the patch to write (PATCH.so)\n"
	  "  -d, --diff FILE      the diff (default: stdin)\n"
	  "  -c, --compile-commands FILE|DIR\n"
	  "                       the compilation database (default\n"
	  "                       ./compile_commands.json)\n"
	  "  -s, --source DIR     the tree the diff applies to (default: .)\n"
	  "  -p, --strip N        strip N leading directories from the\n"
	  "                       diff's file names, as patch -pN (default 1,\n"
	  "                       what git diff writes)\n"
	  "  -n, --name NAME      the patch's name (default: PATCH.so's base\n"
	  "                       name without .so)\n"
	  "  --dry-run            compile and compare, print the report, write\n"
	  "                       nothing\n"
	  "  --keep DIR           keep the copy, the objects and the generated\n"
	  "                       patch sources in DIR\n"
	  "  --cc CC              the compiler that links the patch (default\n"
	  "                       cc)\n"
	  "  -v, --verbose        print every command\n"
	  "  --json               {\"units\", \"functions\": [{\"name\", \"unit\",\n"
	  "                       \"state\", \"action\", \"why\", \"clone\",\n"
	  "                       \"inlined_into\"}], \"refusals\": [{\"symbol\",\n"
	  "                       \"reason\"}], \"notes\", \"patch\"}\n"
	  "\n"
	  "Report lines: ACTION STATE FUNCTION: WHY, where ACTION is replace\n"
	  "(the program's function is replaced), carry (new code the patch\n"
	  "holds, called by replaced functions) or none; STATE is changed,\n"
	  "new, deleted (left in the program) or same.\n"
	  "\n"
	  "Exit status: 0 patch written (or --dry-run without refusal), 1\n"
	  "failure (a compiler error, a tool missing), 2 usage or bad input\n"
	  "(no database, the diff does not apply), 3 refused (see the\n"
	  "report).\n"
	  "\n"
	  "Examples:\n"
	  "  git diff > fix.diff\n"
	  "  rewire build-patch -c build --object build/server --diff fix.diff \\\n"
	  "      -o fix.so\n"
	  "  rewire patch $(pidof server) fix.so\n" },
	{ "help", NULL,
	  "usage: rewire help [SUBCOMMAND]\n"
	  "\n"
	  "Print the overview, or the help of SUBCOMMAND (the same as\n"
	  "`rewire SUBCOMMAND --help`).\n"
	  "\n"
	  "Examples:\n"
	  "  rewire help trace\n" },
};

static const struct cmd *cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

bool help_print(const char *cmd, FILE *f)
{
	const struct cmd *c = cmd_find(cmd);

	if (!c)
		return false;
	fputs(c->help, f);
	if (sel_supported(c->name))
		sel_help(f);
	return true;
}

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rewire: %s%s", g.cmd ? g.cmd : "", g.cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'rewire %s%s--help'.\n", g.cmd ? g.cmd : "",
		g.cmd ? " " : "");
	return EX_USAGE;
}

/* The options every subcommand takes. */
enum { OPT_HELP = 0, OPT_JSON = 1, OPT_QUIET = 2 };
static const struct opt common_opts[] = {
	{ "help", 'h', false, OPT_HELP },
	{ "json", 0, false, OPT_JSON },
	{ "quiet", 'q', false, OPT_QUIET },
	{ NULL, 0, false, 0 },
};

static const struct opt *opt_find(const struct opt *opts, const char *name,
				  size_t len, char short_name)
{
	const struct opt *sets[2] = { common_opts, opts };

	for (int s = 0; s < 2; s++)
		for (const struct opt *o = sets[s]; o && o->name; o++) {
			if (short_name && o->short_name == short_name)
				return o;
			if (!short_name && strlen(o->name) == len &&
			    !strncmp(o->name, name, len))
				return o;
		}
	return NULL;
}

int opts_parse(int argc, char **argv, const struct opt *opts, struct optv *v,
	       bool stop_at_pos)
{
	bool only_pos = false;

	memset(v, 0, sizeof(*v));
	/* Freed by main() after the subcommand returns, whatever path it
	 * returned by. */
	for (int i = 0; i < OPT_MAX_IDS; i++) {
		free(g.rep_alloc[i]);
		g.rep_alloc[i] = NULL;
	}
	free(g.pos_alloc);
	g.pos_alloc = v->pos = xmalloc(sizeof(char *) * (size_t)(argc + 1));
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		const struct opt *o;
		const char *val = NULL;

		if (only_pos || a[0] != '-' || !a[1]) {
			v->pos[v->npos++] = a;
			if (stop_at_pos)
				only_pos = true;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - (a + 2))
					: strlen(a + 2);

			o = opt_find(opts, a + 2, len, 0);
			if (!o)
				return usage_error("unknown option '%.*s'",
						   (int)len + 2, a);
			if (eq) {
				if (!o->has_arg)
					return usage_error(
						"option '--%s' takes no value",
						o->name);
				val = eq + 1;
			}
		} else {
			o = opt_find(opts, NULL, 0, a[1]);
			if (!o)
				return usage_error("unknown option '-%c'",
						   a[1]);
			if (a[2]) {
				if (!o->has_arg)
					return usage_error(
						"option '-%c' takes no value "
						"(options are not bundled)",
						a[1]);
				val = a + 2;
			}
		}
		if (o->has_arg && !val) {
			if (i + 1 >= argc)
				return usage_error(
					"option '--%s' needs a value", o->name);
			val = argv[++i];
		}
		if (o == &common_opts[OPT_HELP]) {
			help_print(g.cmd, stdout);
			return -1;
		}
		if (o == &common_opts[OPT_JSON]) {
			g.json = true;
			continue;
		}
		if (o == &common_opts[OPT_QUIET]) {
			g.quiet = true;
			continue;
		}
		v->set[o->id] = true;
		v->arg[o->id] = val;
		if (o->id >= OPT_FIRST_REPEAT && val) {
			if (!v->rep[o->id])
				g.rep_alloc[o->id] = v->rep[o->id] = xmalloc(
					sizeof(char *) * (size_t)(argc + 1));
			v->rep[o->id][v->nrep[o->id]++] = (char *)val;
		}
	}
	v->pos[v->npos] = NULL;
	return 0;
}

int opts_parse_pid(int argc, char **argv, const struct opt *opts,
		   struct optv *v, int npos, const char *missing, pid_t *pid)
{
	int ret = opts_parse(argc, argv, opts, v, false);

	if (ret)
		return ret;
	if (v->npos < npos)
		return usage_error("%s", missing);
	if (v->npos > npos)
		return usage_error("unexpected argument '%s'", v->pos[npos]);
	if (!parse_pid(v->pos[0], pid))
		return usage_error("'%s' is not a process id", v->pos[0]);
	return 0;
}

int main(int argc, char **argv)
{
	const struct cmd *c;
	int i;

	/* Global options before the subcommand. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json")) {
			g.json = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			g.quiet = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return EX_OK;
		} else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			printf("rewire %s (wire protocol %d)\n", REWIRE_VERSION,
			       RW_WIRE_VERSION);
			return EX_OK;
		} else {
			fprintf(stderr, "rewire: unknown option '%s'\n%s", a,
				"Try 'rewire --help'.\n");
			return EX_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	c = cmd_find(argv[i]);
	if (!c) {
		fprintf(stderr,
			"rewire: unknown subcommand '%s'\nTry 'rewire --help'.\n",
			argv[i]);
		return EX_USAGE;
	}
	if (!c->run) {
		/* help [SUBCOMMAND] */
		if (i + 1 >= argc || !strcmp(argv[i + 1], "help")) {
			if (i + 1 < argc)
				help_print("help", stdout);
			else
				fputs(usage_text, stdout);
			return EX_OK;
		}
		if (!strcmp(argv[i + 1], "-h") ||
		    !strcmp(argv[i + 1], "--help")) {
			help_print("help", stdout);
			return EX_OK;
		}
		if (!help_print(argv[i + 1], stdout)) {
			fprintf(stderr,
				"rewire: help: unknown subcommand '%s'\n"
				"Try 'rewire --help'.\n",
				argv[i + 1]);
			return EX_USAGE;
		}
		return EX_OK;
	}
	g.cmd = c->name;
	if (sel_supported(c->name) && sel_wanted(argc - i - 1, argv + i + 1))
		i = sel_run(c->name, c->run, argc - i - 1, argv + i + 1);
	else
		i = c->run(argc - i - 1, argv + i + 1);
	free(g.pos_alloc);
	for (int k = 0; k < OPT_MAX_IDS; k++)
		free(g.rep_alloc[k]);
	return i;
}
