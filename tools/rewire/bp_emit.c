// SPDX-License-Identifier: MIT
/*
 * bp_emit.c - the emitter of `rewire build-patch` (bp.h): cuts the carried
 * functions out of each translation unit's after.s, turns every symbolic
 * 64-bit operand into a relocation table entry, writes the descriptor and
 * the binding, links the patch and checks it.
 *
 * after.s is GCC's output with -ffunction-sections -fdata-sections
 * -mcmodel=large -fno-pic: every function and object has a section of its
 * own, and code reaches every symbol through a 64-bit absolute operand
 * (movabsq $sym, %reg; movabs sym, %eax and its store form, the moffs
 * forms), data through .quad. The steps:
 *
 *  1. Split after.s into statements, each tagged with the section it goes
 *     to (.section, .pushsection/.popsection, .previous, .text/.data/.bss).
 *  2. Keep the sections of the carried functions, then, transitively, the
 *     sections of every symbol their code and data reach that the patch
 *     carries (local labels: string literals, jump tables, cold parts, the
 *     exception tables; symbols classified BP_S_PATCH). Everything else is
 *     dropped: other functions, the program's data, the
 *     __patchable_function_entries records (they name dropped functions).
 *     Refused here: another function in a carried function's section
 *     (no -ffunction-sections), and a table the program registers (a
 *     static key's __rw_jump_table) that points into carried code.
 *  3. Rewrite the kept statements:
 *     - every movabs with a symbolic operand becomes the same instruction
 *       with 0, followed by a label .Lrwr_N; the imm64 (or moffs64) is the
 *       last 8 bytes of both forms, so the table entry's where is
 *       .Lrwr_N - 8 (checked on an assembled copy that keeps the symbols:
 *       each site must have its R_X86_64_64 exactly there);
 *     - a .quad in data that names a symbol of the program becomes .quad 0
 *       behind a label; other .quad references stay for the dynamic linker
 *       (a read-only section that holds one becomes .data.rel.ro.*);
 *     - absolute personality and LSDA pointers (.cfi_personality 0, the
 *       type table's .quad _ZTI...) become GCC's -fPIC forms, through
 *       hidden DW.ref.* indirections (-z text refuses the absolute ones);
 *     - every .globl/.weak symbol that stays becomes .hidden: the patch
 *       never interposes on anything.
 *  4. Write the relocation table (struct rw_patch_reloc), the hidden
 *     aliases rw_new_N of the carried functions, the binding
 *     (.rewire.bind) into gen.s, the descriptor into gen.c.
 *  5. Assemble the check copy and refuse any reference in code that only
 *     the link could resolve (call sym, sym(%rip) to something the patch
 *     does not carry, thread-local operands); link with -z text; check the
 *     result (no DT_TEXTREL, the binding, the descriptor exported and
 *     nothing else).
 *
 * Several translation units go into one gen.s: the local symbols of the
 * second and later ones are renamed NAME.rwtuK, and a comdat group that an
 * earlier unit already emitted is dropped.
 *
 * aarch64 (bp_emit.machine EM_AARCH64). GCC's -mcmodel=large -fno-pic
 * loads every address from a literal pool in the function's own section
 * (adrp x0, .LC0; ldr x0, [x0, #:lo12:.LC0] ... .LC0: .xword SYM), which
 * maps onto the same table; calls stay direct. The rules, in the steps
 * above:
 *
 *  1. Comments are "//", and '#' first on a line only ('#' elsewhere
 *     starts an immediate). Operands name registers without a prefix: the
 *     lexer skips register names, shifts, extends, condition codes,
 *     barrier, prefetch and system register names, and reads a
 *     relocation operator (:lo12:SYM) as SYM's modifier.
 *  3. - a .xword (.quad, .8byte) naming one symbol in a code section (a
 *       pool entry) becomes 0 behind a label .Lrwr_N with a table entry,
 *       whatever the symbol: the program's by name, the patch's own and a
 *       library's through the dynamic linker's pointer in the table (the
 *       dynamic linker cannot write into code: -z text). where = .Lrwr_N;
 *     - bl SYM / b SYM (a call, a tail call) to code the patch carries
 *       stays direct. To anything else it becomes `ldr x16, .Lrwr_N;
 *       blr x16` (b: br x16), .Lrwr_N an 8-aligned literal at the end of
 *       the caller's section filled through the table: a BL reaches only
 *       +-128 MiB and the patch is mapped wherever dlopen put it. x16
 *       (IP0) may be clobbered at any call or tail call (a linker's veneer
 *       or PLT stub does), and a BLR or a BR from x16 may land on the BTI C
 *       (or PACIASP) that begins any function whose address can be taken.
 *       A static function of a BTI program that only direct calls reach
 *       has no landing pad: the driver makes the patch carry its own copy
 *       (cmd_build_patch.c, plan_unit). A conditional branch (b.cond,
 *       cbz, tbz) to code the patch does not carry is refused: GCC makes
 *       no conditional tail calls;
 *     - any other symbol in an instruction must be the patch's (ADRP and
 *       :lo12: to its pool, strings, jump tables: PC-relative, resolved
 *       by the link); :got:, :tprel_*:, :tlsdesc:... are refused (GOT,
 *       thread-local storage);
 *     - personality and type table pointers are already PC-relative and
 *       indirect (0x9c, through GCC's hidden DW.ref.SYM): they stay, and
 *       DW.ref.SYM's .xword is data (step 3's second rule).
 *  5. The check copy's sites must each carry one R_AARCH64_ABS64 at the
 *     label; other relocations in code must be PC-relative or :lo12: to
 *     something defined (CALL26, JUMP26, CONDBR19, TSTBR14, ADR_PREL_*,
 *     *_ABS_LO12_NC, LD_PREL_LO19, PREL*). The link adds
 *     -mbranch-protection=standard when the units had the GNU property
 *     note (BTI, PAC).
 *
 * The driver picks the compiler of the program's units for the link on
 * aarch64 (bp_emit.cc), not "cc": a cross build runs build-patch under
 * user-mode qemu with the build machine's "cc".
 */
#include "bp.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define RELOC_SIZE 56 /* sizeof(struct rw_patch_reloc), checked in gen.c */
#define RELOC_ABS64 1 /* RW_PATCH_RELOC_ABS64 */
#define SEC_NONE (-1)

/* The machine of the run's after.s: aarch64 syntax and rules when true,
 * x86-64 otherwise. Set by bp_emit() before anything is read (the command
 * emits one patch per process). */
static bool a64;

/* ---- Small helpers ------------------------------------------------------ */

struct emit_err {
	char *buf;
	size_t len;
	bool set;
};

static int seterr(struct emit_err *er, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int seterr(struct emit_err *er, const char *fmt, ...)
{
	va_list ap;

	if (er->set)
		return -1;
	er->set = true;
	va_start(ap, fmt);
	vsnprintf(er->buf, er->len, fmt, ap);
	va_end(ap);
	return -1;
}

/* The tool's convention (util.c's xmalloc): out of memory ends the
 * command, with a message. */
static void *xzalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p) {
		fputs("rewire: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

static void *xgrow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	p = realloc(p, n * elem);
	if (!p) {
		fputs("rewire: out of memory\n", stderr);
		exit(1);
	}
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*cap = n;
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xzalloc(n + 1);

	memcpy(p, s, n);
	return p;
}

static char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

static char *xfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xfmt(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		fputs("rewire: out of memory\n", stderr);
		exit(1);
	}
	va_end(ap);
	return s;
}

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* A string -> int map (open addressing), for symbol and section names. */
struct map {
	const char **keys;
	int *vals;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static int map_get(const struct map *m, const char *key)
{
	if (!m->cap)
		return -1;
	for (size_t i = hash_str(key) & (m->cap - 1);;
	     i = (i + 1) & (m->cap - 1)) {
		if (!m->keys[i])
			return -1;
		if (!strcmp(m->keys[i], key))
			return m->vals[i];
	}
}

static void map_put(struct map *m, const char *key, int val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		struct map old = *m;

		m->cap = old.cap ? old.cap * 2 : 64;
		m->keys = xzalloc(m->cap * sizeof(*m->keys));
		m->vals = xzalloc(m->cap * sizeof(*m->vals));
		m->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.keys[i])
				map_put(m, old.keys[i], old.vals[i]);
		free(old.keys);
		free(old.vals);
	}
	for (i = hash_str(key) & (m->cap - 1); m->keys[i];
	     i = (i + 1) & (m->cap - 1)) {
		if (!strcmp(m->keys[i], key)) {
			m->vals[i] = val;
			return;
		}
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
}

static void map_free(struct map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- Lexing GCC's assembly ------------------------------------------------ */

/* '$' continues a name but starts an immediate in AT&T syntax. */
static bool id_start(int c)
{
	return isalpha(c) || c == '_' || c == '.';
}

static bool id_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '$';
}

/* A token of an operand or argument list: an identifier that may name a
 * symbol (not a register, a number, a string, a @modifier or the location
 * counter "."). */
struct tok {
	const char *p;
	size_t n;
	const char *mod; /* "@tpoff" etc. after it, or NULL */
	size_t modn;
};

/* An aarch64 register: x0-x30, w0-w30, v0.4s, q0, d0, s0, h0, b0, z0.s,
 * p0 (vector and predicate registers with or without an arrangement). */
static bool a64_register(const char *p, size_t n)
{
	static const char *const named[] = { "sp", "wsp", "xzr", "wzr" };
	size_t i = 1;

	for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++)
		if (strlen(named[k]) == n && !strncmp(p, named[k], n))
			return true;
	if (n < 2 || !strchr("xwvqdshbzp", p[0]))
		return false;
	while (i < n && isdigit((unsigned char)p[i]))
		i++;
	return i > 1 && i <= 3 && (i == n || p[i] == '.');
}

/*
 * Words of aarch64 operands that are no symbols (GCC writes them in lower
 * case): registers, shifts and extends, condition codes, barrier options,
 * prefetch operations, system registers. A symbol spelled like one of
 * them is not seen in an instruction's operands; the check of the
 * assembled copy (check_object) still sees its relocation.
 */
static bool a64_reserved(const char *p, size_t n)
{
	static const char *const words[] = {
		"lsl",	"lsr",	 "asr",	  "ror",  "msl",   "uxtb",  "uxth",
		"uxtw", "uxtx",	 "sxtb",  "sxth", "sxtw",  "sxtx",  "eq",
		"ne",	"cs",	 "hs",	  "cc",	  "lo",	   "mi",    "pl",
		"vs",	"vc",	 "hi",	  "ls",	  "ge",	   "lt",    "gt",
		"le",	"al",	 "nv",	  "sy",	  "ish",   "ishld", "ishst",
		"osh",	"oshld", "oshst", "nsh",  "nshld", "nshst", "ld",
		"st",	"fpcr",	 "fpsr",  "nzcv", "daif",  "dit",   "ssbs",
		"tco",	"mul",	 "vl",	  "all",
	};
	char w[32];

	if (a64_register(p, n))
		return true;
	for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
		if (strlen(words[k]) == n && !strncmp(p, words[k], n))
			return true;
	if (n >= sizeof(w))
		return false;
	memcpy(w, p, n);
	w[n] = '\0';
	/* pldl1keep, pstl2strm, plil3keep */
	if (n == 9 &&
	    (starts(w, "pld") || starts(w, "pst") || starts(w, "pli")) &&
	    w[3] == 'l' && w[4] >= '1' && w[4] <= '3' &&
	    (!strcmp(w + 5, "keep") || !strcmp(w + 5, "strm")))
		return true;
	/* tpidr_el0, cntvct_el0; s3_3_c13_c0_2 */
	if (n > 4 && starts(w + n - 4, "_el") &&
	    isdigit((unsigned char)w[n - 1]))
		return true;
	return w[0] == 's' && isdigit((unsigned char)w[1]) && w[2] == '_';
}

/*
 * aarch64 operands: registers and the other reserved words are no
 * symbols; '#' starts an immediate; a relocation operator (:lo12:,
 * :got:, :tprel_hi12:...) before a symbol is its modifier.
 */
static bool next_ident_a64(const char *s, size_t *pos, struct tok *t)
{
	const char *mod = NULL;
	size_t i = *pos, modn = 0;

	while (s[i]) {
		int c = (unsigned char)s[i];

		if (c == '"') {
			for (i++; s[i] && s[i] != '"'; i++)
				if (s[i] == '\\' && s[i + 1])
					i++;
			if (s[i])
				i++;
		} else if (c == '{') {
			/* register lists: {v0.16b - v1.16b} */
			while (s[i] && s[i] != '}')
				i++;
		} else if (c == '%' || c == '@') {
			/* %function, @progbits */
			for (i++; id_char((unsigned char)s[i]); i++)
				;
		} else if (c == ':') {
			size_t e = i + 1;

			while (id_char((unsigned char)s[e]))
				e++;
			if (e > i + 1 && s[e] == ':') {
				mod = s + i;
				modn = e + 1 - i;
				i = e + 1;
			} else {
				i++;
			}
		} else if (isdigit(c)) {
			for (i++; isalnum((unsigned char)s[i]) || s[i] == '_';
			     i++)
				;
		} else if (id_start(c)) {
			size_t b = i;

			for (i++; id_char((unsigned char)s[i]); i++)
				;
			if ((i - b == 1 && s[b] == '.') ||
			    a64_reserved(s + b, i - b)) {
				mod = NULL;
				continue;
			}
			t->p = s + b;
			t->n = i - b;
			t->mod = mod;
			t->modn = modn;
			*pos = i;
			return true;
		} else {
			i++;
		}
	}
	*pos = i;
	return false;
}

