// SPDX-License-Identifier: MIT
/*
 * rewire bind-patch PATCH.so --object FILE [--object FILE...]: bind a live
 * patch to the build it was made for (src/livepatch/bind.h): write, into
 * the patch's ".rewire.bind" section, the build-id of each object and the
 * size and hash of each function the patch replaces in them. The loader
 * then refuses the patch in a process that runs another build.
 *
 * The patch is read as a file, never loaded (none of its code runs): its
 * descriptor rw_patch_descriptor and the functions it names are read
 * through its program headers, pointers through its RELATIVE relocations
 * (x86-64 or aarch64, the file's machine). The --object that is a
 * program (an executable: ET_EXEC or PT_INTERP) is the main program,
 * whose functions a patch names with old_object NULL or ""; a library
 * --object FILE is the one a function names by FILE's base name or path.
 * The section is replaced with objcopy ($OBJCOPY, or objcopy in PATH);
 * when it already holds the same binding the file is left alone (so the
 * command is idempotent and a build that runs it after each link does not
 * see the patch change again).
 */
#include "patchfile.h"

#include "livepatch/bind.h"

#include <rewire/patch.h>

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { OPT_OBJECT = OPT_FIRST_REPEAT };
static const struct opt bind_opts[] = {
	{ "object", 'o', true, OPT_OBJECT },
	{ NULL, 0, false, 0 },
};

/* A function of the patch: what it replaces. */
struct pfunc {
	char *object, *name; /* object NULL: the main program */
	unsigned long sympos;
};

static int patch_funcs(struct patch *p, struct pfunc **out, size_t *nout)
{
	uint64_t desc = 0, funcs = 0, nfuncs = 0;
	struct pfunc *fs;
	int ret = patch_find_desc(p, &desc);

	if (ret)
		return ret;
	if (!read_ptr(p, desc + offsetof(struct rw_patch_desc, funcs),
		      &funcs) ||
	    !read_va(p, desc + offsetof(struct rw_patch_desc, nfuncs), &nfuncs,
		     sizeof(nfuncs)) ||
	    !funcs || !nfuncs || nfuncs > 100000)
		return fail(EX_FAIL, 0,
			    "%s: its descriptor cannot be read (magic, "
			    "functions)",
			    p->f.path);
	fs = calloc(nfuncs, sizeof(*fs));
	if (!fs)
		return fail(EX_FAIL, -ENOMEM, "out of memory");
	for (size_t i = 0; i < nfuncs; i++) {
		uint64_t at = funcs + i * sizeof(struct rw_patch_func), o, nm;

		if (!read_ptr(p,
			      at + offsetof(struct rw_patch_func, old_object),
			      &o) ||
		    !read_ptr(p, at + offsetof(struct rw_patch_func, old_name),
			      &nm) ||
		    !read_va(p, at + offsetof(struct rw_patch_func, old_sympos),
			     &fs[i].sympos, sizeof(fs[i].sympos)) ||
		    !read_str(p, o, &fs[i].object) ||
		    !read_str(p, nm, &fs[i].name) || !fs[i].name) {
			*out = fs;
			*nout = i;
			return fail(EX_FAIL, 0,
				    "%s: function %zu of its descriptor "
				    "cannot be read",
				    p->f.path, i);
		}
	}
	*out = fs;
	*nout = nfuncs;
	return 0;
}

/* ---- The objects ------------------------------------------------------- */

/* Size and hash of function @name (position @pos, as in patch.h) of @f. */
static int func_hash(struct efile *f, const char *label, const char *name,
		     unsigned long pos, uint64_t *size, uint64_t *hash)
{
	GElf_Shdr sh;
	Elf_Scn *scn = scn_typed(f->elf, SHT_SYMTAB, &sh);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
	size_t n = d && sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
	GElf_Sym s, match[64];
	size_t nmatch = 0;
	Elf_Data *code;

	if (!d)
		return fail(EX_FAIL, 0,
			    "%s: no symbol table (stripped): bind to the "
			    "unstripped file",
			    f->path);
	for (size_t i = 0; i < n; i++) {
		const char *sn;
		bool dup = false;

		if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(s.st_info) != STT_FUNC)
			continue;
		sn = elf_strptr(f->elf, sh.sh_link, s.st_name);
		if (!sn || strcmp(sn, name))
			continue;
		/* Aliases at one address count once, as the loader counts
		 * them. */
		for (size_t j = 0; j < nmatch && !dup; j++)
			dup = match[j].st_value == s.st_value;
		if (!dup && nmatch < sizeof(match) / sizeof(match[0]))
			match[nmatch++] = s;
	}
	if (!nmatch)
		return fail(EX_FAIL, 0, "%s: function '%s' (%s) not found",
			    f->path, name, label);
	if (!pos && nmatch > 1)
		return fail(EX_FAIL, 0,
			    "%s: '%s' has %zu symbols; the patch must give "
			    "its position",
			    f->path, name, nmatch);
	if (pos > nmatch)
		return fail(EX_FAIL, 0, "%s: '%s' has no position %lu", f->path,
			    name, pos);
	s = match[pos ? pos - 1 : 0];
	scn = elf_getscn(f->elf, s.st_shndx);
	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
	    s.st_value < sh.sh_addr || s.st_value - sh.sh_addr > sh.sh_size ||
	    s.st_size > sh.sh_size - (s.st_value - sh.sh_addr) ||
	    !(code = elf_rawdata(scn, NULL)) || code->d_size != sh.sh_size)
		return fail(EX_FAIL, 0, "%s: cannot read the bytes of '%s'",
			    f->path, name);
	*size = s.st_size;
	*hash = rw__func_hash((const uint8_t *)code->d_buf +
				      (s.st_value - sh.sh_addr),
			      s.st_size);
	return 0;
}

