// SPDX-License-Identifier: MIT
/*
 * Patch files and other ELF objects read as files with libelf, never
 * loaded (none of their code runs): shared by bind-patch (cmd_bind.c) and
 * apply (cmd_apply.c). See patchfile.h.
 */
#include "patchfile.h"

#include "ctl/fileid.h"

#include <rewire/patch.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int efile_open(struct efile *f, const char *path)
{
	f->path = path;
	f->elf = NULL;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return fail(EX_FAIL, -errno, "%s: %s", path, strerror(errno));
	f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
	if (!f->elf || elf_kind(f->elf) != ELF_K_ELF ||
	    gelf_getclass(f->elf) != ELFCLASS64)
		return fail(EX_FAIL, 0, "%s: not an ELF64 file", path);
	return 0;
}

void efile_close(struct efile *f)
{
	if (f->elf)
		elf_end(f->elf);
	if (f->fd >= 0)
		close(f->fd);
}

/* The first section named @name (any type), or NULL. */
Elf_Scn *scn_named(Elf *elf, const char *name, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *n;

		if (!gelf_getshdr(scn, sh))
			continue;
		n = elf_strptr(elf, shstrndx, sh->sh_name);
		if (n && !strcmp(n, name))
			return scn;
	}
	return NULL;
}

/* The first section of type @type, or NULL. */
Elf_Scn *scn_typed(Elf *elf, GElf_Word type, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, sh) && sh->sh_type == type)
			return scn;
	return NULL;
}

/* ---- The patch, read as a file -------------------------------------------- */

/* @len bytes at virtual address @va, from the file (false: not in it). */
bool read_va(struct patch *p, uint64_t va, void *out, size_t len)
{
	size_t phnum;

	if (elf_getphdrnum(p->f.elf, &phnum))
		return false;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(p->f.elf, (int)i, &ph) ||
		    ph.p_type != PT_LOAD || va < ph.p_vaddr ||
		    va - ph.p_vaddr > ph.p_memsz ||
		    len > ph.p_memsz - (va - ph.p_vaddr))
			continue;
		if (va - ph.p_vaddr + len > ph.p_filesz) {
			/* .bss: zeros (at most partly in the file). */
			memset(out, 0, len);
			if (va - ph.p_vaddr >= ph.p_filesz)
				return true;
			len = ph.p_filesz - (va - ph.p_vaddr);
		}
		return pread(p->f.fd, out, len,
			     (off_t)(ph.p_offset + (va - ph.p_vaddr))) ==
		       (ssize_t)len;
	}
	return false;
}

/* The pointer at @va as the dynamic linker makes it (relative to the load
 * address: a RELATIVE relocation's addend, or the file's value). */
bool read_ptr(struct patch *p, uint64_t va, uint64_t *out)
{
	GElf_Ehdr eh;
	uint32_t relative;

	if (!gelf_getehdr(p->f.elf, &eh))
		return false;
	relative = eh.e_machine == EM_AARCH64 ? R_AARCH64_RELATIVE
					      : R_X86_64_RELATIVE;
	for (size_t i = 0; p->rela && i < p->nrela; i++) {
		GElf_Rela r;

		if (!gelf_getrela(p->rela, (int)i, &r) || r.r_offset != va)
			continue;
		if (GELF_R_TYPE(r.r_info) != relative)
			return false; /* a symbol of another object */
		*out = (uint64_t)r.r_addend;
		return true;
	}
	return read_va(p, va, out, sizeof(*out));
}

/* The string at @va (NULL: @va is 0) into a malloc'ed copy, or false. */
bool read_str(struct patch *p, uint64_t va, char **out)
{
	char buf[4096];
	size_t n = 0;

	*out = NULL;
	if (!va)
		return true;
	for (; n < sizeof(buf); n++) {
		if (!read_va(p, va + n, &buf[n], 1))
			return false;
		if (!buf[n]) {
			*out = strdup(buf);
			return *out != NULL;
		}
	}
	return false;
}