/* next_ident - the next symbol-like identifier in s from *pos. */
static bool next_ident(const char *s, size_t *pos, struct tok *t)
{
	size_t i = *pos;

	if (a64)
		return next_ident_a64(s, pos, t);

	while (s[i]) {
		int c = (unsigned char)s[i];

		if (c == '"') {
			for (i++; s[i] && s[i] != '"'; i++)
				if (s[i] == '\\' && s[i + 1])
					i++;
			if (s[i])
				i++;
		} else if (c == '{') {
			/* {%k1}{z}, {vex}: masks and pseudo-prefixes */
			while (s[i] && s[i] != '}')
				i++;
		} else if (c == '%' || c == '@') {
			/* a register, or a modifier/type not after a symbol */
			for (i++; id_char((unsigned char)s[i]); i++)
				;
		} else if (isdigit(c)) {
			for (i++; isalnum((unsigned char)s[i]) || s[i] == '_';
			     i++)
				;
		} else if (id_start(c)) {
			size_t b = i;

			for (i++; id_char((unsigned char)s[i]); i++)
				;
			if (i - b == 1 && s[b] == '.')
				continue;
			t->p = s + b;
			t->n = i - b;
			t->mod = NULL;
			t->modn = 0;
			if (s[i] == '@') {
				size_t m = i;

				for (i++; id_char((unsigned char)s[i]); i++)
					;
				t->mod = s + m;
				t->modn = i - m;
			}
			*pos = i;
			return true;
		} else {
			i++;
		}
	}
	*pos = i;
	return false;
}

/* Split s at top-level commas (outside strings and parentheses). */
static size_t split_args(const char *s, char **out, size_t max)
{
	size_t n = 0, depth = 0;
	const char *b = s;
	bool q = false;

	for (const char *p = s;; p++) {
		if (q) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				q = false;
			if (!*p)
				break;
			continue;
		}
		if (*p == '"')
			q = true;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && depth)
			depth--;
		if (!*p || (*p == ',' && !depth)) {
			const char *e = p;

			while (b < e && isspace((unsigned char)*b))
				b++;
			while (e > b && isspace((unsigned char)e[-1]))
				e--;
			if (n < max)
				out[n] = xstrndup(b, (size_t)(e - b));
			n++;
			if (!*p)
				break;
			b = p + 1;
		}
	}
	return n;
}

static void free_args(char **a, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++)
		free(a[i]);
}

/* ---- One translation unit ------------------------------------------------ */

enum st_kind {
	ST_LABEL,   /* NAME: */
	ST_DIR,	    /* .directive args */
	ST_INSN,    /* mnemonic operands */
	ST_SECTION, /* a section switch: not emitted as written */
};

struct stmt {
	char *text; /* trimmed, without comment */
	enum st_kind kind;
	char *word;	  /* directive, mnemonic, or label name */
	const char *args; /* into text: after word */
	int sec;	  /* the section it goes to */
	long next;	  /* the section's next statement, -1: none */
	unsigned line;	  /* 1-based, in after.s */
};

struct sec {
	char *name;
	char *attrs; /* what follows the name in its declaration, or NULL */
	char *group; /* comdat group signature, or NULL */
	bool exec, writable, keep, relro, seed, skip;
	bool except; /* .gcc_except_table* */
	long first;  /* its first statement, -1: none (chained by next) */
	long last;
};

struct def {
	char *name;
	int sec;
	bool global, weak, func;
	bool weak_ref; /* .weak without a definition */
	size_t stmt;   /* its label statement */
	bool label;    /* defined by a label (not .set) */
};

struct tu {
	const struct bp_emit_tu *in;
	unsigned index;
	bool rename; /* local symbols get the suffix .rwtuK */
	struct stmt *st;
	size_t nst, capst;
	struct sec *secs;
	size_t nsecs, capsecs;
	struct map secmap;
	struct def *defs;
	size_t ndefs, capdefs;
	struct map defmap;
	struct map symmap;  /* name -> index in in->syms */
	struct map carried; /* name -> index in in->funcs */
	bool has_property;
	int prop_sec;
};

/* A relocation table entry. */
struct site {
	unsigned tu;
	enum bp_skind kind;
	bool data;    /* where = label (a .quad), not label - 8 */
	char *target; /* kind != PROGRAM: the expression, renamed */
	char *name;   /* PROGRAM: prog_name */
	unsigned long sympos;
	long addend;
};

struct dwref {
	char *sym; /* the symbol DW.ref.SYM points to */
	unsigned tu;
};

struct emitter {
	const struct bp_emit *e;
	struct emit_err er;
	struct tu *tus;
	size_t ntus;
	struct site *sites;
	size_t nsites, capsites;
	struct dwref *dwrefs;
	size_t ndwrefs, capdwrefs;
	struct map dwrefmap;
	struct map groups; /* comdat groups emitted: name -> tu */
	bool cxx;
	char *gen_s, *gen_c, *check_s, *check_o, *log;
};

static int add_sec(struct tu *t, const char *name)
{
	int i = map_get(&t->secmap, name);
	struct sec *s;

	if (i >= 0)
		return i;
	t->secs = xgrow(t->secs, &t->capsecs, t->nsecs + 1, sizeof(*t->secs));
	s = &t->secs[t->nsecs];
	s->name = xstrdup(name);
	s->first = s->last = -1;
	/* gas's defaults for a section named without flags */
	s->exec = starts(name, ".text");
	s->writable = starts(name, ".data") || starts(name, ".bss") ||
		      starts(name, ".tbss") || starts(name, ".tdata");
	s->except = starts(name, ".gcc_except_table");
	s->skip = !strcmp(name, "__patchable_function_entries") ||
		  !strcmp(name, ".note.GNU-stack") ||
		  !strcmp(name, ".note.gnu.property") ||
		  !strcmp(name, ".comment");
	map_put(&t->secmap, s->name, (int)t->nsecs);
	return (int)t->nsecs++;
}

/* The flags and group of a `.section NAME,ATTRS` declaration. */
static void sec_declare(struct sec *s, const char *attrs)
{
	char *a[8];
	size_t n;
	int gi;

	if (s->attrs || !attrs || !*attrs)
		return;
	s->attrs = xstrdup(attrs);
	n = split_args(attrs, a, 8);
	if (n >= 1 && a[0][0] == '"') {
		const char *f = a[0];

		s->exec = strchr(f, 'x') != NULL;
		s->writable = strchr(f, 'w') != NULL;
		gi = 2 + (strchr(f, 'M') ? 1 : 0) + (strchr(f, 'o') ? 1 : 0);
		if (strchr(f, 'G') && (size_t)gi < n && gi < 8)
			s->group = xstrdup(a[gi]);
	}
	free_args(a, n, 8);
}

static struct def *get_def(struct tu *t, const char *name, bool create)
{
	int i = map_get(&t->defmap, name);
	struct def *d;

	if (i >= 0)
		return &t->defs[i];
	if (!create)
		return NULL;
	t->defs = xgrow(t->defs, &t->capdefs, t->ndefs + 1, sizeof(*t->defs));
	d = &t->defs[t->ndefs];
	d->name = xstrdup(name);
	d->sec = SEC_NONE;
	map_put(&t->defmap, d->name, (int)t->ndefs);
	t->ndefs++;
	return d;
}

static void add_stmt(struct tu *t, const char *s, size_t n, unsigned line)
{
	struct stmt *st;
	size_t w;

	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (!n)
		return;
	t->st = xgrow(t->st, &t->capst, t->nst + 1, sizeof(*t->st));
	st = &t->st[t->nst++];
	st->text = xstrndup(s, n);
	st->line = line;
	for (w = 0; st->text[w] && !isspace((unsigned char)st->text[w]); w++)
		;
	st->word = xstrndup(st->text, w);
	st->args = st->text + w;
	while (isspace((unsigned char)*st->args))
		st->args++;
	st->kind = st->text[0] == '.' ? ST_DIR : ST_INSN;
}

/* Split one line into statements: a label "NAME:" (kept apart), ';'
 * separators, comments, all outside strings. Comments: x86-64 '#'; aarch64
 * "//", and '#' only first on the line ("#APP"): elsewhere it starts an
 * immediate. */
static void split_line(struct tu *t, const char *l, unsigned line)
{
	const char *b = l, *p = l;
	bool q = false;

	while (isspace((unsigned char)*b))
		b++;
	if (a64 && *b == '#')
		return;
	/* leading labels */
	for (;;) {
		const char *e = b;

		if (!id_start((unsigned char)*e) && !isdigit((unsigned char)*e))
			break;
		while (id_char((unsigned char)*e))
			e++;
		if (*e != ':')
			break;
		t->st = xgrow(t->st, &t->capst, t->nst + 1, sizeof(*t->st));
		{
			struct stmt *st = &t->st[t->nst++];

			st->text = xstrndup(b, (size_t)(e - b + 1));
			st->word = xstrndup(b, (size_t)(e - b));
			st->args = st->text + (e - b + 1);
			st->kind = ST_LABEL;
			st->line = line;
		}
		b = e + 1;
		while (isspace((unsigned char)*b))
			b++;
	}
	for (p = b;; p++) {
		if (q) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				q = false;
			else if (!*p)
				break;
			continue;
		}
		if (*p == '"') {
			q = true;
		} else if (!*p || *p == ';' || (!a64 && *p == '#') ||
			   (a64 && p[0] == '/' && p[1] == '/')) {
			add_stmt(t, b, (size_t)(p - b), line);
			if (*p != ';')
				break;
			b = p + 1;
		}
	}
}

