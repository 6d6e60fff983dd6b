// SPDX-License-Identifier: MIT
/*
 * Many processes at once: `rewire CMD --all|--exe PATH|--build-id HEX|
 * --comm NAME [--jobs N] ARGS...` for every subcommand whose first
 * positional argument is a PID (the table sel_cmds below).
 *
 * The subcommands themselves know one process. This file runs them once
 * per selected process, each in a child of its own, so that what one
 * process does (a failure, a hang until its timeout, an exit) cannot reach
 * the others, and so that every subcommand gets this for free:
 *   1. The selector options are taken out of the arguments (main.c calls
 *      sel_run() when sel_wanted() sees one).
 *   2. The arguments are checked once, before any process is looked at:
 *      a child runs the subcommand with a placeholder PID and stops in
 *      conn_open (sel_conn_check()). A usage error, --help or a local
 *      failure (a missing patch file) ends the command there, printed
 *      once, with its own exit code.
 *   3. procs_scan() lists the rewire-enabled processes; the selectors
 *      filter them (all must match). Processes of other users that this
 *      command may not control are "skipped": listed, never connected to.
 *   4. Each selected process gets a child: fork, the subcommand's
 *      function with the PID inserted as its first positional argument,
 *      stdout and stderr into pipes. At most --jobs children run at once.
 *      The first error a child reports (fail()) is kept in shared memory
 *      (sel_note_error()), so that the table can say why it failed
 *      without parsing its messages.
 *   5. Streaming subcommands (trace, funccount, funclatency) have their
 *      lines relayed as they come, "PID: line" (or {"pid":N,"line":...}
 *      with --json); the others are collected and shown when all are
 *      done: a table PID COMM RESULT DETAIL, or one JSON document.
 *      Ctrl-C (SIGINT, SIGTERM) is passed on to every child.
 *
 * With --json the children run with --json too, and their documents are
 * embedded in ours ("output"); without it they run in text mode, and
 * their text is what the table and the "==> PID (COMM) <==" blocks show.
 *
 * Exit codes: 0 when no process failed (skipped ones do not count), 1 when
 * one did, 3 when no process matched (the document is printed all the
 * same), 2 usage, 130 when Ctrl-C interrupted a subcommand that does not
 * end that way normally.
 */
#include "rewire.h"

#include "ctl/fileid.h"
#include "select_json.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEL_JOBS_DEFAULT 8
#define SEL_JOBS_MAX 256
/* The first error message of a child, kept for the table. */
#define SEL_NOTE_SIZE 2048
/* What a child may write before the rest is dropped (per stream). */
#define SEL_OUT_MAX (64u << 20)
/* A build-id prefix shorter than this selects too much by chance. */
#define SEL_BUILD_ID_MIN 8

enum {
	SEL_STREAM = 1, /* lines relayed live, runs until stopped */
	SEL_MULTI = 2,	/* several lines per process: shown in blocks */
};

/*
 * The subcommands that take selectors. A subcommand gets them by being
 * listed here (and taking a PID as its first positional argument).
 */
static const struct {
	const char *name;
	unsigned flags;
} sel_cmds[] = {
	{ "ls", SEL_MULTI },
	{ "key", 0 },
	{ "call", 0 },
	{ "trace", SEL_STREAM },
	{ "snapshot", SEL_MULTI },
	{ "funccount", SEL_STREAM },
	{ "funclatency", SEL_STREAM },
	{ "patch", 0 },
	{ "unpatch", 0 },
	{ "force", 0 },
	{ "apply", 0 },
};

static int sel_flags(const char *cmd)
{
	for (size_t i = 0; i < sizeof(sel_cmds) / sizeof(sel_cmds[0]); i++)
		if (!strcmp(sel_cmds[i].name, cmd))
			return (int)sel_cmds[i].flags;
	return -1;
}

bool sel_supported(const char *cmd)
{
	return sel_flags(cmd) >= 0;
}

/* ---- The selector options ---------------------------------------------- */

enum { SO_ALL, SO_EXE, SO_BUILD_ID, SO_COMM, SO_JOBS, SO_NONE };
static const struct {
	const char *name;
	bool has_arg;
} sel_opts[] = {
	[SO_ALL] = { "all", false },	      [SO_EXE] = { "exe", true },
	[SO_BUILD_ID] = { "build-id", true }, [SO_COMM] = { "comm", true },
	[SO_JOBS] = { "jobs", true },
};

/* Which selector option @a is ("--exe" or "--exe=PATH"), and where its
 * inline value starts (*@val, or NULL). */
static int sel_opt(const char *a, const char **val)
{
	*val = NULL;
	if (a[0] != '-' || a[1] != '-')
		return SO_NONE;
	for (int i = 0; i < SO_NONE; i++) {
		size_t n = strlen(sel_opts[i].name);

		if (strncmp(a + 2, sel_opts[i].name, n))
			continue;
		if (!a[2 + n])
			return i;
		if (a[2 + n] == '=') {
			*val = a + 3 + n;
			return i;
		}
	}
	return SO_NONE;
}

bool sel_wanted(int argc, char **argv)
{
	const char *val;

	for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
		if (sel_opt(argv[i], &val) != SO_NONE)
			return true;
	return false;
}

