/* SPDX-License-Identifier: MIT */
/*
 * kvserver - a multithreaded key-value server on loopback TCP: the program
 * that rewire's main demo changes while it serves.
 *
 *	rw-kvserver [--port N] [--threads N] [--port-file PATH]
 *
 * It prints its pid and port, serves until SIGTERM or SIGINT, then closes
 * its connections, joins its threads and prints how many requests it
 * served. examples/kv/kvload.c keeps it busy and checks every answer.
 * With REWIRE_CTL=1 in its environment, librewire's control socket lets
 * the `rewire` command change it (rewire/ctl.h):
 *
 *	REWIRE_CTL=1 rw-kvserver --port-file /tmp/kv.port &
 *	rw-kvload --port-file /tmp/kv.port &
 *	rewire trace PID kv_request
 *	rewire call PID kv_checksum crc32c_hw
 *	rewire patch PID fix_value.so
 *	rewire unpatch PID fix_value
 *
 * What can be changed in it from outside, while clients keep it busy:
 *
 * - Two tracepoints, a 5-byte NOP at each site until a probe is attached:
 *	kv_request(op, key, value_len, status, latency_ns)  after each request
 *	kv_conn(event, fd, peer_port)                       open and close
 * - A static call, kv_checksum, computing the CRC-32C that each GET reply
 *   carries. It starts on crc32c_bytewise (a table lookup per byte: slow)
 *   and can be pointed at crc32c_hw (the SSE4.2 crc32 instruction, eight
 *   bytes at a time). Both give the same result; only the speed changes.
 * - A bug in kv_copy_value(): values of 100 bytes or more come back with
 *   their last 8 bytes wrong. examples/kv/patches/fix_value.c (fix_value.so
 *   next to this program) replaces the function in the running server.
 *
 * The protocol
 *
 * Requests and replies are lines ending in "\r\n" (a bare "\n" is also
 * accepted at the end of a request line) on a persistent connection.
 * Requests may be pipelined; they are answered in order.
 *
 *	SET <key> <len>\r\n<len bytes>\r\n  ->  STORED\r\n
 *	GET <key>\r\n                       ->  VALUE <len> <crc>\r\n<len bytes>\r\n
 *	                                    or  NOTFOUND\r\n
 *	anything else                       ->  ERROR <reason>\r\n
 *
 * <key>: 1 to 250 bytes of printable ASCII, no spaces (0x21 to 0x7e).
 * <len>: decimal, 0 to 65536; the value is any bytes.
 * <crc>: the CRC-32C (Castagnoli, as in iSCSI and ext4) of the value bytes
 *	  of this reply, 8 lowercase hex digits.
 *
 * A malformed request gets one ERROR line and the connection goes on with
 * what follows:
 * - a request line longer than 512 bytes is answered once and skipped up
 *   to its end;
 * - a SET whose <len> is over 65536 is refused and its <len> + 2 bytes of
 *   data are skipped, so that they are not taken for requests;
 * - a SET whose data is not followed by "\r\n" is refused and reading goes
 *   on right after the data.
 * Memory per connection is bounded (about 200 KiB of buffers). Values stay
 * until overwritten: there is no DEL and no eviction (this is a demo).
 *
 * Threads
 *
 * The main thread accepts connections and hands each one to a worker,
 * round robin. Each worker owns its connections and serves them with its
 * own epoll set (level-triggered, non-blocking sockets). The store is a
 * hash table split into 64 shards, each with its own read-write lock and
 * its own bucket array that doubles as it fills. SIGINT and SIGTERM are
 * blocked in every thread and read by the main thread from a signalfd.
 */
#include <rewire/rewire.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/*
 * Idle threads wake up this often to call rw_patch_quiescent() at the top
 * of their loops. Busy threads are switched by rewire's stack check; a
 * thread blocked in epoll_wait() is usually checked from outside, but
 * not where frame pointers are needed to unwind it (sanitizer builds), and
 * epoll_wait() is not restarted after a signal, so rewire does not
 * interrupt it. A bounded wait plus the quiescent call covers every case
 * for the price of ten wake-ups a second.
 */
#define QUIESCENT_MS 100

#define KV_MAX_KEY 250
#define KV_MAX_VALUE 65536
/* The longest request line, "\r\n" included. */
#define KV_MAX_LINE 512
/* Values this long or longer take kv_copy_value()'s buggy path. */
#define KV_BIG_VALUE 100
/* Any complete request fits: a line, the value and its "\r\n". */
#define KV_RBUF (KV_MAX_LINE + KV_MAX_VALUE + 2)
/* The longest reply: "VALUE 65536 0123abcd\r\n", the value, "\r\n". */
#define KV_MAX_REPLY (sizeof("VALUE 65536 0123abcd\r\n") - 1 + KV_MAX_VALUE + 2)
#define KV_WBUF (2 * KV_MAX_REPLY)

#define KV_MAX_WORKERS 64
/* Shards of the store, and the first size of their bucket arrays: powers
 * of two. */
