/* SPDX-License-Identifier: MIT */
/*
 * SNAPSHOT (the flight recorder's request, src/ctl/server.c) against the
 * control server in-process, spoken to with the wire format's own code,
 * and the real producer's overwrite rings (src/ctl/trace.c) copied with
 * the rewire command's S1-S4 copy (tools/rewire/trace_snap.c).
 *
 * Oracles:
 *   - no overwrite session: -ENOENT, and the message says how to start one
 *     (also when a streaming session runs);
 *   - one: the reply passes the memfd, names the session, its owner (this
 *     process: the test is its own client) and its tracepoints; FUNCS on
 *     the asking connection gives the session's function table;
 *   - while two threads fire as fast as they can into 64 KiB rings that
 *     they write over many times, each snapshot decodes to whole records
 *     whose numbers are consecutive per thread, ending at or after the
 *     last number the thread had fired before the snapshot began; the
 *     threads' own calls never wait (the test ends);
 *   - two overwrite sessions: -RW_ERR_AMBIGUOUS listing both numbers;
 *     SESSION picks one; an unknown number is -ENOENT;
 *   - lifetimes: the session stops (TRACE_STOP on its own connection)
 *     while the snapshot's mapping is in use: the mapping still reads
 *     (ASan: no use after free in either process part), FUNCS then fails
 *     with -ENOENT saying the session stopped, and closing the snapshot
 *     connection leaves the other session running.
 */
#include <rewire/rewire.h>

#include "check.h"
#include "ctl/ring.h"
#include "ctl/wire.h"
#include "trace_snap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

RW_DECLARE_TRACEPOINT(snap_tp, (int, thread), (long, seq));
RW_DEFINE_TRACEPOINT(snap_tp, (int, thread), (long, seq));
RW_DECLARE_TRACEPOINT(snap_other, (int, x));
RW_DEFINE_TRACEPOINT(snap_other, (int, x));

__attribute__((noinline)) int snap_traced_fn(int x);
__attribute__((noinline)) int snap_traced_fn(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

static char sock[108];
static struct rw_wire_buf out;

static int connect_ctl(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	CHECK_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	return fd;
}

static void roundtrip(int fd, struct rw_wire_msg *m)
{
	CHECK_OK(rw_wire_finish(&out));
	CHECK_OK(rw_wire_send(fd, &out, -1));
	CHECK_OK(rw_wire_recv(fd, m, 10000));
}

static int64_t error_of(const struct rw_wire_msg *m, char *msg, size_t size)
{
	int64_t e = 0;

	CHECK_EQ(m->type, RW_MSG_ERROR);
	CHECK(rw_wire_find_i64(m->payload, m->len, RW_TAG_ERRNO, &e));
	CHECK(rw_wire_find_str(m->payload, m->len, RW_TAG_MESSAGE, msg, size));
	return e;
}

static int hello(void)
{
	struct rw_wire_msg m;
	int fd = connect_ctl();

	rw_wire_begin(&out, RW_MSG_HELLO);
	rw_wire_u64(&out, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(&out, RW_TAG_CLIENT, "test_ctl_snapshot");
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
	return fd;
}

/* TRACE_START of @name (and @func, if not NULL), overwrite or not; the
 * session's number from its memory. */
static uint64_t start(int fd, const char *name, const char *func,
		      bool overwrite)
{
	struct rw_wire_msg m;
	struct rw_trace_shm h;
	uint64_t size = 0;
	void *p;

	rw_wire_begin(&out, RW_MSG_TRACE_START);
	rw_wire_str(&out, RW_TAG_NAME, name);
	if (func)
		rw_wire_str(&out, RW_TAG_PATTERN, func);
	rw_wire_u64(&out, RW_TAG_RING_SIZE, 64 * 1024);
	if (overwrite)
		rw_wire_u64(&out, RW_TAG_OVERWRITE, 1);
	roundtrip(fd, &m);
	if (m.type != RW_MSG_OK) {
		char msg[512];

		fprintf(stderr, "TRACE_START: %s\n",
			(error_of(&m, msg, sizeof(msg)), msg));
	}
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &size));
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, m.fd, 0);
	CHECK(p != MAP_FAILED);
	memcpy(&h, p, sizeof(h));
	munmap(p, size);
	CHECK_EQ(!!(h.flags & RW_TRACE_F_OVERWRITE), overwrite);
	rw_wire_msg_free(&m);
	return h.session;
}

static void stop(int fd)
{
	struct rw_wire_msg m;

	rw_wire_begin(&out, RW_MSG_TRACE_STOP);
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
}

