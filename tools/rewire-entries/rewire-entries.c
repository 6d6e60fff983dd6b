// SPDX-License-Identifier: MIT
/*
 * rewire-entries FILE... - rewrite the patchable function entries of a
 * linked program or shared library (built with
 * -fpatchable-function-entry=5) from GCC's five one-byte NOPs
 * (90 90 90 90 90) to one five-byte NOP (0f 1f 44 00 00), in the file.
 *
 * Why: a uprobe (bpftrace, perf probe) executes the instruction it read
 * from the FILE, not the one in memory, and resumes after it. On an entry
 * that rewire has patched (a 5-byte jmp over the NOPs), one emulated 0x90
 * resumes at FUNC+1, inside the jump: the program dies. With one 5-byte NOP
 * in the file, the emulated instruction covers the whole jump
 * (doc/LIVEPATCH.md, "Uprobes"). Rewriting only in memory would make every
 * entry uprobe crash, patched or not: it has to be the file, after the
 * link, as the kernel's objtool and recordmcount do.
 *
 * The entries are the addresses recorded in __patchable_function_entries:
 * the section's contents in a non-PIE program, the addends of the dynamic
 * relocations (R_X86_64_RELATIVE, or R_X86_64_64 against a symbol) that
 * fill it in a PIE or a shared library. Each must hold exactly five 0x90
 * (rewritten) or the 5-byte NOP (already done: the tool is idempotent).
 * Anything else (another NOP count, a breakpoint, code) is refused and the
 * file is left as it was: every entry is checked before any is written.
 *
 * An aarch64 file has nothing to rewrite (exit 0): each of its entry's
 * two NOPs (-fpatchable-function-entry=2) is a whole instruction, and the
 * B that rewire writes over the first is one too, so a uprobe there never
 * resumes inside it.
 *
 * Exit status: 0 done (or nothing to do), 1 refused or failed, 2 usage;
 * with --check, 3 when some entries are not rewritten yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PFE_SECTION "__patchable_function_entries"

static const uint8_t nops1[5] = { 0x90, 0x90, 0x90, 0x90, 0x90 };
static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

static const char *prog = "rewire-entries";

struct entry {
	uint64_t addr; /* run-time address before relocation (vaddr) */
	off_t off;     /* its file offset */
};

/* The file offset of @addr inside an executable section, or -1. */
static off_t addr_to_off(Elf *elf, uint64_t addr, size_t len)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		if (addr >= sh.sh_addr && addr + len <= sh.sh_addr + sh.sh_size)
			return (off_t)(sh.sh_offset + (addr - sh.sh_addr));
	}
	return -1;
}

/* The value the dynamic linker stores at @slot, from the RELA sections:
 * 1 found (*val set), 0 no relocation there, -1 one we cannot compute. */
static int reloc_at(Elf *elf, uint64_t slot, uint64_t *val)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA ||
		    !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; d && i < n; i++) {
			GElf_Rela r;

			if (!gelf_getrela(d, (int)i, &r) || r.r_offset != slot)
				continue;
			switch (GELF_R_TYPE(r.r_info)) {
			case R_X86_64_RELATIVE:
				*val = (uint64_t)r.r_addend;
				return 1;
			case R_X86_64_64: {
				Elf_Scn *ss = elf_getscn(elf, sh.sh_link);
				Elf_Data *sd = ss ? elf_getdata(ss, NULL)
						  : NULL;
				GElf_Sym s;

				if (!sd ||
				    !gelf_getsym(sd, (int)GELF_R_SYM(r.r_info),
						 &s) ||
				    s.st_shndx == SHN_UNDEF)
					return -1;
				*val = s.st_value + (uint64_t)r.r_addend;
				return 1;
			}
			default:
				return -1;
			}
		}
	}
	return 0;
}