struct sel {
	bool all;
	const char *exe, *build_id, *comm;
	unsigned jobs;
	bool jobs_set;
	char bid[SEL_NOTE_SIZE]; /* build_id in lower case */
	bool exe_known;		 /* --exe's file exists here */
	dev_t exe_dev;
	ino_t exe_ino;
	char exe_real[PATH_MAX]; /* its real path, or PATH */
};

/* " --comm NAME --exe PATH", for messages. */
static void sel_describe(const struct sel *s, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	if (s->all)
		n += (size_t)snprintf(out + n, size - n, " --all");
	if (s->exe && n < size)
		n += (size_t)snprintf(out + n, size - n, " --exe %s", s->exe);
	if (s->build_id && n < size)
		n += (size_t)snprintf(out + n, size - n, " --build-id %s",
				      s->build_id);
	if (s->comm && n < size)
		snprintf(out + n, size - n, " --comm %s", s->comm);
}

static bool is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Takes the selector options out of @argv into @s; the rest, in order,
 * into @rest (*@nrest of them). Returns 0 or EX_USAGE (printed). */
static int sel_parse(int argc, char **argv, struct sel *s, char **rest,
		     int *nrest)
{
	bool opts_end = false;

	*nrest = 0;
	for (int i = 0; i < argc; i++) {
		const char *val;
		int o = opts_end ? SO_NONE : sel_opt(argv[i], &val);

		if (!opts_end && !strcmp(argv[i], "--"))
			opts_end = true;
		if (!opts_end && (!strcmp(argv[i], "--json")))
			g.json = true;
		if (!opts_end &&
		    (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")))
			g.quiet = true;
		if (o == SO_NONE) {
			rest[(*nrest)++] = argv[i];
			continue;
		}
		if (!sel_opts[o].has_arg && val)
			return usage_error("option '--%s' takes no value",
					   sel_opts[o].name);
		if (sel_opts[o].has_arg && !val) {
			if (i + 1 >= argc)
				return usage_error(
					"option '--%s' needs a value",
					sel_opts[o].name);
			val = argv[++i];
		}
		switch (o) {
		case SO_ALL:
			s->all = true;
			break;
		case SO_EXE:
			s->exe = val;
			break;
		case SO_BUILD_ID:
			s->build_id = val;
			break;
		case SO_COMM:
			s->comm = val;
			break;
		case SO_JOBS: {
			uint64_t n;

			if (!parse_u64(val, &n) || n < 1 || n > SEL_JOBS_MAX)
				return usage_error(
					"--jobs: '%s' is not a number "
					"from 1 to %d",
					val, SEL_JOBS_MAX);
			s->jobs = (unsigned)n;
			s->jobs_set = true;
			break;
		}
		}
	}
	rest[*nrest] = NULL;
	if (!s->all && !s->exe && !s->build_id && !s->comm)
		return usage_error("--jobs goes with a selector: --all, --exe "
				   "PATH, --build-id HEX or --comm NAME");
	if (s->exe && !*s->exe)
		return usage_error("--exe: empty path");
	if (s->comm && !*s->comm)
		return usage_error("--comm: empty name");
	/* The kernel keeps 15 bytes of a program's name (TASK_COMM_LEN). */
	if (s->comm && !is_glob(s->comm) && strlen(s->comm) > 15)
		return usage_error("--comm: '%s' is longer than a process name "
				   "can be (15 characters): use --exe, or a "
				   "glob such as '%.15s*'",
				   s->comm, s->comm);
	if (s->build_id) {
		size_t n = strlen(s->build_id);

		if (n < SEL_BUILD_ID_MIN || n >= sizeof(s->bid))
			return usage_error("--build-id: give at least %d hex "
					   "digits of the build-id (`file` or "
					   "`readelf -n` show it)",
					   SEL_BUILD_ID_MIN);
		for (size_t i = 0; i < n; i++) {
			char c = s->build_id[i];

			if (c >= 'A' && c <= 'F')
				c = (char)(c - 'A' + 'a');
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return usage_error("--build-id: '%s' is not "
						   "hexadecimal",
						   s->build_id);
			s->bid[i] = c;
		}
		s->bid[n] = '\0';
	}
	if (s->exe) {
		struct stat st;

		if (!stat(s->exe, &st)) {
			s->exe_known = true;
			s->exe_dev = st.st_dev;
			s->exe_ino = st.st_ino;
		}
		if (!realpath(s->exe, s->exe_real))
			snprintf(s->exe_real, sizeof(s->exe_real), "%s",
				 s->exe);
	}
	return 0;
}

/* The value of an output option among @args (-o PATH, --output PATH,
 * --also FMT=PATH), or NULL; *@skip: how many arguments it took. */
static const char *output_value(char **args, int i, int n, int *skip)
{
	const char *a = args[i];

	*skip = 0;
	if (!strcmp(a, "-o") || !strcmp(a, "--output") ||
	    !strcmp(a, "--also")) {
		if (i + 1 >= n)
			return NULL;
		*skip = 1;
		return args[i + 1];
	}
	if (!strncmp(a, "--output=", 9))
		return a + 9;
	if (!strncmp(a, "--also=", 7))
		return a + 7;
	if (!strncmp(a, "-o", 2) && a[2])
		return a + 2;
	return NULL;
}

/* Files written per process must not be one file for all of them. */
static int outputs_check(char **args, int n)
{
	for (int i = 0; i < n && strcmp(args[i], "--"); i++) {
		int skip;
		const char *v = output_value(args, i, n, &skip);
		const char *path = v;

		if (!v)
			continue;
		if (strchr(v, '=') && (!strcmp(args[i], "--also") ||
				       !strncmp(args[i], "--also=", 7)))
			path = strchr(v, '=') + 1;
		if (strcmp(path, "-") && !strstr(path, "%p"))
			return usage_error("'%s': with several processes the "
					   "output path must contain %%p (each "
					   "process's pid), e.g. trace.%%p.log",
					   path);
		i += skip;
	}
	return 0;
}

/* @s with every "%p" replaced by @pid (malloc'd). */
static char *subst_pid(const char *s, pid_t pid)
{
	size_t cap = strlen(s) * 4 + 32, n = 0;
	char *out = xmalloc(cap);

	while (*s) {
		if (s[0] == '%' && s[1] == 'p') {
			n += (size_t)snprintf(out + n, cap - n, "%d", (int)pid);
			s += 2;
			continue;
		}
		out[n++] = *s++;
	}
	out[n] = '\0';
	return out;
}

/* ---- Matching ------------------------------------------------------------ */

/* The GNU build-id of @path in lower-case hex into @hex; false when it
 * cannot be read or has none (fileid.c's identity is then of the other
 * form, "size:N-fnv:H"). */
static bool file_build_id(const char *path, char *hex, size_t size)
{
	char id[RW_FILE_ID_MAX];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool found;

	hex[0] = '\0';
	if (fd < 0)
		return false;
	found = !rw_file_id(fd, id, sizeof(id)) && strncmp(id, "size:", 5) &&
		strlen(id) < size;
	close(fd);
	if (found)
		memcpy(hex, id, strlen(id) + 1);
	return found;
}

/* Build-ids read so far, by file: the processes of one program share it. */
struct bid_cache {
	dev_t dev;
	ino_t ino;
	bool ok;
	char hex[RW_FILE_ID_MAX];
};

static bool exe_build_id(pid_t pid, struct bid_cache **cache, size_t *n,
			 char *hex, size_t size)
{
	char path[64];
	struct stat st;
	struct bid_cache *c;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st))
		return false;
	for (size_t i = 0; i < *n; i++) {
		c = &(*cache)[i];
		if (c->dev == st.st_dev && c->ino == st.st_ino) {
			snprintf(hex, size, "%s", c->hex);
			return c->ok;
		}
	}
	*cache = xrealloc(*cache, sizeof(**cache) * (*n + 1));
	c = &(*cache)[(*n)++];
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->ok = file_build_id(path, c->hex, sizeof(c->hex));
	snprintf(hex, size, "%s", c->hex);
	return c->ok;
}

