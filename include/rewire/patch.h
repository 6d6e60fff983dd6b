/* SPDX-License-Identifier: MIT */
/*
 * rewire/patch.h - the descriptor of a live patch, written in the patch's
 * source. Include this, not rewire/livepatch.h, in a patch: a patch does
 * not link against librewire.
 *
 * A patch is a shared object built from the fixed functions' source. It
 * names, for each function it replaces, the old symbol (the object that
 * holds it, and the position among local symbols of the same name), and
 * gives the new function. References to the target's non-exported
 * variables and functions are pointers the loader fills in before the
 * patch is enabled.
 *
 *	#include <rewire/patch.h>
 *
 *	static long *hits;		// the target's "static long hits"
 *
 *	static long parse_fixed(const char *s)
 *	{
 *		__atomic_add_fetch(hits, 1, __ATOMIC_RELAXED);
 *		return s ? strtol(s, NULL, 10) : 0;
 *	}
 *
 *	RW_PATCH_FUNCS(funcs) = {
 *		RW_PATCH_FUNC(NULL, "parse", 0, parse_fixed),
 *	};
 *	RW_PATCH_REFS(refs) = {
 *		RW_PATCH_REF(NULL, "hits", 0, &hits),
 *	};
 *	RW_PATCH(fix_parse, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
 *		 .refs = refs, .nrefs = RW_PATCH_COUNT(refs));
 *
 * Build (see doc/LIVEPATCH.md): with CMake, rewire_add_patch(NAME SOURCES)
 * from rewireConfig.cmake; by hand,
 *
 *	cc -O2 -fPIC -shared -o fix.so fix.c
 *
 * The patched program itself must be built with
 * -fpatchable-function-entry=5 (at least five NOPs at every function
 * entry: the loader refuses a function without them); on aarch64 with
 * -fpatchable-function-entry=2 (two NOP instructions, after a BTI c if
 * any). On aarch64, build the patch with -mbranch-protection when the
 * program has it: a far new function is reached with BR X16, which must
 * land on its BTI c or PACIASP.
 *
 * Objects: NULL or "" is the main program; otherwise the base name
 * ("libfoo.so.1") or the full path of a loaded object.
 * Positions: 0 means the name must be unique among the object's function
 * (or data) symbols; n >= 1 picks the n-th symbol of that name in the
 * object's symbol table, as `readelf -s` lists them (for duplicate local
 * static functions).
 * old_size: 0, or the st_size the old function must have (a guard
 * against patching another build of the program).
 */
#ifndef REWIRE_PATCH_H
#define REWIRE_PATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Descriptor layout version. 2: struct rw_patch_func has flags. 3: the
 * descriptor ends with a relocation table (relocs, nrelocs). The loader
 * takes 2 and 3 and refuses any other. */
#define RW_PATCH_ABI_VERSION 3u
#define RW_PATCH_MAGIC 0x52575043u /* "RWPC" */

struct rw_patch_func {
	const char *old_object;
	const char *old_name;
	unsigned long old_sympos;
	unsigned long old_size;
	void *new_func;
	unsigned long flags; /* RW_PATCH_F_* */
};

/*
 * The old function is a clone the compiler made (NAME.constprop.N,
 * NAME.isra.N, NAME.part.N: GCC changed its arguments or split it), and
 * the new function has the clone's calling convention, not NAME's. The
 * loader refuses to replace a clone without it. See doc/LIVEPATCH.md.
 */
#define RW_PATCH_F_CLONE 1ul

struct rw_patch_ref {
	const char *object;
	const char *name;
	unsigned long sympos;
	void **slot; /* receives the symbol's address at load */
};

/*
 * Callbacks, the kernel's klp_callbacks. pre_patch runs before the
 * transition to the patched state starts; a non-zero return refuses the
 * enable (nothing is changed). post_patch runs once every thread is
 * patched. pre_unpatch runs before the transition back starts;
 * post_unpatch once every thread is unpatched. A transition reversed
 * midway runs post_unpatch (for a reversed enable) or post_patch (for a
 * reversed disable), so that every pre has its post. They run in the
 * thread that calls rw_patch_enable/disable/wait.
 */
struct rw_patch_callbacks {
	int (*pre_patch)(void);
	void (*post_patch)(void);
	void (*pre_unpatch)(void);
	void (*post_unpatch)(void);
};

/*
 * A relocation the loader applies to the patch itself after mapping it and
 * before any of its code can run (ABI version 3; `rewire build-patch`
 * writes these, see doc/LIVEPATCH.md "From a diff"). It writes, at @where
 * (in the patch's code or data), the address of a symbol of the running
 * program plus @addend: with @name, the symbol @name (position @sympos)
 * of @object (NULL or "": the main program), found as RW_PATCH_REF finds
 * it; without @name, @target (an address the dynamic linker already
 * resolved: the patch's own code and data, a library's function).
 * The write goes through rewire's text writer: the patch's code is never
 * writable and executable at once.
 */
struct rw_patch_reloc {
	void *where;
	const char *object;
	const char *name;
	unsigned long sympos;
	long addend;
	void *target;
	uint32_t type;	/* RW_PATCH_RELOC_* */
	uint32_t flags; /* 0 */
};

/* 8 bytes: S + A. */
#define RW_PATCH_RELOC_ABS64 1u
/* 4 bytes: S + A - P, refused when it does not fit in 32 bits signed. */
#define RW_PATCH_RELOC_PC32 2u