/* The entries of @elf into *@out (malloc'ed), their count in *@n. */
static int list_entries(const char *path, Elf *elf, struct entry **out,
			size_t *n)
{
	size_t shstrndx, cap = 0;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	*out = NULL;
	*n = 0;
	if (elf_getshdrstrndx(elf, &shstrndx))
		return -1;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name || strcmp(name, PFE_SECTION))
			continue;
		if (sh.sh_type != SHT_PROGBITS) /* .bss-like: nothing */
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || d->d_size % 8) {
			fprintf(stderr,
				"%s: %s: %s has a size that is not "
				"a multiple of 8\n",
				prog, path, PFE_SECTION);
			return -1;
		}
		for (size_t i = 0; i < d->d_size / 8; i++) {
			uint64_t slot = sh.sh_addr + 8 * i, val;
			int r = reloc_at(elf, slot, &val);

			if (r < 0) {
				fprintf(stderr,
					"%s: %s: entry %zu of %s has "
					"a relocation this tool does "
					"not read\n",
					prog, path, i, PFE_SECTION);
				return -1;
			}
			if (!r)
				memcpy(&val, (const char *)d->d_buf + 8 * i, 8);
			if (*n == cap) {
				size_t c = cap ? 2 * cap : 256;
				struct entry *g = realloc(*out, c * sizeof(*g));

				if (!g) {
					fprintf(stderr, "%s: out of memory\n",
						prog);
					return -1;
				}
				*out = g;
				cap = c;
			}
			(*out)[*n].addr = val;
			(*out)[*n].off = addr_to_off(elf, val, 5);
			if ((*out)[*n].off < 0) {
				fprintf(stderr,
					"%s: %s: entry %#llx is not "
					"in an executable section\n",
					prog, path, (unsigned long long)val);
				return -1;
			}
			(*n)++;
		}
	}
	return 0;
}

static int fix_file(const char *path, bool check_only)
{
	struct entry *e = NULL;
	size_t n = 0, todo = 0, done = 0;
	int fd, ret = 1;
	Elf *elf = NULL;
	GElf_Ehdr eh;

	fd = open(path, (check_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return 1;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		fprintf(stderr, "%s: %s: not an ELF file\n", prog, path);
		goto out;
	}
	if (eh.e_machine == EM_AARCH64 && eh.e_ident[EI_CLASS] == ELFCLASS64) {
		/* Each aarch64 entry NOP is one instruction already: a
		 * uprobe never resumes inside rewire's B. */
		ret = 0;
		goto out;
	}
	if (eh.e_machine != EM_X86_64 || eh.e_ident[EI_CLASS] != ELFCLASS64) {
		fprintf(stderr, "%s: %s: not an x86-64 ELF file\n", prog, path);
		goto out;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		fprintf(stderr,
			"%s: %s: not a linked program or shared "
			"library (run it after the link)\n",
			prog, path);
		goto out;
	}
	if (list_entries(path, elf, &e, &n))
		goto out;
	/* Check every entry before writing any. */
	for (size_t i = 0; i < n; i++) {
		uint8_t b[5];

		if (pread(fd, b, 5, e[i].off) != 5) {
			fprintf(stderr, "%s: %s: cannot read entry %#llx\n",
				prog, path, (unsigned long long)e[i].addr);
			goto out;
		}
		if (!memcmp(b, nop5, 5)) {
			e[i].off = -1; /* already done */
			done++;
			continue;
		}
		if (memcmp(b, nops1, 5)) {
			fprintf(stderr,
				"%s: %s: entry %#llx holds "
				"%02x %02x %02x %02x %02x, not five "
				"one-byte NOPs (90) or one five-byte "
				"NOP (0f 1f 44 00 00); nothing "
				"written\n",
				prog, path, (unsigned long long)e[i].addr, b[0],
				b[1], b[2], b[3], b[4]);
			goto out;
		}
		todo++;
	}
	if (check_only) {
		printf("%s: %zu entries, %zu with one 5-byte NOP, %zu with "
		       "five 1-byte NOPs\n",
		       path, n, done, todo);
		ret = todo ? 3 : 0;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].off < 0)
			continue;
		if (pwrite(fd, nop5, 5, e[i].off) != 5) {
			fprintf(stderr, "%s: %s: write: %s\n", prog, path,
				strerror(errno));
			goto out;
		}
	}
	if (fsync(fd)) {
		fprintf(stderr, "%s: %s: fsync: %s\n", prog, path,
			strerror(errno));
		goto out;
	}
	printf("%s: %zu entries rewritten, %zu already done\n", path, todo,
	       done);
	ret = 0;
out:
	free(e);
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	bool check_only = false;
	int i = 1, ret = 0;

	if (argc > 1 && !strcmp(argv[1], "--check")) {
		check_only = true;
		i++;
	}
	if (i >= argc || !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
		fprintf(stderr,
			"usage: %s [--check] FILE...\n"
			"Rewrites each patchable function entry of FILE "
			"(-fpatchable-function-entry=5) from five 1-byte NOPs "
			"to one 5-byte NOP, so that a uprobe on a function "
			"that rewire patched cannot resume inside the jump.\n"
			"--check: only count (exit 3 if some are not "
			"rewritten).\n",
			prog);
		return 2;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		fprintf(stderr, "%s: libelf: %s\n", prog, elf_errmsg(-1));
		return 1;
	}
	for (; i < argc; i++) {
		int r = fix_file(argv[i], check_only);

		if (r && (!ret || r == 1))
			ret = r; /* a failure outranks "not rewritten" */
	}
	return ret;
}