/* --exe: the same file (device and inode), else the same path: the path
 * the process's executable had (also once replaced on disk: "PATH
 * (deleted)"), or for a process in another mount namespace the path as
 * the process sees it, under /proc/PID/root. */
static bool exe_matches(const struct sel *s, const struct proc_entry *e)
{
	char path[64], buf[PATH_MAX + 64];
	struct stat st, in;
	size_t n = strlen(e->exe);
	const char deleted[] = " (deleted)";
	bool have_st;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)e->w.pid);
	have_st = !stat(path, &st);
	if (have_st && s->exe_known && st.st_dev == s->exe_dev &&
	    st.st_ino == s->exe_ino)
		return true;
	if (n > sizeof(deleted) - 1 &&
	    !strcmp(e->exe + n - (sizeof(deleted) - 1), deleted))
		n -= sizeof(deleted) - 1;
	if (n &&
	    ((strlen(s->exe) == n && !strncmp(e->exe, s->exe, n)) ||
	     (strlen(s->exe_real) == n && !strncmp(e->exe, s->exe_real, n))))
		return true;
	if (e->w.other_ns && have_st && s->exe[0] == '/') {
		snprintf(buf, sizeof(buf), "/proc/%d/root%s", (int)e->w.pid,
			 s->exe);
		if (!stat(buf, &in) && in.st_dev == st.st_dev &&
		    in.st_ino == st.st_ino)
			return true;
	}
	return false;
}

static bool comm_matches(const struct sel *s, const char *comm)
{
	if (is_glob(s->comm))
		return !fnmatch(s->comm, comm, 0);
	return !strcmp(s->comm, comm);
}

/* ---- The processes -------------------------------------------------------- */

enum res {
	RES_OK,
	RES_CHANGED,
	RES_UNCHANGED,
	RES_WOULD,
	RES_FAILED,
	RES_SKIPPED
};
static const char *const res_names[] = {
	[RES_OK] = "ok",
	[RES_CHANGED] = "changed",
	[RES_UNCHANGED] = "unchanged",
	[RES_WOULD] = "would-change",
	[RES_FAILED] = "failed",
	[RES_SKIPPED] = "skipped",
};

struct sbuf {
	char *p;
	size_t len, cap;
	bool cut; /* more than SEL_OUT_MAX came: the rest was dropped */
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n > SEL_OUT_MAX) {
		b->cut = true;
		n = SEL_OUT_MAX - b->len;
	}
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