static int read_asm(struct emitter *em, struct tu *t)
{
	FILE *f = fopen(t->in->asm_path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned no = 0;
	ssize_t n;

	if (!f)
		return seterr(&em->er, "cannot read %s: %s", t->in->asm_path,
			      strerror(errno));
	while ((n = getline(&line, &cap, f)) >= 0) {
		no++;
		if (n && line[n - 1] == '\n')
			line[n - 1] = '\0';
		split_line(t, line, no);
	}
	free(line);
	fclose(f);
	return 0;
}

/* The section name at the start of a directive's arguments (quoted or
 * not), and the rest after the comma. */
static char *sec_name_arg(const char *args, const char **rest)
{
	const char *e;
	char *name;

	if (*args == '"') {
		e = strchr(args + 1, '"');
		if (!e)
			e = args + strlen(args);
		name = xstrndup(args + 1, (size_t)(e - args - 1));
		if (*e)
			e++;
	} else {
		for (e = args; *e && *e != ',' && !isspace((unsigned char)*e);
		     e++)
			;
		name = xstrndup(args, (size_t)(e - args));
	}
	while (isspace((unsigned char)*e))
		e++;
	if (*e == ',')
		e++;
	while (isspace((unsigned char)*e))
		e++;
	*rest = e;
	return name;
}

/* Step 1: the section of every statement; the symbols defined. */
static int structure(struct emitter *em, struct tu *t)
{
	int cur = add_sec(t, ".text"), prev = cur;
	int stack[64];
	size_t depth = 0;

	for (size_t i = 0; i < t->nst; i++) {
		struct stmt *st = &t->st[i];
		const char *w = st->word, *rest = "";
		int to = -2;

		if (st->kind == ST_DIR) {
			if (!strcmp(w, ".text") || !strcmp(w, ".data") ||
			    !strcmp(w, ".bss")) {
				to = add_sec(t, w);
			} else if (!strcmp(w, ".section") ||
				   !strcmp(w, ".pushsection")) {
				char *name = sec_name_arg(st->args, &rest);

				to = add_sec(t, name);
				sec_declare(&t->secs[to], rest);
				free(name);
				if (w[1] == 'p') {
					if (depth == 64)
						return seterr(
							&em->er,
							"%s:%u: .pushsection nested too deep",
							t->in->asm_path,
							st->line);
					stack[depth++] = cur;
				}
			} else if (!strcmp(w, ".popsection")) {
				if (!depth)
					return seterr(
						&em->er,
						"%s:%u: .popsection without .pushsection",
						t->in->asm_path, st->line);
				to = stack[--depth];
			} else if (!strcmp(w, ".previous")) {
				to = prev;
			} else if (!strcmp(w, ".subsection")) {
				return seterr(
					&em->er,
					"%s:%u: .subsection is not supported",
					t->in->asm_path, st->line);
			}
		}
		if (to != -2) {
			st->kind = ST_SECTION;
			st->sec = to;
			if (to != cur) {
				prev = cur;
				cur = to;
			}
			continue;
		}
		st->sec = cur;
		st->next = -1;
		if (t->secs[cur].last >= 0)
			t->st[t->secs[cur].last].next = (long)i;
		else
			t->secs[cur].first = (long)i;
		t->secs[cur].last = (long)i;
		if (st->kind == ST_LABEL) {
			struct def *d;

			if (isdigit((unsigned char)st->word[0]))
				continue;
			d = get_def(t, st->word, true);
			if (d->sec != SEC_NONE)
				return seterr(&em->er,
					      "%s:%u: '%s' is defined twice",
					      t->in->asm_path, st->line,
					      st->word);
			d->sec = cur;
			d->stmt = i;
			d->label = true;
		} else if (st->kind == ST_DIR) {
			char *a[3];
			size_t n;

			if (!strcmp(w, ".globl") || !strcmp(w, ".global") ||
			    !strcmp(w, ".weak") || !strcmp(w, ".type") ||
			    !strcmp(w, ".set") || !strcmp(w, ".equ") ||
			    !strcmp(w, ".equiv")) {
				n = split_args(st->args, a, 3);
				if (n >= 1) {
					struct def *d = get_def(t, a[0], true);

					if (w[1] == 'g')
						d->global = true;
					else if (w[1] == 'w')
						d->weak = true;
					else if (w[1] == 't')
						d->func = n >= 2 &&
							  strstr(a[1],
								 "function");
					else if (d->sec == SEC_NONE)
						d->sec = cur;
				}
				free_args(a, n, 3);
			}
		}
	}
	for (size_t i = 0; i < t->ndefs; i++)
		t->defs[i].weak_ref = t->defs[i].weak &&
				      t->defs[i].sec == SEC_NONE;
	return 0;
}

/* ---- Classification -------------------------------------------------------- */

struct cls {
	enum bp_skind kind;
	const struct bp_sym *sym; /* PROGRAM: the entry */
	unsigned long sympos;
};

static bool is_local_label(const char *name)
{
	return starts(name, ".L");
}

/* Where a reference to @name from carried code goes (bp.h's rules: a
 * carried function or anything in its sections and every local label is
 * the patch's; otherwise @syms says, and what it does not list is left to
 * the dynamic linker). */
static int classify(struct emitter *em, struct tu *t, const char *name,
		    struct cls *c)
{
	const struct def *d = get_def(t, name, false);
	bool defined = d && d->sec != SEC_NONE;
	int si;

	memset(c, 0, sizeof(*c));
	if (map_get(&t->carried, name) >= 0 ||
	    (defined && t->secs[d->sec].seed)) {
		c->kind = BP_S_PATCH;
		return 0;
	}
	/* aarch64: GCC's large model already writes personality and type
	 * table pointers PC-relative and indirect, through DW.ref.SYM
	 * (hidden, comdat): the patch carries that pointer, which holds
	 * SYM's address (a .xword of data: the table or the dynamic linker
	 * fills it). */
	if (a64 && defined && starts(name, "DW.ref.")) {
		c->kind = BP_S_PATCH;
		return 0;
	}
	if (is_local_label(name)) {
		if (!defined)
			return seterr(&em->er,
				      "%s: the local label '%s' is not defined",
				      t->in->asm_path, name);
		c->kind = BP_S_PATCH;
		return 0;
	}
	si = map_get(&t->symmap, name);
	if (si >= 0) {
		c->kind = t->in->syms[si].kind;
		c->sym = &t->in->syms[si];
		c->sympos = t->in->sympos ? t->in->sympos[si] : 0;
		if (c->kind == BP_S_PATCH && !defined)
			return seterr(
				&em->er,
				"'%s' is classified as carried by the patch, but %s does not define it",
				name, t->in->asm_path);
		if (c->kind == BP_S_PROGRAM && !c->sym->prog_name)
			return seterr(
				&em->er,
				"'%s' is classified as the program's, without the program's name for it",
				name);
		return 0;
	}
	if (defined && !d->global && !d->weak) {
		const struct sec *s = &t->secs[d->sec];

		/* An unlisted constant of the unit (a switch table GCC made,
		 * CSWTCH.N) or static function (a clone this compile made
		 * and the differ's did not) can be carried; unlisted
		 * writable data cannot: a second copy would not be the
		 * program's. */
		if (!s->writable) {
			c->kind = BP_S_PATCH;
			return 0;
		}
		return seterr(
			&em->er,
			"'%s' is defined by %s but not classified: a copy in the patch would not be the program's",
			name, t->in->asm_path);
	}
	c->kind = BP_S_DYNAMIC;
	return 0;
}

/* Directives whose arguments reference symbols. */
static bool dir_refs(const char *w)
{
	static const char *const l[] = {
		".quad",    ".8byte",	 ".xword",
		".dc.a",    ".long",	 ".4byte",
		".int",	    ".value",	 ".2byte",
		".hword",   ".short",	 ".word",
		".byte",    ".1byte",	 ".uleb128",
		".sleb128", ".set",	 ".equ",
		".equiv",   ".cfi_lsda", ".cfi_personality",
		".dc.l",    ".dc.w",	 ".dc.b",
	};

	for (size_t i = 0; i < sizeof(l) / sizeof(l[0]); i++)
		if (!strcmp(w, l[i]))
			return true;
	return false;
}

static bool dir_quad(const char *w)
{
	return !strcmp(w, ".quad") || !strcmp(w, ".8byte") ||
	       !strcmp(w, ".xword") || !strcmp(w, ".dc.a");
}

static bool is_prefix(const char *w, size_t n)
{
	static const char *const pfx[] = {
		"rep",	   "repe", "repz",   "repne",  "repnz", "lock",
		"notrack", "bnd",  "data16", "addr32", "rex64", "cs",
		"ds",	   "es",   "fs",     "gs",     "ss"
	};

	for (size_t i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++)
		if (strlen(pfx[i]) == n && !strncmp(w, pfx[i], n))
			return true;
	return false;
}

/* The first identifier token of args that a statement references (for
 * .set/.equ the defined name is skipped). */
static const char *refs_start(const struct stmt *st)
{
	const char *a = st->args;

	if (st->kind == ST_DIR &&
	    (!strcmp(st->word, ".set") || !strcmp(st->word, ".equ") ||
	     !strcmp(st->word, ".equiv") || !strcmp(st->word, ".cfi_lsda") ||
	     !strcmp(st->word, ".cfi_personality"))) {
		const char *c = strchr(a, ',');

		return c ? c + 1 : "";
	}
	if (st->kind == ST_INSN && !a64) {
		/* prefixes are words too: "rep stosq", "notrack jmp *%rax" */
		const char *w = st->word;
		size_t wn = strlen(w);

		while (is_prefix(w, wn)) {
			w = a;
			for (wn = 0; a[wn] && !isspace((unsigned char)a[wn]);
			     wn++)
				;
			a += wn;
			while (isspace((unsigned char)*a))
				a++;
		}
		return a;
	}
	return a;
}

static bool stmt_refs(const struct stmt *st)
{
	if (st->kind == ST_INSN)
		return true;
	return st->kind == ST_DIR && dir_refs(st->word);
}

/* The section of a carried function holds it and its pieces only:
 * another function there means after.s was not compiled with
 * -ffunction-sections, and the patch would carry (and relocate) it too. */
static int check_one_function(struct emitter *em, struct tu *t)
{
	for (size_t i = 0; i < t->ndefs; i++) {
		const struct def *d = &t->defs[i];
		const char *dot;
		int si;

		if (!d->label || !d->func || d->sec == SEC_NONE ||
		    !t->secs[d->sec].seed || map_get(&t->carried, d->name) >= 0)
			continue;
		/* classified as the patch's (a new function) */
		si = map_get(&t->symmap, d->name);
		if (si >= 0 && t->in->syms[si].kind == BP_S_PATCH)
			continue;
		/* NAME.cold, NAME.part.N: a piece of NAME */
		dot = strchr(d->name, '.');
		if (dot) {
			char *base = xstrndup(d->name, (size_t)(dot - d->name));
			bool piece = map_get(&t->carried, base) >= 0;

			free(base);
			if (piece)
				continue;
		}
		return seterr(
			&em->er,
			"%s: the function '%s' is in %s with carried code, but the patch does not carry it (was after.s compiled with -ffunction-sections?)",
			t->in->asm_path, d->name, t->secs[d->sec].name);
	}
	return 0;
}

static const char *func_of(const struct tu *t, size_t i);

/*
 * A section named like a C identifier is a table the program finds through
 * __start_/__stop_ symbols (rewire's __rw_jump_table of static keys and
 * tracepoints, and the like). The patch cannot carry an entry that points
 * into carried code: the loaded patch would register it before its
 * relocations are applied, and without it the site would stay in its
 * initial state whatever the program set. Refused.
 */
static int check_tables(struct emitter *em, struct tu *t)
{
	for (size_t k = 0; k < t->nsecs; k++) {
		const struct sec *s = &t->secs[k];
		bool ident = isalpha((unsigned char)s->name[0]) ||
			     s->name[0] == '_';

		for (const char *p = s->name; *p && ident; p++)
			ident = isalnum((unsigned char)*p) || *p == '_';
		if (s->keep || s->skip || !ident)
			continue;
		for (long i = s->first; i >= 0; i = t->st[i].next) {
			const struct stmt *st = &t->st[i];
			size_t pos = 0;
			struct tok tk;

			if (!stmt_refs(st))
				continue;
			while (next_ident(refs_start(st), &pos, &tk)) {
				char *name = xstrndup(tk.p, tk.n);
				struct def *d = get_def(t, name, false);
				int r = 0;

				if (d && d->sec != SEC_NONE &&
				    t->secs[d->sec].keep &&
				    t->secs[d->sec].exec)
					r = seterr(
						&em->er,
						"%s:%u: the table %s points into '%s', which the patch carries (at %s): a patch cannot carry a static key, tracepoint or other site the program registers from such a table",
						t->in->asm_path, st->line,
						s->name, func_of(t, d->stmt),
						name);
				free(name);
				if (r)
					return r;
			}
		}
	}
	return 0;
}

/* Step 2: the sections to keep. */
static int select_sections(struct emitter *em, struct tu *t)
{
	int *work = xzalloc(t->nsecs * sizeof(int));
	size_t nwork = 0;
	int ret = 0;

	for (size_t i = 0; i < t->in->nfuncs; i++) {
		const char *name = t->in->funcs[i].sym;
		struct def *d = get_def(t, name, false);

		if (!d || d->sec == SEC_NONE) {
			ret = seterr(&em->er,
				     "the function '%s' is not defined in %s",
				     name, t->in->asm_path);
			goto out;
		}
		if (!t->secs[d->sec].exec) {
			ret = seterr(&em->er,
				     "'%s' is not in a code section of %s",
				     name, t->in->asm_path);
			goto out;
		}
		t->secs[d->sec].seed = true;
	}
	for (size_t i = 0; i < t->nsecs; i++) {
		struct sec *s = &t->secs[i];

		if (s->seed && !s->keep) {
			s->keep = true;
			work[nwork++] = (int)i;
		}
	}
	/* The cold part of a carried function (.text.unlikely.NAME) is
	 * reached by jumps to its local labels: the walk finds it. */
	while (nwork) {
		int si = work[--nwork];

		for (long i = t->secs[si].first; i >= 0; i = t->st[i].next) {
			const struct stmt *st = &t->st[i];
			const char *a;
			struct tok tk;
			size_t pos = 0;

			if (!stmt_refs(st))
				continue;
			a = refs_start(st);
			while (next_ident(a, &pos, &tk)) {
				char *name = xstrndup(tk.p, tk.n);
				struct def *d = get_def(t, name, false);
				struct cls c;

				/* aarch64: GCC's own DW.ref.* indirection is
				 * kept (see classify) */
				if (!a64 && st->kind == ST_DIR &&
				    !strcmp(st->word, ".cfi_personality")) {
					free(name);
					continue;
				}
				ret = classify(em, t, name, &c);
				free(name);
				if (ret)
					goto out;
				if (c.kind != BP_S_PATCH || !d ||
				    d->sec == SEC_NONE)
					continue;
				if (t->secs[d->sec].skip) {
					ret = seterr(
						&em->er,
						"%s:%u: '%.*s' is in %s, which a patch cannot carry",
						t->in->asm_path, st->line,
						(int)tk.n, tk.p,
						t->secs[d->sec].name);
					goto out;
				}
				if (!t->secs[d->sec].keep) {
					t->secs[d->sec].keep = true;
					work[nwork++] = d->sec;
				}
			}
		}
	}
	if (!ret)
		ret = check_one_function(em, t);
	if (!ret)
		ret = check_tables(em, t);
out:
	free(work);
	return ret;
}

/* ---- Emission --------------------------------------------------------------- */

/* The name a symbol of unit t has in gen.s. */
static bool renamed(const struct tu *t, const char *p, size_t n)
{
	char *name;
	struct def *d;
	bool r;

	if (!t->rename)
		return false;
	name = xstrndup(p, n);
	d = get_def((struct tu *)t, name, false);
	r = d && d->sec != SEC_NONE && !d->global && !d->weak;
	free(name);
	return r;
}

/* Write s with the unit's local symbols renamed (from s on; the part
 * before @from is written as it is). */
static void put_renamed(FILE *f, const struct tu *t, const char *s,
			const char *from)
{
	size_t pos = (size_t)(from - s), last = 0;
	struct tok tk;

	while (next_ident(s, &pos, &tk)) {
		size_t b = (size_t)(tk.p - s);

		if (!renamed(t, tk.p, tk.n))
			continue;
		fwrite(s + last, 1, b + tk.n - last, f);
		fprintf(f, ".rwtu%u", t->index);
		last = b + tk.n;
	}
	fputs(s + last, f);
}

static char *renamed_str(const struct tu *t, const char *s)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f) {
		fputs("rewire: out of memory\n", stderr);
		exit(1);
	}
	put_renamed(f, t, s, s);
	fclose(f);
	return buf;
}

