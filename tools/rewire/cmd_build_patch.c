// SPDX-License-Identifier: MIT
/*
 * rewire build-patch: a live patch from a unified diff (bp.h says how the
 * parts fit). This file is the driver:
 *
 *  1. read compile_commands.json (json-c) and the diff (which files, which
 *     lines);
 *  2. find the translation units the diff changes: those whose source it
 *     touches, and, for a header, those that include it (the compiler's
 *     own dependency list, -M);
 *  3. copy the source tree (hard links where the file system allows;
 *     never the original files: the diff is applied with `patch`, which
 *     writes new files) and apply the diff to the copy;
 *  4. compile each unit before and after (bp.h), from the recorded
 *     command, in the recorded directory, with -ffile-prefix-map so that
 *     __FILE__ and the debug paths of the copy are the original's;
 *  5. read the program (--object): build-id, symbols, sizes, the bytes of
 *     each function the patch replaces (rw__func_hash);
 *  6. diff (bp_diff.c), decide where each symbol lives, report, emit
 *     (bp_emit.c).
 */
#include "rewire.h"
#include "bp.h"

#include "livepatch/bind.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Exit status: the patch cannot be made safely (the report says why). */
#define EX_REFUSED 3

enum {
	OPT_CDB = 10,
	OPT_DIFF,
	OPT_OBJECT,
	OPT_SOURCE,
	OPT_STRIP,
	OPT_NAME,
	OPT_OUT,
	OPT_DRY,
	OPT_KEEP,
	OPT_VERBOSE,
	OPT_CC,
};

static const struct opt bp_opts[] = {
	{ "compile-commands", 'c', true, OPT_CDB },
	{ "diff", 'd', true, OPT_DIFF },
	{ "object", 0, true, OPT_OBJECT },
	{ "source", 's', true, OPT_SOURCE },
	{ "strip", 'p', true, OPT_STRIP },
	{ "name", 'n', true, OPT_NAME },
	{ "output", 'o', true, OPT_OUT },
	{ "dry-run", 0, false, OPT_DRY },
	{ "keep", 0, true, OPT_KEEP },
	{ "verbose", 'v', false, OPT_VERBOSE },
	{ "cc", 0, true, OPT_CC },
	{ NULL, 0, false, 0 },
};

/* ---- small helpers ---- */

struct strv {
	char **v;
	size_t n, cap;
};

static void strv_add(struct strv *s, const char *str)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = strdup(str);
	if (!s->v[s->n - 1]) {
		msg("out of memory");
		exit(EX_FAIL);
	}
	s->v[s->n] = NULL;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Messages of the report: symbol ("" for none) and sentence, in pairs. */
struct msgs {
	struct strv sym, text;
};

static void msgs_free(struct msgs *m)
{
	strv_free(&m->sym);
	strv_free(&m->text);
}

static bool verbose;

/*
 * Run @argv in @dir; stdout and stderr go to @log (appended) when given,
 * else to ours. Returns the exit status, or -1 when it could not run.
 */
static int run_in(const char *dir, char *const *argv, const char *log)
{
	pid_t pid;
	int status;

	if (verbose) {
		fprintf(stderr, "rewire: build-patch: (cd %s &&",
			dir ? dir : ".");
		for (size_t i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, ")\n");
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (dir && chdir(dir)) {
			fprintf(stderr, "cannot enter %s: %s\n", dir,
				strerror(errno));
			_exit(126);
		}
		if (log) {
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The first @max lines of @path, for error messages. */
static char *log_head(const char *path, int max)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t len = 0, cap = 4096;
	char *out = xmalloc(cap);

	out[0] = 0;
	if (!f)
		return out;
	while (max-- > 0 && fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);

		if (len + l + 4 >= cap)
			break;
		memcpy(out + len, "  ", 2);
		memcpy(out + len + 2, line, l + 1);
		len += l + 2;
	}
	fclose(f);
	return out;
}

static char *path_join(const char *dir, const char *file)
{
	if (file[0] == '/' || !dir || !dir[0])
		return xasprintf("%s", file);
	return xasprintf("%s/%s", dir, file);
}

/* @path with "." and ".." resolved textually (the file may not exist). */
static char *path_clean(const char *path)
{
	char *out = xmalloc(strlen(path) + 2), *o = out;
	const char *p = path;

	*o = 0;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == 0 || (l == 1 && p[0] == '.')) {
			/* skip */
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			char *s = strrchr(out, '/');

			if (s)
				*s = 0;
		} else {
			*o = 0;
			o = out + strlen(out);
			*o++ = '/';
			memcpy(o, p, l);
			o += l;
			*o = 0;
		}
		o = out + strlen(out);
		p += l + (e ? 1 : 0);
		if (!e)
			break;
	}
	if (!out[0])
		strcpy(out, "/");
	return out;
}

/* Absolute and cleaned; symlinks resolved when the path exists. */
static char *path_abs(const char *dir, const char *file)
{
	char *j = path_join(dir, file), *c, *r;

	if (j[0] != '/') {
		char cwd[PATH_MAX];
		char *k;

		if (!getcwd(cwd, sizeof(cwd)))
			strcpy(cwd, "/");
		k = path_join(cwd, j);
		free(j);
		j = k;
	}
	c = path_clean(j);
	free(j);
	r = realpath(c, NULL);
	if (r) {
		free(c);
		return r;
	}
	return c;
}

/* @s starts with directory @dir ("/a/b" for "/a/b" and "/a/b/c"). */
static bool path_under(const char *s, const char *dir)
{
	size_t l = strlen(dir);

	return !strncmp(s, dir, l) && (s[l] == 0 || s[l] == '/');
}

/* ---- compile_commands.json ---- */

struct unit {
	char *dir;	  /* "directory", absolute */
	char *file;	  /* absolute, cleaned */
	struct strv args; /* the command, compiler first, -o/-c/-M* and the
			      source removed */
	bool changed;	  /* its source is in the diff */
	bool selected;	  /* to be recompiled */
	struct bp_result res;
	bool have_res;
	char *before_o, *after_o, *after_s;
	struct bp_hunk *hunks;
	size_t nhunks;
};

/* Split a shell command line as compile_commands.json "command" holds it
 * (POSIX quoting: '...', "...", backslash). */