/* Is @f a program (not a shared library): ET_EXEC, or an interpreter? */
static bool is_program(struct efile *f)
{
	GElf_Ehdr eh;
	size_t phnum;

	if (!gelf_getehdr(f->elf, &eh))
		return false;
	if (eh.e_type == ET_EXEC)
		return true;
	if (elf_getphdrnum(f->elf, &phnum))
		return false;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(f->elf, (int)i, &ph) && ph.p_type == PT_INTERP)
			return true;
	}
	return false;
}

/* Does the patch's object name @obj (NULL/"": the main program) mean the
 * --object @file (@main: the main program)? */
static bool names_file(const char *obj, const char *file, bool main)
{
	if (!obj || !obj[0])
		return main;
	if (main)
		return false;
	if (!strcmp(obj, file))
		return true;
	return !strchr(obj, '/') && !strcmp(obj, base_name(file));
}

/* Append @s to @b (of *@len, *@cap), %-encoded as bind.h says. */
static void put_field(char **b, size_t *len, size_t *cap, const char *s,
		      bool raw)
{
	for (; *s; s++) {
		char e[4];
		size_t n = 1;

		if (!raw &&
		    (*s == '%' || *s == '\t' || *s == '\n' || *s == '\r')) {
			snprintf(e, sizeof(e), "%%%02X", (unsigned char)*s);
			n = 3;
		} else {
			e[0] = *s;
		}
		if (*len + n + 1 > *cap) {
			*cap = *cap * 2 + n + 64;
			*b = xrealloc(*b, *cap);
		}
		memcpy(*b + *len, e, n);
		*len += n;
		(*b)[*len] = '\0';
	}
}

/* ---- Writing the section ---------------------------------------------- */