struct target {
	pid_t pid;
	uid_t uid;
	char comm[64];
	char exe[PATH_MAX];
	bool skipped;
	/* When done: */
	bool started, done;
	int exit; /* exit code; 128 + N for signal N */
	enum res res;
	char *error;
	struct sbuf out, err;
};

struct slot {
	struct target *t;
	pid_t child;
	int fd[2];	     /* stdout, stderr; -1 once at their end */
	struct sbuf line[2]; /* streaming: the line being read */
	char *note;	     /* the child's first error (shared memory) */
};

struct run {
	const char *cmd;
	int (*fn)(int argc, char **argv);
	unsigned flags;
	char **rest;
	int nrest;
	struct target *t;
	size_t nt, ntotal, ndone;
	struct slot *slots;
	unsigned nslots;
	char *notes; /* nslots * SEL_NOTE_SIZE, shared with the children */
	bool stopping;
};

/* In a child: where fail() keeps the first error (NULL in the parent). */
static char *note_out;
/* In the argument check's child: conn_open ends it here. */
static bool checking;
static volatile char *check_reached;

void sel_note_error(const char *text)
{
	if (note_out && !note_out[0])
		snprintf(note_out, SEL_NOTE_SIZE, "%s", text);
}

void sel_conn_check(void)
{
	if (!checking)
		return;
	*check_reached = 1;
	fflush(stderr);
	_exit(0);
}

/* Step 2: the subcommand with a placeholder PID, up to conn_open. Returns
 * -1 when it got there (go on), else its exit code (what it printed went
 * to our stdout and stderr). */
static int args_check(struct run *r)
{
	char **av = xmalloc(sizeof(char *) * (size_t)(r->nrest + 2));
	char pidbuf[32];
	volatile char *flag;
	int st, ret;
	pid_t p;

	flag = mmap(NULL, 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		    -1, 0);
	if (flag == MAP_FAILED) {
		free(av);
		return fail(EX_FAIL, -errno, "mmap: %s", strerror(errno));
	}
	*flag = 0;
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
	av[0] = pidbuf;
	for (int i = 0; i < r->nrest; i++)
		av[i + 1] = r->rest[i];
	av[r->nrest + 1] = NULL;
	fflush(NULL);
	p = fork();
	if (p < 0) {
		ret = fail(EX_FAIL, -errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (p == 0) {
		checking = true;
		check_reached = flag;
		ret = r->fn(r->nrest + 1, av);
		fflush(NULL);
		_exit(ret);
	}
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (*flag)
		ret = -1;
	else if (WIFEXITED(st))
		ret = WEXITSTATUS(st);
	else
		ret = fail(EX_FAIL, 0,
			   "checking the arguments: killed by "
			   "signal %d",
			   WTERMSIG(st));
out:
	munmap((void *)flag, 1);
	free(av);
	return ret;
}

/* Step 3: the processes that match, in pid order. */
static int targets_find(struct run *r, const struct sel *s)
{
	struct proc_entry *e = NULL;
	struct bid_cache *cache = NULL;
	size_t n = procs_scan(&e), ncache = 0;

	r->t = xmalloc(sizeof(*r->t) * (n ? n : 1));
	r->nt = 0;
	for (size_t i = 0; i < n; i++) {
		struct proc_entry *p = &e[i];
		struct target *t;
		char hex[RW_FILE_ID_MAX];
		bool denied = p->state == PROC_DENIED;
		/* Another user's executable cannot be looked at: such a
		 * process is listed as skipped whatever its file. */
		bool see_exe = !denied || p->exe[0];

		if (p->state != PROC_OK && !denied)
			continue;
		if (s->comm && !comm_matches(s, p->comm))
			continue;
		if (see_exe && s->exe && !exe_matches(s, p))
			continue;
		if (see_exe && s->build_id &&
		    (!exe_build_id(p->w.pid, &cache, &ncache, hex,
				   sizeof(hex)) ||
		     strncmp(hex, s->bid, strlen(s->bid))))
			continue;
		t = &r->t[r->nt++];
		memset(t, 0, sizeof(*t));
		t->pid = p->w.pid;
		t->uid = p->w.uid;
		snprintf(t->comm, sizeof(t->comm), "%s", p->comm);
		snprintf(t->exe, sizeof(t->exe), "%s", p->exe);
		if (denied) {
			t->skipped = true;
			t->res = RES_SKIPPED;
			t->error = xasprintf(
				"%s%s",
				p->why[0] ? p->why
					  : "another user's process: not "
					    "examined",
				!see_exe && (s->exe || s->build_id)
					? " (its executable cannot be read: "
					  "--exe and --build-id not checked)"
					: "");
		}
	}
	/* procs_scan() lists by pid; keep it so whatever it does. */
	for (size_t i = 1; i < r->nt; i++)
		for (size_t k = i; k > 0 && r->t[k - 1].pid > r->t[k].pid;
		     k--) {
			struct target tmp = r->t[k];

			r->t[k] = r->t[k - 1];
			r->t[k - 1] = tmp;
		}
	free(e);
	free(cache);
	return 0;
}

/* ---- Running the children ---------------------------------------------- */

/* In the child: the subcommand for @t. Never returns. */
static __attribute__((noreturn)) void child_run(struct run *r, struct slot *s,
						int out[2], int err[2])
{
	char **av = xmalloc(sizeof(char *) * (size_t)(r->nrest + 2));
	char pidbuf[32];
	int ret;

	/* The other children's pipes are theirs: a copy here would keep
	 * them open after they end. */
	for (unsigned i = 0; i < r->nslots; i++)
		for (int k = 0; k < 2; k++)
			if (r->slots[i].t && r->slots[i].fd[k] >= 0)
				close(r->slots[i].fd[k]);
	close(out[0]);
	close(err[0]);
	dup2(out[1], STDOUT_FILENO);
	dup2(err[1], STDERR_FILENO);
	close(out[1]);
	close(err[1]);
	/* A child outlives nothing: if this command is killed, the
	 * subcommands stop too (a trace ends its session). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (r->flags & SEL_STREAM)
		setvbuf(stdout, NULL, _IOLBF, 0);
	/* The progress of many processes is ours to show. */
	if (!(r->flags & SEL_STREAM))
		g.quiet = true;
	g.json_reported = 0;
	note_out = s->note;
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)s->t->pid);
	av[0] = pidbuf;
	for (int i = 0; i < r->nrest; i++) {
		int skip = 0;

		av[i + 1] = r->rest[i];
		if (output_value(r->rest, i, r->nrest, &skip)) {
			if (skip) {
				av[i + 2] =
					subst_pid(r->rest[i + 1], s->t->pid);
				i++;
			} else {
				av[i + 1] = subst_pid(r->rest[i], s->t->pid);
			}
		}
	}
	av[r->nrest + 1] = NULL;
	ret = r->fn(r->nrest + 1, av);
	fflush(stdout);
	fflush(stderr);
	_exit(ret);
}