static int shell_split(const char *s, struct strv *out)
{
	size_t cap = strlen(s) + 1;
	char *w = xmalloc(cap);

	for (;;) {
		size_t n = 0;
		bool any = false;

		while (*s && isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		while (*s && !isspace((unsigned char)*s)) {
			any = true;
			if (*s == '\'') {
				s++;
				while (*s && *s != '\'')
					w[n++] = *s++;
				if (!*s)
					goto bad;
				s++;
			} else if (*s == '"') {
				s++;
				while (*s && *s != '"') {
					if (*s == '\\' && s[1] &&
					    strchr("\"\\$`\n", s[1]))
						s++;
					w[n++] = *s++;
				}
				if (!*s)
					goto bad;
				s++;
			} else if (*s == '\\' && s[1]) {
				w[n++] = s[1];
				s += 2;
			} else {
				w[n++] = *s++;
			}
		}
		if (any) {
			w[n] = 0;
			strv_add(out, w);
		}
	}
	free(w);
	return 0;
bad:
	free(w);
	return -1;
}

static bool is_launcher(const char *a)
{
	const char *b = base_name(a);

	return !strcmp(b, "ccache") || !strcmp(b, "distcc") ||
	       !strcmp(b, "sccache");
}

/*
 * Keep the flags that shape the code; drop the output, the mode, the
 * dependency files (they would be written into the build tree), the
 * source itself, -Werror (new code may warn) and LTO (the objects must
 * hold machine code).
 */
static void unit_clean_args(struct unit *u, struct strv *raw)
{
	size_t i = 0;

	while (i < raw->n && is_launcher(raw->v[i]))
		i++;
	for (; i < raw->n; i++) {
		const char *a = raw->v[i];
		char *abs;

		if (!strcmp(a, "-o") || !strcmp(a, "-MF") ||
		    !strcmp(a, "-MT") || !strcmp(a, "-MQ")) {
			i++;
			continue;
		}
		if (!strcmp(a, "-c") || !strcmp(a, "-MD") ||
		    !strcmp(a, "-MMD") || !strcmp(a, "-MP") ||
		    !strcmp(a, "-M") || !strcmp(a, "-MM") ||
		    !strcmp(a, "-Werror") || !strncmp(a, "-flto", 5) ||
		    !strcmp(a, "-pipe") || !strncmp(a, "-save-temps", 11) ||
		    !strcmp(a, "-fno-function-sections") ||
		    !strcmp(a, "-fno-data-sections"))
			continue;
		if (!strncmp(a, "-o", 2) && a[2])
			continue;
		if (a[0] != '-' && i > 0) {
			abs = path_abs(u->dir, a);
			if (!strcmp(abs, u->file)) {
				free(abs);
				continue;
			}
			free(abs);
		}
		strv_add(&u->args, a);
	}
}

static int cdb_load(const char *path, struct unit **out, size_t *nout)
{
	struct bp_cdb_entry *es;
	struct unit *units;
	size_t n;
	char err[1024];

	if (bp_cdb_read(path, &es, &n, err, sizeof(err)))
		return fail(EX_USAGE, -EINVAL, "build-patch: %s", err);
	units = calloc(n ? n : 1, sizeof(*units));
	if (!units) {
		bp_cdb_free(es, n);
		return fail(EX_FAIL, -ENOMEM, "build-patch: out of memory");
	}
	*out = units;
	*nout = n;
	for (size_t i = 0; i < n; i++) {
		struct strv raw = { 0 };
		struct unit *u = &units[i];

		if (!es[i].dir || !es[i].file) {
			bp_cdb_free(es, n);
			return fail(EX_USAGE, -EINVAL,
				    "build-patch: %s: entry %zu has no "
				    "\"directory\" or \"file\"",
				    path, i + 1);
		}
		u->dir = path_abs(NULL, es[i].dir);
		u->file = path_abs(u->dir, es[i].file);
		if (es[i].nargs) {
			for (size_t k = 0; k < es[i].nargs; k++)
				if (es[i].args[k])
					strv_add(&raw, es[i].args[k]);
		} else if (!es[i].command || shell_split(es[i].command, &raw)) {
			bp_cdb_free(es, n);
			return fail(EX_USAGE, -EINVAL,
				    "build-patch: %s: entry %zu (%s): no "
				    "\"arguments\" and no readable "
				    "\"command\"",
				    path, i + 1, u->file);
		}
		unit_clean_args(u, &raw);
		strv_free(&raw);
		if (!u->args.n) {
			bp_cdb_free(es, n);
			return fail(EX_USAGE, -EINVAL,
				    "build-patch: %s: entry %zu (%s) has "
				    "no compiler",
				    path, i + 1, u->file);
		}
	}
	bp_cdb_free(es, n);
	return 0;
}

/* ---- the diff ---- */

struct dfile {
	char *path; /* absolute in the original tree */
	char *rel;  /* as the diff names it, after --strip */
	bool created, deleted;
	struct bp_hunk *hunks;
	size_t nhunks;
};

static char *strip_path(const char *p, int strip)
{
	char *s;
	size_t l;

	while (*p == ' ')
		p++;
	l = strcspn(p, "\t\n");
	while (l && p[l - 1] == ' ')
		l--;
	s = strndup(p, l);
	if (!s)
		return NULL;
	if (!strcmp(s, "/dev/null"))
		return s;
	for (int i = 0; i < strip; i++) {
		char *sl = strchr(s, '/');

		if (!sl) {
			free(s);
			return NULL;
		}
		memmove(s, sl + 1, strlen(sl + 1) + 1);
	}
	return s;
}

static void hunk_add(struct dfile *f, unsigned start, unsigned count)
{
	if (f->nhunks &&
	    f->hunks[f->nhunks - 1].start + f->hunks[f->nhunks - 1].count ==
		    start &&
	    count) {
		f->hunks[f->nhunks - 1].count += count;
		return;
	}
	f->hunks = xrealloc(f->hunks, (f->nhunks + 1) * sizeof(*f->hunks));
	f->hunks[f->nhunks++] = (struct bp_hunk){ start, count };
}

/*
 * Reads the files a unified diff changes and, for each, the lines of the
 * new file it adds (a deletion marks the line after it, so that a
 * function whose lines were only removed still counts as edited).
 */
static int diff_load(const char *path, const char *src, int strip,
		     struct dfile **out, size_t *nout)
{
	FILE *fp = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL, *old = NULL;
	size_t cap = 0, n = 0;
	struct dfile *files = NULL, *cur = NULL;
	unsigned nl = 0, left_old = 0, left_new = 0, lineno = 0;
	ssize_t len;

	if (!fp)
		return fail(EX_USAGE, -errno, "build-patch: cannot open %s: %s",
			    path, strerror(errno));
	while ((len = getline(&line, &cap, fp)) > 0) {
		lineno++;
		if (left_old || left_new) {
			if (line[0] == '+') {
				hunk_add(cur, nl, 1);
				nl++;
				left_new--;
			} else if (line[0] == '-') {
				hunk_add(cur, nl, 0);
				left_old--;
			} else if (line[0] == ' ' || line[0] == '\n') {
				nl++;
				left_old--;
				left_new--;
			} else if (line[0] == '\\') {
				/* "\ No newline at end of file" */
			} else {
				left_old = left_new = 0;
			}
			continue;
		}
		if (!strncmp(line, "--- ", 4)) {
			free(old);
			old = strip_path(line + 4, strip);
			continue;
		}
		if (!strncmp(line, "+++ ", 4)) {
			char *np = strip_path(line + 4, strip);

			if (!np || !old) {
				free(np);
				return fail(EX_USAGE, -EINVAL,
					    "build-patch: %s:%u: cannot strip "
					    "%d leading directories from the "
					    "file name (see --strip)",
					    path, lineno, strip);
			}
			files = xrealloc(files, (n + 1) * sizeof(*files));
			cur = &files[n++];
			memset(cur, 0, sizeof(*cur));
			cur->created = !strcmp(old, "/dev/null");
			cur->deleted = !strcmp(np, "/dev/null");
			cur->rel = strdup(cur->deleted ? old : np);
			cur->path = path_abs(src, cur->rel);
			free(np);
			continue;
		}
		if (!strncmp(line, "@@ -", 4) && cur) {
			unsigned os, oc = 1, ns, nc = 1;
			const char *p = line + 4;
			char *e;

			os = (unsigned)strtoul(p, &e, 10);
			if (*e == ',')
				oc = (unsigned)strtoul(e + 1, &e, 10);
			if (strncmp(e, " +", 2))
				goto bad;
			ns = (unsigned)strtoul(e + 2, &e, 10);
			if (*e == ',')
				nc = (unsigned)strtoul(e + 1, &e, 10);
			(void)os;
			nl = ns ? ns : 1;
			left_old = oc;
			left_new = nc;
			continue;
		}
	}
	free(line);
	free(old);
	if (fp != stdin)
		fclose(fp);
	if (!n)
		return fail(EX_USAGE, -EINVAL,
			    "build-patch: %s: no file changes found (expected "
			    "a unified diff, as `git diff` or `diff -u` "
			    "write)",
			    path);
	*out = files;
	*nout = n;
	return 0;
bad:
	free(line);
	free(old);
	if (fp != stdin)
		fclose(fp);
	return fail(EX_USAGE, -EINVAL, "build-patch: %s:%u: bad hunk header",
		    path, lineno);
}

/* ---- the program ---- */

struct psym {
	char *name;
	uint64_t value, size;
	unsigned char bind, type;
	uint16_t shndx;
	const char *file; /* the STT_FILE this local follows, or NULL */
};

struct program {
	char *path;
	char *object; /* as the patch names it: "" for a program, else the
			 library's base name */
	int fd;
	Elf *elf;
	uint16_t machine; /* EM_X86_64 or EM_AARCH64 */
	bool bti;	  /* aarch64: marked BTI (GNU property): the loader
			     maps its code guarded */
	uint8_t build_id[64];
	size_t build_id_len;
	struct psym *syms;
	size_t nsyms;
	char **files; /* STT_FILE names (owned) */
	size_t nfiles;
};

/* Does a NT_GNU_PROPERTY_TYPE_0 note's descriptor mark aarch64 BTI
 * (GNU_PROPERTY_AARCH64_FEATURE_1_AND, bit 0)? Properties are 8-aligned:
 * type, size, data. */
static bool property_bti(const uint8_t *desc, size_t len)
{
	for (size_t off = 0; off + 8 <= len;) {
		uint32_t type, size, bits = 0;

		memcpy(&type, desc + off, 4);
		memcpy(&size, desc + off + 4, 4);
		if (size > len - off - 8)
			return false;
		if (type == GNU_PROPERTY_AARCH64_FEATURE_1_AND && size >= 4) {
			memcpy(&bits, desc + off + 8, 4);
			return bits & GNU_PROPERTY_AARCH64_FEATURE_1_BTI;
		}
		off += 8 + ((size + 7) & ~7u);
	}
	return false;
}

static int program_open(const char *path, struct program *p)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	const char *cur_file = NULL;

	memset(p, 0, sizeof(*p));
	p->path = path_abs(NULL, path);
	elf_version(EV_CURRENT);
	p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0)
		return fail(EX_USAGE, -errno, "build-patch: --object %s: %s",
			    path, strerror(errno));
	p->elf = elf_begin(p->fd, ELF_C_READ, NULL);
	if (!p->elf || elf_kind(p->elf) != ELF_K_ELF)
		return fail(EX_USAGE, -EINVAL,
			    "build-patch: --object %s is not an ELF file",
			    path);
	{
		GElf_Ehdr eh;
		size_t nph = 0;
		bool interp = false;

		if (!gelf_getehdr(p->elf, &eh) ||
		    (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64) ||
		    gelf_getclass(p->elf) != ELFCLASS64 ||
		    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
			return fail(EX_USAGE, -EINVAL,
				    "build-patch: --object %s is not an "
				    "x86-64 or aarch64 program or shared "
				    "library",
				    path);
		p->machine = eh.e_machine;
		elf_getphdrnum(p->elf, &nph);
		for (size_t i = 0; i < nph; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(p->elf, (int)i, &ph) &&
			    ph.p_type == PT_INTERP)
				interp = true;
		}
		p->object = strdup(eh.e_type == ET_DYN && !interp
					   ? base_name(p->path)
					   : "");
	}
	while ((scn = elf_nextscn(p->elf, scn))) {
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_NOTE) {
			GElf_Nhdr nh;
			size_t off = 0, noff, doff;

			d = elf_getdata(scn, NULL);
			while (d && (off = gelf_getnote(d, off, &nh, &noff,
							&doff)) > 0) {
				if (nh.n_type == NT_GNU_PROPERTY_TYPE_0 &&
				    nh.n_namesz == 4 &&
				    !memcmp((char *)d->d_buf + noff, "GNU",
					    4) &&
				    p->machine == EM_AARCH64)
					p->bti = property_bti(
						(const uint8_t *)d->d_buf +
							doff,
						nh.n_descsz);
				if (nh.n_type == NT_GNU_BUILD_ID &&
				    nh.n_namesz == 4 &&
				    !memcmp((char *)d->d_buf + noff, "GNU",
					    4) &&
				    nh.n_descsz <= sizeof(p->build_id)) {
					memcpy(p->build_id,
					       (char *)d->d_buf + doff,
					       nh.n_descsz);
					p->build_id_len = nh.n_descsz;
				}
			}
		}
		if (sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			continue;
		p->nsyms = sh.sh_size / sh.sh_entsize;
		p->syms = calloc(p->nsyms ? p->nsyms : 1, sizeof(*p->syms));
		for (size_t i = 0; i < p->nsyms; i++) {
			GElf_Sym s;
			const char *nm;
			struct psym *ps = &p->syms[i];

			if (!gelf_getsym(d, (int)i, &s))
				continue;
			nm = elf_strptr(p->elf, sh.sh_link, s.st_name);
			ps->name = strdup(nm ? nm : "");
			ps->value = s.st_value;
			ps->size = s.st_size;
			ps->bind = GELF_ST_BIND(s.st_info);
			ps->type = GELF_ST_TYPE(s.st_info);
			ps->shndx = s.st_shndx;
			if (ps->type == STT_FILE) {
				p->files = xrealloc(p->files,
						    (p->nfiles + 1) *
							    sizeof(char *));
				p->files[p->nfiles++] = strdup(ps->name);
				cur_file = p->files[p->nfiles - 1];
			} else if (ps->bind == STB_LOCAL) {
				ps->file = cur_file;
			}
		}
	}
	if (!p->nsyms)
		return fail(EX_USAGE, -EINVAL,
			    "build-patch: --object %s has no symbol table "
			    "(.symtab): it was stripped; build-patch and the "
			    "loader need the symbols of the binary that runs",
			    path);
	return 0;
}