static int run_objcopy(const char *patch, const char *data, bool had)
{
	const char *objcopy = getenv("OBJCOPY");
	char *add = xasprintf(RW__BIND_SECTION "=%s", data);
	char *argv[12];
	int n = 0, status, err;
	pid_t pid;

	objcopy = objcopy && *objcopy ? objcopy : "objcopy";
	argv[n++] = (char *)objcopy;
	if (had) {
		argv[n++] = "--remove-section";
		argv[n++] = RW__BIND_SECTION;
	}
	argv[n++] = "--add-section";
	argv[n++] = add;
	argv[n++] = "--set-section-flags";
	argv[n++] = RW__BIND_SECTION "=readonly";
	argv[n++] = (char *)patch;
	argv[n] = NULL;
	err = posix_spawnp(&pid, objcopy, NULL, NULL, argv, environ);
	free(add);
	if (err)
		return fail(EX_FAIL, -err, "cannot run %s: %s", objcopy,
			    strerror(err));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return fail(EX_FAIL, -errno, "waitpid: %s",
				    strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return fail(EX_FAIL, 0, "%s failed on %s", objcopy, patch);
	return 0;
}

/* Write @text as the patch's section (unless it holds it already). */
static int write_binding(struct patch *p, const char *text, size_t len)
{
	char tmp[] = "/tmp/rewire-bind-XXXXXX";
	GElf_Shdr sh;
	Elf_Scn *scn = scn_named(p->f.elf, RW__BIND_SECTION, &sh);
	Elf_Data *d = scn ? elf_rawdata(scn, NULL) : NULL;
	int fd, ret;

	if (d && d->d_size == len && !memcmp(d->d_buf, text, len)) {
		if (!g.quiet)
			msg("%s: already bound (unchanged)", p->f.path);
		return 1;
	}
	fd = mkstemp(tmp);
	if (fd < 0)
		return fail(EX_FAIL, -errno, "mkstemp: %s", strerror(errno));
	if (write(fd, text, len) != (ssize_t)len) {
		ret = fail(EX_FAIL, -errno, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return ret;
	}
	close(fd);
	/* libelf's mapping of the old file goes before objcopy replaces
	 * it. */
	efile_close(&p->f);
	p->f.fd = -1;
	p->f.elf = NULL;
	ret = run_objcopy(p->f.path, tmp, scn != NULL);
	unlink(tmp);
	return ret;
}

int cmd_bind_patch(int argc, char **argv)
{
	struct patch p = { .f = { .fd = -1 } };
	struct efile *objs = NULL;
	struct pfunc *funcs = NULL;
	size_t nfuncs = 0, len = 0, cap = 0, nbound = 0;
	char *text = NULL, **files;
	const char **keys = NULL;
	struct optv v;
	int nobjs, ret, main = -1;

	ret = opts_parse(argc, argv, bind_opts, &v, false);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos < 1)
		return usage_error("missing PATCH.so");
	if (v.npos > 1)
		return usage_error("unexpected argument '%s'", v.pos[1]);
	nobjs = v.nrep[OPT_OBJECT];
	files = v.rep[OPT_OBJECT];
	if (!nobjs)
		return usage_error("missing --object FILE (the program the "
				   "patch is for)");
	if (elf_version(EV_CURRENT) == EV_NONE)
		return fail(EX_FAIL, 0, "libelf: %s", elf_errmsg(-1));
	ret = efile_open(&p.f, v.pos[0]);
	if (!ret)
		ret = patch_funcs(&p, &funcs, &nfuncs);
	objs = xmalloc(sizeof(*objs) * (size_t)nobjs);
	for (int i = 0; i < nobjs; i++)
		objs[i] = (struct efile){ .fd = -1 };
	for (int i = 0; !ret && i < nobjs; i++)
		ret = efile_open(&objs[i], files[i]);
	/* The main program: the first --object that is a program. */
	for (int i = 0; !ret && i < nobjs; i++) {
		if (!is_program(&objs[i]))
			continue;
		if (main >= 0)
			ret = fail(EX_FAIL, 0,
				   "%s and %s are both programs; a process "
				   "runs one",
				   files[main], files[i]);
		main = i;
	}
	put_field(&text, &len, &cap, "rewire-bind\t1\n", true);
	keys = xmalloc(sizeof(*keys) * (size_t)nobjs);
	for (int i = 0; !ret && i < nobjs; i++) {
		uint8_t id[64];
		size_t idlen = file_build_id(&objs[i], id, sizeof(id));
		char hex[132] = "-";

		/* The object as the patch's functions name it (the loader
		 * finds it by that name), else by its base name. */
		keys[i] = i != main ? base_name(files[i]) : "";
		for (size_t k = 0; i != main && k < nfuncs; k++)
			if (names_file(funcs[k].object, files[i], false)) {
				keys[i] = funcs[k].object;
				break;
			}
		for (size_t k = 0; k < idlen; k++)
			snprintf(hex + 2 * k, 3, "%02x", id[k]);
		put_field(&text, &len, &cap, "object\t", true);
		put_field(&text, &len, &cap, keys[i], false);
		put_field(&text, &len, &cap, "\t", true);
		put_field(&text, &len, &cap, hex, true);
		put_field(&text, &len, &cap, "\n", true);
	}
	for (size_t k = 0; !ret && k < nfuncs; k++) {
		const struct pfunc *f = &funcs[k];
		uint64_t size = 0, hash = 0;
		char *line;
		int i;

		for (i = 0; i < nobjs; i++)
			if (names_file(f->object, files[i], i == main))
				break;
		if (i == nobjs) {
			if (!g.quiet)
				msg("%s: '%s' of %s: not bound (no --object "
				    "for it)",
				    p.f.path, f->name, f->object);
			continue;
		}
		ret = func_hash(&objs[i],
				f->object && f->object[0] ? f->object
							  : "the main program",
				f->name, f->sympos, &size, &hash);
		if (ret)
			break;
		put_field(&text, &len, &cap, "func\t", true);
		put_field(&text, &len, &cap, keys[i], false);
		put_field(&text, &len, &cap, "\t", true);
		put_field(&text, &len, &cap, f->name, false);
		line = xasprintf("\t%lu\t%llu\t%016llx\n", f->sympos,
				 (unsigned long long)size,
				 (unsigned long long)hash);
		put_field(&text, &len, &cap, line, true);
		free(line);
		nbound++;
	}
	if (!ret) {
		ret = write_binding(&p, text, len);
		if (ret == 0 && !g.quiet)
			msg("%s: bound to %d object%s, %zu function%s",
			    p.f.path, nobjs, nobjs > 1 ? "s" : "", nbound,
			    nbound == 1 ? "" : "s");
		if (ret == 1)
			ret = 0;
	}
	for (int i = 0; i < nobjs; i++)
		efile_close(&objs[i]);
	free(objs);
	free(keys);
	efile_close(&p.f);
	for (size_t k = 0; k < nfuncs; k++) {
		free(funcs[k].object);
		free(funcs[k].name);
	}
	free(funcs);
	free(text);
	return ret;
}
