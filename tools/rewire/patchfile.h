/* SPDX-License-Identifier: MIT */
/*
 * Patch files read as files (patchfile.c): libelf helpers shared by
 * bind-patch and apply, and the name a patch gives itself in its
 * descriptor.
 */
#ifndef REWIRE_TOOL_PATCHFILE_H
#define REWIRE_TOOL_PATCHFILE_H

#include "rewire.h"

#include <gelf.h>
#include <libelf.h>

/* An ELF file opened with libelf. */
struct efile {
	const char *path;
	int fd;
	Elf *elf;
};
/* Opens @path (kept, not copied) read-only. 0 or EX_FAIL (printed). */
int efile_open(struct efile *f, const char *path);
void efile_close(struct efile *f);
/* The first section named @name (any type) / of type @type, or NULL. */
Elf_Scn *scn_named(Elf *elf, const char *name, GElf_Shdr *sh);
Elf_Scn *scn_typed(Elf *elf, GElf_Word type, GElf_Shdr *sh);
/* The NT_GNU_BUILD_ID of @f into @id (its length; 0: none). */
size_t file_build_id(struct efile *f, uint8_t *id, size_t max);

/* A patch, read through its program headers, pointers through its
 * RELATIVE relocations (R_X86_64_RELATIVE, R_AARCH64_RELATIVE: the
 * machine of the file). */
struct patch {
	struct efile f;
	Elf_Data *rela; /* .rela.dyn, or NULL */
	size_t nrela;
};
/* @len bytes at virtual address @va, from the file (false: not in it). */
bool read_va(struct patch *p, uint64_t va, void *out, size_t len);
/* The pointer at @va as the dynamic linker makes it. */
bool read_ptr(struct patch *p, uint64_t va, uint64_t *out);
/* The string at @va (NULL: @va is 0) into a malloc'ed copy, or false. */
bool read_str(struct patch *p, uint64_t va, char **out);
/* The address of rw_patch_descriptor into *@desc, its magic checked, and
 * p->rela found. 0 or EX_FAIL (printed). */
int patch_find_desc(struct patch *p, uint64_t *desc);

/* A patch file to send: its name, identity (FILE_ID as the control server
 * reports it, src/ctl/fileid.h) and an open descriptor. */
struct patchfile {
	char name[128];
	char file_id[160];
	int fd; /* O_RDONLY, -1 when closed */
};
/* 0, or EX_FAIL with the reason printed (not a patch, unreadable). */
int patchfile_open(struct patchfile *pf, const char *path);
void patchfile_close(struct patchfile *pf);

#endif /* REWIRE_TOOL_PATCHFILE_H */