static void program_close(struct program *p)
{
	for (size_t i = 0; i < p->nsyms; i++)
		free(p->syms[i].name);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->syms);
	free(p->files);
	if (p->elf)
		elf_end(p->elf);
	if (p->fd >= 0)
		close(p->fd);
	free(p->path);
	free(p->object);
}

static bool defined(const struct psym *s)
{
	return s->shndx != SHN_UNDEF &&
	       (s->type == STT_FUNC || s->type == STT_OBJECT ||
		s->type == STT_TLS || s->type == STT_GNU_IFUNC ||
		s->type == STT_NOTYPE);
}

/*
 * The program's symbol @name as the unit @src sees it: a local symbol of
 * that unit (after the STT_FILE of its base name) when @local, else the
 * global one. Sets *@sympos to the position the loader will resolve
 * (0 when the name is unique), counted as the loader counts: among
 * function symbols for a function the patch replaces (@func), among all
 * symbols for a reference, and symbols at one address (aliases) once.
 * NULL when there is none.
 */
static const struct psym *program_find(const struct program *p,
				       const char *name, bool local, bool func,
				       const char *src, unsigned long *sympos)
{
	const struct psym *found = NULL, **counted = NULL;
	unsigned long count = 0, pos = 0;
	const char *base = base_name(src);

	for (size_t i = 0; i < p->nsyms; i++) {
		const struct psym *s = &p->syms[i];
		unsigned long at = 0;

		if (!defined(s) || (func && s->type != STT_FUNC) ||
		    strcmp(s->name, name))
			continue;
		for (unsigned long k = 0; k < count && !at; k++)
			if (counted[k]->value == s->value &&
			    counted[k]->type == s->type)
				at = k + 1;
		if (!at) {
			counted = xrealloc(counted,
					   (count + 1) * sizeof(*counted));
			counted[count++] = s;
			at = count;
		}
		if (!found && (local ? s->bind == STB_LOCAL && s->file &&
					       !strcmp(s->file, base)
				     : s->bind != STB_LOCAL)) {
			found = s;
			pos = at;
		}
	}
	/* A local symbol of a unit whose STT_FILE the linker did not keep:
	 * unique is good enough. */
	if (!found && local && count == 1) {
		found = counted[0];
		pos = 1;
	}
	free(counted);
	if (sympos)
		*sympos = count > 1 ? pos : 0;
	return found;
}