static const char *sec_out_name(const struct sec *s, char *buf, size_t n)
{
	if (s->relro) {
		snprintf(buf, n, ".data.rel.ro%s%s",
			 s->name[0] == '.' ? "" : ".", s->name);
		return buf;
	}
	return s->name;
}

static void put_section(FILE *f, const struct sec *s)
{
	char buf[1024];
	const char *name = sec_out_name(s, buf, sizeof(buf));

	if (s->relro) {
		if (s->group)
			fprintf(f,
				"\t.section\t%s,\"awG\",@progbits,%s,comdat\n",
				name, s->group);
		else
			fprintf(f, "\t.section\t%s,\"aw\",@progbits\n", name);
	} else if (s->attrs) {
		fprintf(f, "\t.section\t%s,%s\n", name, s->attrs);
	} else if (!strcmp(name, ".text") || !strcmp(name, ".data") ||
		   !strcmp(name, ".bss")) {
		fprintf(f, "\t%s\n", name);
	} else {
		fprintf(f, "\t.section\t%s\n", name);
	}
}

/* SYM, SYM+N or SYM-N: the symbol and the addend, for an entry by name. */
static bool parse_sym_addend(const char *s, char **sym, long *addend)
{
	const char *p = s;
	char *end;

	while (isspace((unsigned char)*p))
		p++;
	if (!id_start((unsigned char)*p))
		return false;
	while (id_char((unsigned char)*p))
		p++;
	*sym = xstrndup(s, (size_t)(p - s));
	*addend = 0;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return true;
	if (*p != '+' && *p != '-')
		goto bad;
	errno = 0;
	*addend = strtol(p, &end, 0);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end)
		goto bad;
	return true;
bad:
	free(*sym);
	*sym = NULL;
	return false;
}

/* An aarch64 relocation operator of thread-local storage (:tprel_hi12:,
 * :gottprel:, :tlsdesc_lo12:, :dtprel_g1:, :tlsgd:, :tlsld:...). */
static bool a64_tls_mod(const struct tok *tk)
{
	static const char *const tls[] = { ":tprel",   ":dtprel", ":gottprel",
					   ":tlsdesc", ":tlsgd",  ":tlsld" };

	for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
		if (tk->modn > strlen(tls[i]) &&
		    !strncasecmp(tk->mod, tls[i], strlen(tls[i])))
			return true;
	return false;
}

/* aarch64: :lo12: of a symbol the patch carries (the page offset that
 * completes an ADRP: PC-relative in the patch, resolved by the link). */
static bool a64_lo12(const struct tok *tk)
{
	return tk->mod && tk->modn == 6 && !strncasecmp(tk->mod, ":lo12:", 6);
}

/* An operand with a relocation modifier (sym@tpoff, sym@GOTOFF; aarch64
 * :tprel_lo12:sym, :got:sym): thread-local storage, or code that was not
 * compiled -mcmodel=large -fno-pic. */
static int mod_error(struct emitter *em, const struct tu *t, unsigned line,
		     const char *fn, const char *text, const struct tok *tk)
{
	static const char *const tls[] = {
		"@tpoff", "@ntpoff", "@gottpoff", "@indntpoff", "@tlsgd",
		"@tlsld", "@dtpoff", "@tlsdesc",  "@tlscall"
	};

	if (a64 && a64_tls_mod(tk))
		return seterr(
			&em->er,
			"%s:%u: in '%s', '%s' references the thread-local '%.*s' (%.*s): a live patch cannot reach the program's thread-local storage",
			t->in->asm_path, line, fn, text, (int)tk->n, tk->p,
			(int)tk->modn, tk->mod);
	if (a64)
		return seterr(
			&em->er,
			"%s:%u: in '%s', '%s': '%.*s%.*s' is a relocation the emitter cannot carry (was after.s compiled with -mcmodel=large -fno-pic?)",
			t->in->asm_path, line, fn, text, (int)tk->modn, tk->mod,
			(int)tk->n, tk->p);

	for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
		if (strlen(tls[i]) == tk->modn &&
		    !strncasecmp(tk->mod, tls[i], tk->modn))
			return seterr(
				&em->er,
				"%s:%u: in '%s', '%s' references the thread-local '%.*s' (%.*s): a live patch cannot reach the program's thread-local storage",
				t->in->asm_path, line, fn, text, (int)tk->n,
				tk->p, (int)tk->modn, tk->mod);
	return seterr(
		&em->er,
		"%s:%u: in '%s', '%s': '%.*s%.*s' is a relocation the emitter cannot carry (was after.s compiled with -mcmodel=large -fno-pic?)",
		t->in->asm_path, line, fn, text, (int)tk->n, tk->p,
		(int)tk->modn, tk->mod);
}

/* The enclosing function of statement i, for messages. */
static const char *func_of(const struct tu *t, size_t i)
{
	int sec = t->st[i].sec;

	for (size_t j = i + 1; j-- > 0;) {
		const struct stmt *s = &t->st[j];

		if (s->kind == ST_LABEL && s->sec == sec && s->word[0] != '.' &&
		    !isdigit((unsigned char)s->word[0])) {
			struct def *d = get_def((struct tu *)t, s->word, false);

			if (d && d->func)
				return s->word;
		}
	}
	return t->secs[sec].name;
}

static unsigned add_site(struct emitter *em, const struct site *s)
{
	em->sites = xgrow(em->sites, &em->capsites, em->nsites + 1,
			  sizeof(*em->sites));
	em->sites[em->nsites] = *s;
	return (unsigned)em->nsites++;
}

/* A symbolic operand that becomes a table entry: returns its index, or -1
 * with the error set. */
static int make_site(struct emitter *em, struct tu *t, size_t i,
		     const char *expr, bool data)
{
	struct site s = { .tu = t->index, .data = data };
	bool st = i != SIZE_MAX; /* else: a DW.ref.* pointer */
	unsigned line = st ? t->st[i].line : 0;
	const char *fn = st ? func_of(t, i) : "exception data";
	const char *text = st ? t->st[i].text : expr;
	size_t pos = 0;
	struct tok tk;
	struct cls c;
	char *name;
	int nsym = 0;

	/* the one symbol of the expression decides the kind */
	s.kind = BP_S_PATCH;
	while (next_ident(expr, &pos, &tk)) {
		if (tk.mod)
			return mod_error(em, t, line, fn, text, &tk);
		name = xstrndup(tk.p, tk.n);
		if (classify(em, t, name, &c)) {
			free(name);
			return -1;
		}
		free(name);
		if (c.kind == BP_S_PROGRAM) {
			s.kind = BP_S_PROGRAM;
			s.sympos = c.sympos;
			s.name = xstrdup(c.sym->prog_name);
		} else if (c.kind == BP_S_DYNAMIC && s.kind != BP_S_PROGRAM) {
			s.kind = BP_S_DYNAMIC;
		}
		nsym++;
	}
	if (s.kind == BP_S_PROGRAM) {
		char *sym;

		if (nsym != 1 || !parse_sym_addend(expr, &sym, &s.addend)) {
			free(s.name);
			return seterr(
				&em->er,
				"%s:%u: in '%s', '%s': only SYMBOL+OFFSET can refer to the program",
				t->in->asm_path, line, fn, text);
		}
		free(sym);
	} else {
		s.target = renamed_str(t, expr);
	}
	return (int)add_site(em, &s);
}

static bool expr_has_symbol(const char *expr)
{
	size_t pos = 0;
	struct tok tk;

	return next_ident(expr, &pos, &tk);
}

/* The section of unit t a symbol is defined in (kept), or NULL. */
static const struct sec *kept_def_sec(struct tu *t, const char *name)
{
	struct def *d = get_def(t, name, false);

	if (!d || d->sec == SEC_NONE || !t->secs[d->sec].keep)
		return NULL;
	return &t->secs[d->sec];
}

static void need_dwref(struct emitter *em, struct tu *t, const char *sym)
{
	if (map_get(&em->dwrefmap, sym) >= 0)
		return;
	em->dwrefs = xgrow(em->dwrefs, &em->capdwrefs, em->ndwrefs + 1,
			   sizeof(*em->dwrefs));
	em->dwrefs[em->ndwrefs].sym = xstrdup(sym);
	em->dwrefs[em->ndwrefs].tu = t->index;
	map_put(&em->dwrefmap, em->dwrefs[em->ndwrefs].sym, (int)em->ndwrefs);
	em->ndwrefs++;
}

/* aarch64 instructions whose operands name no symbol (system registers,
 * cache and barrier operations, hints): not scanned. */
static bool a64_no_symbols(const char *w)
{
	static const char *const l[] = {
		"mrs", "msr",  "sys",  "sysl", "dc",  "ic",  "tlbi", "at",
		"dmb", "dsb",  "isb",  "hint", "bti", "nop", "ret",  "eret",
		"sb",  "csdb", "ssbb", "wfe",  "wfi", "sev", "sevl", "yield",
	};

	for (size_t k = 0; k < sizeof(l) / sizeof(l[0]); k++)
		if (!strcmp(w, l[k]))
			return true;
	return false;
}

/*
 * Check an instruction that is not a movabs (aarch64: not a call the
 * emitter rewrote): every symbol it names must be the patch's own (a
 * local label or a carried symbol: the link resolves it PC-relative),
 * and no thread-local operand.
 */
static int check_insn(struct emitter *em, struct tu *t, size_t i)
{
	const struct stmt *st = &t->st[i];
	const char *a = refs_start(st);
	size_t pos = 0;
	struct tok tk;

	if (a64 && a64_no_symbols(st->word))
		return 0;
	while (next_ident(a, &pos, &tk)) {
		char *name = xstrndup(tk.p, tk.n);
		struct cls c;
		int r;

		if (tk.mod && !(a64 && a64_lo12(&tk))) {
			free(name);
			return mod_error(em, t, st->line, func_of(t, i),
					 st->text, &tk);
		}
		r = classify(em, t, name, &c);
		if (!r && (c.kind != BP_S_PATCH || !kept_def_sec(t, name)))
			r = seterr(
				&em->er,
				a64 ? "%s:%u: in '%s', '%s' references '%s', which the patch does not carry: on aarch64 only a call (bl), a tail call (b) and a literal pool's .xword can reach the program (was after.s compiled with -mcmodel=large -fno-pic?)"
				    : "%s:%u: in '%s', '%s' references '%s', which the patch does not carry, and only a movabs operand can be relocated (was after.s compiled with -mcmodel=large -fno-pic?)",
				t->in->asm_path, st->line, func_of(t, i),
				st->text, name);
		free(name);
		if (r)
			return r;
	}
	return 0;
}

/* Emit a movabs: the symbolic operand becomes 0 (gen.s) or stays (the
 * check copy), a label follows. */
static int emit_movabs(struct emitter *em, struct tu *t, size_t i, FILE *f,
		       bool check, unsigned *site)
{
	const struct stmt *st = &t->st[i];
	char *a[3];
	size_t n = split_args(st->args, a, 3);
	int which = -1, r = 0;

	if (n != 2) {
		r = seterr(&em->er, "%s:%u: unexpected movabs '%s'",
			   t->in->asm_path, st->line, st->text);
		goto out;
	}
	if (a[0][0] == '$' && expr_has_symbol(a[0] + 1))
		which = 0;
	else if (a[0][0] != '$' && a[0][0] != '%' && expr_has_symbol(a[0]))
		which = 0; /* moffs load */
	else if (a[1][0] != '%' && expr_has_symbol(a[1]))
		which = 1; /* moffs store */
	if (which < 0) {
		fputc('\t', f);
		put_renamed(f, t, st->text, st->text);
		fputc('\n', f);
		goto out;
	}
	if (!check && make_site(em, t, i, a[which] + (a[which][0] == '$'),
				false) != (int)*site) {
		r = -1;
		goto out;
	}
	fprintf(f, "\t%s\t", st->word);
	for (int k = 0; k < 2; k++) {
		if (k)
			fputs(", ", f);
		if (k != which)
			put_renamed(f, t, a[k], a[k]);
		else if (check)
			put_renamed(f, t, a[k], a[k]);
		else
			fputs(a[k][0] == '$' ? "$0" : "0", f);
	}
	fprintf(f, "\n.Lrwr_%u:\n", (*site)++);
out:
	free_args(a, n, 3);
	return r;
}