#define KV_SHARDS 64
#define KV_SHARD_BUCKETS 64

/* ---- Tracepoints ---------------------------------------------------------
 *
 * kv_request fires once per request, after its reply is queued:
 *	op		"GET", "SET", or "BAD" for a malformed request
 *	key		the key ("" when there is none)
 *	value_len	bytes of value stored (SET) or returned (GET)
 *	status		the reply's first word: "STORED", "VALUE", "NOTFOUND"
 *			or "ERROR"
 *	latency_ns	from the read() that completed the request to its
 *			reply being queued; 0 if the tracepoint was off at
 *			that read (no clock is read while nobody listens)
 * kv_conn fires when a worker takes a connection and when it closes one:
 *	event		"open" or "close"
 *	fd		the socket
 *	peer_port	the client's TCP port
 */
RW_DECLARE_TRACEPOINT(kv_request, (const char *, op), (const char *, key),
		      (unsigned, value_len), (const char *, status),
		      (uint64_t, latency_ns));
RW_DEFINE_TRACEPOINT(kv_request, (const char *, op), (const char *, key),
		     (unsigned, value_len), (const char *, status),
		     (uint64_t, latency_ns));
RW_DECLARE_TRACEPOINT(kv_conn, (const char *, event), (int, fd),
		      (unsigned, peer_port));
RW_DEFINE_TRACEPOINT(kv_conn, (const char *, event), (int, fd),
		     (unsigned, peer_port));

/* ---- CRC-32C and the static call kv_checksum ----------------------------
 *
 * CRC-32C, reflected, polynomial 0x82f63b78, initial value and final xor
 * 0xffffffff: crc32c("123456789") = 0xe3069283. Three implementations,
 * checked against each other at start:
 *
 *	crc32c_bytewise	one table lookup per byte; a chain of dependent
 *			loads, the slow target the server starts on
 *	crc32c_hw	the SSE4.2 crc32 instruction, 8 bytes per step; on a
 *			CPU without SSE4.2 it runs the slice-by-8 software
 *			version (8 tables, 8 bytes per step) instead, so the
 *			target of that name is always fast and always right
 *
 * Both targets are global functions with external names, so that the
 * rewire command can find them by name.
 */
uint32_t crc32c_bytewise(const void *buf, size_t len);
uint32_t crc32c_hw(const void *buf, size_t len);

#define CRC32C_POLY 0x82f63b78u

/* crc32c_table[k][b]: the CRC register after byte b and k zero bytes.
 * Filled by crc32c_init() before any thread starts, then read-only. */
static uint32_t crc32c_table[8][256];
/* Set by crc32c_init(), then read-only. */
static bool cpu_has_sse42;

uint32_t crc32c_bytewise(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t crc = 0xffffffffu;

	while (len--)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint32_t crc32c_slice8(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t crc = 0xffffffffu;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, p, 8); /* x86-64 is little-endian */
		w ^= crc;
		crc = crc32c_table[7][w & 0xff] ^
		      crc32c_table[6][(w >> 8) & 0xff] ^
		      crc32c_table[5][(w >> 16) & 0xff] ^
		      crc32c_table[4][(w >> 24) & 0xff] ^
		      crc32c_table[3][(w >> 32) & 0xff] ^
		      crc32c_table[2][(w >> 40) & 0xff] ^
		      crc32c_table[1][(w >> 48) & 0xff] ^
		      crc32c_table[0][w >> 56];
	}
	while (len--)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
/* Only this function is compiled for SSE4.2: the rest of the program (the
 * slice-by-8 fallback included) must run on any x86-64. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(const void *buf,
							       size_t len)
{
	const unsigned char *p = buf;
	uint64_t crc = 0xffffffffu;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		crc = _mm_crc32_u64(crc, w);
	}
	while (len--)
		crc = _mm_crc32_u8((uint32_t)crc, *p++);
	return ~(uint32_t)crc;
}
#endif

uint32_t crc32c_hw(const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (cpu_has_sse42)
		return crc32c_sse42(buf, len);
#endif
	return crc32c_slice8(buf, len);
}

/* The static call: every GET reply's CRC goes through it. */
RW_DEFINE_STATIC_CALL(kv_checksum, crc32c_bytewise);
#ifdef RW_STATIC_CALL_TARGET
RW_STATIC_CALL_TARGET(kv_checksum, crc32c_bytewise);
RW_STATIC_CALL_TARGET(kv_checksum, crc32c_hw);
#endif

/* Fills the tables, detects SSE4.2 and checks that every implementation
 * agrees, on the standard check value and on every length up to 300 with
 * every alignment up to 8. Returns false if one does not. */
static bool crc32c_init(void)
{
	unsigned char buf[308];

	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_table[0][b] = c;
	}
	for (int k = 1; k < 8; k++)
		for (int b = 0; b < 256; b++) {
			uint32_t c = crc32c_table[k - 1][b];

			crc32c_table[k][b] = (c >> 8) ^
					     crc32c_table[0][c & 0xff];
		}