/*
 * aarch64: does the program's function @s begin with a landing pad that a
 * BLR, or a BR from x16, may branch to in a guarded page (BTI C, BTI JC,
 * PACIASP, PACIBSP)? GCC leaves it out of a static function whose address
 * is never taken: only direct calls reach it.
 */
static bool program_landing_pad(const struct program *p, const struct psym *s)
{
	Elf_Scn *scn = elf_getscn(p->elf, s->shndx);
	GElf_Shdr sh;
	uint8_t b[4];
	uint32_t insn;

	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
	    s->value < sh.sh_addr || s->value + 4 > sh.sh_addr + sh.sh_size ||
	    pread(p->fd, b, 4,
		  (off_t)(sh.sh_offset + (s->value - sh.sh_addr))) != 4)
		return false;
	insn = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
	return insn == 0xd503245fu /* bti c */ ||
	       insn == 0xd50324dfu /* bti jc */ ||
	       insn == 0xd503233fu /* paciasp */ ||
	       insn == 0xd503237fu /* pacibsp */;
}

/* rw__func_hash of @s's bytes in the file. */
static int program_hash(const struct program *p, const struct psym *s,
			uint64_t *hash)
{
	Elf_Scn *scn = elf_getscn(p->elf, s->shndx);
	GElf_Shdr sh;
	uint8_t *buf;
	off_t off;

	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
	    s->value < sh.sh_addr ||
	    s->value + s->size > sh.sh_addr + sh.sh_size)
		return -1;
	off = (off_t)(sh.sh_offset + (s->value - sh.sh_addr));
	buf = xmalloc(s->size ? s->size : 1);
	if (pread(p->fd, buf, s->size, off) != (ssize_t)s->size) {
		free(buf);
		return -1;
	}
	*hash = rw__func_hash(buf, s->size);
	free(buf);
	return 0;
}

/* ---- the work ---- */

struct ctx {
	const char *src_root; /* original tree (absolute) */
	char *copy_root;      /* the patched copy */
	char *work;	      /* scratch directory */
	bool keep;
	const char *cc_link;
	struct unit *units;
	size_t nunits;
	struct dfile *files;
	size_t nfiles;
	struct program prog;
	/* the report: each a symbol ("" for none) and a sentence */
	struct msgs refusals, notes;
};

static void msgs_vadd(struct msgs *m, const char *sym, const char *fmt,
		      va_list ap)
{
	char buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	strv_add(&m->sym, sym ? sym : "");
	strv_add(&m->text, buf);
}

/* What the patch cannot do: no patch is written. */
static void refuse(struct ctx *c, const char *sym, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct ctx *c, const char *sym, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msgs_vadd(&c->refusals, sym, fmt, ap);
	va_end(ap);
}