/* aarch64: the literals of the calls rewritten in one unit, emitted at the
 * end of the caller's section (LDR literal reaches +-1 MiB). */
struct a64_lit {
	int sec;
	unsigned site;
	char *expr; /* the target, renamed (for the check copy) */
};

struct a64_lits {
	struct a64_lit *v;
	size_t n, cap;
};

/*
 * aarch64: a call (bl SYM) or tail call (b SYM). To code the patch carries
 * it stays as it is; to anything else (the program's function, a
 * library's) it becomes
 *
 *	ldr	x16, .Lrwr_N	// the target, from the table
 *	blr	x16		// b: br x16
 *
 * with .Lrwr_N an 8-byte literal at the end of the section that the
 * relocation table fills: a BL reaches +-128 MiB, and the patch is mapped
 * wherever the dynamic linker put it. x16 (IP0) is free at any call or
 * tail call: a linker's veneer or PLT stub may clobber it there. A BLR, or
 * a BR from x16, lands on the BTI C (or PACIASP) that begins a function
 * whose address can be taken (the driver deals with static functions
 * without one).
 */
static int emit_a64_call(struct emitter *em, struct tu *t, size_t i, FILE *f,
			 bool check, unsigned *site, struct a64_lits *ls)
{
	const struct stmt *st = &t->st[i];
	bool call = !strcmp(st->word, "bl");
	struct a64_lit *l;
	struct cls c;
	char *sym;
	long add;

	/* b 1f, b .L3+4...: only SYMBOL or SYMBOL+OFFSET is a call */
	if (!parse_sym_addend(st->args, &sym, &add)) {
		fputc('\t', f);
		put_renamed(f, t, st->text, st->text);
		fputc('\n', f);
		return 0;
	}
	if (classify(em, t, sym, &c)) {
		free(sym);
		return -1;
	}
	if (c.kind == BP_S_PATCH && kept_def_sec(t, sym)) {
		free(sym);
		fputc('\t', f);
		put_renamed(f, t, st->text, st->text);
		fputc('\n', f);
		return 0;
	}
	free(sym);
	if (!check && make_site(em, t, i, st->args, true) != (int)*site)
		return -1;
	ls->v = xgrow(ls->v, &ls->cap, ls->n + 1, sizeof(*ls->v));
	l = &ls->v[ls->n++];
	l->sec = st->sec;
	l->site = *site;
	l->expr = renamed_str(t, st->args);
	fprintf(f, "\tldr\tx16, .Lrwr_%u\n\t%s\tx16\n", (*site)++,
		call ? "blr" : "br");
	return 0;
}

static void put_a64_lits(FILE *f, struct tu *t, struct a64_lits *ls, bool check)
{
	int cur = SEC_NONE;

	for (size_t k = 0; k < ls->n; k++) {
		const struct a64_lit *l = &ls->v[k];

		if (l->sec != cur) {
			put_section(f, &t->secs[l->sec]);
			cur = l->sec;
		}
		fprintf(f, "\t.balign\t8\n.Lrwr_%u:\n\t.xword\t%s\n", l->site,
			check ? l->expr : "0");
		free(l->expr);
	}
	free(ls->v);
	memset(ls, 0, sizeof(*ls));
}

/*
 * aarch64: a .xword in code, GCC's literal pool (-mcmodel=large loads
 * every address from one: adrp x0, .LC0; ldr x0, [x0, #:lo12:.LC0] with
 * .LC0: .xword SYM). Every value naming one symbol becomes 0 behind a
 * label and a table entry, the patch's own symbols too: the dynamic
 * linker cannot write into code (-z text).
 */
static int emit_a64_pool(struct emitter *em, struct tu *t, size_t i, FILE *f,
			 bool check, unsigned *site)
{
	const struct stmt *st = &t->st[i];
	char *a[64];
	size_t n = split_args(st->args, a, 64);
	int r = 0;

	if (n > 64) {
		r = seterr(&em->er, "%s:%u: too many values in one directive",
			   t->in->asm_path, st->line);
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		size_t pos = 0, nsym = 0;
		struct tok tk;

		while (next_ident(a[k], &pos, &tk)) {
			if (tk.mod) {
				r = seterr(
					&em->er,
					"%s:%u: '%s' in %s: a relocation '%.*s' the patch cannot carry",
					t->in->asm_path, st->line, st->text,
					t->secs[st->sec].name, (int)tk.modn,
					tk.mod);
				goto out;
			}
			nsym++;
		}
		if (nsym != 1) {
			/* a constant, or a difference of labels (the check
			 * of the assembled copy sees any relocation) */
			fprintf(f, "\t%s\t", st->word);
			put_renamed(f, t, a[k], a[k]);
			fputc('\n', f);
			continue;
		}
		if (!check && make_site(em, t, i, a[k], true) != (int)*site) {
			r = -1;
			goto out;
		}
		fprintf(f, ".Lrwr_%u:\n\t.xword\t", (*site)++);
		if (check)
			put_renamed(f, t, a[k], a[k]);
		else
			fputc('0', f);
		fputc('\n', f);
	}
out:
	free_args(a, n, 64);
	return r;
}

/* A .quad (or another data directive) in kept data. */
static int emit_data(struct emitter *em, struct tu *t, size_t i, FILE *f,
		     bool check, unsigned *site)
{
	const struct stmt *st = &t->st[i];
	const struct sec *sec = &t->secs[st->sec];
	char *a[64];
	size_t n = split_args(st->args, a, 64);
	int r = 0;

	if (n > 64) {
		r = seterr(&em->er, "%s:%u: too many values in one directive",
			   t->in->asm_path, st->line);
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		const char *x = a[k];
		size_t pos = 0;
		struct tok tk;
		struct cls c = { .kind = BP_S_PATCH };
		bool sym = false;

		while (next_ident(x, &pos, &tk)) {
			char *name = xstrndup(tk.p, tk.n);
			struct cls ck;

			if (tk.mod) {
				r = seterr(
					&em->er,
					"%s:%u: '%s' in %s: a relocation '%.*s' the patch cannot carry",
					t->in->asm_path, st->line, st->text,
					sec->name, (int)tk.modn, tk.mod);
				free(name);
				goto out;
			}
			r = classify(em, t, name, &ck);
			free(name);
			if (r)
				goto out;
			if (ck.kind != BP_S_PATCH)
				c = ck;
			sym = true;
		}
		if (!a64 && sec->except &&
		    (dir_quad(st->word) || (sym && !strchr(x, '-') &&
					    (!strcmp(st->word, ".long") ||
					     !strcmp(st->word, ".4byte"))))) {
			/* the type table: absptr (udata4) -> pcrel|sdata4|
			 * indirect */
			if (!sym) {
				fprintf(f, "\t.long\t%s\n", x);
			} else {
				char *s;
				long add;

				if (!parse_sym_addend(x, &s, &add) || add) {
					r = seterr(
						&em->er,
						"%s:%u: unexpected type table entry '%s'",
						t->in->asm_path, st->line, x);
					goto out;
				}
				need_dwref(em, t, s);
				fprintf(f, "\t.long\tDW.ref.%s-.\n", s);
				free(s);
			}
			continue;
		}
		if (!sym || c.kind == BP_S_PATCH || c.kind == BP_S_DYNAMIC) {
			if (sym && !dir_quad(st->word) &&
			    c.kind != BP_S_PATCH) {
				r = seterr(
					&em->er,
					"%s:%u: '%s' in %s: a reference to a symbol outside the patch must be 64 bits",
					t->in->asm_path, st->line, st->text,
					sec->name);
				goto out;
			}
			fprintf(f, "\t%s\t", st->word);
			put_renamed(f, t, x, x);
			fputc('\n', f);
			continue;
		}
		/* BP_S_PROGRAM */
		if (!dir_quad(st->word)) {
			r = seterr(
				&em->er,
				"%s:%u: '%s' in %s: a reference to the program's '%s' must be 64 bits",
				t->in->asm_path, st->line, st->text, sec->name,
				c.sym->name);
			goto out;
		}
		if (!check && make_site(em, t, i, x, true) != (int)*site) {
			r = -1;
			goto out;
		}
		fprintf(f, ".Lrwr_%u:\n\t.quad\t%s\n", (*site)++,
			check ? x : "0");
	}
out:
	free_args(a, n, 64);
	return r;
}

/* Does the kept data section hold a 64-bit reference the dynamic linker
 * resolves (then it must be writable at load: .data.rel.ro)? */
static int mark_relro(struct emitter *em, struct tu *t)
{
	for (size_t i = 0; i < t->nst; i++) {
		const struct stmt *st = &t->st[i];
		struct sec *s = &t->secs[st->sec];
		size_t pos = 0;
		struct tok tk;

		if (st->kind != ST_DIR || !s->keep || s->exec || s->writable ||
		    s->except || !dir_quad(st->word))
			continue;
		while (next_ident(st->args, &pos, &tk)) {
			char *name = xstrndup(tk.p, tk.n);
			struct cls c;
			int r = classify(em, t, name, &c);

			free(name);
			if (r)
				return r;
			if (c.kind != BP_S_PROGRAM)
				s->relro = true;
		}
	}
	return 0;
}

/* A comdat group an earlier unit emitted is dropped here. */
static void dedup_groups(struct emitter *em, struct tu *t)
{
	for (size_t i = 0; i < t->nsecs; i++) {
		struct sec *s = &t->secs[i];
		int g;

		if (!s->keep || !s->group)
			continue;
		g = map_get(&em->groups, s->group);
		if (g >= 0 && (unsigned)g != t->index)
			s->keep = false;
		else
			map_put(&em->groups, s->group, (int)t->index);
	}
}

/* .LLSDA1220 or .LLSDAC1220 (a cold part's): the start of an LSDA. */
static bool is_lsda_start(const char *name)
{
	const char *p = name + 6;

	if (!starts(name, ".LLSDA"))
		return false;
	if (*p == 'C')
		p++;
	if (!*p)
		return false;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

/* Emit unit t into f: gen.s (check false) or the check copy. Sites are
 * numbered from *site on, in the same order in both passes. */
static int emit_tu(struct emitter *em, struct tu *t, FILE *f, bool check,
		   unsigned *site)
{
	struct a64_lits lits = { 0 };
	int cur = SEC_NONE, lsda = 0, ret = -1;

	fprintf(f, "\n/* %s */\n", t->in->asm_path);
	for (size_t i = 0; i < t->nst; i++) {
		const struct stmt *st = &t->st[i];
		const struct sec *s = &t->secs[st->sec];
		const char *w = st->word;

		if (st->kind == ST_SECTION || !s->keep)
			continue;
		if (st->sec != cur) {
			put_section(f, s);
			cur = st->sec;
		}
		if (st->kind == ST_LABEL) {
			put_renamed(f, t, st->text, st->text);
			fputc('\n', f);
			if (s->except && is_lsda_start(st->word))
				lsda = 1;
			continue;
		}
		if (st->kind == ST_INSN) {
			if (!a64 && starts(w, "movabs")) {
				if (emit_movabs(em, t, i, f, check, site))
					goto out;
				continue;
			}
			if (a64 && (!strcmp(w, "bl") || !strcmp(w, "b"))) {
				if (emit_a64_call(em, t, i, f, check, site,
						  &lits))
					goto out;
				continue;
			}
			if (check_insn(em, t, i))
				goto out;
			fputc('\t', f);
			put_renamed(f, t, st->text, st->text);
			fputc('\n', f);
			continue;
		}
		/* directives */
		if (!strcmp(w, ".globl") || !strcmp(w, ".global") ||
		    !strcmp(w, ".weak") || !strcmp(w, ".hidden") ||
		    !strcmp(w, ".protected") || !strcmp(w, ".internal") ||
		    !strcmp(w, ".local") || !strcmp(w, ".ident") ||
		    !strcmp(w, ".file"))
			continue;
		if (!a64 && (!strcmp(w, ".cfi_personality") ||
			     !strcmp(w, ".cfi_lsda"))) {
			char *a[2];
			size_t n = split_args(st->args, a, 2);

			/* absolute encodings (absptr in the large model,
			 * udata4 in the small one) become GCC's -fPIC ones */
			long enc = n == 2 ? strtol(a[0], NULL, 0) : 0x9b;

			if (n == 2 && (w[5] == 'p' ? enc != 0x9b
						   : (enc & 0x70) != 0x10)) {
				if (w[5] == 'p') {
					need_dwref(em, t, a[1]);
					fprintf(f,
						"\t.cfi_personality 0x9b,DW.ref.%s\n",
						a[1]);
				} else {
					fputs("\t.cfi_lsda 0x1b,", f);
					put_renamed(f, t, a[1], a[1]);
					fputc('\n', f);
				}
			} else {
				fputc('\t', f);
				put_renamed(f, t, st->text, st->text);
				fputc('\n', f);
			}
			free_args(a, n, 2);
			continue;
		}
		if (!a64 && s->except && lsda && !strcmp(w, ".byte")) {
			/* LSDA header: LPStart encoding, then TType's */
			long enc = strtol(st->args, NULL, 0);

			if (lsda == 2 && enc != 0xff && (enc & 0x70) != 0x10) {
				fputs("\t.byte\t0x9b\n", f);
				lsda = 0;
				continue;
			}
			lsda = lsda == 1 ? 2 : 0;
		}
		if (a64 && s->exec && st->kind == ST_DIR && dir_quad(w)) {
			if (emit_a64_pool(em, t, i, f, check, site))
				goto out;
			continue;
		}
		if (st->kind == ST_DIR && dir_refs(w) && strcmp(w, ".set") &&
		    strcmp(w, ".equ") && strcmp(w, ".equiv") &&
		    !starts(w, ".cfi") && !s->exec) {
			if (emit_data(em, t, i, f, check, site))
				goto out;
			continue;
		}
		fputc('\t', f);
		put_renamed(f, t, st->text, st->text);
		fputc('\n', f);
	}
	put_a64_lits(f, t, &lits, check);
	/* visibility: what stays is hidden; weak references stay weak */
	for (size_t i = 0; i < t->ndefs; i++) {
		const struct def *d = &t->defs[i];

		if (d->sec != SEC_NONE && t->secs[d->sec].keep &&
		    (d->global || d->weak))
			fprintf(f, "\t%s\t%s\n\t.hidden\t%s\n",
				d->weak ? ".weak" : ".globl", d->name, d->name);
		else if (d->weak_ref)
			fprintf(f, "\t.weak\t%s\n", d->name);
	}
	return 0;
out:
	for (size_t k = 0; k < lits.n; k++)
		free(lits.v[k].expr);
	free(lits.v);
	return ret;
}

/* ---- The tail of gen.s: aliases, DW.ref pointers, table, binding --------- */

static void put_gas_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\%03o", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void emit_dwrefs(struct emitter *em, FILE *f, bool check, unsigned *site,
			int *ret)
{
	for (size_t i = 0; i < em->ndwrefs && !*ret; i++) {
		const struct dwref *d = &em->dwrefs[i];
		struct tu *t = &em->tus[d->tu];
		struct cls c;
		char *target;

		fprintf(f,
			"\t.hidden\tDW.ref.%s\n\t.weak\tDW.ref.%s\n"
			"\t.section\t.data.rel.local.DW.ref.%s,\"awG\",@progbits,DW.ref.%s,comdat\n"
			"\t.align\t8\n\t.type\tDW.ref.%s, @object\n"
			"\t.size\tDW.ref.%s, 8\nDW.ref.%s:\n",
			d->sym, d->sym, d->sym, d->sym, d->sym, d->sym, d->sym);
		if (classify(em, t, d->sym, &c)) {
			*ret = -1;
			return;
		}
		if (c.kind != BP_S_PROGRAM) {
			target = renamed_str(t, d->sym);
			fprintf(f, "\t.quad\t%s\n", target);
			free(target);
			continue;
		}
		if (!check &&
		    make_site(em, t, SIZE_MAX, d->sym, true) != (int)*site) {
			*ret = -1;
			return;
		}
		fprintf(f, ".Lrwr_%u:\n\t.quad\t%s\n", (*site)++,
			check ? d->sym : "0");
	}
}