#if defined(__x86_64__)
	__builtin_cpu_init();
	cpu_has_sse42 = __builtin_cpu_supports("sse4.2");
#endif

	if (crc32c_bytewise("123456789", 9) != 0xe3069283u ||
	    crc32c_slice8("123456789", 9) != 0xe3069283u ||
	    crc32c_hw("123456789", 9) != 0xe3069283u)
		return false;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 300; len++) {
			uint32_t want = crc32c_bytewise(buf + off, len);

			if (crc32c_slice8(buf + off, len) != want ||
			    crc32c_hw(buf + off, len) != want)
				return false;
		}
	return true;
}

/* ---- The bug -------------------------------------------------------------
 *
 * kv_copy_value - copy @len bytes of a stored value into a GET reply.
 *
 * THE BUG, planted for the demo. Values of KV_BIG_VALUE (100) bytes or more
 * take a "fast path": whole 8-byte words, then the tail with one 8-byte
 * copy that ends exactly at the end of the value (it overlaps bytes already
 * copied, which is cheaper than a byte loop). That last copy reads its
 * source one byte too early, so the last 8 bytes of the reply are the
 * value's bytes len-9 .. len-2. Lengths and framing stay right and the CRC
 * (computed over the bytes sent) matches them: only a client that knows
 * what it stored sees the damage (kvload counts these replies as "wrong").
 *
 * examples/kv/patches/fix_value.c replaces this function in the running
 * server. noinline keeps a real call, through the function's patchable
 * entry (five NOPs, rewire_target_patchable() in CMakeLists.txt); noipa
 * keeps GCC from cloning it or letting its callers depend on what this
 * body does (interprocedural analysis of a function the linker cannot
 * interpose would otherwise do both, and a patch could not follow).
 */
void kv_copy_value(char *dst, const char *src, size_t len);

__attribute__((noinline, noipa)) void kv_copy_value(char *dst, const char *src,
						    size_t len)
{
	size_t i;

	if (len < KV_BIG_VALUE) {
		memcpy(dst, src, len);
		return;
	}
	for (i = 0; i + 8 <= len; i += 8)
		memcpy(dst + i, src + i, 8);
	/* The tail: the 8 bytes that end the value. */
	memcpy(dst + len - 8, src + len - 9, 8); /* THE BUG: src + len - 8 */
}

/* ---- The store -----------------------------------------------------------
 *
 * A hash table in KV_SHARDS shards. The top bits of a key's hash pick the
 * shard, the low bits the bucket. A shard's lock protects its bucket array,
 * its count and every entry in it; an entry is immutable once inserted (a
 * SET replaces the whole entry), and freed by the SET that unlinked it,
 * after the lock is dropped. No lock nests inside another.
 */
struct kv_entry {
	struct kv_entry *next;
	uint64_t hash;
	uint32_t klen;
	uint32_t vlen;
	char data[]; /* the key, then the value */
};

struct kv_shard {
	pthread_rwlock_t lock;
	struct kv_entry **buckets;
	size_t mask; /* buckets - 1 */
	size_t count;
} __attribute__((aligned(64)));

static struct kv_shard shards[KV_SHARDS];

/* FNV-1a, then the murmur3 finaliser so that the top bits mix too. */
static uint64_t kv_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h;
}

static struct kv_shard *kv_shard_of(uint64_t hash)
{
	return &shards[hash >> (64 - __builtin_ctz(KV_SHARDS))];
}

/* The link that points at @key's entry, or at the NULL ending its chain.
 * Under the shard's lock. */
static struct kv_entry **kv_find(struct kv_shard *s, uint64_t hash,
				 const char *key, size_t klen)
{
	struct kv_entry **link = &s->buckets[hash & s->mask];

	for (; *link; link = &(*link)->next)
		if ((*link)->hash == hash && (*link)->klen == klen &&
		    !memcmp((*link)->data, key, klen))
			break;
	return link;
}

/* Doubles the bucket array; under the shard's write lock. Keeps the old
 * one (longer chains, still correct) if memory is short. */
static void kv_grow(struct kv_shard *s)
{
	size_t n = (s->mask + 1) * 2;
	struct kv_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i <= s->mask; i++)
		for (struct kv_entry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(s->buckets);
	s->buckets = b;
	s->mask = n - 1;
}

/* Stores a copy of @value under @key. Returns 0 or -ENOMEM. */
static int kv_store(const char *key, size_t klen, const char *value,
		    size_t vlen)
{
	uint64_t hash = kv_hash(key, klen);
	struct kv_shard *s = kv_shard_of(hash);
	struct kv_entry *e = malloc(sizeof(*e) + klen + vlen);
	struct kv_entry **link, *old;

	if (!e)
		return -ENOMEM;
	e->hash = hash;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, value, vlen);

	pthread_rwlock_wrlock(&s->lock);
	link = kv_find(s, hash, key, klen);
	old = *link;
	e->next = old ? old->next : NULL;
	*link = e;
	if (!old && ++s->count > s->mask + 1)
		kv_grow(s);
	pthread_rwlock_unlock(&s->lock);
	free(old);
	return 0;
}