/* The NT_GNU_BUILD_ID of @f into @id (its length; 0: none). */
size_t file_build_id(struct efile *f, uint8_t *id, size_t max)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(f->elf, scn))) {
		Elf_Data *d;
		size_t off = 0, next, name_off, desc_off;
		GElf_Nhdr nh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE ||
		    !(d = elf_getdata(scn, NULL)))
			continue;
		while (off < d->d_size &&
		       (next = gelf_getnote(d, off, &nh, &name_off,
					    &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp((const char *)d->d_buf + name_off, "GNU",
				    4) &&
			    nh.n_descsz <= max) {
				memcpy(id, (const char *)d->d_buf + desc_off,
				       nh.n_descsz);
				return nh.n_descsz;
			}
			off = next;
		}
	}
	return 0;
}

int patch_find_desc(struct patch *p, uint64_t *desc)
{
	GElf_Shdr sh;
	Elf_Scn *scn = scn_typed(p->f.elf, SHT_DYNSYM, &sh);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
	size_t n = d && sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
	uint32_t magic = 0;
	GElf_Sym s;

	*desc = 0;
	for (size_t i = 0; i < n && !*desc; i++) {
		const char *sn;

		if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF)
			continue;
		sn = elf_strptr(p->f.elf, sh.sh_link, s.st_name);
		if (sn && !strcmp(sn, RW_PATCH_DESC_SYMBOL))
			*desc = s.st_value;
	}
	if (!*desc)
		return fail(EX_FAIL, 0,
			    "%s: not a rewire patch (no exported "
			    "%s; build it with RW_PATCH())",
			    p->f.path, RW_PATCH_DESC_SYMBOL);
	scn = scn_typed(p->f.elf, SHT_RELA, &sh);
	while (scn) {
		const char *name = NULL;
		size_t shstrndx;

		if (!elf_getshdrstrndx(p->f.elf, &shstrndx))
			name = elf_strptr(p->f.elf, shstrndx, sh.sh_name);
		if (name && !strcmp(name, ".rela.dyn"))
			break;
		do
			scn = elf_nextscn(p->f.elf, scn);
		while (scn &&
		       (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA));
	}
	if (scn && sh.sh_entsize) {
		p->rela = elf_getdata(scn, NULL);
		p->nrela = sh.sh_size / sh.sh_entsize;
	}
	if (!read_va(p, *desc + offsetof(struct rw_patch_desc, magic), &magic,
		     sizeof(magic)) ||
	    magic != RW_PATCH_MAGIC)
		return fail(EX_FAIL, 0,
			    "%s: its descriptor cannot be read (magic)",
			    p->f.path);
	return 0;
}

/* ---- Identity and name --------------------------------------------------- */

int patchfile_open(struct patchfile *pf, const char *path)
{
	struct patch p = { .f = { .fd = -1 } };
	uint64_t desc, name_va = 0;
	char *name = NULL;
	int ret;

	memset(pf, 0, sizeof(*pf));
	pf->fd = -1;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return fail(EX_FAIL, 0, "libelf: %s", elf_errmsg(-1));
	ret = efile_open(&p.f, path);
	if (ret)
		goto out;
	ret = patch_find_desc(&p, &desc);
	if (ret)
		goto out;
	if (!read_ptr(&p, desc + offsetof(struct rw_patch_desc, name),
		      &name_va) ||
	    !read_str(&p, name_va, &name) || !name || !*name ||
	    strlen(name) >= sizeof(pf->name)) {
		ret = fail(EX_FAIL, 0,
			   "%s: the name in its descriptor cannot be read",
			   path);
		goto out;
	}
	snprintf(pf->name, sizeof(pf->name), "%s", name);
	ret = rw_file_id(p.f.fd, pf->file_id, sizeof(pf->file_id));
	if (ret) {
		ret = fail(EX_FAIL, ret, "%s: %s", path, strerror(-ret));
		goto out;
	}
	/* The descriptor stays open: the file sent and compared is the one
	 * read here, whatever happens to the path meanwhile. */
	pf->fd = p.f.fd;
	p.f.fd = -1;
out:
	free(name);
	efile_close(&p.f);
	return ret;
}

void patchfile_close(struct patchfile *pf)
{
	if (pf->fd >= 0)
		close(pf->fd);
	pf->fd = -1;
}
