/* SPDX-License-Identifier: MIT */
/*
 * bp.h - `rewire build-patch`: a live patch from a unified diff and the
 * program's compile_commands.json (doc/LIVEPATCH.md, "From a diff").
 *
 * Three parts, each in its own file:
 *
 *  - the driver (cmd_build_patch.c): reads compile_commands.json and the
 *    diff, copies the source tree (hard links) and applies the diff to the
 *    copy, and compiles each changed translation unit three times:
 *      before.o  the original source, the recorded flags plus
 *                -ffunction-sections -fdata-sections -g (the program's
 *                own code, one section per function and per object);
 *      after.o   the patched source, the same flags;
 *      after.s   the patched source, the recorded flags plus
 *                -ffunction-sections -fdata-sections -g0 -mcmodel=large
 *                -fno-pic -fno-pie -S: assembly in which every reference
 *                to a symbol is a 64-bit absolute operand (x86-64:
 *                movabsq $sym or .quad sym; aarch64: a literal pool's
 *                .xword sym, and calls the emitter rewrites), so that the
 *                patch can reach the running program's code and data at
 *                any distance;
 *    reads the program (its symbol table, sizes, build-id), and prints the
 *    report;
 *  - the differ (bp_diff.c): compares before.o and after.o section by
 *    section, relocations normalised (create-diff-object's method), and
 *    says which functions changed, which are new or deleted, what the
 *    patch cannot do (changed data, layouts, signatures) and why;
 *  - the emitter (bp_emit.c): cuts the changed functions out of after.s,
 *    turns every reference to something the patch does not carry into an
 *    entry of the patch's relocation table (struct rw_patch_reloc, applied
 *    by the loader before any code of the patch can run), writes the
 *    descriptor and the binding (.rewire.bind), and links the patch .so.
 */
#ifndef REWIRE_BP_H
#define REWIRE_BP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One entry of compile_commands.json (bp_cdb.c). "arguments" when the
 * entry has them (nargs > 0), else "command" (a shell command line). */
struct bp_cdb_entry {
	char *dir, *file, *command;
	char **args;
	size_t nargs;
};
int bp_cdb_read(const char *path, struct bp_cdb_entry **out, size_t *n,
		char *err, size_t errlen);
void bp_cdb_free(struct bp_cdb_entry *es, size_t n);

/* A range of changed lines in the patched source file (1-based). */
struct bp_hunk {
	unsigned start, count;
};

/* One changed translation unit, as the driver hands it to the differ. */
struct bp_tu {
	const char *src;      /* its source file (absolute, original tree) */
	const char *before_o; /* see above */
	const char *after_o;
	/* Changed lines of the source file itself (empty when only a header
	 * it includes changed); the differ uses them to tell "edited" from
	 * "changed because something inlined into it changed". */
	const struct bp_hunk *hunks;
	size_t nhunks;
};

enum bp_fstate {
	BP_F_SAME,    /* same code and same references */
	BP_F_CHANGED, /* in both, code or references differ */
	BP_F_NEW,     /* only in after.o */
	BP_F_DELETED, /* only in before.o: left in the program as it is */
};

/* One function symbol (STT_FUNC) of before.o or after.o. */
struct bp_func {
	char *name; /* as in after.o (before.o for BP_F_DELETED) */
	enum bp_fstate state;
	bool global;	/* STB_GLOBAL or STB_WEAK */
	bool include;	/* its code goes into the patch */
	bool replace;	/* it replaces the program's function of the
			       same name (included and present in before.o;
			       never a .cold piece) */
	bool clone;	/* NAME.constprop.N / .isra.N / .part.N:
			       declared RW_PATCH_F_CLONE */
	char *parent;	/* .cold/.part pieces and clones: NAME, or NULL */
	char *why;	/* one line: "code changed", "edited",
			       "inlines edited 'helper'", "new", "piece of
			       'f'", "calls changed clone 'f.isra.0'" */
	char **inlined; /* for an edited function that is inlined:
			       the callers holding a copy (DWARF of
			       after.o), all of them included */
	size_t ninlined;
};