/* Fields in the order C++ designated initializers need them. */
struct rw_patch_desc {
	uint32_t magic;	  /* RW_PATCH_MAGIC */
	uint32_t version; /* RW_PATCH_ABI_VERSION */
	uint32_t size;	  /* sizeof(struct rw_patch_desc) */
	const char *name;
	const struct rw_patch_func *funcs;
	size_t nfuncs;
	const struct rw_patch_ref *refs;
	size_t nrefs;
	struct rw_patch_callbacks callbacks;
	uint32_t replace; /* 1: atomic replace of every earlier patch */
	/* version 3 */
	const struct rw_patch_reloc *relocs;
	size_t nrelocs;
};

/* The symbol the loader looks up in a patch object. */
#define RW_PATCH_DESC_SYMBOL "rw_patch_descriptor"

/*
 * RW_PATCH_FUNCS(var) - define @var, the array of the functions the patch
 * replaces (static const struct rw_patch_func var[]). Its entries:
 * RW_PATCH_FUNC(object, name, sympos, newfn) - replace function @name of
 * @object (NULL or "": the main program) at position @sympos (0: the name
 * is unique) by @newfn, a function of the patch with the same type.
 * RW_PATCH_FUNC_SIZED(object, name, sympos, size, newfn) - the same, and
 * refuse the patch unless the old function's st_size is @size.
 * RW_PATCH_REFS(var) - define @var, the array of the target's symbols the
 * patch uses (static const struct rw_patch_ref var[]). Its entries:
 * RW_PATCH_REF(object, name, sympos, slotp) - when the patch is loaded,
 * before any of its code runs, store the address of symbol @name of
 * @object (found as for RW_PATCH_FUNC) in *@slotp, a pointer of the patch.
 * RW_PATCH_RELOCS(var) - define @var, an array of struct rw_patch_reloc
 * (`rewire build-patch` writes these).
 * RW_PATCH_COUNT(a) - the number of entries of the array @a: the
 * descriptor's nfuncs, nrefs and nrelocs.
 *
 * Objects, positions and sizes are described at the top of
 * rewire/patch.h; the arrays go into the descriptor that RW_PATCH()
 * defines.
 */
#define RW_PATCH_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define RW_PATCH_FUNCS(var) static const struct rw_patch_func var[]
#define RW_PATCH_FUNC(object, name, sympos, newfn)                \
	{                                                         \
		(object), (name), (sympos), 0, (void *)(newfn), 0 \
	}
#define RW_PATCH_FUNC_SIZED(object, name, sympos, size, newfn)         \
	{                                                              \
		(object), (name), (sympos), (size), (void *)(newfn), 0 \
	}
/* Replace the clone @name ("parse.constprop.0") by @newfn, written for the
 * clone's calling convention (RW_PATCH_F_CLONE). */
#define RW_PATCH_FUNC_CLONE(object, name, sympos, newfn)        \
	{                                                       \
		(object), (name), (sympos), 0, (void *)(newfn), \
			RW_PATCH_F_CLONE                        \
	}

#define RW_PATCH_RELOCS(var) static const struct rw_patch_reloc var[]

#define RW_PATCH_REFS(var) static const struct rw_patch_ref var[]
#define RW_PATCH_REF(object, name, sympos, slotp)            \
	{                                                    \
		(object), (name), (sympos), (void **)(slotp) \
	}

/*
 * RW_PATCH(name, fields...): the descriptor, plus an ELF note
 * (".note.rewire", type 1, owner "rewire") holding the ABI version, which
 * the loader reads from the file before it maps the object, so that a
 * patch of another version is refused before any of its code runs.
 */
#define RW__PATCH_NOTE                                    \
	__asm__(".pushsection .note.rewire,\"a\",@note\n" \
		".balign 4\n"                             \
		".long 7\n" /* namesz: "rewire\0" */      \
		".long 4\n" /* descsz */                  \
		".long 1\n" /* type */                    \
		".asciz \"rewire\"\n"                     \
		".balign 4\n"                             \
		".long 3\n" /* RW_PATCH_ABI_VERSION */    \
		".balign 4\n"                             \
		".popsection\n")

#define RW__PATCH_INIT(patch_name, ...)                                    \
	{                                                                  \
		.magic = RW_PATCH_MAGIC, .version = RW_PATCH_ABI_VERSION,  \
		.size = sizeof(struct rw_patch_desc), .name = #patch_name, \
		__VA_ARGS__                                                \
	}

#ifdef __cplusplus
/* C++: a const object needs an extern "C" declaration for external
 * linkage (and the visibility goes there); designators must follow the
 * declaration order (funcs, nfuncs, refs, nrefs, callbacks, replace,
 * relocs, nrelocs);
 * omitted fields are zero. */
#define RW_PATCH(patch_name, ...)                                          \
	RW__PATCH_NOTE;                                                    \
	extern "C" __attribute__((visibility("default")))                  \
	const struct rw_patch_desc rw_patch_descriptor;                    \
	_Pragma("GCC diagnostic push") _Pragma(                            \
		"GCC diagnostic ignored \"-Wmissing-field-initializers\"") \
		__attribute__((used))                                      \
		const struct rw_patch_desc rw_patch_descriptor =           \
			RW__PATCH_INIT(patch_name, __VA_ARGS__);           \
	_Pragma("GCC diagnostic pop") struct rw__patch_semicolon_eater
#else
#define RW_PATCH(patch_name, ...)                        \
	RW__PATCH_NOTE;                                  \
	__attribute__((visibility("default"), used))     \
	const struct rw_patch_desc rw_patch_descriptor = \
		RW__PATCH_INIT(patch_name, __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif

#endif /* REWIRE_PATCH_H */