static int64_t snapshot_err(int fd, uint64_t session, char *msg, size_t size)
{
	struct rw_wire_msg m;
	int64_t e;

	rw_wire_begin(&out, RW_MSG_SNAPSHOT);
	if (session)
		rw_wire_u64(&out, RW_TAG_SESSION, session);
	roundtrip(fd, &m);
	e = error_of(&m, msg, size);
	CHECK_EQ(m.fd, -1);
	rw_wire_msg_free(&m);
	return e;
}

/* --- The traced threads ------------------------------------------------------ */

#define NTHREADS 2

static _Atomic bool stop_threads;
static _Atomic long fired[NTHREADS];

static void *fire_main(void *arg)
{
	int me = (int)(intptr_t)arg;
	long seq = 0;

	while (!atomic_load_explicit(&stop_threads, memory_order_relaxed)) {
		rw_trace_snap_tp(me, seq);
		seq++;
		atomic_store_explicit(&fired[me], seq, memory_order_release);
		if ((seq & 1023) == 0)
			snap_traced_fn(me);
	}
	return NULL;
}

/* Slots found written over during every try of their copy. */
static long lapped, copies;

/* Checks one snapshot of the rings at @map against the threads (@live:
 * the session still records what they fire). */
static void check_snapshot(const void *map, size_t size, bool live,
			   uint64_t *records)
{
	struct rw_trace_snap sn;
	long before[NTHREADS];
	bool seen[NTHREADS] = { false };
	bool any_lapped = false;

	for (int i = 0; i < NTHREADS; i++)
		before[i] =
			atomic_load_explicit(&fired[i], memory_order_acquire);
	CHECK_OK(rw_trace_snap_take(map, size, &sn));
	for (size_t i = 0; i < sn.nslots; i++) {
		struct rw_trace_snap_slot *s = &sn.slots[i];
		size_t pos;
		long next = -1, last = -1;
		int who = -1;

		rw_trace_snap_trim(&sn, s, 0);
		CHECK(!s->corrupt);
		copies++;
		if (s->lapped) {
			/* The thread wrote over its whole ring during every
			 * try of the copy: this process lost its CPU for that
			 * long (a loaded machine). The slot is empty, as
			 * trace_snap.h says; its thread cannot be checked. */
			lapped++;
			any_lapped = true;
			continue;
		}
		for (pos = s->off; pos < s->len;) {
			struct rw_trace_rec rec;
			int64_t thread, seq;

			memcpy(&rec, s->buf + pos, sizeof(rec));
			if (rec.id == RW_TRACE_PAD ||
			    rec.id == RW_TRACE_FUNC_ENTRY) {
				pos += rec.len;
				continue;
			}
			CHECK_EQ(rec.id, 0); /* snap_tp: the only one */
			CHECK_EQ(rec.nargs, 2);
			CHECK_EQ(rec.len, 32);
			memcpy(&thread, s->buf + pos + 16, 8);
			memcpy(&seq, s->buf + pos + 24, 8);
			CHECK(thread >= 0 && thread < NTHREADS);
			CHECK(who < 0 || who == thread);
			who = (int)thread;
			CHECK(next < 0 || seq == next);
			next = seq + 1;
			last = seq;
			(*records)++;
			pos += rec.len;
		}
		if (who < 0)
			continue;
		CHECK(!seen[who]);
		seen[who] = true;
		/* Everything fired before the snapshot began is in it. */
		CHECK(!live || last + 1 >= before[who]);
	}
	for (int i = 0; i < NTHREADS; i++)
		CHECK(seen[i] || !before[i] || !live || any_lapped);
	rw_trace_snap_free(&sn);
}

