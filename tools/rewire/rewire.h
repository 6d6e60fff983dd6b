/* SPDX-License-Identifier: MIT */
/*
 * The rewire command's internal interface: exit codes, option parsing,
 * messages, the connection to a process's control server (conn.c), JSON
 * output (json.c), tables and the subcommands (cmd_*.c).
 *
 * The command is single-threaded. Output goes to stdout (results) and
 * stderr (messages, progress). Every subcommand returns an exit code:
 *
 *	code	meaning
 *	0	success
 *	1	the operation failed: an error reply from the process, or a
 *		local failure (a missing patch file, librewire not found)
 *	2	usage error
 *	3	the process cannot be reached: no such process, no control
 *		socket, permission denied, stale socket, refused peer, or the
 *		process exited during the command
 *	4	protocol mismatch (wire version, a request the process's
 *		librewire does not know, a malformed reply)
 *	5	timeout (a transition did not complete within --timeout, or no
 *		reply)
 *	130	interrupted (Ctrl-C) where that is not the normal way to end
 *	126/127	rewire run: the command cannot be executed / was not found
 */
#ifndef REWIRE_TOOL_REWIRE_H
#define REWIRE_TOOL_REWIRE_H

#include "ctl/wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

enum {
	EX_OK = 0,
	EX_FAIL = 1,
	EX_USAGE = 2,
	EX_NOPROC = 3,
	EX_PROTO = 4,
	EX_TIMEOUT = 5,
	EX_NOEXEC = 126,
	EX_NOTFOUND = 127,
	EX_INTR = 130,
};

/* --- Global state (main.c) ------------------------------------------------ */

struct tool {
	bool json;	       /* --json: machine-readable output on stdout */
	bool quiet;	       /* --quiet: no progress or summaries on stderr */
	const char *cmd;       /* the subcommand, for messages */
	int json_reported;     /* an error object was printed already */
	char last_error[8192]; /* the message of the last fail() */
	char **pos_alloc;      /* opts_parse's array, freed by main() */
	char **rep_alloc[32];  /* opts_parse's arrays of repeated options */
};
extern struct tool g;

/* --- Options (main.c) -------------------------------------------------------
 * Long options anywhere among the arguments ("--name", "--name=value",
 * "--name value"), short aliases ("-o FILE"), "--" ends the options.
 * --help/-h, --json and --quiet/-q are understood by every subcommand.
 */
struct opt {
	const char *name;
	char short_name;
	bool has_arg;
	int id;
};
#define OPT_MAX_IDS 32
/* Options with an id from here on may be given several times: every value
 * is kept, in order, in rep[id]. */
#define OPT_FIRST_REPEAT 24
struct optv {
	bool set[OPT_MAX_IDS];
	const char *arg[OPT_MAX_IDS]; /* the last value */
	char **pos;		      /* positional arguments */
	int npos;
	char **rep[OPT_MAX_IDS]; /* OPT_FIRST_REPEAT..: values, in order */
	int nrep[OPT_MAX_IDS];
};
/* Returns 0, EX_USAGE (message printed) or -1 for --help (help printed). If
 * @stop_at_pos, everything from the first positional argument on is
 * positional (rewire run). */
int opts_parse(int argc, char **argv, const struct opt *opts, struct optv *v,
	       bool stop_at_pos);
/* opts_parse, then exactly @npos positional arguments, the first a process
 * id into *@pid. Returns what opts_parse returns; EX_USAGE with @missing
 * as the message when arguments are missing. */
int opts_parse_pid(int argc, char **argv, const struct opt *opts,
		   struct optv *v, int npos, const char *missing, pid_t *pid);

/* Help of a subcommand on @f. false if there is no such subcommand. */
bool help_print(const char *cmd, FILE *f);
/* "rewire: SUBCOMMAND: usage: ..." and a pointer to --help, exit code 2. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- Messages (util.c) ----------------------------------------------------- */

/* "rewire: " + message + "\n" on stderr. */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error: msg(), and with --json an error object on stdout (once). Returns
 * @code so that callers can "return fail(...)". */