static int child_start(struct run *r, struct target *t)
{
	struct slot *s = NULL;
	int out[2], err[2];
	unsigned i;

	for (i = 0; i < r->nslots; i++)
		if (!r->slots[i].t) {
			s = &r->slots[i];
			break;
		}
	if (!s)
		return -EBUSY;
	if (pipe2(out, O_CLOEXEC))
		return -errno;
	if (pipe2(err, O_CLOEXEC)) {
		int e = -errno;

		close(out[0]);
		close(out[1]);
		return e;
	}
	memset(s->note, 0, SEL_NOTE_SIZE);
	t->started = true;
	fflush(NULL);
	s->t = t;
	s->fd[0] = s->fd[1] = -1;
	s->child = fork();
	if (s->child < 0) {
		int e = -errno;

		s->t = NULL;
		close(out[0]);
		close(out[1]);
		close(err[0]);
		close(err[1]);
		return e;
	}
	if (s->child == 0)
		child_run(r, s, out, err);
	close(out[1]);
	close(err[1]);
	s->fd[0] = out[0];
	s->fd[1] = err[0];
	s->line[0].len = s->line[1].len = 0;
	return 0;
}

/* Whether @s (@n bytes) is one JSON value. */
static bool is_json(const char *s, size_t n)
{
	int changed, check;

	return !sel_json_read(s, n, &changed, &check);
}

/* Writes JSON text (checked by is_json) as a value, without the
 * newline that ends a document. */
static void json_raw_value(struct json *j, const char *s, size_t n)
{
	while (n && strchr(" \t\r\n", s[n - 1]))
		n--;
	json_raw(j, s, n);
}

/* A streamed line of process @pid on @f: "PID: line", or with --json on
 * stdout {"pid":N,"line":...} (the child's JSON line as it is). Lines of
 * stderr keep "rewire: " first. */
static void relay_line(const struct target *t, int which, const char *line,
		       size_t n)
{
	FILE *f = which ? stderr : stdout;

	if (!which && g.json) {
		struct json j;
		bool raw = is_json(line, n);

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_ki64(&j, "pid", t->pid);
		json_key(&j, "line");
		if (raw)
			json_raw_value(&j, line, n);
		else
			json_strn(&j, line, n);
		json_obj_end(&j);
		json_done(&j);
		return;
	}
	if (which && n >= 8 && !strncmp(line, "rewire: ", 8))
		fprintf(f, "rewire: %d: %.*s\n", (int)t->pid, (int)(n - 8),
			line + 8);
	else
		fprintf(f, "%d: %.*s\n", (int)t->pid, (int)n, line);
	fflush(f);
}

/* Relays the complete lines of @b; with @all, the last one too. */
static void relay_lines(const struct target *t, int which, struct sbuf *b,
			bool all)
{
	size_t start = 0;

	for (size_t i = 0; i < b->len; i++)
		if (b->p[i] == '\n') {
			relay_line(t, which, b->p + start, i - start);
			start = i + 1;
		}
	if (all && start < b->len) {
		relay_line(t, which, b->p + start, b->len - start);
		start = b->len;
	}
	if (start) {
		memmove(b->p, b->p + start, b->len - start);
		b->len -= start;
	}
}