/* The bind.h text: escape %, tab, newline and CR in a field. */
static void put_bind_field(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '%' || *s == '\t' || *s == '\n' || *s == '\r')
			fprintf(f, "%%%02X", (unsigned char)*s);
		else
			fputc(*s, f);
	}
}

static char *bind_text(const struct bp_emit *e, size_t *len)
{
	const char *obj = e->object ? e->object : "";
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f) {
		fputs("rewire: out of memory\n", stderr);
		exit(1);
	}
	fputs("rewire-bind\t1\nobject\t", f);
	put_bind_field(f, obj);
	fputc('\t', f);
	if (e->build_id && e->build_id_len)
		for (size_t i = 0; i < e->build_id_len; i++)
			fprintf(f, "%02x", e->build_id[i]);
	else
		fputc('-', f);
	fputc('\n', f);
	for (size_t k = 0; k < e->ntus; k++) {
		for (size_t i = 0; i < e->tus[k].nfuncs; i++) {
			const struct bp_emit_func *fn = &e->tus[k].funcs[i];

			if (!fn->replace)
				continue;
			fputs("func\t", f);
			put_bind_field(f, obj);
			fputc('\t', f);
			put_bind_field(f, fn->old_name);
			fprintf(f, "\t%lu\t%lu\t%016" PRIx64 "\n", fn->sympos,
				fn->old_size, fn->old_hash);
		}
	}
	fclose(f);
	return buf;
}

static void emit_table(struct emitter *em, FILE *f)
{
	const char *obj = em->e->object ? em->e->object : "";
	char *bind;
	size_t blen;

	fputs("\n/* strings of the relocation table */\n"
	      "\t.section\t.rodata.rw_strs,\"a\",@progbits\n.Lrws_obj:\n"
	      "\t.string\t",
	      f);
	put_gas_string(f, obj, strlen(obj));
	fputc('\n', f);
	for (size_t i = 0; i < em->nsites; i++) {
		if (em->sites[i].kind != BP_S_PROGRAM)
			continue;
		fprintf(f, ".Lrws_%zu:\n\t.string\t", i);
		put_gas_string(f, em->sites[i].name, strlen(em->sites[i].name));
		fputc('\n', f);
	}
	fprintf(f,
		"\n/* struct rw_patch_reloc[%zu]: where, object, name, sympos, addend, target, type, flags */\n"
		"\t.section\t.data.rel.ro.rw_relocs,\"aw\",@progbits\n"
		"\t.balign\t8\n\t.globl\trw_bp_relocs\n\t.hidden\trw_bp_relocs\n"
		"\t.type\trw_bp_relocs, @object\n\t.size\trw_bp_relocs, %zu\n"
		"rw_bp_relocs:\n",
		em->nsites, em->nsites * RELOC_SIZE);
	for (size_t i = 0; i < em->nsites; i++) {
		const struct site *s = &em->sites[i];

		if (s->data)
			fprintf(f, "\t.quad\t.Lrwr_%zu\n", i);
		else
			fprintf(f, "\t.quad\t.Lrwr_%zu - 8\n", i);
		if (s->kind == BP_S_PROGRAM)
			fprintf(f,
				"\t.quad\t.Lrws_obj\n\t.quad\t.Lrws_%zu\n"
				"\t.quad\t%lu\n\t.quad\t%ld\n\t.quad\t0\n",
				i, s->sympos, s->addend);
		else
			fprintf(f,
				"\t.quad\t0\n\t.quad\t0\n\t.quad\t0\n\t.quad\t0\n"
				"\t.quad\t%s\n",
				s->target);
		fprintf(f, "\t.long\t%u\n\t.long\t0\n", RELOC_ABS64);
	}
	if (!em->nsites)
		fputs("\t.zero\t8\n", f);

	bind = bind_text(em->e, &blen);
	fputs("\n/* the binding (src/livepatch/bind.h) */\n"
	      "\t.section\t.rewire.bind,\"\",@progbits\n",
	      f);
	for (size_t off = 0; off < blen;) {
		const char *nl = memchr(bind + off, '\n', blen - off);
		size_t n = nl ? (size_t)(nl - bind - off) + 1 : blen - off;

		fputs("\t.ascii\t", f);
		put_gas_string(f, bind + off, n);
		fputc('\n', f);
		off += n;
	}
	free(bind);
}

/* Everything after the units: aliases, DW.ref pointers, notes; the table
 * and the binding in gen.s only. */
static int emit_tail(struct emitter *em, FILE *f, bool check, unsigned *site)
{
	unsigned n = 0;
	int ret = 0;
	bool prop = true;

	fputs("\n/* the carried functions, for the descriptor */\n", f);
	for (size_t k = 0; k < em->ntus; k++) {
		struct tu *t = &em->tus[k];

		for (size_t i = 0; i < t->in->nfuncs; i++, n++) {
			char *name = renamed_str(t, t->in->funcs[i].sym);

			fprintf(f,
				"\t.globl\trw_new_%u\n\t.hidden\trw_new_%u\n"
				"\t.type\trw_new_%u, @function\n"
				"\t.set\trw_new_%u, %s\n",
				n, n, n, n, name);
			free(name);
		}
		prop &= t->has_property;
	}
	emit_dwrefs(em, f, check, site, &ret);
	if (ret)
		return ret;
	if (!check)
		emit_table(em, f);
	fputs("\n\t.section\t.note.GNU-stack,\"\",@progbits\n", f);
	/* The CET property holds only if every unit had it. */
	if (prop && em->ntus) {
		struct tu *t = &em->tus[0];

		fputs("\t.section\t.note.gnu.property,\"a\"\n", f);
		for (size_t i = 0; i < t->nst; i++)
			if (t->st[i].sec == t->prop_sec &&
			    t->st[i].kind != ST_SECTION)
				fprintf(f, "%s%s\n",
					t->st[i].kind == ST_LABEL ? "" : "\t",
					t->st[i].text);
	}
	return 0;
}

/* ---- gen.c ------------------------------------------------------------------ */

static void put_c_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\%03o", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int write_gen_c(struct emitter *em, FILE *f)
{
	const struct bp_emit *e = em->e;
	const char *obj = e->object ? e->object : "";
	unsigned n = 0;

	fputs("/* Generated by rewire build-patch: the descriptor of the patch\n"
	      " * whose code is gen.s. */\n"
	      "#include <rewire/patch.h>\n\n"
	      "_Static_assert(sizeof(struct rw_patch_reloc) == 56 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, where) == 0 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, object) == 8 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, name) == 16 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, sympos) == 24 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, addend) == 32 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, target) == 40 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, type) == 48 &&\n"
	      "\t       offsetof(struct rw_patch_reloc, flags) == 52,\n"
	      "\t       \"gen.s writes struct rw_patch_reloc field by field\");\n\n"
	      "#define RW_BP_HIDDEN __attribute__((visibility(\"hidden\")))\n\n",
	      f);
	for (size_t k = 0; k < e->ntus; k++)
		for (size_t i = 0; i < e->tus[k].nfuncs; i++, n++)
			if (e->tus[k].funcs[i].replace)
				fprintf(f,
					"extern char rw_new_%u[] RW_BP_HIDDEN;\n",
					n);
	fprintf(f,
		"extern const struct rw_patch_reloc rw_bp_relocs[] RW_BP_HIDDEN;\n\n"
		"RW_PATCH_FUNCS(rw_bp_funcs) = {\n");
	n = 0;
	for (size_t k = 0; k < e->ntus; k++) {
		for (size_t i = 0; i < e->tus[k].nfuncs; i++, n++) {
			const struct bp_emit_func *fn = &e->tus[k].funcs[i];

			if (!fn->replace)
				continue;
			if (fn->clone) {
				/* no RW_PATCH_FUNC_SIZED with the flag */
				fputs("\t{ ", f);
				put_c_string(f, obj);
				fputs(", ", f);
				put_c_string(f, fn->old_name);
				fprintf(f,
					", %lu, %lu, (void *)rw_new_%u, RW_PATCH_F_CLONE },\n",
					fn->sympos, fn->old_size, n);
			} else {
				fputs("\tRW_PATCH_FUNC_SIZED(", f);
				put_c_string(f, obj);
				fputs(", ", f);
				put_c_string(f, fn->old_name);
				fprintf(f, ", %lu, %lu, rw_new_%u),\n",
					fn->sympos, fn->old_size, n);
			}
		}
	}
	fprintf(f,
		"};\n\nRW_PATCH(%s, .funcs = rw_bp_funcs,\n"
		"\t .nfuncs = RW_PATCH_COUNT(rw_bp_funcs),\n"
		"\t .relocs = rw_bp_relocs, .nrelocs = %zu);\n",
		e->name, em->nsites);
	return 0;
}

/* ---- Commands ----------------------------------------------------------------- */

static void put_cmd(FILE *f, char *const *argv)
{
	for (size_t i = 0; argv[i]; i++) {
		const char *a = argv[i];
		bool plain = *a != '\0';

		for (const char *p = a; *p; p++)
			if (!isalnum((unsigned char)*p) &&
			    !strchr("-_./=,+:@%", *p))
				plain = false;
		if (i)
			fputc(' ', f);
		if (plain) {
			fputs(a, f);
			continue;
		}
		fputc('\'', f);
		for (const char *p = a; *p; p++) {
			if (*p == '\'')
				fputs("'\\''", f);
			else
				fputc(*p, f);
		}
		fputc('\'', f);
	}
}

/* Run argv; on failure, the error names the command and quotes the start
 * of its output. */
