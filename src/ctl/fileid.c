// SPDX-License-Identifier: MIT
/*
 * The identity of a patch file (fileid.h): its GNU build-id, else the FNV-1a
 * hash of its bytes. Compiled into librewire and into the rewire command.
 */
#include "fileid.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NT_GNU_BUILD_ID
#define NT_GNU_BUILD_ID 3
#endif

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static bool elf_ready;

static void elf_init(void)
{
	elf_ready = elf_version(EV_CURRENT) != EV_NONE;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The build-id note in @d, in hex into @out; false when there is none. */
static bool note_id(Elf_Data *d, char *out, size_t size)
{
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, next;

	while (d &&
	       (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    !memcmp((const char *)d->d_buf + name_off, "GNU", 4) &&
		    nh.n_descsz && 2 * (size_t)nh.n_descsz < size) {
			hex((const uint8_t *)d->d_buf + desc_off, nh.n_descsz,
			    out);
			return true;
		}
		off = next;
	}
	return false;
}

static bool build_id(int fd, char *out, size_t size)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	size_t nph = 0;
	bool found = false;
	Elf *elf;

	pthread_once(&elf_once, elf_init);
	if (!elf_ready)
		return false;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		if (elf)
			elf_end(elf);
		return false;
	}
	while (!found && (scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE)
			found = note_id(elf_getdata(scn, NULL), out, size);
	}
	/* No section headers (stripped of them): the segments. */
	if (!found && !elf_getphdrnum(elf, &nph)) {
		for (size_t i = 0; i < nph && !found; i++) {
			GElf_Phdr ph;

			if (!gelf_getphdr(elf, (int)i, &ph) ||
			    ph.p_type != PT_NOTE)
				continue;
			found = note_id(elf_getdata_rawchunk(elf, ph.p_offset,
							     ph.p_filesz,
							     ELF_T_NHDR),
					out, size);
		}
	}
	elf_end(elf);
	return found;
}

int rw_file_id(int fd, char *out, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ull, off = 0;
	unsigned char buf[65536];
	struct stat st;

	if (size < RW_FILE_ID_MAX)
		return -EINVAL;
	if (build_id(fd, out, size))
		return 0;
	if (fstat(fd, &st))
		return -errno;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			h ^= buf[i];
			h *= 0x100000001b3ull;
		}
		off += (uint64_t)n;
	}
	if (off != (uint64_t)st.st_size)
		return -EIO;
	snprintf(out, size, "size:%llu-fnv:%016llx", (unsigned long long)off,
		 (unsigned long long)h);
	return 0;
}