static void note(struct ctx *c, const char *sym, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void note(struct ctx *c, const char *sym, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msgs_vadd(&c->notes, sym, fmt, ap);
	va_end(ap);
}

static void progress(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	va_list ap;

	if (g.quiet)
		return;
	fprintf(stderr, "rewire: build-patch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * @arg with every occurrence of the original tree's path replaced by the
 * copy's: "-I/src/include", "-ffile-prefix-map=/src=.", "/src/a.c". An
 * occurrence counts when what follows cannot continue a file name
 * ("/src2" is another directory).
 */
static char *to_copy(const struct ctx *c, const char *arg)
{
	size_t l = strlen(c->src_root), cl = strlen(c->copy_root);
	size_t cap = strlen(arg) + 1, n = 0;
	char *out = xmalloc(cap);
	const char *p = arg;

	while (*p) {
		const char *hit = strstr(p, c->src_root);

		if (!hit || !strchr("/=:, ;", hit[l])) {
			size_t rest = hit ? (size_t)(hit - p) + 1 : strlen(p);

			if (n + rest + 1 > cap)
				out = xrealloc(out, cap = n + rest + 1);
			memcpy(out + n, p, rest);
			n += rest;
			p += rest;
			continue;
		}
		if (n + (size_t)(hit - p) + cl + 1 > cap)
			out = xrealloc(out, cap = n + (size_t)(hit - p) + cl +
						  1 + strlen(hit + l));
		memcpy(out + n, p, (size_t)(hit - p));
		n += (size_t)(hit - p);
		memcpy(out + n, c->copy_root, cl);
		n += cl;
		p = hit + l;
	}
	out[n] = 0;
	return out;
}

/*
 * Compile unit @u in the copy of the tree (before the diff is applied for
 * before.o, after it for after.o and after.s: both from the same paths,
 * since not every file name the compiler embeds follows
 * -ffile-prefix-map, the sanitizers' do not); @after only names the
 * step in messages; @asm_large the emission flags (bp.h). Returns 0 or EX_FAIL with the compiler's first
 * lines of output in the message.
 */
static int compile(struct ctx *c, struct unit *u, bool after, bool asm_large,
		   const char *out)
{
	struct strv a = { 0 };
	char *dir = to_copy(c, u->dir);
	char *src = to_copy(c, u->file);
	char *log = xasprintf("%s/compile.log", c->work);
	int rc;

	for (size_t i = 0; i < u->args.n; i++) {
		char *x = to_copy(c, u->args.v[i]);

		strv_add(&a, x);
		free(x);
		/* The copy's paths read as the original's in __FILE__ and
		 * the debug information. Right after the compiler: GCC
		 * prefers the last map that matches, so a map the build
		 * gave itself (-ffile-prefix-map=SRC=., rewritten to the
		 * copy above) still wins, as it did for the program. */
		if (i == 0) {
			char *m = xasprintf("-ffile-prefix-map=%s=%s",
					    c->copy_root, c->src_root);

			strv_add(&a, m);
			free(m);
		}
	}
	strv_add(&a, "-ffunction-sections");
	strv_add(&a, "-fdata-sections");
	if (asm_large) {
		strv_add(&a, "-g0");
		strv_add(&a, "-mcmodel=large");
		strv_add(&a, "-fno-pic");
		strv_add(&a, "-fno-pie");
		strv_add(&a, "-S");
	} else {
		strv_add(&a, "-g");
		strv_add(&a, "-c");
	}
	strv_add(&a, src);
	strv_add(&a, "-o");
	strv_add(&a, out);
	unlink(log);
	rc = run_in(dir, a.v, log);
	if (rc) {
		char *head = log_head(log, 12);

		rc = fail(EX_FAIL, -EINVAL,
			  "build-patch: compiling %s (%s%s) failed (exit "
			  "%d):\n%s",
			  u->file, after ? "patched" : "original",
			  asm_large ? ", patch code" : "", rc, head);
		free(head);
	}
	strv_free(&a);
	free(dir);
	free(src);
	free(log);
	return rc;
}

/* The units that include @header, by the compiler's own dependency list. */
static int units_including(struct ctx *c, const char *header)
{
	char *dep = xasprintf("%s/deps.d", c->work);
	int found = 0;

	for (size_t i = 0; i < c->nunits; i++) {
		struct unit *u = &c->units[i];
		struct strv a = { 0 };
		FILE *f;
		char *buf = NULL;
		size_t cap = 0;
		ssize_t len;
		bool hit = false;

		if (u->selected)
			continue;
		for (size_t k = 0; k < u->args.n; k++)
			strv_add(&a, u->args.v[k]);
		strv_add(&a, "-M");
		strv_add(&a, "-MF");
		strv_add(&a, dep);
		strv_add(&a, "-E");
		strv_add(&a, u->file);
		strv_add(&a, "-o");
		strv_add(&a, "/dev/null");
		unlink(dep);
		if (run_in(u->dir, a.v, "/dev/null") == 0 &&
		    (f = fopen(dep, "r"))) {
			/* Make syntax: "x.o: a.c b.h \" lines. */
			while ((len = getline(&buf, &cap, f)) > 0 && !hit) {
				char *save, *tok;

				for (tok = strtok_r(buf, " \t\n\\:", &save);
				     tok;
				     tok = strtok_r(NULL, " \t\n\\:", &save)) {
					char *abs = path_abs(u->dir, tok);

					hit = !strcmp(abs, header);
					free(abs);
					if (hit)
						break;
				}
			}
			free(buf);
			fclose(f);
		}
		strv_free(&a);
		if (hit) {
			u->selected = true;
			found++;
		}
	}
	free(dep);
	return found;
}

static bool is_source(const char *p)
{
	static const char *const ext[] = { ".c", ".cc",	 ".cpp", ".cxx",
					   ".C", ".c++", NULL };
	const char *dot = strrchr(p, '.');

	for (int i = 0; dot && ext[i]; i++)
		if (!strcmp(dot, ext[i]))
			return true;
	return false;
}

/* Copy the tree (hard links, else a real copy), then apply the diff. */
static int make_copy(struct ctx *c, const char *diff, int strip)
{
	char *dst = xasprintf("%s/tree", c->work);
	char *log = xasprintf("%s/patch.log", c->work);
	char *stripopt = xasprintf("-p%d", strip);
	char *const cp_link[] = { "cp", "-al", (char *)c->src_root, dst, NULL };
	char *const cp_copy[] = { "cp", "-a", (char *)c->src_root, dst, NULL };
	char *const patch_dry[] = { "patch",	 "--batch", "--forward",
				    "--dry-run", stripopt,  "-d",
				    dst,	 "-i",	    (char *)diff,
				    NULL };
	int rc;

	c->copy_root = dst;
	progress("copying %s (hard links)", c->src_root);
	if (run_in(NULL, cp_link, "/dev/null")) {
		char *const rm[] = { "rm", "-rf", dst, NULL };

		run_in(NULL, rm, NULL);
		progress("hard links failed (another file system?); copying");
		if (run_in(NULL, cp_copy, log)) {
			char *head = log_head(log, 6);

			rc = fail(EX_FAIL, -EIO,
				  "build-patch: cannot copy %s into %s:\n%s",
				  c->src_root, dst, head);
			free(head);
			goto out;
		}
	}
	/* patch(1) writes a new file and renames it over the old one, so a
	 * hard link to the original is never written through; break the
	 * links of the files it changes anyway, should it write in place. */
	for (size_t i = 0; i < c->nfiles; i++) {
		char *p = to_copy(c, c->files[i].path);
		char *tmp = xasprintf("%s.rwtmp", p);
		char *const cp[] = { "cp", "-p", p, tmp, NULL };

		if (!c->files[i].created && access(p, F_OK) == 0 &&
		    run_in(NULL, cp, NULL) == 0)
			rename(tmp, p);
		free(p);
		free(tmp);
	}
	/* Does it apply? Checked before anything is compiled. */
	rc = run_in(NULL, patch_dry, log);
	if (rc) {
		char *head = log_head(log, 12);

		rc = fail(EX_USAGE, -EINVAL,
			  "build-patch: the diff does not apply to %s "
			  "(patch %s exit %d):\n%s",
			  c->src_root, stripopt, rc, head);
		free(head);
	}
out:
	free(log);
	free(stripopt);
	return rc;
}

/* Apply the diff to the copy (make_copy checked that it applies). */
static int apply_diff(struct ctx *c, const char *diff, int strip)
{
	char *log = xasprintf("%s/patch.log", c->work);
	char *stripopt = xasprintf("-p%d", strip);
	char *const patch[] = {
		"patch",   "--batch",	 "--forward", "--no-backup-if-mismatch",
		"--quiet", stripopt,	 "-d",	      c->copy_root,
		"-i",	   (char *)diff, NULL
	};
	int rc;

	progress("applying the diff");
	rc = run_in(NULL, patch, log);
	if (rc) {
		char *head = log_head(log, 12);

		rc = fail(EX_USAGE, -EINVAL,
			  "build-patch: the diff does not apply to %s "
			  "(patch %s exit %d):\n%s",
			  c->src_root, stripopt, rc, head);
		free(head);
	}
	free(log);
	free(stripopt);
	return rc;
}

static const char *state_name(enum bp_fstate s)
{
	switch (s) {
	case BP_F_SAME:
		return "same";
	case BP_F_CHANGED:
		return "changed";
	case BP_F_NEW:
		return "new";
	case BP_F_DELETED:
		return "deleted";
	}
	return "?";
}

static const char *action_name(const struct bp_func *f)
{
	return f->replace ? "replace" : f->include ? "carry" : "none";
}

/* Per included function: what the emitter gets, with the program's side
 * of each replaced one. */
struct plan {
	struct bp_emit_tu *tus;
	size_t ntus;
	size_t nreplace, ncarry;
};

/*
 * The compiler driver that assembles and links the patch when --cc is not
 * given. x86-64: "cc", as always. Another machine (aarch64): the compiler
 * the program's units were compiled with (compile_commands.json), which
 * makes code for that machine even when "cc" does not (a cross build runs
 * this command under user-mode qemu, with the build machine's "cc").
 */
static const char *link_cc(const struct ctx *c)
{
	if (c->prog.machine == EM_X86_64)
		return "cc";
	for (size_t k = 0; k < c->nunits; k++)
		if (c->units[k].have_res && c->units[k].args.n)
			return c->units[k].args.v[0];
	return "cc";
}

/*
 * Where does each symbol referenced by the unit's included code live?
 * The differ decided from the objects; the program decides the rest: a
 * symbol the unit does not define but the program does (another file's
 * function or variable) is the program's; one the program keeps under no
 * name (a static function it inlined everywhere) the patch must carry.
 */
static int plan_unit(struct ctx *c, struct unit *u, struct bp_emit_tu *et,
		     struct plan *pl)
{
	struct bp_result *r = &u->res;
	struct bp_emit_func *funcs = calloc(r->nfuncs + 1, sizeof(*funcs));
	unsigned long *sympos = calloc(r->nsyms + 1, sizeof(*sympos));
	size_t nf = 0;

	if (!funcs || !sympos)
		return fail(EX_FAIL, -ENOMEM, "build-patch: out of memory");
	for (size_t i = 0; i < r->nsyms; i++) {
		struct bp_sym *s = &r->syms[i];
		const struct psym *ps;
		const char *pn = s->prog_name ? s->prog_name : s->name;

		if (s->kind == BP_S_DYNAMIC) {
			ps = program_find(&c->prog, s->name, false, false,
					  u->file, &sympos[i]);
			if (ps) {
				s->kind = BP_S_PROGRAM;
				free(s->prog_name);
				s->prog_name = strdup(s->name);
			}
			continue;
		}
		if (s->kind != BP_S_PROGRAM)
			continue;
		ps = program_find(&c->prog, pn, s->local, false, u->file,
				  &sympos[i]);
		/*
		 * aarch64: the patch calls the program's functions from afar,
		 * by BLR or BR x16 (bp_emit.c). In a program marked BTI such
		 * a branch must land on a landing pad: a static function
		 * without one is carried as one the program does not have.
		 */
		bool no_pad = ps && ps->type == STT_FUNC && c->prog.bti &&
			      !program_landing_pad(&c->prog, ps);

		if (ps && !no_pad)
			continue;
		/* A function of the unit the program has no symbol for:
		 * carry it. Data cannot be carried: it must be shared. */
		bool is_func = false;

		for (size_t k = 0; k < r->nfuncs; k++)
			if (!strcmp(r->funcs[k].name, s->name) &&
			    r->funcs[k].state != BP_F_DELETED) {
				r->funcs[k].include = true;
				free(r->funcs[k].why);
				r->funcs[k].why =
					no_pad ? xasprintf(
							 "called by the new "
							 "code; the program's "
							 "'%s' has no BTI "
							 "landing pad, which a "
							 "far call needs",
							 s->name)
					       : xasprintf("called by the new "
							   "code; the program "
							   "has no '%s' of its "
							   "own (inlined or "
							   "removed there)",
							   s->name);
				is_func = true;
			}
		if (is_func) {
			s->kind = BP_S_PATCH;
			continue;
		}
		if (no_pad) {
			refuse(c, s->name,
			       "the new code calls '%s' of %s, which has no "
			       "BTI landing pad in the program (%s, marked "
			       "BTI): a live patch reaches it by an indirect "
			       "branch, which would fault there",
			       pn, base_name(u->file), c->prog.path);
			continue;
		}
		refuse(c, s->name,
		       "the new code uses '%s' of %s, but the program (%s) "
		       "has no such symbol: the compiler kept it in "
		       "registers or removed it, and a live patch cannot "
		       "share it",
		       pn, base_name(u->file), c->prog.path);
	}
	for (size_t i = 0; i < r->nfuncs; i++) {
		struct bp_func *f = &r->funcs[i];
		struct bp_emit_func *ef;
		const struct psym *ps;

		if (!f->include)
			continue;
		ef = &funcs[nf++];
		ef->sym = f->name;
		ef->clone = f->clone;
		ef->replace = f->replace;
		if (!f->replace) {
			pl->ncarry++;
			continue;
		}
		ps = program_find(&c->prog, f->name, !f->global, true, u->file,
				  &ef->sympos);
		if (!ps) {
			refuse(c, f->name,
			       "'%s' changed, but the program (%s) has no "
			       "such function: it was built from other "
			       "sources or with other flags (or the "
			       "compiler inlined it everywhere there)",
			       f->name, c->prog.path);
			continue;
		}
		if (ps->type != STT_FUNC) {
			refuse(c, f->name, "'%s' is not a function in %s",
			       f->name, c->prog.path);
			continue;
		}
		ef->old_name = f->name;
		ef->old_size = ps->size;
		if (program_hash(&c->prog, ps, &ef->old_hash)) {
			refuse(c, f->name,
			       "cannot read the bytes of '%s' in %s", f->name,
			       c->prog.path);
			continue;
		}
		pl->nreplace++;
	}
	et->asm_path = u->after_s;
	et->funcs = funcs;
	et->nfuncs = nf;
	et->syms = r->syms;
	et->nsyms = r->nsyms;
	et->sympos = sympos;
	return 0;
}

/*
 * Does the original object match the program? A function the patch
 * replaces must have the same size in before.o as in the program,
 * otherwise the tree or the flags are not the program's and the diff of
 * the objects says nothing about the program.
 */
static void check_before(struct ctx *c, struct unit *u)
{
	int fd = open(u->before_o, O_RDONLY | O_CLOEXEC);
	Elf *e = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while (e && (scn = elf_nextscn(e, scn))) {
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB ||
		    !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *nm;
			const struct psym *ps;

			if (!gelf_getsym(d, (int)i, &s) ||
			    GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    s.st_shndx == SHN_UNDEF)
				continue;
			nm = elf_strptr(e, sh.sh_link, s.st_name);
			if (!nm)
				continue;
			for (size_t k = 0; k < u->res.nfuncs; k++) {
				struct bp_func *f = &u->res.funcs[k];

				if (!f->replace || strcmp(f->name, nm))
					continue;
				ps = program_find(&c->prog, nm,
						  GELF_ST_BIND(s.st_info) ==
							  STB_LOCAL,
						  true, u->file, NULL);
				if (ps && ps->size != s.st_size)
					refuse(c, nm,
					       "'%s' is %llu bytes in the "
					       "program but %llu bytes when "
					       "%s is compiled from %s: the "
					       "program was not built from "
					       "this tree with these flags "
					       "(rebuild it, or point "
					       "--source/--compile-commands "
					       "at its build)",
					       nm, (unsigned long long)ps->size,
					       (unsigned long long)s.st_size,
					       base_name(u->file), c->src_root);
			}
		}
	}
	if (e)
		elf_end(e);
	if (fd >= 0)
		close(fd);
}

static void report_text(struct ctx *c, const char *out, bool dry)
{
	FILE *f = stdout;
	size_t listed;

	for (size_t i = 0; i < c->nunits; i++) {
		struct unit *u = &c->units[i];

		if (!u->have_res)
			continue;
		fprintf(f, "%s:\n", u->file);
		listed = 0;
		for (size_t k = 0; k < u->res.nfuncs; k++) {
			struct bp_func *fn = &u->res.funcs[k];

			if (fn->state == BP_F_SAME && !fn->include && !fn->why)
				continue;
			listed++;
			fprintf(f, "  %-8s %-8s %s", action_name(fn),
				state_name(fn->state), fn->name);
			if (fn->why)
				fprintf(f, ": %s", fn->why);
			if (fn->ninlined) {
				fprintf(f, " (inlined into");
				for (size_t j = 0; j < fn->ninlined; j++)
					fprintf(f, "%s %s", j ? "," : "",
						fn->inlined[j]);
				fprintf(f, ")");
			}
			fputc('\n', f);
		}
		if (!listed)
			fprintf(f, "  (no function changed)\n");
	}
	for (size_t i = 0; i < c->notes.text.n; i++)
		fprintf(f, "note: %s%s%s\n", c->notes.sym.v[i],
			c->notes.sym.v[i][0] ? ": " : "", c->notes.text.v[i]);
	for (size_t i = 0; i < c->refusals.text.n; i++)
		fprintf(f, "refused: %s%s%s\n", c->refusals.sym.v[i],
			c->refusals.sym.v[i][0] ? ": " : "",
			c->refusals.text.v[i]);
	if (c->refusals.text.n)
		fprintf(f, "no patch written: %zu reason(s) above\n",
			c->refusals.text.n);
	else if (dry)
		fprintf(f, "dry run: no patch written\n");
	else if (out)
		fprintf(f, "wrote %s\n", out);
}

static void msgs_json(struct json *j, const char *key, const struct msgs *m,
		      const char *textkey)
{
	json_key(j, key);
	json_arr_begin(j);
	for (size_t i = 0; i < m->text.n; i++) {
		json_obj_begin(j);
		json_kstr(j, "symbol", m->sym.v[i]);
		json_kstr(j, textkey, m->text.v[i]);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void report_json(struct ctx *c, const char *out)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j);
	json_key(&j, "units");
	json_arr_begin(&j);
	for (size_t i = 0; i < c->nunits; i++)
		if (c->units[i].have_res)
			json_str(&j, c->units[i].file);
	json_arr_end(&j);
	json_key(&j, "functions");
	json_arr_begin(&j);
	for (size_t i = 0; i < c->nunits; i++) {
		struct unit *u = &c->units[i];

		for (size_t k = 0; u->have_res && k < u->res.nfuncs; k++) {
			struct bp_func *fn = &u->res.funcs[k];

			if (fn->state == BP_F_SAME && !fn->include && !fn->why)
				continue;
			json_obj_begin(&j);
			json_kstr(&j, "name", fn->name);
			json_kstr(&j, "unit", u->file);
			json_kstr(&j, "state", state_name(fn->state));
			json_kstr(&j, "action", action_name(fn));
			json_kstr(&j, "why", fn->why ? fn->why : "");
			json_kbool(&j, "clone", fn->clone);
			json_key(&j, "inlined_into");
			json_arr_begin(&j);
			for (size_t x = 0; x < fn->ninlined; x++)
				json_str(&j, fn->inlined[x]);
			json_arr_end(&j);
			json_obj_end(&j);
		}
	}
	json_arr_end(&j);
	msgs_json(&j, "refusals", &c->refusals, "reason");
	msgs_json(&j, "notes", &c->notes, "text");
	json_key(&j, "patch");
	if (out)
		json_str(&j, out);
	else
		json_null(&j);
	json_obj_end(&j);
	json_done(&j);
}

/* The patch name: a C identifier from the output's base name. */
static char *patch_name(const char *given, const char *out)
{
	const char *b = given ? given : base_name(out);
	char *n = strdup(b);
	size_t l = strlen(n);

	if (!given && l > 3 && !strcmp(n + l - 3, ".so"))
		n[l - 3] = 0;
	for (char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			*p = '_';
	if (!n[0] || isdigit((unsigned char)n[0])) {
		char *m = xasprintf("p_%s", n);

		free(n);
		n = m;
	}
	return n;
}

static const char *include_dir(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("REWIRE_INCLUDE_DIR");
	char self[PATH_MAX];
	ssize_t l;

	if (env && env[0])
		return env;
		/* In the build tree: the source's include/. Installed: <prefix>/
	 * include next to <prefix>/bin. */
#ifdef REWIRE_SOURCE_INCLUDE
	if (access(REWIRE_SOURCE_INCLUDE "/rewire/patch.h", R_OK) == 0)
		return REWIRE_SOURCE_INCLUDE;
#endif
	l = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (l > 0) {
		char *s;

		self[l] = 0;
		s = strrchr(self, '/');
		if (s) {
			*s = 0;
			if (strlen(self) + sizeof("/../include") <=
			    sizeof(buf)) {
				memcpy(buf, self, strlen(self));
				strcpy(buf + strlen(self), "/../include");
				if (access(buf, R_OK) == 0)
					return buf;
			}
		}
	}
	return "/usr/include";
}

static char *hex(const uint8_t *b, size_t n)
{
	char *s = xmalloc(n * 2 + 2);

	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	s[2 * n] = 0;
	if (!n)
		strcpy(s, "-");
	return s;
}

int cmd_build_patch(int argc, char **argv)
{
	struct optv v;
	struct ctx c = { 0 };
	const char *cdb, *diff, *object, *out;
	char *cdb_path = NULL, *name = NULL, *out_abs = NULL;
	char tmpl[PATH_MAX];
	char stdin_diff[PATH_MAX] = "";
	uint64_t strip = 1;
	int ret;
	struct plan pl = { 0 };

	ret = opts_parse(argc, argv, bp_opts, &v, false);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos)
		return usage_error("unexpected argument '%s'", v.pos[0]);
	verbose = v.set[OPT_VERBOSE];
	object = v.arg[OPT_OBJECT];
	out = v.arg[OPT_OUT];
	diff = v.set[OPT_DIFF] ? v.arg[OPT_DIFF] : "-";
	if (!object)
		return usage_error("--object FILE is required: the program or "
				   "library the patch is for");
	if (!out && !v.set[OPT_DRY])
		return usage_error("-o PATCH.so is required (or --dry-run)");
	if (v.set[OPT_STRIP] &&
	    (!parse_u64(v.arg[OPT_STRIP], &strip) || strip > 64))
		return usage_error("--strip takes a number, not '%s'",
				   v.arg[OPT_STRIP]);
	if (!strcmp(diff, "-") && isatty(0))
		return usage_error("no --diff and stdin is a terminal: give "
				   "the diff with --diff FILE or on stdin "
				   "(git diff | rewire build-patch ...)");

	cdb = v.set[OPT_CDB] ? v.arg[OPT_CDB] : "compile_commands.json";
	{
		struct stat st;

		if (!stat(cdb, &st) && S_ISDIR(st.st_mode))
			cdb_path = xasprintf("%s/compile_commands.json", cdb);
		else
			cdb_path = strdup(cdb);
		if (access(cdb_path, R_OK)) {
			ret = fail(EX_USAGE, -errno,
				   "build-patch: %s: %s (CMake writes it with "
				   "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON, Meson "
				   "always, and `bear -- make` for other "
				   "builds)",
				   cdb_path, strerror(errno));
			goto out;
		}
	}
	c.src_root =
		path_abs(NULL, v.set[OPT_SOURCE] ? v.arg[OPT_SOURCE] : ".");
	name = patch_name(v.arg[OPT_NAME], out ? out : "patch.so");
	if (out)
		out_abs = path_abs(NULL, out);

	/* The diff is read twice (here, then by patch(1)): keep stdin's. */
	if (!strcmp(diff, "-")) {
		char buf[65536];
		ssize_t n;
		int fd;

		snprintf(stdin_diff, sizeof(stdin_diff),
			 "%s/rewire-diff.XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		fd = mkstemp(stdin_diff);
		if (fd < 0) {
			ret = fail(EX_FAIL, -errno, "build-patch: %s: %s",
				   stdin_diff, strerror(errno));
			stdin_diff[0] = 0;
			goto out;
		}
		while ((n = read(0, buf, sizeof(buf))) > 0)
			if (write(fd, buf, (size_t)n) != n)
				n = -1;
		close(fd);
		if (n < 0) {
			ret = fail(EX_FAIL, -errno,
				   "build-patch: reading the diff from stdin "
				   "into %s: %s",
				   stdin_diff, strerror(errno));
			goto out;
		}
		diff = stdin_diff;
	}
	ret = cdb_load(cdb_path, &c.units, &c.nunits);
	if (ret)
		goto out;
	ret = diff_load(diff, c.src_root, (int)strip, &c.files, &c.nfiles);
	if (ret)
		goto out;
	ret = program_open(object, &c.prog);
	if (ret)
		goto out;

	snprintf(tmpl, sizeof(tmpl), "%s/rewire-build-patch.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (v.set[OPT_KEEP]) {
		c.work = path_abs(NULL, v.arg[OPT_KEEP]);
		c.keep = true;
		if (path_under(c.work, c.src_root)) {
			ret = fail(EX_USAGE, -EINVAL,
				   "build-patch: --keep %s is inside the "
				   "source tree %s, which is copied there",
				   c.work, c.src_root);
			goto out;
		}
		if (mkdir(c.work, 0700) && errno != EEXIST) {
			ret = fail(EX_USAGE, -errno,
				   "build-patch: --keep %s: %s", c.work,
				   strerror(errno));
			goto out;
		}
		{
			char *t = xasprintf("%s/tree", c.work);
			char *const rm[] = { "rm", "-rf", t, NULL };

			run_in(NULL, rm, NULL);
			free(t);
		}
	} else {
		if (!mkdtemp(tmpl)) {
			ret = fail(EX_FAIL, -errno, "build-patch: %s: %s", tmpl,
				   strerror(errno));
			goto out;
		}
		c.work = strdup(tmpl);
	}

	/* Which units: the sources in the diff, then the includers of each
	 * header in it. */
	for (size_t i = 0; i < c.nfiles; i++) {
		struct dfile *df = &c.files[i];
		bool any = false;

		if (!path_under(df->path, c.src_root)) {
			ret = fail(EX_USAGE, -EINVAL,
				   "build-patch: the diff changes %s, outside "
				   "the source tree %s (see --source and "
				   "--strip)",
				   df->rel, c.src_root);
			goto out;
		}
		for (size_t k = 0; k < c.nunits; k++)
			if (!strcmp(c.units[k].file, df->path)) {
				c.units[k].selected = c.units[k].changed = true;
				c.units[k].hunks = df->hunks;
				c.units[k].nhunks = df->nhunks;
				any = true;
			}
		if (any)
			continue;
		if (df->created) {
			note(&c, df->rel,
			     "a new file: no unit of the build compiles it, "
			     "so nothing of it is in the patch unless a "
			     "changed unit includes it");
			continue;
		}
		if (is_source(df->path)) {
			note(&c, df->rel,
			     "not compiled by any command in %s: ignored",
			     cdb_path);
			continue;
		}
		progress("finding the units that include %s", df->rel);
		if (!units_including(&c, df->path))
			note(&c, df->rel,
			     "no unit of the build includes it: ignored");
	}
	{
		size_t n = 0;

		for (size_t k = 0; k < c.nunits; k++)
			n += c.units[k].selected;
		if (!n) {
			ret = fail(EX_USAGE, -EINVAL,
				   "build-patch: the diff changes nothing that "
				   "%s compiles",
				   cdb_path);
			goto out;
		}
	}
	ret = make_copy(&c, diff, (int)strip);
	if (ret)
		goto out;
	/* The originals first, in the copy, then the diff, then the rest. */
	for (size_t k = 0, idx = 0; k < c.nunits; k++) {
		struct unit *u = &c.units[k];

		if (!u->selected)
			continue;
		u->before_o = xasprintf("%s/u%zu.before.o", c.work, idx);
		u->after_o = xasprintf("%s/u%zu.after.o", c.work, idx);
		u->after_s = xasprintf("%s/u%zu.after.s", c.work, idx);
		idx++;
		progress("compiling %s: original", base_name(u->file));
		ret = compile(&c, u, false, false, u->before_o);
		if (ret)
			goto out;
	}
	ret = apply_diff(&c, diff, (int)strip);
	if (ret)
		goto out;
	for (size_t k = 0; k < c.nunits; k++) {
		struct unit *u = &c.units[k];
		struct bp_tu tu;
		char err[1024];

		if (!u->selected)
			continue;
		progress("compiling %s: patched, patch code",
			 base_name(u->file));
		ret = compile(&c, u, true, false, u->after_o);
		if (!ret)
			ret = compile(&c, u, true, true, u->after_s);
		if (ret)
			goto out;
		tu = (struct bp_tu){ .src = u->file,
				     .before_o = u->before_o,
				     .after_o = u->after_o,
				     .hunks = u->hunks,
				     .nhunks = u->nhunks };
		if (bp_diff(&tu, &u->res, err, sizeof(err))) {
			ret = fail(EX_FAIL, -EINVAL,
				   "build-patch: comparing the objects of %s: "
				   "%s",
				   u->file, err);
			goto out;
		}
		u->have_res = true;
		for (size_t i = 0; i < u->res.nrefusals; i++)
			refuse(&c, u->res.refusals[i].symbol, "%s",
			       u->res.refusals[i].text);
		for (size_t i = 0; i < u->res.nnotes; i++)
			note(&c, u->res.notes[i].symbol, "%s",
			     u->res.notes[i].text);
		check_before(&c, u);
	}

	pl.tus = calloc(c.nunits + 1, sizeof(*pl.tus));
	for (size_t k = 0; k < c.nunits; k++) {
		struct unit *u = &c.units[k];
		bool any = false;

		if (!u->have_res)
			continue;
		for (size_t i = 0; i < u->res.nfuncs; i++)
			any |= u->res.funcs[i].include;
		if (!any)
			continue;
		ret = plan_unit(&c, u, &pl.tus[pl.ntus++], &pl);
		if (ret)
			goto out;
	}
	if (!c.refusals.text.n && !pl.nreplace)
		refuse(&c, NULL,
		       "the diff changes no function of the program's code "
		       "(comments, unused code, or data only): there is "
		       "nothing to patch");

	if (!c.refusals.text.n && !v.set[OPT_DRY]) {
		struct bp_emit e = {
			.name = name,
			.object = c.prog.object,
			.build_id = c.prog.build_id_len ? c.prog.build_id
							: NULL,
			.build_id_len = c.prog.build_id_len,
			.tus = pl.tus,
			.ntus = pl.ntus,
			.cc = v.set[OPT_CC] ? v.arg[OPT_CC] : link_cc(&c),
			.machine = c.prog.machine,
			.include_dir = include_dir(),
			.workdir = c.work,
			.out_so = out_abs,
			.out_src =
				NULL, /* --keep keeps the work directory itself */
			.verbose = verbose,
		};
		char err[2048];
		char *id = hex(c.prog.build_id, c.prog.build_id_len);

		progress("writing %s: %zu function(s) replaced, %zu carried, "
			 "for %s (build-id %s)",
			 out_abs, pl.nreplace, pl.ncarry, c.prog.path, id);
		free(id);
		if (bp_emit(&e, err, sizeof(err))) {
			ret = fail(EX_FAIL, -EINVAL, "build-patch: %s", err);
			goto out;
		}
	}
	if (g.json)
		report_json(&c, c.refusals.text.n || v.set[OPT_DRY] ? NULL
								    : out_abs);
	else
		report_text(&c, out_abs, v.set[OPT_DRY]);
	ret = c.refusals.text.n ? EX_REFUSED : EX_OK;
	if (ret && out_abs)
		unlink(out_abs);
out:
	if (stdin_diff[0])
		unlink(stdin_diff);
	if (c.work && !c.keep) {
		char *const rm[] = { "rm", "-rf", c.work, NULL };

		run_in(NULL, rm, NULL);
	}
	for (size_t k = 0; k < c.nunits; k++) {
		struct unit *u = &c.units[k];

		if (u->have_res)
			bp_result_free(&u->res);
		free(u->dir);
		free(u->file);
		strv_free(&u->args);
		free(u->before_o);
		free(u->after_o);
		free(u->after_s);
	}
	for (size_t i = 0; i < pl.ntus; i++) {
		free((void *)pl.tus[i].funcs);
		free((void *)pl.tus[i].sympos);
	}
	free(pl.tus);
	free(c.units);
	for (size_t i = 0; i < c.nfiles; i++) {
		free(c.files[i].path);
		free(c.files[i].rel);
		free(c.files[i].hunks);
	}
	free(c.files);
	if (c.prog.path)
		program_close(&c.prog);
	msgs_free(&c.refusals);
	msgs_free(&c.notes);
	free(c.copy_root);
	free(c.work);
	free((void *)c.src_root);
	free(cdb_path);
	free(name);
	free(out_abs);
	return ret;
}