static int kv_store_init(void)
{
	for (int i = 0; i < KV_SHARDS; i++) {
		int err = pthread_rwlock_init(&shards[i].lock, NULL);

		if (err)
			return -err;
		shards[i].buckets =
			calloc(KV_SHARD_BUCKETS, sizeof(*shards[i].buckets));
		if (!shards[i].buckets)
			return -ENOMEM;
		shards[i].mask = KV_SHARD_BUCKETS - 1;
	}
	return 0;
}

/* Frees every entry; no thread may use the store any more. Safe after a
 * kv_store_init() that failed midway (the static array starts zeroed). */
static void kv_store_destroy(void)
{
	for (int i = 0; i < KV_SHARDS; i++) {
		struct kv_shard *s = &shards[i];

		if (!s->buckets)
			continue;
		for (size_t b = 0; b <= s->mask; b++)
			for (struct kv_entry *e = s->buckets[b], *next; e;
			     e = next) {
				next = e->next;
				free(e);
			}
		free(s->buckets);
		s->buckets = NULL;
		pthread_rwlock_destroy(&s->lock);
	}
}

/* ---- Connections and workers ---------------------------------------------
 *
 * A connection belongs to one worker, which alone touches it after the
 * hand-over. Input is parsed from rbuf[rpos, rlen); replies are appended to
 * wbuf and sent from wbuf[wpos, wlen). A request is parsed only when wbuf
 * has room for the longest reply; while replies wait for the socket
 * (EPOLLOUT), nothing more is read, so a client that does not read its
 * replies stops being read.
 */
struct kv_conn {
	struct kv_conn *prev, *next; /* the worker's list */
	int fd;
	unsigned peer_port;
	bool eof;	     /* the client closed its side */
	bool want_out;	     /* waiting for EPOLLOUT instead of EPOLLIN */
	bool skip_line;	     /* discarding the rest of an overlong line */
	uint64_t skip_bytes; /* discarding the data of a refused SET */
	uint64_t t_read;     /* see kv_request's latency_ns */
	size_t rpos, rlen;
	size_t wpos, wlen;
	char rbuf[KV_RBUF];
	char wbuf[KV_WBUF];
};

/* A connection accepted by the main thread, not yet taken by its worker. */
struct kv_pending {
	int fd;
	unsigned peer_port;
};

struct kv_stats {
	uint64_t requests, gets, sets, errors, conns;
};

struct kv_worker {
	pthread_t thread;
	bool started;
	unsigned id;
	int epfd;
	int wakefd; /* eventfd: connections pending, or stopping */
	/* pending[0, npending): connections handed over by the main thread;
	 * under lock. */
	pthread_mutex_t lock;
	bool lock_ok;
	struct kv_pending *pending;
	size_t npending, cap;
	/* The worker thread's own. */
	struct kv_conn *conns;
	/* Written by the worker; read by the main thread after the join. */
	struct kv_stats stats;
};

/* workers[0, nworkers): set up by the main thread before the workers
 * start. */
static struct kv_worker workers[KV_MAX_WORKERS];
static unsigned nworkers = 4;
/* Set by the main thread before it wakes the workers to stop. */
static atomic_bool stopping;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Appends @len bytes to the reply buffer. The caller checked the room. */
static void reply(struct kv_conn *c, const char *s, size_t len)
{
	memcpy(c->wbuf + c->wlen, s, len);
	c->wlen += len;
}

#define REPLY_STR(c, s) reply((c), (s), sizeof(s) - 1)

static void request_done(struct kv_worker *w, struct kv_conn *c, const char *op,
			 const char *key, size_t value_len, const char *status)
{
	w->stats.requests++;
	if (status[0] == 'E')
		w->stats.errors++;
	else if (op[0] == 'G')
		w->stats.gets++;
	else
		w->stats.sets++;
	rw_trace_kv_request(op, key, (unsigned)value_len, status,
			    c->t_read ? now_ns() - c->t_read : 0);
}

static void reply_error(struct kv_worker *w, struct kv_conn *c, const char *op,
			const char *key, const char *reason)
{
	reply(c, "ERROR ", 6);
	reply(c, reason, strlen(reason));
	reply(c, "\r\n", 2);
	request_done(w, c, op, key, 0, "ERROR");
}