static void slot_read(struct run *r, struct slot *s, int k)
{
	char buf[65536];
	ssize_t n = read(s->fd[k], buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(s->fd[k]);
		s->fd[k] = -1;
		if (r->flags & SEL_STREAM)
			relay_lines(s->t, k, &s->line[k], true);
		return;
	}
	if (r->flags & SEL_STREAM) {
		sbuf_add(&s->line[k], buf, (size_t)n);
		relay_lines(s->t, k, &s->line[k], false);
		/* Kept too, for the error when there is no note (the
		 * last lines matter): bounded. */
		if (k == 1 && s->t->err.len < 65536)
			sbuf_add(&s->t->err, buf, (size_t)n);
	} else {
		sbuf_add(k ? &s->t->err : &s->t->out, buf, (size_t)n);
	}
}

/* The last line of @b that starts with "rewire: ", without it. */
static char *last_message(const struct sbuf *b)
{
	const char *best = NULL;
	size_t bestn = 0;

	for (size_t i = 0; i < b->len;) {
		const char *nl = memchr(b->p + i, '\n', b->len - i);
		size_t n = nl ? (size_t)(nl - (b->p + i)) : b->len - i;

		if (n > 8 && !strncmp(b->p + i, "rewire: ", 8)) {
			best = b->p + i + 8;
			bestn = n - 8;
		}
		i += n + 1;
	}
	return best ? strndup(best, bestn) : NULL;
}

/* "changed: ..." after "PID COMM " in the one line of a text result (the
 * form `rewire apply` prints), or -1. */
static int text_result(const struct target *t)
{
	static const struct {
		const char *word;
		enum res res;
	} words[] = { { "changed:", RES_CHANGED },
		      { "unchanged:", RES_UNCHANGED },
		      { "would-change:", RES_WOULD } };
	char head[128];
	const char *p = t->out.p;
	size_t n;

	if (!p)
		return -1;
	n = (size_t)snprintf(head, sizeof(head), "%d ", (int)t->pid);
	if (!strncmp(p, head, n)) {
		p += n;
		n = strlen(t->comm);
		if (!strncmp(p, t->comm, n) && p[n] == ' ')
			p += n + 1;
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strncmp(p, words[i].word, strlen(words[i].word)))
			return (int)words[i].res;
	return -1;
}

/* The child of @s ended: its result. */
static void slot_finish(struct run *r, struct slot *s, int st)
{
	struct target *t = s->t;

	t->done = true;
	if (WIFEXITED(st))
		t->exit = WEXITSTATUS(st);
	else
		t->exit = 128 + WTERMSIG(st);
	t->res = RES_OK;
	if (t->exit) {
		t->res = RES_FAILED;
		if (s->note[0])
			t->error = strdup(s->note);
		else
			t->error = last_message(&t->err);
		if (!t->error && !WIFEXITED(st))
			t->error = xasprintf("killed by signal %d (%s)",
					     WTERMSIG(st),
					     strsignal(WTERMSIG(st)));
		if (!t->error)
			t->error = xasprintf("exit code %d", t->exit);
	} else if (g.json && t->out.len) {
		int changed, check;

		if (!sel_json_read(t->out.p, t->out.len, &changed, &check) &&
		    changed >= 0)
			t->res = !changed    ? RES_UNCHANGED
				 : check > 0 ? RES_WOULD
					     : RES_CHANGED;
	} else if (!g.json) {
		int tr = text_result(t);

		if (tr >= 0)
			t->res = (enum res)tr;
	}
	/* What it said on stderr (warnings, its error): shown now, once it
	 * is complete; streamed commands relayed it already. */
	if (!(r->flags & SEL_STREAM) && t->err.len) {
		relay_lines(t, 1, &t->err, true);
	}
	r->ndone++;
	if (!g.quiet)
		fprintf(stderr, "[%zu/%zu] %d %s %s\n", r->ndone, r->ntotal,
			(int)t->pid, t->comm, res_names[t->res]);
	s->t = NULL;
	s->child = 0;
}

/* Passes a signal on to every running child. */
static void children_signal(struct run *r, int sig)
{
	for (unsigned i = 0; i < r->nslots; i++)
		if (r->slots[i].t && r->slots[i].child > 0)
			kill(r->slots[i].child, sig);
}

