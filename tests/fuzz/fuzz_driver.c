/* SPDX-License-Identifier: MIT */
/*
 * A libFuzzer stand-in: runs LLVMFuzzerTestOneInput() over files, so that
 * a fuzz target is built by any compiler (GCC in every preset, sanitizers
 * included) and its corpus replayed as an ordinary test.
 *
 *   fuzz_driver [-q] PATH...    each PATH a file, or a directory whose
 *                               regular files are all inputs
 *
 * Besides each input as it is, it runs every prefix of it and every
 * single-bit flip of it (within its first 4096 bytes): a deterministic
 * neighbourhood of the corpus, cheap enough for every build. Each input is
 * copied into a buffer of exactly its size, so that ASan sees a read past
 * its end. Exit 0 when every input ran (a target reports a bug by
 * aborting), 1 when a path cannot be read or no input was found.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATE_MAX 4096

static unsigned long runs;

static void run_one(const uint8_t *data, size_t size)
{
	/* malloc(0) may return NULL; a target must not mind either way,
	 * but give it a valid pointer. */
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy) {
		perror("fuzz_driver: malloc");
		exit(1);
	}
	if (size)
		memcpy(copy, data, size);
	LLVMFuzzerTestOneInput(copy, size);
	free(copy);
	runs++;
}

static void run_input(const uint8_t *data, size_t size)
{
	uint8_t *m;
	size_t i, n = size < MUTATE_MAX ? size : MUTATE_MAX;

	run_one(data, size);
	for (i = 0; i < size && i < MUTATE_MAX; i++)
		run_one(data, i);
	m = malloc(size ? size : 1);
	if (!m) {
		perror("fuzz_driver: malloc");
		exit(1);
	}
	if (size)
		memcpy(m, data, size);
	for (i = 0; i < n * 8; i++) {
		m[i / 8] ^= (uint8_t)(1u << (i % 8));
		run_one(m, size);
		m[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	free(m);
}

static int run_file(const char *path, int quiet)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, r;

	if (!f) {
		fprintf(stderr, "fuzz_driver: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				perror("fuzz_driver: realloc");
				exit(1);
			}
			buf = nb;
		}
		r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "fuzz_driver: %s: read error\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	if (!quiet)
		printf("fuzz_driver: %s (%zu bytes)\n", path, len);
	run_input(buf, len);
	free(buf);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of @dir, in name order. Returns the number run or
 * -1. */
static int run_dir(const char *dir, int quiet)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int count = 0, bad = 0;

	if (!d) {
		fprintf(stderr, "fuzz_driver: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char path[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
		    (int)sizeof(path))
			continue;
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 64;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				perror("fuzz_driver: realloc");
				exit(1);
			}
			names = nn;
		}
		names[n] = strdup(path);
		if (!names[n]) {
			perror("fuzz_driver: strdup");
			exit(1);
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		if (run_file(names[i], quiet) == 0)
			count++;
		else
			bad = 1;
		free(names[i]);
	}
	free(names);
	return bad ? -1 : count;
}

int main(int argc, char **argv)
{
	int quiet = 0, inputs = 0, failed = 0;
	struct stat st;

	for (int i = 1; i < argc; i++) {
		int r;

		if (strcmp(argv[i], "-q") == 0) {
			quiet = 1;
			continue;
		}
		if (stat(argv[i], &st)) {
			fprintf(stderr, "fuzz_driver: %s: %s\n", argv[i],
				strerror(errno));
			failed = 1;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			r = run_dir(argv[i], quiet);
			if (r < 0)
				failed = 1;
			else
				inputs += r;
		} else if (run_file(argv[i], quiet) == 0) {
			inputs++;
		} else {
			failed = 1;
		}
	}
	if (!failed && inputs == 0) {
		fprintf(stderr,
			"fuzz_driver: no input (usage: %s [-q] "
			"FILE|DIR...)\n",
			argv[0]);
		return 1;
	}
	printf("fuzz_driver: %d inputs, %lu runs%s\n", inputs, runs,
	       failed ? ", some paths failed" : "");
	return failed;
}