static int run(struct emitter *em, char *const *argv)
{
	posix_spawn_file_actions_t fa;
	char *cmd = NULL, out[600];
	size_t cmdlen = 0, n = 0;
	FILE *cf;
	pid_t pid;
	int status, r, fd;

	cf = open_memstream(&cmd, &cmdlen);
	if (!cf) {
		fputs("rewire: out of memory\n", stderr);
		exit(1);
	}
	put_cmd(cf, argv);
	fclose(cf);
	if (em->e->verbose)
		fprintf(stderr, "+ %s\n", cmd);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, em->log,
					 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r) {
		seterr(&em->er, "cannot run '%s': %s", cmd, strerror(r));
		free(cmd);
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			seterr(&em->er, "waiting for '%s': %s", cmd,
			       strerror(errno));
			free(cmd);
			return -1;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		free(cmd);
		return 0;
	}
	out[0] = '\0';
	fd = open(em->log, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t k = read(fd, out, sizeof(out) - 1);

		n = k > 0 ? (size_t)k : 0;
		out[n] = '\0';
		close(fd);
	}
	/* the first lines only */
	for (size_t i = 0, lines = 0; i < n; i++)
		if (out[i] == '\n' && ++lines == 6) {
			out[i] = '\0';
			break;
		}
	if (WIFEXITED(status))
		seterr(&em->er, "'%s' failed (exit %d):\n%s", cmd,
		       WEXITSTATUS(status), out);
	else
		seterr(&em->er, "'%s' was killed by signal %d", cmd,
		       WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	free(cmd);
	return -1;
}

/* e->cc may be a command with arguments ("ccache gcc"). */
static size_t cc_words(const char *cc, char **out, size_t max, char **store)
{
	size_t n = 0;
	char *s = xstrdup(cc && *cc ? cc : "cc"), *save = NULL;

	*store = s;
	for (char *w = strtok_r(s, " \t", &save); w && n < max;
	     w = strtok_r(NULL, " \t", &save))
		out[n++] = w;
	return n;
}

/* ---- Checking the objects ------------------------------------------------------- */

struct elf_file {
	int fd;
	Elf *elf;
};

static int elf_open(struct emitter *em, const char *path, struct elf_file *ef)
{
	ef->elf = NULL;
	ef->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ef->fd < 0)
		return seterr(&em->er, "cannot open %s: %s", path,
			      strerror(errno));
	ef->elf = elf_begin(ef->fd, ELF_C_READ, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF) {
		close(ef->fd);
		return seterr(&em->er, "%s is not an ELF file: %s", path,
			      elf_errmsg(-1));
	}
	return 0;
}

static void elf_close(struct elf_file *ef)
{
	if (ef->elf)
		elf_end(ef->elf);
	if (ef->fd >= 0)
		close(ef->fd);
}

static Elf_Scn *find_symtab(Elf *elf, Elf64_Word type, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, sh) && sh->sh_type == type)
			return scn;
	return NULL;
}

/* The function of check.o holding offset off of section shndx. */
static void func_at(Elf *elf, Elf_Scn *symscn, const GElf_Shdr *symsh,
		    size_t shndx, GElf_Addr off, char *out, size_t n)
{
	Elf_Data *d = elf_getdata(symscn, NULL);
	size_t count = symsh->sh_entsize ? symsh->sh_size / symsh->sh_entsize
					 : 0;

	snprintf(out, n, "?");
	for (size_t i = 0; d && i < count; i++) {
		GElf_Sym s;

		if (!gelf_getsym(d, (int)i, &s) || s.st_shndx != shndx ||
		    GELF_ST_TYPE(s.st_info) != STT_FUNC)
			continue;
		if (off >= s.st_value && off < s.st_value + s.st_size) {
			snprintf(out, n, "%s+0x%" PRIx64,
				 elf_strptr(elf, symsh->sh_link, s.st_name),
				 (uint64_t)(off - s.st_value));
			return;
		}
	}
}

static const char *reloc_name_a64(unsigned type)
{
	switch (type) {
	case R_AARCH64_ABS64:
		return "R_AARCH64_ABS64";
	case R_AARCH64_ABS32:
		return "R_AARCH64_ABS32";
	case R_AARCH64_CALL26:
		return "R_AARCH64_CALL26";
	case R_AARCH64_JUMP26:
		return "R_AARCH64_JUMP26";
	case R_AARCH64_CONDBR19:
		return "R_AARCH64_CONDBR19";
	case R_AARCH64_TSTBR14:
		return "R_AARCH64_TSTBR14";
	case R_AARCH64_ADR_PREL_PG_HI21:
		return "R_AARCH64_ADR_PREL_PG_HI21";
	case R_AARCH64_ADD_ABS_LO12_NC:
		return "R_AARCH64_ADD_ABS_LO12_NC";
	case R_AARCH64_LDST64_ABS_LO12_NC:
		return "R_AARCH64_LDST64_ABS_LO12_NC";
	case R_AARCH64_ADR_GOT_PAGE:
		return "R_AARCH64_ADR_GOT_PAGE";
	case R_AARCH64_LD64_GOT_LO12_NC:
		return "R_AARCH64_LD64_GOT_LO12_NC";
	case R_AARCH64_MOVW_UABS_G0_NC:
	case R_AARCH64_MOVW_UABS_G1_NC:
	case R_AARCH64_MOVW_UABS_G2_NC:
	case R_AARCH64_MOVW_UABS_G3:
		return "R_AARCH64_MOVW_UABS_G*";
	default:
		if (type >= R_AARCH64_TLSGD_ADR_PREL21 &&
		    type <= R_AARCH64_TLSLD_LDST128_DTPREL_LO12_NC)
			return "a thread-local relocation";
		return "a relocation";
	}
}

/* aarch64: what a thread-local reference assembles to. */
static bool reloc_tls_a64(unsigned type)
{
	return (type >= R_AARCH64_TLSGD_ADR_PREL21 &&
		type <= R_AARCH64_TLSLD_LDST128_DTPREL_LO12_NC) ||
	       (type >= R_AARCH64_TLS_DTPMOD && type <= R_AARCH64_TLSDESC);
}

/* aarch64: the relocations the link resolves in code without a text
 * relocation, to something the patch defines (PC-relative, or the low 12
 * bits of an address, which do not change with the load address). */
static bool reloc_local_a64(unsigned type)
{
	switch (type) {
	case R_AARCH64_CALL26:
	case R_AARCH64_JUMP26:
	case R_AARCH64_CONDBR19:
	case R_AARCH64_TSTBR14:
	case R_AARCH64_LD_PREL_LO19:
	case R_AARCH64_ADR_PREL_LO21:
	case R_AARCH64_ADR_PREL_PG_HI21:
	case R_AARCH64_ADR_PREL_PG_HI21_NC:
	case R_AARCH64_ADD_ABS_LO12_NC:
	case R_AARCH64_LDST8_ABS_LO12_NC:
	case R_AARCH64_LDST16_ABS_LO12_NC:
	case R_AARCH64_LDST32_ABS_LO12_NC:
	case R_AARCH64_LDST64_ABS_LO12_NC:
	case R_AARCH64_LDST128_ABS_LO12_NC:
	case R_AARCH64_PREL16:
	case R_AARCH64_PREL32:
	case R_AARCH64_PREL64:
		return true;
	default:
		return false;
	}
}

static const char *reloc_name(unsigned type)
{
	if (a64)
		return reloc_name_a64(type);
	switch (type) {
	case R_X86_64_64:
		return "R_X86_64_64";
	case R_X86_64_PC32:
		return "R_X86_64_PC32";
	case R_X86_64_PLT32:
		return "R_X86_64_PLT32";
	case R_X86_64_32:
		return "R_X86_64_32";
	case R_X86_64_32S:
		return "R_X86_64_32S";
	case R_X86_64_GOTPCREL:
		return "R_X86_64_GOTPCREL";
	case R_X86_64_GOTPCRELX:
		return "R_X86_64_GOTPCRELX";
	case R_X86_64_REX_GOTPCRELX:
		return "R_X86_64_REX_GOTPCRELX";
	case R_X86_64_TPOFF32:
		return "R_X86_64_TPOFF32";
	case R_X86_64_TPOFF64:
		return "R_X86_64_TPOFF64";
	case R_X86_64_GOTTPOFF:
		return "R_X86_64_GOTTPOFF";
	case R_X86_64_TLSGD:
		return "R_X86_64_TLSGD";
	case R_X86_64_TLSLD:
		return "R_X86_64_TLSLD";
	case R_X86_64_DTPOFF32:
		return "R_X86_64_DTPOFF32";
	default:
		return "a relocation";
	}
}

static bool reloc_tls(unsigned type)
{
	if (a64)
		return reloc_tls_a64(type);
	return type == R_X86_64_TPOFF32 || type == R_X86_64_TPOFF64 ||
	       type == R_X86_64_GOTTPOFF || type == R_X86_64_TLSGD ||
	       type == R_X86_64_TLSLD || type == R_X86_64_DTPOFF32 ||
	       type == R_X86_64_DTPOFF64 || type == R_X86_64_GOTPC32_TLSDESC ||
	       type == R_X86_64_TLSDESC_CALL;
}

/*
 * The check copy keeps every site's symbol: each site must carry exactly
 * one R_X86_64_64 (aarch64: R_AARCH64_ABS64) at where (label - 8 in code,
 * label in data and in aarch64 literals), which proves that the zero
 * written in gen.s is the operand the loader fills. Any other relocation
 * in code must be PC-relative to something defined: one to an undefined
 * symbol would be resolved by the link against what the patch does not
 * carry, or refused by -z text.
 */
static int check_object(struct emitter *em)
{
	struct elf_file ef;
	Elf_Scn *symscn, *scn = NULL;
	GElf_Shdr symsh, sh;
	Elf_Data *symd;
	size_t nsyms, shstrndx;
	struct {
		size_t shndx;
		GElf_Addr at;
		bool seen;
	} *where = xzalloc((em->nsites + 1) * sizeof(*where));
	int ret = 0;

	if (elf_open(em, em->check_o, &ef)) {
		free(where);
		return -1;
	}
	symscn = find_symtab(ef.elf, SHT_SYMTAB, &symsh);
	if (!symscn || elf_getshdrstrndx(ef.elf, &shstrndx)) {
		ret = seterr(&em->er, "%s has no symbol table", em->check_o);
		goto out;
	}
	symd = elf_getdata(symscn, NULL);
	nsyms = symsh.sh_entsize ? symsh.sh_size / symsh.sh_entsize : 0;
	for (size_t i = 0; symd && i < nsyms; i++) {
		GElf_Sym s;
		const char *name;
		char *end;
		unsigned long id;

		if (!gelf_getsym(symd, (int)i, &s))
			continue;
		name = elf_strptr(ef.elf, symsh.sh_link, s.st_name);
		if (!name || !starts(name, ".Lrwr_"))
			continue;
		id = strtoul(name + 6, &end, 10);
		if (*end || id >= em->nsites)
			continue;
		where[id].shndx = s.st_shndx;
		where[id].at = s.st_value - (em->sites[id].data ? 0 : 8);
	}
	while ((scn = elf_nextscn(ef.elf, scn)) && !ret) {
		Elf_Scn *tgt;
		GElf_Shdr tsh;
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA)
			continue;
		tgt = elf_getscn(ef.elf, sh.sh_info);
		if (!tgt || !gelf_getshdr(tgt, &tsh))
			continue;
		d = elf_getdata(scn, NULL);
		n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
		for (size_t i = 0; d && i < n && !ret; i++) {
			GElf_Rela r;
			GElf_Sym s;
			unsigned type;
			const char *sname;
			bool site = false;
			char fn[256];

			if (!gelf_getrela(d, (int)i, &r))
				continue;
			type = (unsigned)GELF_R_TYPE(r.r_info);
			if (!gelf_getsym(symd, (int)GELF_R_SYM(r.r_info), &s))
				continue;
			sname = elf_strptr(ef.elf, symsh.sh_link, s.st_name);
			if (GELF_ST_TYPE(s.st_info) == STT_SECTION) {
				GElf_Shdr ssh;
				Elf_Scn *ss = elf_getscn(ef.elf, s.st_shndx);

				if (ss && gelf_getshdr(ss, &ssh))
					sname = elf_strptr(ef.elf, shstrndx,
							   ssh.sh_name);
			}
			if (!sname)
				sname = "?";
			for (size_t k = 0; k < em->nsites; k++) {
				if (where[k].shndx == sh.sh_info &&
				    where[k].at == r.r_offset) {
					site = true;
					if (type == (a64 ? R_AARCH64_ABS64
							 : R_X86_64_64))
						where[k].seen = true;
					break;
				}
			}
			if (site || !(tsh.sh_flags & SHF_EXECINSTR))
				continue;
			func_at(ef.elf, symscn, &symsh, sh.sh_info, r.r_offset,
				fn, sizeof(fn));
			if (reloc_tls(type))
				ret = seterr(
					&em->er,
					"in %s: %s against the thread-local '%s': a live patch cannot reach the program's thread-local storage",
					fn, reloc_name(type), sname);
			else if (s.st_shndx == SHN_UNDEF)
				ret = seterr(
					&em->er,
					a64 ? "in %s: %s against '%s', which the patch does not carry: only a call, a tail call or a literal pool's .xword can be relocated"
					    : "in %s: %s against '%s', which the patch does not carry: only a movabs operand can be relocated",
					fn, reloc_name(type), sname);
			else if (a64 ? !reloc_local_a64(type)
				     : type != R_X86_64_PC32 &&
						 type != R_X86_64_PLT32)
				ret = seterr(
					&em->er,
					"in %s: %s against '%s' would be a text relocation",
					fn, reloc_name(type), sname);
		}
	}
	for (size_t k = 0; k < em->nsites && !ret; k++)
		if (!where[k].seen)
			ret = seterr(
				&em->er,
				"internal error: the operand of site .Lrwr_%zu is not the 8 bytes before it (%s)",
				k, em->check_o);