/* Step 4: every target, at most r->nslots at once. */
static void children_run(struct run *r)
{
	struct pollfd *pfd = xmalloc(sizeof(*pfd) * r->nslots * 2);
	struct slot **owner = xmalloc(sizeof(*owner) * r->nslots * 2);
	size_t next = 0;
	unsigned active = 0;

	g_interrupted = 0;
	sig_catch();
	for (;;) {
		int np = 0;

		while (!r->stopping && active < r->nslots && next < r->nt) {
			struct target *t = &r->t[next++];
			int e;

			if (t->skipped)
				continue;
			e = child_start(r, t);
			if (e) {
				t->done = true;
				t->res = RES_FAILED;
				t->exit = EX_FAIL;
				t->error = xasprintf("cannot start: %s",
						     strerror(-e));
				r->ndone++;
				continue;
			}
			active++;
		}
		if (!active)
			break;
		for (unsigned i = 0; i < r->nslots; i++) {
			struct slot *s = &r->slots[i];

			if (!s->t)
				continue;
			for (int k = 0; k < 2; k++)
				if (s->fd[k] >= 0) {
					pfd[np].fd = s->fd[k];
					pfd[np].events = POLLIN;
					pfd[np].revents = 0;
					owner[np++] = s;
				}
		}
		if (np && poll(pfd, (nfds_t)np, -1) < 0 && errno != EINTR)
			break;
		if (g_interrupted) {
			int sig = g_interrupted;

			g_interrupted = 0;
			r->stopping = true;
			children_signal(r, sig);
		}
		for (int i = 0; i < np; i++)
			if (pfd[i].revents) {
				struct slot *s = owner[i];

				slot_read(r, s, pfd[i].fd == s->fd[0] ? 0 : 1);
			}
		for (unsigned i = 0; i < r->nslots; i++) {
			struct slot *s = &r->slots[i];
			int st;

			if (!s->t || s->fd[0] >= 0 || s->fd[1] >= 0)
				continue;
			while (waitpid(s->child, &st, 0) < 0) {
				if (errno != EINTR) {
					st = 0xff00;
					break;
				}
			}
			slot_finish(r, s, st);
			active--;
		}
	}
	/* Those never started (Ctrl-C came first). */
	for (size_t i = 0; i < r->nt; i++) {
		struct target *t = &r->t[i];

		if (t->skipped || t->done)
			continue;
		t->done = true;
		t->res = RES_FAILED;
		t->exit = EX_INTR;
		t->error = strdup("not started: interrupted");
	}
	free(pfd);
	free(owner);
}

/* ---- The report ------------------------------------------------------------ */

/* The lines of a text result joined with "; ", for DETAIL; NULL for
 * none. */
static char *one_line(const struct sbuf *b)
{
	size_t n = b->len, k = 0;
	char *out;

	while (n && b->p[n - 1] == '\n')
		n--;
	if (!n)
		return NULL;
	out = xmalloc(n * 2 + 1);
	for (size_t i = 0; i < n; i++) {
		if (b->p[i] != '\n') {
			out[k++] = b->p[i];
			continue;
		}
		out[k++] = ';';
		out[k++] = ' ';
	}
	out[k] = '\0';
	return out;
}

/* "PID COMM RESULT: " at the start of @s (apply's text), which the
 * table's own columns say already, taken out. */
static void strip_pid_comm(const struct target *t, char *s)
{
	char head[128];
	size_t n = (size_t)snprintf(head, sizeof(head), "%d %s ", (int)t->pid,
				    t->comm);

	if (n < sizeof(head) && !strncmp(s, head, n))
		memmove(s, s + n, strlen(s + n) + 1);
	n = (size_t)snprintf(head, sizeof(head), "%s: ", res_names[t->res]);
	if (n < sizeof(head) && !strncmp(s, head, n))
		memmove(s, s + n, strlen(s + n) + 1);
}

static void report_text(struct run *r)
{
	static const char *head[] = { "PID", "COMM", "RESULT", "DETAIL" };
	struct table tab;
	bool blocks = r->flags & SEL_MULTI;

	if (blocks) {
		for (size_t i = 0; i < r->nt; i++) {
			struct target *t = &r->t[i];

			if (!t->out.len)
				continue;
			printf("==> %d (%s) <==\n", (int)t->pid, t->comm);
			fwrite(t->out.p, 1, t->out.len, stdout);
			if (t->out.p[t->out.len - 1] != '\n')
				putchar('\n');
			if (t->out.cut)
				printf("(output cut at %u MiB)\n",
				       SEL_OUT_MAX >> 20);
			putchar('\n');
		}
	}
	table_init(&tab, 4, head);
	for (size_t i = 0; i < r->nt; i++) {
		struct target *t = &r->t[i];
		char *detail = t->error ? strdup(t->error) : NULL;
		const char *cells[4];
		char pid[32];

		if (!detail && !blocks)
			detail = one_line(&t->out);
		if (detail)
			strip_pid_comm(t, detail);
		if (detail)
			for (char *p = detail; *p; p++)
				if (*p == '\n' || *p == '\t')
					*p = ' ';
		snprintf(pid, sizeof(pid), "%d", (int)t->pid);
		cells[0] = pid;
		cells[1] = t->comm;
		cells[2] = res_names[t->res];
		cells[3] = detail;
		table_add(&tab, cells);
		free(detail);
	}
	table_print(&tab, stdout);
	fflush(stdout);
}

static void report_json(struct run *r, const struct sel *s, size_t matched,
			size_t ok, size_t failed, size_t skipped,
			size_t changed)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j);
	json_kstr(&j, "command", r->cmd);
	json_key(&j, "selector");
	json_obj_begin(&j);
	json_kbool(&j, "all", s->all);
	json_kstr(&j, "exe", s->exe);
	json_kstr(&j, "build_id", s->build_id ? s->bid : NULL);
	json_kstr(&j, "comm", s->comm);
	json_obj_end(&j);
	json_ku64(&j, "matched", matched);
	json_ku64(&j, "ok", ok);
	json_ku64(&j, "failed", failed);
	json_ku64(&j, "skipped", skipped);
	json_ku64(&j, "changed", changed);
	json_key(&j, "processes");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->nt; i++) {
		struct target *t = &r->t[i];

		json_obj_begin(&j);
		json_ki64(&j, "pid", t->pid);
		json_kstr(&j, "comm", t->comm);
		json_ku64(&j, "uid", t->uid);
		json_kstr(&j, "exe", t->exe[0] ? t->exe : NULL);
		json_kstr(&j, "result", res_names[t->res]);
		json_key(&j, "exit");
		if (t->skipped)
			json_null(&j);
		else
			json_i64(&j, t->exit);
		json_kstr(&j, "error", t->error);
		json_key(&j, "output");
		if (t->out.len && is_json(t->out.p, t->out.len))
			json_raw_value(&j, t->out.p, t->out.len);
		else if (t->out.len)
			json_strn(&j, t->out.p, t->out.len);
		else
			json_null(&j);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_done(&j);
}