/* Where a symbol referenced by included code lives. */
enum bp_skind {
	BP_S_PATCH,   /* emitted into the patch (included function, new
			 data, read-only data whose content changed) */
	BP_S_PROGRAM, /* the running program's copy, by name: @prog_name */
	BP_S_DYNAMIC, /* not defined in the translation unit: left to the
			 dynamic linker when the program does not define
			 it either (the driver decides, it has the
			 program's symbol table) */
};

/* A data (or function) symbol of after.o and where references to it go. */
struct bp_sym {
	char *name; /* as in after.o / after.s */
	enum bp_skind kind;
	char *prog_name; /* BP_S_PROGRAM: the name in before.o, which may
			    differ for a function-scope static whose
			    number GCC changed ("count.1" -> "count.2") */
	bool local;	 /* STB_LOCAL in before.o */
};

struct bp_msg {
	char *symbol; /* the symbol concerned, or NULL */
	char *text;   /* a full sentence, without the symbol repeated */
};

struct bp_result {
	struct bp_func *funcs;
	size_t nfuncs;
	struct bp_sym *syms; /* every named symbol defined or referenced
				in after.o other than functions' own
				labels */
	size_t nsyms;
	struct bp_msg *refusals; /* non-empty: no patch */
	size_t nrefusals;
	struct bp_msg *notes; /* warnings and explanations */
	size_t nnotes;
};

/* bp_diff - compare @tu's before.o and after.o. Returns 0 and fills @out
 * (refusals are data, not an error), or -1 with @err set when the objects
 * cannot be read. */
int bp_diff(const struct bp_tu *tu, struct bp_result *out, char *err,
	    size_t errlen);
void bp_result_free(struct bp_result *r);

/* ---- emitter ---- */

/* One function the patch carries. */
struct bp_emit_func {
	const char *sym;      /* its symbol in after.s */
	bool replace;	      /* replaces old_name in the program */
	bool clone;	      /* RW_PATCH_F_CLONE */
	const char *old_name; /* replace: the program's symbol */
	unsigned long sympos; /* replace: position (0: unique) */
	unsigned long old_size;
	uint64_t old_hash; /* rw__func_hash of the program's bytes */
};

/* One translation unit's contribution. */
struct bp_emit_tu {
	const char *asm_path; /* after.s */
	const struct bp_emit_func *funcs;
	size_t nfuncs;
	/* Where a symbol referenced from included code goes (anything not
	 * defined by an included function and not a local label): a symbol
	 * of @syms, looked up by name; one not listed is BP_S_DYNAMIC. */
	const struct bp_sym *syms;
	size_t nsyms;
	/* BP_S_PROGRAM symbols that are local in the program: their
	 * position among the program's symbols of that name (0: unique).
	 * Parallel to @syms. */
	const unsigned long *sympos;
};

struct bp_emit {
	const char *name;   /* patch name (descriptor .name, a C identifier) */
	const char *object; /* the patched object as the patch names it:
			       "" for the main program, else the soname */
	const uint8_t *build_id; /* the object's NT_GNU_BUILD_ID, or NULL */
	size_t build_id_len;
	const struct bp_emit_tu *tus;
	size_t ntus;
	uint16_t machine;	 /* EM_X86_64 (0: the same) or EM_AARCH64:
				    the machine of after.s (bp_emit.c) */
	const char *cc;		 /* compiler driver for the link ("cc") */
	const char *include_dir; /* holds rewire/patch.h */
	const char *workdir;	 /* scratch directory, exists */
	const char *out_so;	 /* the patch to write */
	const char *out_src;	 /* NULL, or where to copy the generated
				    sources (a directory) */
	bool verbose;		 /* print the commands run */
};

/* bp_emit - write and link the patch. Returns 0, or -1 with @err set to
 * a sentence naming the symbol or command that failed. */
int bp_emit(const struct bp_emit *e, char *err, size_t errlen);

#endif /* REWIRE_BP_H */