out:
	free(where);
	elf_close(&ef);
	return ret;
}

/* The linked patch: no text relocations, the binding kept, the
 * descriptor exported and nothing else of the patch's. */
static int check_patch(struct emitter *em, const char *bind, size_t blen)
{
	const char *path = em->e->out_so;
	struct elf_file ef;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	size_t shstrndx;
	bool have_bind = false, have_desc = false;
	int ret = 0;

	if (elf_open(em, path, &ef))
		return -1;
	if (elf_getshdrstrndx(ef.elf, &shstrndx)) {
		ret = seterr(&em->er, "%s: no section names", path);
		goto out;
	}
	while ((scn = elf_nextscn(ef.elf, scn)) && !ret) {
		const char *name;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(ef.elf, shstrndx, sh.sh_name);
		d = elf_getdata(scn, NULL);
		if (name && !strcmp(name, ".rewire.bind")) {
			have_bind = d && d->d_size == blen &&
				    !memcmp(d->d_buf, bind, blen);
			if (!have_bind)
				ret = seterr(
					&em->er,
					"%s: .rewire.bind is not what gen.s holds",
					path);
		} else if (sh.sh_type == SHT_DYNAMIC && d) {
			size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize
						 : 0;

			for (size_t i = 0; i < n; i++) {
				GElf_Dyn dyn;

				if (!gelf_getdyn(d, (int)i, &dyn))
					continue;
				if (dyn.d_tag == DT_TEXTREL ||
				    (dyn.d_tag == DT_FLAGS &&
				     (dyn.d_un.d_val & DF_TEXTREL)))
					ret = seterr(
						&em->er,
						"%s has text relocations (DT_TEXTREL)",
						path);
			}
		} else if (sh.sh_type == SHT_DYNSYM && d) {
			size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize
						 : 0;

			for (size_t i = 1; i < n && !ret; i++) {
				static const char *const ok[] = {
					"_init", "_fini", "_edata", "_end",
					"__bss_start"
				};
				GElf_Sym s;
				const char *sn;
				bool allowed = false;

				/* aarch64's ld lists section symbols too */
				if (!gelf_getsym(d, (int)i, &s) ||
				    s.st_shndx == SHN_UNDEF ||
				    GELF_ST_TYPE(s.st_info) == STT_SECTION)
					continue;
				sn = elf_strptr(ef.elf, sh.sh_link, s.st_name);
				if (!sn)
					continue;
				if (!strcmp(sn, "rw_patch_descriptor")) {
					have_desc = GELF_ST_BIND(s.st_info) ==
						    STB_GLOBAL;
					continue;
				}
				for (size_t k = 0;
				     k < sizeof(ok) / sizeof(ok[0]); k++)
					allowed |= !strcmp(sn, ok[k]);
				if (!allowed)
					ret = seterr(
						&em->er,
						"%s exports '%s': a patch must not interpose on the program's symbols",
						path, sn);
			}
		}
	}
	if (!ret && !have_bind)
		ret = seterr(&em->er, "%s has no .rewire.bind section", path);
	if (!ret && !have_desc)
		ret = seterr(&em->er, "%s does not export rw_patch_descriptor",
			     path);
out:
	elf_close(&ef);
	return ret;
}

/* ---- bp_emit ----------------------------------------------------------------------- */

static int copy_file(struct emitter *em, const char *from, const char *dir)
{
	const char *base = strrchr(from, '/');
	char *to = xfmt("%s/%s", dir, base ? base + 1 : from);
	struct stat a, b;
	FILE *in, *out;
	char buf[8192];
	size_t n;
	int ret = 0;

	/* out_src may be the work directory itself: nothing to copy */
	if (!stat(from, &a) && !stat(to, &b) && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		free(to);
		return 0;
	}
	in = fopen(from, "r");
	out = in ? fopen(to, "w") : NULL;
	if (!in || !out)
		ret = seterr(&em->er, "cannot copy %s to %s: %s", from, to,
			     strerror(errno));
	while (!ret && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			ret = seterr(&em->er, "writing %s: %s", to,
				     strerror(errno));
	if (out && fclose(out) && !ret)
		ret = seterr(&em->er, "writing %s: %s", to, strerror(errno));
	if (in)
		fclose(in);
	free(to);
	return ret;
}

static bool c_identifier(const char *s)
{
	if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

static int prepare_tu(struct emitter *em, struct tu *t)
{
	const struct bp_emit_tu *in = t->in;
	int p;

	for (size_t i = 0; i < in->nsyms; i++)
		map_put(&t->symmap, in->syms[i].name, (int)i);
	for (size_t i = 0; i < in->nfuncs; i++)
		map_put(&t->carried, in->funcs[i].sym, (int)i);
	if (read_asm(em, t) || structure(em, t) || select_sections(em, t) ||
	    mark_relro(em, t))
		return -1;
	p = map_get(&t->secmap, ".note.gnu.property");
	t->has_property = p >= 0;
	t->prop_sec = p;
	dedup_groups(em, t);
	return 0;
}

static void free_tu(struct tu *t)
{
	for (size_t i = 0; i < t->nst; i++) {
		free(t->st[i].text);
		free(t->st[i].word);
	}
	free(t->st);
	for (size_t i = 0; i < t->nsecs; i++) {
		free(t->secs[i].name);
		free(t->secs[i].attrs);
		free(t->secs[i].group);
	}
	free(t->secs);
	for (size_t i = 0; i < t->ndefs; i++)
		free(t->defs[i].name);
	free(t->defs);
	map_free(&t->secmap);
	map_free(&t->defmap);
	map_free(&t->symmap);
	map_free(&t->carried);
}

static int write_asm(struct emitter *em, const char *path, bool check)
{
	FILE *f = fopen(path, "w");
	unsigned site = 0;
	int ret = 0;

	if (!f)
		return seterr(&em->er, "cannot write %s: %s", path,
			      strerror(errno));
	fprintf(f,
		"/* Generated by rewire build-patch from GCC's assembly%s. */\n",
		check ? " (the check copy: operands kept)" : "");
	for (size_t k = 0; k < em->ntus && !ret; k++)
		ret = emit_tu(em, &em->tus[k], f, check, &site);
	if (!ret)
		ret = emit_tail(em, f, check, &site);
	if (fclose(f) && !ret)
		ret = seterr(&em->er, "writing %s: %s", path, strerror(errno));
	if (!ret && site != em->nsites)
		ret = seterr(&em->er,
			     "internal error: %u sites in %s, %zu in the table",
			     site, path, em->nsites);
	return ret;
}

int bp_emit(const struct bp_emit *e, char *err, size_t errlen)
{
	struct emitter em = { .e = e, .er = { err, errlen, false } };
	char *cc[16], *ccstore = NULL, *bind = NULL, *ccflags = NULL;
	size_t ncc, nreplace = 0, blen = 0;
	int ret = -1;

	if (errlen)
		err[0] = '\0';
	if (e->machine && e->machine != EM_X86_64 && e->machine != EM_AARCH64) {
		seterr(&em.er, "machine %u: only x86-64 and aarch64 code",
		       e->machine);
		return -1;
	}
	a64 = e->machine == EM_AARCH64;
	if (!c_identifier(e->name)) {
		seterr(&em.er, "the patch name '%s' is not a C identifier",
		       e->name ? e->name : "");
		return -1;
	}
	if (!e->workdir || !e->out_so) {
		seterr(&em.er, "no work directory or output file");
		return -1;
	}
	for (size_t k = 0; k < e->ntus; k++) {
		if (!e->tus[k].asm_path) {
			seterr(&em.er, "unit %zu has no after.s", k);
			return -1;
		}
		for (size_t i = 0; i < e->tus[k].nfuncs; i++) {
			const struct bp_emit_func *fn = &e->tus[k].funcs[i];

			if (!fn->sym || (fn->replace && !fn->old_name)) {
				seterr(&em.er,
				       "%s: a carried function without %s",
				       e->tus[k].asm_path,
				       fn->sym ? "the name it replaces"
					       : "a symbol");
				return -1;
			}
			nreplace += fn->replace;
		}
	}
	if (!nreplace) {
		seterr(&em.er,
		       "nothing to replace: the patch would carry no function that replaces one of the program's");
		return -1;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		seterr(&em.er, "libelf: %s", elf_errmsg(-1));
		return -1;
	}
	em.gen_s = xfmt("%s/gen.s", e->workdir);
	em.gen_c = xfmt("%s/gen.c", e->workdir);
	em.check_s = xfmt("%s/check.s", e->workdir);
	em.check_o = xfmt("%s/check.o", e->workdir);
	em.log = xfmt("%s/cc.log", e->workdir);
	em.ntus = e->ntus;
	em.tus = xzalloc(e->ntus * sizeof(*em.tus));
	for (size_t k = 0; k < e->ntus; k++) {
		em.tus[k].in = &e->tus[k];
		em.tus[k].index = (unsigned)k;
		em.tus[k].rename = k > 0;
		if (prepare_tu(&em, &em.tus[k]))
			goto out;
	}

	/* gen.s first (it numbers the sites), then the check copy */
	if (write_asm(&em, em.gen_s, false) || write_asm(&em, em.check_s, true))
		goto out;
	{
		FILE *f = fopen(em.gen_c, "w");

		if (!f) {
			seterr(&em.er, "cannot write %s: %s", em.gen_c,
			       strerror(errno));
			goto out;
		}
		write_gen_c(&em, f);
		if (fclose(f)) {
			seterr(&em.er, "writing %s: %s", em.gen_c,
			       strerror(errno));
			goto out;
		}
	}
	for (size_t i = 0; i < em.nsites; i++) {
		const char *n = em.sites[i].name ? em.sites[i].name
						 : em.sites[i].target;

		if (starts(n, "_Z") || strstr(n, "__gxx_personality"))
			em.cxx = true;
	}
	for (size_t i = 0; i < em.ndwrefs; i++)
		if (starts(em.dwrefs[i].sym, "_Z") ||
		    strstr(em.dwrefs[i].sym, "__gxx_personality"))
			em.cxx = true;

	/* check.o: the sites and the references in code */
	ncc = cc_words(e->cc, cc, 8, &ccstore);
	{
		char *argv[16];
		size_t n = 0;

		for (size_t i = 0; i < ncc; i++)
			argv[n++] = cc[i];
		argv[n++] = "-c";
		argv[n++] = "-Wa,-L";
		argv[n++] = "-o";
		argv[n++] = em.check_o;
		argv[n++] = em.check_s;
		argv[n] = NULL;
		if (run(&em, argv) || check_object(&em))
			goto out;
	}
	/* the link */
	{
		char *argv[32];
		size_t n = 0;

		ccflags = xfmt("-I%s", e->include_dir ? e->include_dir : ".");
		for (size_t i = 0; i < ncc; i++)
			argv[n++] = cc[i];
		argv[n++] = "-shared";
		argv[n++] = "-fPIC";
		argv[n++] = "-O2";
		argv[n++] = ccflags;
		/* the units' property note (CET; aarch64: BTI and PAC)
		 * holds for the whole patch only if gen.c has it too */
		if (em.ntus && em.tus[0].has_property)
			argv[n++] = a64 ? "-mbranch-protection=standard"
					: "-fcf-protection";
		argv[n++] = "-Wl,-z,text";
		argv[n++] = "-Wl,-z,now";
		argv[n++] = "-Wl,-z,relro";
		argv[n++] = "-Wl,-z,noexecstack";
		argv[n++] = "-o";
		argv[n++] = (char *)e->out_so;
		argv[n++] = em.gen_c;
		argv[n++] = em.gen_s;
		if (em.cxx)
			argv[n++] = "-lstdc++";
		argv[n] = NULL;
		if (run(&em, argv))
			goto out;
	}
	bind = bind_text(e, &blen);
	if (check_patch(&em, bind, blen))
		goto out;
	if (e->out_src && (copy_file(&em, em.gen_s, e->out_src) ||
			   copy_file(&em, em.gen_c, e->out_src)))
		goto out;
	ret = 0;
out:
	free(bind);
	free(ccflags);
	free(ccstore);
	for (size_t k = 0; k < em.ntus; k++)
		free_tu(&em.tus[k]);
	free(em.tus);
	for (size_t i = 0; i < em.nsites; i++) {
		free(em.sites[i].target);
		free(em.sites[i].name);
	}
	free(em.sites);
	for (size_t i = 0; i < em.ndwrefs; i++)
		free(em.dwrefs[i].sym);
	free(em.dwrefs);
	map_free(&em.dwrefmap);
	map_free(&em.groups);
	free(em.gen_s);
	free(em.gen_c);
	free(em.check_s);
	free(em.check_o);
	free(em.log);
	return ret;
}