int main(void)
{
	char base[] = "/tmp/rw-test-ctl-snap-XXXXXX", dir[256], msg[4096];
	struct rw_wire_msg m;
	pthread_t th[NTHREADS];
	uint64_t n1, n2, got = 0, owner = 0, size = 0, nfuncs = 0, next = 0;
	uint64_t records = 0;
	int streaming, rec1, rec2, snap;
	void *map;

	CHECK(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/ctl", base);
	setenv("REWIRE_CTL_DIR", dir, 1);
	CHECK_OK(rw_ctl_start());
	CHECK_OK(rw_ctl_socket_path(sock, sizeof(sock)));

	/* None. */
	snap = hello();
	CHECK_EQ(snapshot_err(snap, 0, msg, sizeof(msg)), -ENOENT);
	CHECK(strstr(msg, "--snapshot"));
	streaming = hello();
	start(streaming, "snap_other", NULL, false);
	CHECK_EQ(snapshot_err(snap, 0, msg, sizeof(msg)), -ENOENT);
	CHECK(strstr(msg, "stream"));

	/* One, with a function: threads firing. */
	rec1 = hello();
	n1 = start(rec1, "snap_tp", "snap_traced_fn", true);
	for (int i = 0; i < NTHREADS; i++)
		CHECK(!pthread_create(&th[i], NULL, fire_main,
				      (void *)(intptr_t)i));
	while (atomic_load(&fired[0]) < 100000 ||
	       atomic_load(&fired[1]) < 100000)
		usleep(1000);

	rw_wire_begin(&out, RW_MSG_SNAPSHOT);
	roundtrip(snap, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK(m.fd >= 0);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_SESSION, &got));
	CHECK_EQ(got, n1);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_OWNER, &owner));
	CHECK_EQ(owner, getpid());
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_NFUNCS, &nfuncs));
	CHECK_EQ(nfuncs, 1);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &size));
	{
		struct rw_wire_field f;
		char name[64];

		CHECK(rw_wire_find(m.payload, m.len, RW_TAG_TRACEPOINT, &f));
		CHECK(rw_wire_find_str(f.data, f.len, RW_TAG_NAME, name,
				       sizeof(name)));
		CHECK(!strcmp(name, "snap_tp"));
	}
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, m.fd, 0);
	CHECK(map != MAP_FAILED);
	rw_wire_msg_free(&m); /* closes our memfd: the mapping stays */

	/* FUNCS on the snapshot's connection: the session's table. */
	rw_wire_begin(&out, RW_MSG_FUNCS);
	rw_wire_u64(&out, RW_TAG_FROM, 0);
	roundtrip(snap, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	{
		struct rw_wire_field f;
		char name[64];

		CHECK(rw_wire_find(m.payload, m.len, RW_TAG_FUNCTION, &f));
		CHECK(rw_wire_find_str(f.data, f.len, RW_TAG_NAME, name,
				       sizeof(name)));
		CHECK(!strcmp(name, "snap_traced_fn"));
		CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_NEXT, &next));
		CHECK_EQ(next, 1);
	}
	rw_wire_msg_free(&m);

	for (int i = 0; i < 200; i++)
		check_snapshot(map, size, true, &records);
	fprintf(stderr,
		"%llu records checked in 200 snapshots (%ld of %ld slot "
		"copies lapped)\n",
		(unsigned long long)records, lapped, copies);
	/* Lapping is the exception (a preempted copy), not the rule. How
	 * often it happens depends on the machine's load (10% of the copies
	 * under ASan on a loaded 2-CPU CI machine, 15% once): a bound on it
	 * would be a timing assertion. What must hold is that copies succeed
	 * at all and that the records they hold were checked. */
	CHECK(lapped < copies);
	CHECK(records > 0);
	/* The snapshot's connection holds no session: the server closes it
	 * after 5 s without a request (src/ctl/server.c, IDLE_TIMEOUT_MS),
	 * and the checks above take longer than that emulated. A new one. */
	close(snap);
	snap = hello();

	/* Two. */
	rec2 = hello();
	n2 = start(rec2, "snap_other", NULL, true);
	CHECK(n2 != n1);
	CHECK_EQ(snapshot_err(snap, 0, msg, sizeof(msg)), -RW_ERR_AMBIGUOUS);
	{
		char a[32], b[32];

		snprintf(a, sizeof(a), "%llu (", (unsigned long long)n1);
		snprintf(b, sizeof(b), "%llu (", (unsigned long long)n2);
		CHECK(strstr(msg, a) && strstr(msg, b));
		CHECK(strstr(msg, "--session"));
	}
	CHECK_EQ(snapshot_err(snap, n2 + 1000, msg, sizeof(msg)), -ENOENT);
	rw_wire_begin(&out, RW_MSG_SNAPSHOT);
	rw_wire_u64(&out, RW_TAG_SESSION, n2);
	roundtrip(snap, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_SESSION, &got));
	CHECK_EQ(got, n2);
	CHECK(!rw_wire_find_u64(m.payload, m.len, RW_TAG_NFUNCS, &nfuncs));
	rw_wire_msg_free(&m);

	/* The first session stops while its memory is mapped here. */
	stop(rec1);
	atomic_store(&stop_threads, true);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	check_snapshot(map, size, false, &records);
	munmap(map, size);
	rw_wire_begin(&out, RW_MSG_FUNCS);
	rw_wire_u64(&out, RW_TAG_FROM, 0);
	roundtrip(snap, &m);
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -ENOENT);
	CHECK(strstr(msg, "stopped"));
	rw_wire_msg_free(&m);

	/* The asking connection goes: the other session stays. */
	close(snap);
	snap = hello();
	rw_wire_begin(&out, RW_MSG_SNAPSHOT);
	roundtrip(snap, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_SESSION, &got));
	CHECK_EQ(got, n2);
	rw_wire_msg_free(&m);
	stop(rec2);
	CHECK_EQ(snapshot_err(snap, 0, msg, sizeof(msg)), -ENOENT);

	close(snap);
	close(rec1);
	close(rec2);
	close(streaming);
	rw_wire_free(&out);
	rw_ctl_stop();
	printf("ok\n");
	return 0;
}