static unsigned ndigits(size_t n)
{
	unsigned d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/*
 * The reply to a GET that found its key: "VALUE <len> <crc>\r\n", the
 * value, "\r\n", appended to wbuf. The value is copied under the shard's
 * read lock and checksummed after it is dropped, from the reply itself.
 */
static void reply_value(struct kv_worker *w, struct kv_conn *c, const char *key,
			size_t klen)
{
	uint64_t hash = kv_hash(key, klen);
	struct kv_shard *s = kv_shard_of(hash);
	char *out = c->wbuf + c->wlen, head[32];
	struct kv_entry *e;
	size_t len, hlen;
	uint32_t crc;

	pthread_rwlock_rdlock(&s->lock);
	e = *kv_find(s, hash, key, klen);
	if (!e) {
		pthread_rwlock_unlock(&s->lock);
		REPLY_STR(c, "NOTFOUND\r\n");
		request_done(w, c, "GET", key, 0, "NOTFOUND");
		return;
	}
	len = e->vlen;
	/* "VALUE " len " " 8 hex digits "\r\n" */
	hlen = 6 + ndigits(len) + 1 + 8 + 2;
	kv_copy_value(out + hlen, e->data + e->klen, len);
	pthread_rwlock_unlock(&s->lock);

	crc = rw_static_call(kv_checksum)(out + hlen, len);
	snprintf(head, sizeof(head), "VALUE %zu %08" PRIx32 "\r\n", len, crc);
	memcpy(out, head, hlen);
	memcpy(out + hlen + len, "\r\n", 2);
	c->wlen += hlen + len + 2;
	request_done(w, c, "GET", key, len, "VALUE");
}

/* Splits @line (without its "\n") at single spaces into at most @max
 * words. Returns the number of words, or max + 1 if there are more. */
static int split_words(const char *line, size_t len, const char **word,
		       size_t *wlen, int max)
{
	int n = 0;
	size_t i = 0;

	while (i < len) {
		size_t start = i;

		while (i < len && line[i] != ' ')
			i++;
		if (n == max)
			return max + 1;
		word[n] = line + start;
		wlen[n++] = i - start;
		i++; /* the space */
	}
	/* A trailing space ("GET k ") leaves an empty last word. */
	if (len && line[len - 1] == ' ') {
		if (n == max)
			return max + 1;
		word[n] = line + len;
		wlen[n++] = 0;
	}
	return n;
}

/* Copies a valid key (1..KV_MAX_KEY bytes of 0x21..0x7e) into @out as a C
 * string. Returns false for an invalid one. */
static bool parse_key(const char *s, size_t len, char *out)
{
	if (len == 0 || len > KV_MAX_KEY)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

/* A decimal of 1 to 10 digits. Returns false otherwise. */
static bool parse_len(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * Answers the request whose line is p[0, linelen) ("\n" at p[linelen]),
 * with @avail bytes buffered from p. Returns the bytes it consumed, or 0
 * if a SET's data is not all here yet (nothing is consumed then).
 */
static size_t handle_request(struct kv_worker *w, struct kv_conn *c,
			     const char *p, size_t linelen, size_t avail)
{
	char key[KV_MAX_KEY + 1];
	const char *word[3];
	size_t wlen[3], used = linelen + 1, len;
	uint64_t vlen;
	int n;

	key[0] = '\0';
	if (linelen && p[linelen - 1] == '\r')
		linelen--;
	if (linelen == 0) {
		reply_error(w, c, "BAD", "", "empty line");
		return used;
	}
	n = split_words(p, linelen, word, wlen, 3);
	if (wlen[0] == 3 && !memcmp(word[0], "GET", 3)) {
		if (n != 2)
			reply_error(w, c, "GET", "", "usage: GET <key>");
		else if (!parse_key(word[1], wlen[1], key))
			reply_error(w, c, "GET", "", "bad key");
		else
			reply_value(w, c, key, wlen[1]);
		return used;
	}
	if (wlen[0] != 3 || memcmp(word[0], "SET", 3)) {
		reply_error(w, c, "BAD", "", "unknown command");
		return used;
	}

	if (n != 3) {
		reply_error(w, c, "SET", "", "usage: SET <key> <len>");
		return used;
	}
	if (!parse_key(word[1], wlen[1], key)) {
		reply_error(w, c, "SET", "", "bad key");
		return used;
	}
	if (!parse_len(word[2], wlen[2], &vlen)) {
		reply_error(w, c, "SET", key, "bad length");
		return used;
	}
	if (vlen > KV_MAX_VALUE) {
		/* Its data follows: skip it rather than parse it. */
		c->skip_bytes = vlen + 2;
		reply_error(w, c, "SET", key, "value too large");
		return used;
	}
	len = (size_t)vlen;
	if (avail < used + len + 2)
		return 0;
	if (memcmp(p + used + len, "\r\n", 2)) {
		reply_error(w, c, "SET", key, "bad data terminator");
		return used + len;
	}
	if (kv_store(key, wlen[1], p + used, len)) {
		reply_error(w, c, "SET", key, "out of memory");
		return used + len + 2;
	}
	REPLY_STR(c, "STORED\r\n");
	request_done(w, c, "SET", key, len, "STORED");
	return used + len + 2;
}

/*
 * Answers the complete requests in rbuf while wbuf has room for the
 * longest reply, then moves what is left of rbuf to its start. Returns
 * true if it stopped for lack of room (more requests may be waiting).
 */
static bool conn_process(struct kv_worker *w, struct kv_conn *c)
{
	bool full = false;

	while (c->rpos < c->rlen) {
		const char *p = c->rbuf + c->rpos, *nl;
		size_t avail = c->rlen - c->rpos, used;

		if (c->skip_bytes) {
			used = avail < c->skip_bytes ? avail : c->skip_bytes;
			c->skip_bytes -= used;
			c->rpos += used;
			continue;
		}
		if (c->skip_line) {
			nl = memchr(p, '\n', avail);
			c->rpos += nl ? (size_t)(nl - p) + 1 : avail;
			c->skip_line = !nl;
			continue;
		}
		if (c->wlen + KV_MAX_REPLY > KV_WBUF) {
			full = true;
			break;
		}
		nl = memchr(p, '\n', avail < KV_MAX_LINE ? avail : KV_MAX_LINE);
		if (!nl) {
			if (avail < KV_MAX_LINE)
				break; /* the rest of the line is on its way */
			reply_error(w, c, "BAD", "", "line too long");
			c->skip_line = true;
			continue;
		}
		used = handle_request(w, c, p, (size_t)(nl - p), avail);
		if (!used)
			break; /* a SET's data is on its way */
		c->rpos += used;
	}
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
	} else if (c->rpos) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	return full;
}

/* Reads what the socket has. Returns 0, or -1 if the connection failed. */
static int conn_read(struct kv_conn *c)
{
	ssize_t n;

	/* Never full: what is kept is shorter than one complete request. */
	n = recv(c->fd, c->rbuf + c->rlen, KV_RBUF - c->rlen, 0);
	if (n > 0) {
		c->rlen += (size_t)n;
		c->t_read = rw_trace_kv_request_enabled() ? now_ns() : 0;
		return 0;
	}
	if (n == 0)
		c->eof = true;
	else if (errno != EAGAIN && errno != EINTR)
		return -1; /* ECONNRESET and the like: the client is gone */
	return 0;
}

/* Sends what wbuf holds, as far as the socket takes it. Returns 0, or -1
 * if the connection failed. */
static int conn_flush(struct kv_conn *c)
{
	while (c->wpos < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos,
				 MSG_NOSIGNAL);

		if (n >= 0)
			c->wpos += (size_t)n;
		else if (errno == EAGAIN)
			return 0;
		else if (errno != EINTR)
			return -1;
	}
	c->wpos = c->wlen = 0;
	return 0;
}

static void conn_close(struct kv_worker *w, struct kv_conn *c)
{
	rw_trace_kv_conn("close", c->fd, c->peer_port);
	/* Closing the only descriptor also removes it from the epoll set. */
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void conn_event(struct kv_worker *w, struct kv_conn *c, uint32_t events)
{
	bool want_out;

	if (!c->want_out && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    conn_read(c))
		goto close;
	while (conn_process(w, c)) {
		if (conn_flush(c))
			goto close;
		if (c->wlen)
			break; /* the socket is full */
	}
	if (conn_flush(c))
		goto close;
	if (c->eof && !c->wlen)
		goto close;

	want_out = c->wlen != 0;
	if (want_out != c->want_out) {
		struct epoll_event ev = { .data.ptr = c };

		ev.events = want_out ? EPOLLOUT : EPOLLIN;

		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev)) {
			perror("kvserver: epoll_ctl");
			goto close;
		}
		c->want_out = want_out;
	}
	return;
close:
	conn_close(w, c);
}