int sel_run(const char *cmd, int (*fn)(int argc, char **argv), int argc,
	    char **argv)
{
	struct sel s = { .jobs = SEL_JOBS_DEFAULT };
	struct run r = { .cmd = cmd, .fn = fn };
	size_t matched = 0, ok = 0, failed = 0, skipped = 0, changed = 0;
	char desc[1024];
	int ret;

	r.flags = (unsigned)sel_flags(cmd);
	r.rest = xmalloc(sizeof(char *) * (size_t)(argc + 1));
	ret = sel_parse(argc, argv, &s, r.rest, &r.nrest);
	if (!ret)
		ret = outputs_check(r.rest, r.nrest);
	if (ret)
		goto out;
	ret = args_check(&r);
	if (ret >= 0) {
		pid_t pid;

		/* `rewire key --all 4242 NAME on`: the PID made the other
		 * arguments one too many. */
		if (ret == EX_USAGE && r.nrest && parse_pid(r.rest[0], &pid))
			msg("%s: a selector takes the place of the PID: give "
			    "one or the other",
			    cmd);
		goto out;
	}

	targets_find(&r, &s);
	for (size_t i = 0; i < r.nt; i++)
		if (!r.t[i].skipped)
			r.ntotal++;
	sel_describe(&s, desc, sizeof(desc));
	if (r.ntotal) {
		/* A stream runs until stopped: the bound would leave the
		 * processes after the first N waiting for that. */
		if ((r.flags & SEL_STREAM) && !s.jobs_set)
			s.jobs = r.ntotal < SEL_JOBS_MAX ? (unsigned)r.ntotal
							 : SEL_JOBS_MAX;
		r.nslots = s.jobs < r.ntotal ? s.jobs : (unsigned)r.ntotal;
		r.slots = xmalloc(sizeof(*r.slots) * r.nslots);
		memset(r.slots, 0, sizeof(*r.slots) * r.nslots);
		r.notes = mmap(NULL, (size_t)r.nslots * SEL_NOTE_SIZE,
			       PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (r.notes == MAP_FAILED) {
			r.notes = NULL;
			ret = fail(EX_FAIL, -errno, "mmap: %s",
				   strerror(errno));
			goto out;
		}
		for (unsigned i = 0; i < r.nslots; i++) {
			r.slots[i].note = r.notes + (size_t)i * SEL_NOTE_SIZE;
			r.slots[i].fd[0] = r.slots[i].fd[1] = -1;
		}
		children_run(&r);
	}
	for (size_t i = 0; i < r.nt; i++) {
		switch (r.t[i].res) {
		case RES_SKIPPED:
			skipped++;
			continue;
		case RES_FAILED:
			failed++;
			break;
		case RES_CHANGED:
		case RES_WOULD:
			changed++;
			/* fall through */
		default:
			ok++;
			break;
		}
		matched++;
	}
	if (g.json)
		report_json(&r, &s, matched, ok, failed, skipped, changed);
	else if (r.nt)
		report_text(&r);
	if (!matched) {
		if (skipped)
			msg("%s: no rewire-enabled process matches%s that this "
			    "user may control (%zu of other users skipped)",
			    cmd, desc, skipped);
		else
			msg("%s: no rewire-enabled process matches%s", cmd,
			    desc);
		ret = EX_NOPROC;
	} else if (failed) {
		msg("%s: %zu of %zu process%s failed", cmd, failed, matched,
		    matched == 1 ? "" : "es");
		ret = r.stopping && !(r.flags & SEL_STREAM) ? EX_INTR : EX_FAIL;
	} else {
		ret = r.stopping && !(r.flags & SEL_STREAM) ? EX_INTR : EX_OK;
	}
out:
	for (size_t i = 0; i < r.nt; i++) {
		free(r.t[i].error);
		free(r.t[i].out.p);
		free(r.t[i].err.p);
	}
	for (unsigned i = 0; i < r.nslots; i++) {
		free(r.slots[i].line[0].p);
		free(r.slots[i].line[1].p);
	}
	if (r.notes)
		munmap(r.notes, (size_t)r.nslots * SEL_NOTE_SIZE);
	free(r.slots);
	free(r.t);
	free(r.rest);
	return ret;
}

void sel_help(FILE *f)
{
	fputs("\n"
	      "Many processes: instead of PID, --all, --exe PATH, --build-id "
	      "HEX\n"
	      "or --comm NAME (and --jobs N) run this for every matching\n"
	      "process; see \"Selecting processes\" in `rewire help`.\n",
	      f);
}
