/* SPDX-License-Identifier: MIT */
/*
 * The seed corpus of fuzz_wire (tests/fuzz/corpus_wire/): a handful of
 * valid messages, written with the wire writer.
 *
 *   gen_corpus_wire DIR           write the seeds into DIR
 *   gen_corpus_wire --check DIR   exit 1 unless DIR holds them, byte for
 *                                 byte (the test fuzz_wire_corpus: the
 *                                 committed seeds follow the format)
 */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seed {
	const char *name;
	void (*build)(struct rw_wire_buf *b);
};

static void hello(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_HELLO);
	rw_wire_u64(b, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(b, RW_TAG_CLIENT, "rewire 0.1.0 ls");
}

static void hello_ok(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_OK);
	rw_wire_u64(b, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_u64(b, RW_TAG_PID, 31337);
	rw_wire_str(b, RW_TAG_PROGRAM, "/usr/local/bin/server");
	rw_wire_str(b, RW_TAG_CMDLINE, "server --port 8080 -v");
	rw_wire_str(b, RW_TAG_LIBVERSION, "0.1.0");
}

static void ls(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_LS);
}

static void ls_ok(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_OK);
	rw_wire_group_begin(b, RW_TAG_KEY);
	rw_wire_str(b, RW_TAG_NAME, "audit");
	rw_wire_str(b, RW_TAG_OBJECT, "/usr/local/bin/server");
	rw_wire_u64(b, RW_TAG_ENABLED, 0);
	rw_wire_i64(b, RW_TAG_COUNT, 0);
	rw_wire_u64(b, RW_TAG_INITIAL, 0);
	rw_wire_u64(b, RW_TAG_SITES, 4);
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_CALL);
	rw_wire_str(b, RW_TAG_NAME, "checksum");
	rw_wire_str(b, RW_TAG_OBJECT, "/usr/local/bin/server");
	rw_wire_str(b, RW_TAG_TARGET, "sum");
	rw_wire_str(b, RW_TAG_CANDIDATE, "sum");
	rw_wire_str(b, RW_TAG_CANDIDATE, "crc");
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_TRACEPOINT);
	rw_wire_str(b, RW_TAG_NAME, "req_done");
	rw_wire_str(b, RW_TAG_OBJECT, "/usr/local/bin/server");
	rw_wire_group_begin(b, RW_TAG_FIELD);
	rw_wire_str(b, RW_TAG_NAME, "status");
	rw_wire_str(b, RW_TAG_CTYPE, "int");
	rw_wire_u64(b, RW_TAG_KIND, 2);
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_FIELD);
	rw_wire_str(b, RW_TAG_NAME, "path");
	rw_wire_str(b, RW_TAG_CTYPE, "const char *");
	rw_wire_u64(b, RW_TAG_KIND, 9);
	rw_wire_group_end(b);
	rw_wire_u64(b, RW_TAG_PROBES, 1);
	rw_wire_str(b, RW_TAG_PROBE, "0x7f00dead0000");
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_PATCH);
	rw_wire_str(b, RW_TAG_NAME, "fix_parser");
	rw_wire_u64(b, RW_TAG_STATE, 2);
	rw_wire_group_begin(b, RW_TAG_PENDING);
	rw_wire_u64(b, RW_TAG_TID, 4243);
	rw_wire_str(b, RW_TAG_NAME, "worker-1");
	rw_wire_u64(b, RW_TAG_WHY, 1);
	rw_wire_str(b, RW_TAG_FUNC, "parse_request");
	rw_wire_u64(b, RW_TAG_IP, 0x55550000a0b0ull);
	rw_wire_group_end(b);
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_THREAD);
	rw_wire_u64(b, RW_TAG_TID, 4242);
	rw_wire_str(b, RW_TAG_NAME, "server");
	rw_wire_str(b, RW_TAG_STATE, "S");
	rw_wire_i64(b, RW_TAG_PATCHED, -1);
	rw_wire_group_end(b);
}

static void error_reply(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_ERROR);
	rw_wire_i64(b, RW_TAG_ERRNO, -ENOENT);
	rw_wire_str(b, RW_TAG_MESSAGE, "no static key named 'audit'");
}

static void unknown(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_UNKNOWN);
	rw_wire_u64(b, RW_TAG_TYPE, 77);
}

static void key(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_KEY);
	rw_wire_str(b, RW_TAG_NAME, "audit");
	rw_wire_u64(b, RW_TAG_VALUE, 1);
}

static void trace_start(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_TRACE_START);
	rw_wire_str(b, RW_TAG_NAME, "req_*");
	rw_wire_str(b, RW_TAG_NAME, "db_query");
	rw_wire_u64(b, RW_TAG_RING_SIZE, 1u << 20);
}

/* Groups RW_WIRE_MAX_DEPTH deep, empty ones, unknown tags. */
static void deep(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_OK);
	rw_wire_u64(b, 0xfffe, UINT64_MAX);
	for (int d = 0; d < RW_WIRE_MAX_DEPTH; d++) {
		rw_wire_group_begin(b, (uint16_t)(1000 + d));
		rw_wire_i64(b, RW_TAG_COUNT, INT64_MIN + d);
	}
	rw_wire_str(b, RW_TAG_MESSAGE, "");
	for (int d = 0; d < RW_WIRE_MAX_DEPTH; d++)
		rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_KEY);
	rw_wire_group_end(b);
	rw_wire_str(b, 0, "tag zero");
}

static const struct seed seeds[] = {
	{ "hello", hello },
	{ "hello_ok", hello_ok },
	{ "ls", ls },
	{ "ls_ok", ls_ok },
	{ "error", error_reply },
	{ "unknown", unknown },
	{ "key", key },
	{ "trace_start", trace_start },
	{ "deep", deep },
};

int main(int argc, char **argv)
{
	struct rw_wire_buf b = { 0 };
	int check = argc == 3 && strcmp(argv[1], "--check") == 0;
	const char *dir = argv[argc - 1];
	int bad = 0;

	if (argc != 2 && !check) {
		fprintf(stderr, "usage: %s [--check] DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[4096], *old;
		FILE *f;
		size_t n;
		int err;

		seeds[i].build(&b);
		err = rw_wire_finish(&b);
		if (err) {
			fprintf(stderr, "%s: finish: %d\n", seeds[i].name, err);
			return 1;
		}
		snprintf(path, sizeof(path), "%s/%s.bin", dir, seeds[i].name);
		f = fopen(path, check ? "rb" : "wb");
		if (!f) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			bad = 1;
			continue;
		}
		if (!check) {
			if (fwrite(b.data, 1, b.len, f) != b.len) {
				fprintf(stderr, "%s: short write\n", path);
				bad = 1;
			}
		} else {
			old = malloc(b.len + 1);
			if (!old)
				return 1;
			n = fread(old, 1, b.len + 1, f);
			if (n != b.len || memcmp(old, b.data, b.len)) {
				fprintf(stderr,
					"%s: differs from what the writer "
					"makes now; regenerate with %s DIR\n",
					path, argv[0]);
				bad = 1;
			}
			free(old);
		}
		if (fclose(f)) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			bad = 1;
		}
	}
	rw_wire_free(&b);
	if (!bad)
		printf("gen_corpus_wire: %zu seeds %s %s\n",
		       sizeof(seeds) / sizeof(seeds[0]),
		       check ? "match" : "written to", dir);
	return bad;
}