/* Takes the connections the main thread handed over. */
static void worker_take(struct kv_worker *w)
{
	struct kv_pending *p;
	size_t n;

	pthread_mutex_lock(&w->lock);
	p = w->pending;
	n = w->npending;
	w->pending = NULL;
	w->npending = w->cap = 0;
	pthread_mutex_unlock(&w->lock);

	for (size_t i = 0; i < n; i++) {
		struct kv_conn *c = malloc(sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN };

		if (!c) {
			fprintf(stderr, "kvserver: out of memory for a "
					"connection; closing it\n");
			close(p[i].fd);
			continue;
		}
		c->fd = p[i].fd;
		c->peer_port = p[i].peer_port;
		c->eof = c->want_out = c->skip_line = false;
		c->skip_bytes = c->t_read = 0;
		c->rpos = c->rlen = c->wpos = c->wlen = 0;
		ev.data.ptr = c;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
			perror("kvserver: epoll_ctl");
			close(c->fd);
			free(c);
			continue;
		}
		c->prev = NULL;
		c->next = w->conns;
		if (c->next)
			c->next->prev = c;
		w->conns = c;
		w->stats.conns++;
		rw_trace_kv_conn("open", c->fd, c->peer_port);
	}
	free(p);
}

/* The worker's eventfd fired: resets it, takes the connections handed
 * over. Returns true if the server is stopping. */