int fail(int code, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "ENOENT", "RW_ERR_SYMBOL", ... for a negative error, or "E<n>". */
const char *err_name(int err);
/* A description of a negative errno or -RW_ERR_* code. */
const char *err_desc(int err);

/* Parsing numbers: false on garbage or overflow. */
bool parse_pid(const char *s, pid_t *out);
bool parse_u64(const char *s, uint64_t *out);
/* "4096", "64K", "1M", "1G" (powers of 1024). */
bool parse_size(const char *s, uint64_t *out);
/* Seconds, with a fraction: "2", "0.5". */
bool parse_seconds(const char *s, double *out);

uint64_t now_ms(void);

/* SIGINT and SIGTERM set g_interrupted (and interrupt blocking calls: no
 * SA_RESTART); SIGPIPE is ignored. */
extern volatile sig_atomic_t g_interrupted;
void sig_catch(void);
/* Whether /proc/PID exists (the process or a zombie of it). */
bool proc_exists(pid_t pid);
/* The comm of a thread of @pid, or "?" (out is always filled). */
void thread_comm(pid_t pid, pid_t tid, char *out, size_t size);
/* The last path component of @path. */
const char *base_name(const char *path);

/* --- Tables (util.c): aligned columns like ps(1) -------------------------- */

struct table {
	int ncols;
	const char **head;
	char ***rows; /* rows[i][col], malloc'd strings */
	size_t nrows, cap;
};
void table_init(struct table *t, int ncols, const char **head);
/* Adds a row of @ncols printf-formatted cells, given as pre-formatted
 * strings (NULL prints "-"). */
void table_add(struct table *t, const char *const *cells);
/* Prints the header and rows with two spaces between columns; the last
 * column is not padded. Frees the rows. */
void table_print(struct table *t, FILE *f);
/* asprintf that exits on ENOMEM. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);

/* --- JSON (json.c) -------------------------------------------------------
 * A small streaming writer: commas and nesting are tracked, strings are
 * escaped (control characters, quotes, backslashes; invalid UTF-8 becomes
 * U+FFFD) so that the output is always valid JSON.
 */
struct json {
	FILE *f;
	int depth;
	bool first[16]; /* at this depth, nothing written yet */
	bool after_key;
};
void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* json_key + value. */
void json_kstr(struct json *j, const char *key, const char *s);
void json_ku64(struct json *j, const char *key, uint64_t v);
void json_ki64(struct json *j, const char *key, int64_t v);
void json_kbool(struct json *j, const char *key, bool v);
/* Ends the document: newline and flush. */
void json_done(struct json *j);
/* A value given as JSON text, written as it is (the caller checked it). */
void json_raw(struct json *j, const char *s, size_t n);
/* Writes @s as a quoted, escaped JSON string on @f. */
void json_escape(FILE *f, const char *s, size_t n);

/* --- Connection (conn.c) --------------------------------------------------- */

/* Where the control socket of a process is, as seen from this command. */
struct ctl_where {
	pid_t pid;   /* as given (this command's pid namespace) */
	pid_t nspid; /* the pid in the process's own namespace (NSpid's last) */
	uid_t uid;   /* owner of /proc/PID */
	bool other_ns;	/* another mount or pid namespace (or root) than ours */
	char root[32];	/* "" or "/proc/PID/root" when other_ns: prefix for
			   paths of the process (patch dir, environment dirs) */
	char dir[4096]; /* the socket directory as the process sees it */
	char sock[4096]; /* full path from here (root + dir + "/NSPID.sock") */
};

/*
 * Finds the socket of @pid without connecting (the directory rules of
 * src/ctl/sockdir.h evaluated for the process, inside its root when it
 * runs in other namespaces; the directory and socket checked as conn_open
 * does). 0; or an exit code with the reason kept in @why (quiet, nothing
 * printed) and a negative errno in *@err: EX_NOPROC with -ESRCH (no
 * process / exiting / a thread), -ENOENT (no socket: not rewire-enabled),
 * -EACCES (another user's: cannot look), -EPERM or -ELOOP (a directory or
 * socket that fails the checks).
 */
int conn_locate(pid_t pid, struct ctl_where *w, int *err, char *why,
		size_t whylen);
/* "DIR/NSPID.sock", followed by " in the namespace of process PID" when
 * the process runs in other namespaces: the socket named in messages. */
const char *where_sock_name(const struct ctl_where *w, char *buf, size_t size);

struct conn {
	int fd;
	pid_t pid;
	uid_t uid; /* owner of /proc/PID */
	/* The socket as messages name it (where_sock_name). */
	char sock[4200];
	/* conn_open: where the socket was found. */
	struct ctl_where where;
	/* From HELLO's reply. */
	uint64_t version;
	char program[4096];
	char cmdline[4096];
	char libversion[64];
	/* The last error reply: ERRNO and MESSAGE. */
	int err;
	char errmsg[RW_WIRE_MAX_STR + 1];
	/* And its COLUMN (a --filter error's, 1-based), 0 without. */
	unsigned errcol;
	struct rw_wire_buf buf; /* for requests */
	uint16_t req_type;	/* of the request in buf */
	bool quiet; /* conn_connect: keep messages in errmsg, print nothing */
	/* conn_open_until: the deadline (now_ms()) that bounds every
	 * connect, send and receive; 0: none. */
	uint64_t deadline_ms;
	/* Requests whose reply did not come in time: their replies come
	 * first and are skipped. */
	unsigned unanswered;
	/* conn_call: a reply that does not come in time is only kept in err
	 * and errmsg (EX_TIMEOUT), not printed. */
	bool timeout_quiet;
	/* The path to connect to instead of sock (through the checked
	 * directory's descriptor); "": sock. */
	char via[64];
	/* A descriptor conn_call passes with the request (SCM_RIGHTS), -1:
	 * none. conn_begin resets it; the caller keeps it open. */
	int pass_fd;
	/* HELLO's PATCH_DIR: the process's patch directory as it sees it,
	 * "" when it has none. */
	char patch_dir[4096];
};

/* Finds the control socket of @pid, connects and says HELLO. Returns 0 or
 * an exit code, with the reason printed (no such process, no socket,
 * permission, stale socket, refused, version). */
int conn_open(pid_t pid, struct conn *c);
/* conn_open, with every later connect, send and receive on @c bounded by
 * @deadline_ms (a now_ms() value; 0: no deadline). */
int conn_open_until(pid_t pid, struct conn *c, uint64_t deadline_ms);
/* @ms (< 0: unbounded) cut to what is left until c->deadline_ms. */
int conn_ms_left(const struct conn *c, int ms);
void conn_close(struct conn *c);
/* The connection and HELLO part of conn_open, to c->sock for c->pid (set
 * by the caller, c->fd = -1). With c->quiet, errors are only kept in
 * c->err and c->errmsg. */
int conn_connect(struct conn *c, int connect_ms, int hello_ms);

/* Start a request of @type in c->buf. */
struct rw_wire_buf *conn_begin(struct conn *c, uint16_t type);
/*
 * Sends c->buf and waits (at most @timeout_ms, < 0: the default, 60 s) for
 * the reply. Returns 0 with *@reply an OK reply (free it with
 * rw_wire_msg_free); EX_FAIL for an ERROR reply (c->err, c->errmsg filled,
 * nothing printed: see conn_fail); EX_INTR, nothing printed, when a signal
 * interrupted the wait (see sig_catch); or another exit code with the
 * reason printed (the process exited, protocol, timeout).
 */
int conn_call(struct conn *c, struct rw_wire_msg *reply, int timeout_ms);
/* Prints c's error reply as "WHAT: MESSAGE (NAME)" and returns EX_FAIL. */
int conn_fail(struct conn *c, const char *what);
/* conn_call with the default timeout, and for an ERROR reply conn_fail
 * with WHAT formatted from @fmt (cut at 511 bytes). */
int conn_request(struct conn *c, struct rw_wire_msg *reply, const char *fmt,
		 ...) __attribute__((format(printf, 3, 4)));
/* After a failed receive or send: says whether the process is gone and
 * returns EX_NOPROC. */
int conn_lost(struct conn *c, int err);
/* " (it is stopped: ...)" when process @pid is stopped, else "". */
const char *stopped_note(pid_t pid);

/* Where the sockets of @uid live: the directory rules of src/ctl/sockdir.h,
 * with @env_dir standing for $REWIRE_CTL_DIR (NULL: unset). */
int sockdir_for(uid_t uid, const char *env_dir, char *out, size_t size);
/* conn_open without printing: errors only in c->err and c->errmsg, the
 * connect and HELLO bounded by @connect_ms and @hello_ms (rewire ps). */
int conn_open_quiet(pid_t pid, struct conn *c, int connect_ms, int hello_ms);

/* --- Processes (procs.c) --------------------------------------------------- */

enum {
	PROC_OK,     /* its socket was found (conn_locate) */
	PROC_DENIED, /* another user's, not examined: never connected */
	PROC_NOSOCK, /* no socket */
	PROC_GONE,   /* exited during the scan */
};
struct proc_entry {
	struct ctl_where w;
	char comm[64];
	char exe[4096]; /* readlink /proc/PID/exe, "" when not readable */
	int state;	/* PROC_* */
	char why[512];
};
/*
 * Every process of /proc that has (or, for other users, appears to have:
 * /proc/net/unix lists their socket paths) a rewire control socket, by
 * pid: PROC_OK, or PROC_DENIED (another user's that this command may not
 * examine, or a socket that fails the checks: @why says). *@out malloc'd.
 * Returns how many.
 */
size_t procs_scan(struct proc_entry **out);
/* The last number of the NSpid line of /proc/PID/status: the process's pid
 * in its own pid namespace (@pid without the line); how many levels of pid
 * namespaces it has (1: ours) into *@levels unless NULL. */
pid_t proc_nspid(pid_t pid, int *levels);

/* --- Replies: the PATCH group (cmd_patch.c, cmd_ls.c) --------------------- */

#define PATCH_PENDING_MAX 16
struct patch_pending {
	uint64_t tid;
	char comm[64];
	uint64_t why;
	char func[128];
	uint64_t ip;
};
struct patch_info {
	char name[128];
	char path[4096];
	uint64_t state, forced, replace, nfuncs, target_patched;
	uint64_t total, switched, transition_ns, attempts;
	char file_id[160]; /* FILE_ID, "" from servers without it */
	uint64_t from_dir; /* FROM_DIR: applied at start from the patch dir */
	size_t npending;   /* listed below (at most PATCH_PENDING_MAX) */
	size_t npending_all;
	struct patch_pending pending[PATCH_PENDING_MAX];
};
/* Reads the PATCH fields at one level (a reply's payload or a group). */
void patch_info_read(const uint8_t *p, size_t n, struct patch_info *pi);
void patch_info_json(struct json *j, const struct patch_info *pi);
const char *patch_state_name(uint64_t state);
const char *patch_why_name(uint64_t why);
/* Shared by patch, unpatch and apply (cmd_patch.c). */
/* A request of @type (PATCH_ENABLE, _DISABLE, _UNLOAD...) on @name whose
 * reply's PATCH fields, if any, go into @pi (NULL: ignored). Returns what
 * conn_call returns. */
int patch_op(struct conn *c, uint16_t type, const char *name,
	     struct patch_info *pi);
/* PATCH_LOAD of @path (absolute, for messages and `rewire ls`), the file
 * itself passed as the descriptor @fd (-1: none, the process opens
 * @path), with LOAD_FLAGS @flags. Returns what conn_call returns. */
int patch_load(struct conn *c, const char *path, int fd, uint64_t flags,
	       struct rw_wire_msg *m);
/* Waits until @pi's patch reaches ENABLED (@enabling) or DISABLED, with
 * the progress on stderr and the blocking threads listed on a stall.
 * @timeout_ms 0: forever (c->deadline_ms still bounds it). Updates @pi.
 * Returns an exit code; the messages for timeout, interruption and a
 * state moved elsewhere are printed (with what to run next if @hint). */
int patch_wait(struct conn *c, struct patch_info *pi, bool enabling,
	       uint64_t timeout_ms, bool hint);
/* --timeout SEC (@arg NULL: the default, 60 s) in ms (0: none). 0 or
 * EX_USAGE (printed). */
int patch_timeout(const char *arg, uint64_t *ms);

/* --- Function tracing (funcs.c) ------------------------------------------- */

struct rw_trace_func_meta;
/* "name()" for C, the demangled name (with its parameters) for C++. */
void func_display(const char *name, const char *demangled, char *out,
		  size_t size);
/* The @n functions of the connection's session (FUNCS, in pages) into a
 * malloc'd array by id. Returns 0 or an exit code (printed). */
int funcs_fetch(struct conn *c, uint64_t n, struct rw_trace_func_meta **out);
/* Caller names through SYMBOLIZE, cached; a rw_trace_resolve_fn. */
struct symcache;
struct symcache *symcache_new(struct conn *c);
void symcache_free(struct symcache *s);
bool symcache_resolve(void *arg, uint64_t addr, char *out, size_t size);

/* --- Subcommands ----------------------------------------------------------- */

int cmd_ps(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_funccount(int argc, char **argv);
int cmd_funclatency(int argc, char **argv);
int cmd_patch(int argc, char **argv);
int cmd_unpatch(int argc, char **argv);
int cmd_force(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_build_patch(int argc, char **argv);
int cmd_bind_patch(int argc, char **argv);
/* The flight recorder (cmd_snapshot.c): `rewire snapshot`, and `rewire
 * trace ... --snapshot`, which cmd_trace() hands over when
 * trace_wants_snapshot() says so. */
int cmd_snapshot(int argc, char **argv);
int cmd_trace_snapshot(int argc, char **argv);
bool trace_wants_snapshot(int argc, char **argv);
/* --filter, shared by trace and trace --snapshot (cmd_trace.c): the
 * expression with a caret under column @col on stderr; the syntax checked
 * before connecting (a usage error's exit code, or 0); TRACE_START's reply
 * checked for FILTERED (EX_PROTO when the process ignored the filter). */
/* The TRACEPOINT groups of TRACE_START's or SNAPSHOT's reply into *@out
 * (malloc'ed; the reader refuses a group with more than
 * RW_TRACE_MAX_FIELDS fields). Returns how many. */
struct rw_trace_meta;
size_t trace_read_meta(const struct rw_wire_msg *m, struct rw_trace_meta **out);
void trace_filter_show(const char *expr, unsigned col);
int trace_filter_precheck(const char *expr, bool tracepoints, bool funcs);
int trace_filter_states(const struct rw_wire_msg *m, pid_t pid,
			const char *libversion);

/* --- Selecting many processes (select.c) -----------------------------------
 * `rewire CMD --all|--exe PATH|--build-id HEX|--comm NAME [--jobs N] ...`
 * runs CMD once per matching process, in children, and reports per
 * process (doc/rewire.1, "Selecting processes").
 */
/* Whether CMD takes the selectors (its first positional is a PID). */
bool sel_supported(const char *cmd);
/* Whether @argv (a subcommand's arguments) has a selector option. */
bool sel_wanted(int argc, char **argv);
/* Runs @fn (the subcommand @cmd) for every selected process. Returns the
 * exit code: 0, 1 (a process failed), 2 usage, 3 (none matched). */
int sel_run(const char *cmd, int (*fn)(int argc, char **argv), int argc,
	    char **argv);
/* The paragraph about the selectors that ends a subcommand's help. */
void sel_help(FILE *f);
/* Called by conn_open: the check of the arguments (a child) ends there. */
void sel_conn_check(void);
/* Called by fail(): a child keeps its first error for the report. */
void sel_note_error(const char *text);

#endif /* REWIRE_TOOL_REWIRE_H */