static bool worker_wake(struct kv_worker *w)
{
	uint64_t count;

	if (read(w->wakefd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		perror("kvserver: read eventfd");
	worker_take(w);
	return atomic_load(&stopping);
}

static void *worker_main(void *arg)
{
	struct kv_worker *w = arg;
	struct epoll_event ev[64];
	bool stop = false;

	while (!stop) {
		int n;

		/* Nothing of a live patch is on this thread's stack here:
		 * say so, so that a patch transition never waits for an
		 * idle worker (see QUIESCENT_MS). */
		rw_patch_quiescent();
		n = epoll_wait(w->epfd, ev, 64, QUIESCENT_MS);

		if (n < 0) {
			if (errno == EINTR)
				continue; /* rewire's signal, for example */
			perror("kvserver: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr)
				conn_event(w, ev[i].data.ptr, ev[i].events);
			else
				stop = worker_wake(w);
		}
	}
	while (w->conns)
		conn_close(w, w->conns);
	return NULL;
}

/* Hands @fd to @w. Called by the main thread. Returns 0 or -errno. */
static int worker_give(struct kv_worker *w, int fd, unsigned peer_port)
{
	const uint64_t one = 1;
	int err = 0;

	pthread_mutex_lock(&w->lock);
	if (w->npending == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct kv_pending *p = realloc(w->pending, cap * sizeof(*p));

		if (p) {
			w->pending = p;
			w->cap = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (!err)
		w->pending[w->npending++] =
			(struct kv_pending){ .fd = fd, .peer_port = peer_port };
	pthread_mutex_unlock(&w->lock);
	if (!err && write(w->wakefd, &one, sizeof(one)) < 0)
		err = -errno; /* cannot happen before 2^64 - 1 wake-ups */
	return err;
}

static int workers_start(void)
{
	for (unsigned i = 0; i < nworkers; i++) {
		struct kv_worker *w = &workers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
		int err;

		w->id = i;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->epfd < 0 || w->wakefd < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev)) {
			perror("kvserver: epoll/eventfd");
			return -1;
		}
		err = pthread_mutex_init(&w->lock, NULL);
		if (!err) {
			w->lock_ok = true;
			err = pthread_create(&w->thread, NULL, worker_main, w);
		}
		if (err) {
			fprintf(stderr, "kvserver: worker %u: %s\n", i,
				strerror(err));
			return -1;
		}
		w->started = true;
	}
	return 0;
}

/* Stops and joins the workers that started, closes and frees everything
 * of every worker, and adds up their statistics in @total. */
static void workers_stop(struct kv_stats *total)
{
	const uint64_t one = 1;

	atomic_store(&stopping, true);
	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i].started &&
		    write(workers[i].wakefd, &one, sizeof(one)) < 0)
			perror("kvserver: write eventfd");
	for (unsigned i = 0; i < nworkers; i++) {
		struct kv_worker *w = &workers[i];

		if (w->started) {
			pthread_join(w->thread, NULL);
			total->requests += w->stats.requests;
			total->gets += w->stats.gets;
			total->sets += w->stats.sets;
			total->errors += w->stats.errors;
			total->conns += w->stats.conns;
		}
		/* Handed over after the worker's last look. */
		for (size_t k = 0; k < w->npending; k++)
			close(w->pending[k].fd);
		free(w->pending);
		if (w->lock_ok)
			pthread_mutex_destroy(&w->lock);
		if (w->wakefd >= 0)
			close(w->wakefd);
		if (w->epfd >= 0)
			close(w->epfd);
	}
}

/* ---- The main thread: listen, accept, hand over, stop --------------------
 */
static int listen_loopback(unsigned *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)*port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("kvserver: socket");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen)) {
		fprintf(stderr, "kvserver: listen on 127.0.0.1:%u: %s\n", *port,
			strerror(errno));
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Writes "<port>\n" to @path through a temporary file and a rename, so
 * that a reader never sees a partial file. */
static int write_port_file(const char *path, unsigned port)
{
	char tmp[PATH_MAX];
	FILE *f;
	int n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		fprintf(stderr, "kvserver: %s: path too long\n", path);
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f)
		goto fail;
	if (fprintf(f, "%u\n", port) < 0) {
		fclose(f);
		goto fail_unlink;
	}
	if (fclose(f))
		goto fail_unlink;
	if (rename(tmp, path))
		goto fail_unlink;
	return 0;
fail_unlink:
	n = errno;
	unlink(tmp);
	errno = n;
fail:
	fprintf(stderr, "kvserver: %s: %s\n", tmp, strerror(errno));
	return -1;
}

/*
 * Accepts what the listening socket has and hands each connection to the
 * next worker, round robin. Returns 0, or -1 on a failure that stops the
 * server.
 */
static int accept_all(int lfd)
{
	static const struct timespec pause = { 0, 10000000 }; /* 10 ms */
	/* The main thread's alone. */
	static unsigned next;
	static bool warned;

	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int one = 1, fd;

		fd = accept4(lfd, (struct sockaddr *)&peer, &plen,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
				return 0;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
				continue; /* that connection is gone */
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Out of descriptors or memory: leave the
				 * connection in the backlog a moment (the
				 * epoll set reports it again). */
				if (!warned)
					perror("kvserver: accept4");
				warned = true;
				nanosleep(&pause, NULL);
				return 0;
			default:
				perror("kvserver: accept4");
				return -1;
			}
		}
		/* Each batch of replies is one write: send it at once. */
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			perror("kvserver: TCP_NODELAY");
		if (worker_give(&workers[next], fd, ntohs(peer.sin_port))) {
			fprintf(stderr, "kvserver: out of memory; connection "
					"refused\n");
			close(fd);
		}
		next = (next + 1) % nworkers;
	}
}

/*
 * Accepts connections until SIGINT or SIGTERM arrives on @sigfd. Returns
 * 0, or -1 on a failure that stops the server.
 */
static int accept_loop(int lfd, int sigfd)
{
	struct epoll_event ev[2];
	struct signalfd_siginfo si;
	int ep, n, ret = -1;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("kvserver: epoll_create1");
		return -1;
	}
	ev[0] = (struct epoll_event){ .events = EPOLLIN, .data.fd = lfd };
	ev[1] = (struct epoll_event){ .events = EPOLLIN, .data.fd = sigfd };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev[0]) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, sigfd, &ev[1])) {
		perror("kvserver: epoll_ctl");
		goto out;
	}
	for (;;) {
		rw_patch_quiescent();
		n = epoll_wait(ep, ev, 2, QUIESCENT_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("kvserver: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == lfd) {
				if (accept_all(lfd))
					goto out;
				continue;
			}
			if (read(sigfd, &si, sizeof(si)) != sizeof(si)) {
				perror("kvserver: read signalfd");
				goto out;
			}
			printf("kvserver: %s, stopping\n",
			       si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			ret = 0;
			goto out;
		}
	}
out:
	close(ep);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rw-kvserver [--port N] [--threads N] "
		"[--port-file PATH]\n"
		"\n"
		"A key-value server on 127.0.0.1 (protocol: see the comment at "
		"the top of\n"
		"examples/kv/kvserver.c). SIGINT or SIGTERM stops it. With "
		"REWIRE_CTL=1 in\n"
		"its environment the rewire command can control it.\n"
		"\n"
		"  --port N          TCP port, 0 (default) picks a free one\n"
		"  --threads N       worker threads, 1 to %d (default 4)\n"
		"  --port-file PATH  write the port there once listening "
		"(atomically);\n"
		"                    removed at exit\n"
		"  --help            this text\n",
		KV_MAX_WORKERS);
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max,
		       unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *port_file = NULL;
	struct kv_stats total = { 0 };
	unsigned port = 0;
	int lfd = -1, sigfd = -1, ret = 1, c;
	bool port_file_written = false, served = false;
	sigset_t sigs;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_uint(optarg, 0, 65535, &port))
				goto bad_arg;
			break;
		case 't':
			if (!parse_uint(optarg, 1, KV_MAX_WORKERS, &nworkers))
				goto bad_arg;
			break;
		case 'f':
			port_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvserver: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!crc32c_init()) {
		fprintf(stderr, "kvserver: CRC-32C self-test failed\n");
		return 1;
	}
	for (unsigned i = 0; i < KV_MAX_WORKERS; i++)
		workers[i].epfd = workers[i].wakefd = -1;

	/* Before any thread exists, so that every thread inherits the mask
	 * and the signals wait for the signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	if ((errno = pthread_sigmask(SIG_BLOCK, &sigs, NULL)) ||
	    (sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		perror("kvserver: signalfd");
		goto out;
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		perror("kvserver: signal");
		goto out;
	}
	if ((errno = -kv_store_init())) {
		perror("kvserver: store");
		goto out;
	}
	lfd = listen_loopback(&port);
	if (lfd < 0)
		goto out;
	if (workers_start())
		goto out;
	if (port_file) {
		if (write_port_file(port_file, port))
			goto out;
		port_file_written = true;
	}
	printf("kvserver: pid %ld port %u workers %u\n", (long)getpid(), port,
	       nworkers);
	printf("kvserver: kv_checksum -> crc32c_bytewise; crc32c_hw uses %s\n",
	       cpu_has_sse42 ? "the SSE4.2 crc32 instruction"
			     : "slice-by-8 (this CPU has no SSE4.2)");
	served = true;
	ret = accept_loop(lfd, sigfd) ? 1 : 0;
out:
	workers_stop(&total);
	if (lfd >= 0)
		close(lfd);
	if (sigfd >= 0)
		close(sigfd);
	kv_store_destroy();
	if (port_file_written && unlink(port_file))
		fprintf(stderr, "kvserver: unlink %s: %s\n", port_file,
			strerror(errno));
	if (served)
		printf("kvserver: served %" PRIu64 " requests (%" PRIu64
		       " GET, %" PRIu64 " SET, %" PRIu64 " errors) on %" PRIu64
		       " connections\n",
		       total.requests, total.gets, total.sets, total.errors,
		       total.conns);
	return ret;
bad_arg:
	fprintf(stderr, "kvserver: bad value '%s' for --%s\n", optarg,
		opts[c == 'p' ? 0 : 1].name);
	usage(stderr);
	return 2;
}
