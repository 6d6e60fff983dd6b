/* SPDX-License-Identifier: MIT */
/*
 * kvload - load generator and checker for kvserver (examples/kv/kvserver.c).
 *
 *	rw-kvload --port-file PATH [--connections 8] [--threads 2]
 *		  [--keys 1000] [--value-sizes LIST] [--duration SEC]
 *		  [--json FILE]
 *	rw-kvload --port-file PATH --garbage
 *
 * The load. Each thread drives its share of the connections from its own
 * epoll set, one request in flight per connection. First every key is
 * SET once, then the connections loop: a GET of a random key (90%) or a
 * SET (10%). A key's value is derived from the key alone (its length from
 * --value-sizes, its bytes a slice of a fixed pseudo-random pool), so a
 * SET never changes what a GET must return, and every reply is checked:
 *
 *	ok	the reply is right: STORED, or the value with its length,
 *		its bytes and its CRC-32C
 *	wrong	a well-formed VALUE reply with a wrong length, wrong bytes,
 *		or a CRC that does not match its bytes: what kvserver's bug
 *		gives for values of 100 bytes or more
 *	error	anything else: a failed connection, a malformed reply, no
 *		reply within 2 s, ERROR, or NOTFOUND for a key it stored
 *
 * Control, on stdin, one command per line:
 *	mark LABEL	start a new phase called LABEL now (the first phase is
 *			"start"); up to 63 marks
 *	stop		end the load (so does EOF on stdin when --duration is
 *			0, SIGINT or SIGTERM, and the end of --duration)
 * Each request, and its latency (send to complete reply), is counted in the
 * phase in which it was sent, in a log-linear histogram per thread and
 * phase (128 sub-buckets per power of two: percentiles within 0.4%): a
 * request of a phase was sent after its mark, so after what the mark
 * stands for happened (a reply that the server computed before a live
 * patch was complete, and that arrives after the "patched" mark, belongs to
 * the phase before). Connection failures count in the phase they happen
 * in.
 *
 * The report, on stdout when the load ends: for each phase its label,
 * duration, requests, requests/s, errors, wrong answers, p50 and p99
 * latency in microseconds; then the whole run. --json FILE writes it as
 * JSON as well. Exit status: 0 if there was no error, 1 otherwise (wrong
 * answers are the bug being shown, not a failure of the run), 2 for bad
 * usage.
 *
 * --garbage sends kvserver malformed requests instead (unknown commands,
 * bad keys and lengths, overlong lines, binary junk, oversized values,
 * truncated requests, abrupt closes) and checks that each gets its ERROR
 * and that the server goes on answering; exit status 0 if it does.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_VALUE 65536
/* Requests: "SET key-4294967295 65536\r\n", the value, "\r\n". */
#define OUT_MAX (64 + MAX_VALUE + 2)
/* A reply line is at most this long ("\r\n" included). */
#define REPLY_LINE_MAX 128
#define IN_MAX (REPLY_LINE_MAX + MAX_VALUE + 2)

#define MAX_THREADS 64
#define MAX_CONNECTIONS 4096
#define MAX_SIZES 32
/* Values under 100 bytes come back right, the others show kvserver's bug;
 * the large ones make the checksum's cost visible. */
#define DEFAULT_SIZES "32,64,99,100,1024,4096,16384"
#define MAX_PHASES 64
#define LABEL_MAX 40

#define NS_PER_SEC 1000000000ull
#define TIMEOUT_NS (2 * NS_PER_SEC)
#define RETRY_NS (100 * 1000000ull) /* wait before reconnecting */
#define SCAN_NS (10 * 1000000ull)   /* timeouts and retries checked */
#define MAX_ERROR_LOGS 10	    /* errors described on stderr */
#define MAX_WRONG_LOGS 3	    /* wrong answers described on stderr */

/* Values are slices of this pool, at an offset derived from the key. */
#define POOL_SPAN (1u << 20)

/* ---- Configuration, set by main() before the threads start -------------- */

static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;
static unsigned nconnections = 8, nthreads = 2, nkeys = 1000;
static unsigned set_percent = 10;
static unsigned sizes[MAX_SIZES], size_weight[MAX_SIZES], nsizes;
static unsigned total_weight;
/* POOL_SPAN + MAX_VALUE bytes. */
static char *pool;
/* When the load started (phase "start"). */
static uint64_t t_begin;

/* ---- State shared with the threads -------------------------------------- */

/* The phase requests are sent in. main() fills phases[n] and then stores
 * n (release); the threads load it when they send a request (and when a
 * connection fails). */
static atomic_uint cur_phase;
static struct phase {
	char label[LABEL_MAX + 1];
	uint64_t start; /* ns, CLOCK_MONOTONIC */
} phases[MAX_PHASES];
/* Keys whose first SET has not completed; GETs start once it is 0. */
static atomic_long preload_left;
static atomic_bool stopping;
static atomic_int errors_logged, wrong_logged;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/* ---- CRC-32C (as in kvserver.c; slice-by-8 is enough here) -------------- */

static uint32_t crc_table[8][256];

static void crc32c_init(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][b] = c;
	}
	for (int k = 1; k < 8; k++)
		for (int b = 0; b < 256; b++)
			crc_table[k][b] =
				(crc_table[k - 1][b] >> 8) ^
				crc_table[0][crc_table[k - 1][b] & 0xff];
}

static uint32_t crc32c(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t crc = 0xffffffffu;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
		      crc_table[5][(w >> 16) & 0xff] ^
		      crc_table[4][(w >> 24) & 0xff] ^
		      crc_table[3][(w >> 32) & 0xff] ^
		      crc_table[2][(w >> 40) & 0xff] ^
		      crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- Keys and values ----------------------------------------------------- */

/* splitmix64's finaliser: a bijection that mixes every bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	x ^= x >> 31;
	return x;
}

static int key_name(unsigned k, char *buf, size_t len)
{
	return snprintf(buf, len, "key-%u", k);
}

/* Key @k's value: its length from the --value-sizes mix, its bytes from
 * the pool. */
static const char *key_value(unsigned k, size_t *len)
{
	unsigned r = (unsigned)(mix64(k + 0x9e3779b97f4a7c15u) % total_weight);
	unsigned i = 0;

	while (r >= size_weight[i])
		r -= size_weight[i++];
	*len = sizes[i];
	return pool + mix64(k) % POOL_SPAN;
}

/* Printable bytes, so that traced requests and hand-made sessions stay
 * readable; a fixed seed, so that every run stores the same values. */
static int pool_init(void)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
	uint64_t s = 0x2545f4914f6cdd1du;

	pool = malloc(POOL_SPAN + MAX_VALUE);
	if (!pool)
		return -1;
	for (size_t i = 0; i < POOL_SPAN + MAX_VALUE; i++) {
		s = mix64(s + i);
		pool[i] = alphabet[s % (sizeof(alphabet) - 1)];
	}
	return 0;
}

/* ---- Latency histograms --------------------------------------------------
 *
 * Log-linear, on nanoseconds: values below 128 have a bucket each; above,
 * each power of two [2^e, 2^(e+1)) is cut into 128 buckets of width
 * 2^(e-7). A bucket's midpoint is within 1/256 of any value in it.
 * Values of 2^40 ns (18 minutes) and more land in the last bucket.
 */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 40
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

struct phase_stats {
	uint64_t requests, ok, wrong, errors;
	uint64_t hist[HIST_BUCKETS];
};

static unsigned hist_bucket(uint64_t v)
{
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	if (v >= 1ull << HIST_MAX_EXP)
		v = (1ull << HIST_MAX_EXP) - 1;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB +
	       (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* The midpoint of bucket @b, in nanoseconds. */
static double hist_value(unsigned b)
{
	unsigned e;
	uint64_t low, width;

	if (b < HIST_SUB)
		return b;
	e = b / HIST_SUB + HIST_SUB_BITS - 1;
	low = (uint64_t)(HIST_SUB + b % HIST_SUB) << (e - HIST_SUB_BITS);
	width = 1ull << (e - HIST_SUB_BITS);
	return (double)low + (double)(width - 1) / 2;
}

/* The @permille / 1000 quantile in microseconds, NAN if @h is empty: the
 * value of the request of rank ceil(n * permille / 1000). */
static double hist_quantile(const uint64_t *h, unsigned permille)
{
	uint64_t n = 0, rank, seen = 0;

	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		n += h[b];
	if (!n)
		return NAN;
	rank = (n * permille + 999) / 1000;
	if (rank < 1)
		rank = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h[b];
		if (seen >= rank)
			return hist_value(b) / 1000;
	}
	return hist_value(HIST_BUCKETS - 1) / 1000;
}

/* ---- Connections and threads --------------------------------------------- */

enum conn_state {
	C_DOWN,	      /* no socket; reconnect at retry_at */
	C_CONNECTING, /* connect() in progress */
	C_IDLE,	      /* connected, waiting for the other threads' SETs */
	C_BUSY,	      /* a request in flight */
};

enum result { RES_OK, RES_WRONG, RES_ERROR };

struct loader;

struct lconn {
	struct loader *l;
	int fd;
	enum conn_state state;
	uint32_t events; /* registered with epoll */
	uint64_t retry_at;
	/* The request in flight. */
	bool is_set;
	bool preload; /* one of the first SETs */
	unsigned key;
	unsigned phase;	 /* cur_phase when the request was sent */
	uint64_t t_sent; /* or the start of connect() */
	size_t opos, olen;
	size_t ilen;
	char why[64]; /* what was wrong with the last reply */
	char out[OUT_MAX];
	char in[IN_MAX];
};

struct loader {
	pthread_t thread;
	bool started;
	unsigned id;
	int epfd;
	uint64_t rng;
	struct lconn **conns;
	unsigned nconns;
	/* The keys this thread stores first: [preload_next, preload_end). */
	unsigned preload_next, preload_end;
	/* stats[phase], allocated on first use; read by main() after the
	 * join. */
	struct phase_stats *stats[MAX_PHASES];
	bool failed; /* out of memory or epoll failure: the run is void */
};

static uint64_t rng_next(struct loader *l)
{
	/* xorshift64* */
	l->rng ^= l->rng >> 12;
	l->rng ^= l->rng << 25;
	l->rng ^= l->rng >> 27;
	return l->rng * 0x2545f4914f6cdd1du;
}

static unsigned phase_now(void)
{
	return atomic_load_explicit(&cur_phase, memory_order_acquire);
}

static void record(struct loader *l, unsigned ph, enum result r,
		   uint64_t latency, bool timed)
{
	struct phase_stats *s = l->stats[ph];

	if (!s) {
		s = l->stats[ph] = calloc(1, sizeof(*s));
		if (!s) {
			l->failed = true;
			return;
		}
	}
	s->requests++;
	if (r == RES_OK)
		s->ok++;
	else if (r == RES_WRONG)
		s->wrong++;
	else
		s->errors++;
	if (timed)
		s->hist[hist_bucket(latency)]++;
}

/* Describes one of the first few errors and wrong answers on stderr. */
static void log_problem(const struct lconn *c, enum result r, const char *why)
{
	atomic_int *logged = r == RES_WRONG ? &wrong_logged : &errors_logged;
	int max = r == RES_WRONG ? MAX_WRONG_LOGS : MAX_ERROR_LOGS;
	char key[32];

	/* Load first: wrong answers come by the thousand. */
	if (atomic_load(logged) >= max || atomic_fetch_add(logged, 1) >= max)
		return;
	key_name(c->key, key, sizeof(key));
	fprintf(stderr, "kvload: %s: %s %s: %s\n",
		r == RES_WRONG ? "wrong" : "error", c->is_set ? "SET" : "GET",
		key, why);
}

static void preload_count(void)
{
	if (atomic_fetch_sub(&preload_left, 1) == 1)
		fprintf(stderr,
			"kvload: %u keys stored in %.2f s; GET/SET "
			"mix running\n",
			nkeys, secs(now_ns() - t_begin));
}

static int conn_events(struct lconn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return 0;
	if (epoll_ctl(c->l->epfd, EPOLL_CTL_MOD, c->fd, &ev)) {
		perror("kvload: epoll_ctl");
		return -1;
	}
	c->events = events;
	return 0;
}

/* Gives up on the connection: counts an error (for the request in flight,
 * or for the connection itself) and reconnects in RETRY_NS. */
static void conn_fail(struct lconn *c, uint64_t now, const char *why)
{
	if (c->state == C_BUSY) {
		log_problem(c, RES_ERROR, why);
		if (c->preload)
			preload_count();
	} else if (atomic_fetch_add(&errors_logged, 1) < MAX_ERROR_LOGS) {
		fprintf(stderr, "kvload: error: connection: %s\n", why);
	}
	record(c->l, c->state == C_BUSY ? c->phase : phase_now(), RES_ERROR, 0,
	       false);
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->state = C_DOWN;
	c->retry_at = now + RETRY_NS;
}

/* Sends what is left of the request. Returns 0, or -1 after conn_fail. */
static int conn_write(struct lconn *c, uint64_t now)
{
	while (c->opos < c->olen) {
		ssize_t n = send(c->fd, c->out + c->opos, c->olen - c->opos,
				 MSG_NOSIGNAL);

		if (n >= 0) {
			c->opos += (size_t)n;
		} else if (errno == EAGAIN) {
			break;
		} else if (errno != EINTR) {
			conn_fail(c, now, strerror(errno));
			return -1;
		}
	}
	if (conn_events(c, c->opos < c->olen ? EPOLLIN | EPOLLOUT : EPOLLIN)) {
		conn_fail(c, now, "epoll_ctl failed");
		return -1;
	}
	return 0;
}

/* Starts the connection's next request: a first SET while this thread has
 * keys to store, nothing (C_IDLE) until every thread has stored its
 * keys, then a GET or a SET of a random key. */
static void conn_next(struct lconn *c, uint64_t now)
{
	struct loader *l = c->l;
	const char *value;
	size_t vlen;
	int n;

	if (atomic_load(&preload_left) > 0) {
		if (l->preload_next == l->preload_end) {
			c->state = C_IDLE;
			return;
		}
		c->key = l->preload_next++;
		c->is_set = c->preload = true;
	} else {
		uint64_t r = rng_next(l);

		c->key = (unsigned)(r % nkeys);
		c->is_set = (r >> 32) % 100 < set_percent;
		c->preload = false;
	}
	if (c->is_set) {
		value = key_value(c->key, &vlen);
		n = snprintf(c->out, REPLY_LINE_MAX, "SET key-%u %zu\r\n",
			     c->key, vlen);
		memcpy(c->out + n, value, vlen);
		memcpy(c->out + n + vlen, "\r\n", 2);
		c->olen = (size_t)n + vlen + 2;
	} else {
		n = snprintf(c->out, REPLY_LINE_MAX, "GET key-%u\r\n", c->key);
		c->olen = (size_t)n;
	}
	c->opos = c->ilen = 0;
	c->state = C_BUSY;
	c->t_sent = now;
	c->phase = phase_now();
	conn_write(c, now);
}

static void conn_connected(struct lconn *c, uint64_t now)
{
	c->state = C_IDLE;
	if (!conn_events(c, EPOLLIN))
		conn_next(c, now);
	else
		conn_fail(c, now, "epoll_ctl failed");
}

static void conn_connect(struct lconn *c, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	c->state = C_CONNECTING;
	c->t_sent = now;
	c->fd = socket(server_addr.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, now, strerror(errno));
		return;
	}
	/* Requests are single writes: send them now. */
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) {
		conn_fail(c, now, strerror(errno));
		return;
	}
	if (epoll_ctl(c->l->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
		conn_fail(c, now, "epoll_ctl failed");
		return;
	}
	c->events = EPOLLOUT;
	if (connect(c->fd, (struct sockaddr *)&server_addr, server_addrlen) ==
	    0)
		conn_connected(c, now);
	else if (errno != EINPROGRESS)
		conn_fail(c, now, strerror(errno));
}

static int hex_digit(char h)
{
	if (h >= '0' && h <= '9')
		return h - '0';
	if (h >= 'a' && h <= 'f')
		return h - 'a' + 10;
	if (h >= 'A' && h <= 'F')
		return h - 'A' + 10;
	return -1;
}

/* "VALUE <len> <crc>" exactly, in s[0, n): <len> decimal up to MAX_VALUE,
 * <crc> 8 hex digits. */
static bool parse_value_line(const char *s, size_t n, size_t *len,
			     uint32_t *crc)
{
	size_t i = 6, digits = 0;
	uint32_t v = 0, c = 0;

	if (n < 6 || memcmp(s, "VALUE ", 6))
		return false;
	for (; i < n && s[i] >= '0' && s[i] <= '9' && digits < 6; i++)
		v = v * 10 + (uint32_t)(s[i] - '0'), digits++;
	if (!digits || v > MAX_VALUE || i >= n || s[i++] != ' ' || n - i != 8)
		return false;
	for (; i < n; i++) {
		int h = hex_digit(s[i]);

		if (h < 0)
			return false;
		c = c << 4 | (uint32_t)h;
	}
	*len = v;
	*crc = c;
	return true;
}

/*
 * Parses the reply in c->in. Returns 0 if it is not complete yet, 1 with
 * *res set when it is, -1 with *why set when it is malformed.
 */
static int parse_reply(struct lconn *c, enum result *res, const char **why)
{
	const char *nl =
		memchr(c->in, '\n',
		       c->ilen < REPLY_LINE_MAX ? c->ilen : REPLY_LINE_MAX);
	const char *expect, *data;
	size_t line, len, elen, first, last;
	uint32_t crc;

	if (!nl) {
		*why = "reply line too long";
		return c->ilen < REPLY_LINE_MAX ? 0 : -1;
	}
	line = (size_t)(nl - c->in) + 1;
	if (line < 2 || nl[-1] != '\r') {
		*why = "reply line without \\r\\n";
		return -1;
	}
	*res = RES_ERROR;
	if (line > 6 && !memcmp(c->in, "ERROR ", 6)) {
		snprintf(c->why, sizeof(c->why), "%.*s", (int)line - 2, c->in);
		*why = c->why;
	} else if (c->is_set) {
		if (line != 8 || memcmp(c->in, "STORED", 6)) {
			*why = "not STORED, NOTFOUND or ERROR";
			return -1;
		}
		*res = RES_OK;
	} else if (line == 10 && !memcmp(c->in, "NOTFOUND", 8)) {
		*why = "NOTFOUND for a key that was set";
	} else {
		if (!parse_value_line(c->in, line - 2, &len, &crc)) {
			*why = "bad VALUE line";
			return -1;
		}
		if (c->ilen < line + len + 2)
			return 0;
		data = c->in + line;
		if (memcmp(data + len, "\r\n", 2)) {
			*why = "value not followed by \\r\\n";
			return -1;
		}
		line += len + 2;
		expect = key_value(c->key, &elen);
		*res = RES_WRONG;
		if (len != elen) {
			*why = "wrong length";
		} else if (crc32c(data, len) != crc) {
			*why = "CRC does not match the bytes";
		} else if (!memcmp(data, expect, len)) {
			*res = RES_OK;
		} else if (atomic_load(&wrong_logged) >= MAX_WRONG_LOGS) {
			*why = "wrong bytes"; /* not described: skip the scan */
		} else {
			for (first = 0; data[first] == expect[first]; first++)
				;
			for (last = len - 1; data[last] == expect[last]; last--)
				;
			snprintf(c->why, sizeof(c->why),
				 "bytes %zu to %zu of %zu are wrong", first,
				 last, len);
			*why = c->why;
		}
	}
	if (c->ilen > line) {
		*why = "bytes after the reply";
		return -1;
	}
	return 1;
}

static void conn_read(struct lconn *c, uint64_t now)
{
	enum result res;
	const char *why = "";
	ssize_t n;
	int done;

	if (c->ilen == IN_MAX) {
		conn_fail(c, now, "reply too long");
		return;
	}
	n = recv(c->fd, c->in + c->ilen, IN_MAX - c->ilen, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_fail(c, now, strerror(errno));
		return;
	}
	if (n == 0) {
		conn_fail(c, now, "connection closed by the server");
		return;
	}
	if (c->state != C_BUSY || c->opos < c->olen) {
		conn_fail(c, now, "a reply to no request");
		return;
	}
	c->ilen += (size_t)n;
	done = parse_reply(c, &res, &why);
	if (done < 0) {
		conn_fail(c, now, why);
		return;
	}
	if (!done)
		return;
	if (res != RES_OK)
		log_problem(c, res, why);
	record(c->l, c->phase, res, now - c->t_sent, true);
	if (c->preload)
		preload_count();
	c->state = C_IDLE;
	if (!atomic_load_explicit(&stopping, memory_order_relaxed))
		conn_next(c, now);
}

static void conn_event(struct lconn *c, uint32_t events, uint64_t now)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		if (err)
			conn_fail(c, now, strerror(err));
		else if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_connected(c, now);
		return;
	}
	if ((events & EPOLLOUT) && c->state == C_BUSY && conn_write(c, now))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c, now);
}

/* Every SCAN_NS: requests and connects that took too long, connections to
 * retry, idle connections to start once every key is stored. */
static void loader_scan(struct loader *l, uint64_t now)
{
	bool go = atomic_load(&preload_left) <= 0;

	for (unsigned i = 0; i < l->nconns; i++) {
		struct lconn *c = l->conns[i];

		switch (c->state) {
		case C_CONNECTING:
		case C_BUSY:
			if (now - c->t_sent > TIMEOUT_NS)
				conn_fail(c, now, "no reply within 2 s");
			break;
		case C_DOWN:
			if (now >= c->retry_at)
				conn_connect(c, now);
			break;
		case C_IDLE:
			if (go || l->preload_next < l->preload_end)
				conn_next(c, now);
			break;
		}
	}
}

static void *loader_main(void *arg)
{
	struct loader *l = arg;
	struct epoll_event ev[64];
	uint64_t now = now_ns(), next_scan = now + SCAN_NS;

	for (unsigned i = 0; i < l->nconns; i++)
		conn_connect(l->conns[i], now);
	while (!atomic_load(&stopping) && !l->failed) {
		int n = epoll_wait(l->epfd, ev, 64, 10);

		if (n < 0 && errno != EINTR) {
			perror("kvload: epoll_wait");
			l->failed = true;
			break;
		}
		now = now_ns();
		for (int i = 0; i < n; i++)
			conn_event(ev[i].data.ptr, ev[i].events, now);
		if (now >= next_scan) {
			loader_scan(l, now);
			next_scan = now + SCAN_NS;
		}
	}
	for (unsigned i = 0; i < l->nconns; i++)
		if (l->conns[i]->fd >= 0)
			close(l->conns[i]->fd);
	return NULL;
}

/* ---- Report --------------------------------------------------------------- */

struct summary {
	const char *label;
	double duration;
	uint64_t requests, ok, wrong, errors;
	double p50, p99;
};

static void summarise(struct summary *s, const char *label, double duration,
		      const struct phase_stats *sum)
{
	s->label = label;
	s->duration = duration;
	s->requests = sum->requests;
	s->ok = sum->ok;
	s->wrong = sum->wrong;
	s->errors = sum->errors;
	s->p50 = hist_quantile(sum->hist, 500);
	s->p99 = hist_quantile(sum->hist, 990);
}

static void add_stats(struct phase_stats *to, const struct phase_stats *from)
{
	to->requests += from->requests;
	to->ok += from->ok;
	to->wrong += from->wrong;
	to->errors += from->errors;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		to->hist[b] += from->hist[b];
}

static double rate(const struct summary *s)
{
	return s->duration > 0 ? (double)s->requests / s->duration : 0;
}

static void print_us(FILE *f, double us)
{
	if (isnan(us))
		fprintf(f, " %9s", "-");
	else
		fprintf(f, " %9.1f", us);
}

static void print_row(const struct summary *s)
{
	printf("%-16s %8.2f %10" PRIu64 " %10.0f %8" PRIu64 " %8" PRIu64,
	       s->label, s->duration, s->requests, rate(s), s->errors,
	       s->wrong);
	print_us(stdout, s->p50);
	print_us(stdout, s->p99);
	printf("\n");
}

static void json_us(FILE *f, const char *name, double us)
{
	if (isnan(us))
		fprintf(f, "\"%s\": null", name);
	else
		fprintf(f, "\"%s\": %.1f", name, us);
}

static void json_row(FILE *f, const struct summary *s)
{
	fputs("{\"label\": \"", f);
	for (const char *p = s->label; *p; p++)
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*p);
		else
			fputc(*p, f);
	fprintf(f,
		"\", \"duration_s\": %.3f, \"requests\": %" PRIu64
		", \"rps\": %.1f, \"ok\": %" PRIu64 ", \"errors\": %" PRIu64
		", \"wrong\": %" PRIu64 ", ",
		s->duration, s->requests, rate(s), s->ok, s->errors, s->wrong);
	json_us(f, "p50_us", s->p50);
	fputs(", ", f);
	json_us(f, "p99_us", s->p99);
	fputs("}", f);
}

static int write_json(const char *path, const struct summary *rows,
		      unsigned nrows, const struct summary *total)
{
	FILE *f = fopen(path, "w");

	if (!f)
		goto fail;
	fputs("{\n  \"phases\": [\n", f);
	for (unsigned i = 0; i < nrows; i++) {
		fputs("    ", f);
		json_row(f, &rows[i]);
		fputs(i + 1 < nrows ? ",\n" : "\n", f);
	}
	fputs("  ],\n  \"total\": ", f);
	json_row(f, total);
	fputs("\n}\n", f);
	if (ferror(f)) {
		fclose(f);
		errno = EIO;
		goto fail;
	}
	if (fclose(f))
		goto fail;
	return 0;
fail:
	fprintf(stderr, "kvload: %s: %s\n", path, strerror(errno));
	return -1;
}

/*
 * Prints the report of the @nphases phases, the last one ending at @t_end,
 * and writes it to @json if not NULL. Returns the total of errors, or -1
 * if the statistics are incomplete (a thread ran out of memory) or the
 * JSON file could not be written.
 */
static int64_t report(struct loader *loaders, unsigned nphases, uint64_t t_end,
		      const char *json)
{
	struct phase_stats *sum = calloc(1, sizeof(*sum));
	struct phase_stats *all = calloc(1, sizeof(*all));
	struct summary rows[MAX_PHASES], total;
	int64_t ret = -1;

	if (!sum || !all) {
		fprintf(stderr, "kvload: out of memory for the report\n");
		goto out;
	}
	printf("%-16s %8s %10s %10s %8s %8s %9s %9s\n", "phase", "time(s)",
	       "requests", "req/s", "errors", "wrong", "p50(us)", "p99(us)");
	for (unsigned i = 0; i < nphases; i++) {
		uint64_t end = i + 1 < nphases ? phases[i + 1].start : t_end;

		memset(sum, 0, sizeof(*sum));
		for (unsigned t = 0; t < nthreads; t++)
			if (loaders[t].stats[i])
				add_stats(sum, loaders[t].stats[i]);
		add_stats(all, sum);
		summarise(&rows[i], phases[i].label,
			  secs(end - phases[i].start), sum);
		print_row(&rows[i]);
	}
	summarise(&total, "total", secs(t_end - t_begin), all);
	print_row(&total);
	ret = (int64_t)total.errors;
	for (unsigned t = 0; t < nthreads; t++)
		if (loaders[t].failed) {
			fprintf(stderr,
				"kvload: thread %u failed: figures "
				"incomplete\n",
				t);
			ret = -1;
		}
	if (json && write_json(json, rows, nphases, &total))
		ret = -1;
out:
	free(sum);
	free(all);
	return ret;
}

/* ---- Control: stdin and signals ------------------------------------------ */

/* Handles one line of stdin. Returns true for "stop". */
static bool control_line(char *line, unsigned *nphases)
{
	char *cmd = strtok(line, " \t\r"), *arg = strtok(NULL, " \t\r");
	uint64_t now = now_ns();
	unsigned n = *nphases;

	if (!cmd)
		return false;
	if (!strcmp(cmd, "stop") && !arg)
		return true;
	if (strcmp(cmd, "mark") || !arg || strtok(NULL, " \t\r")) {
		fprintf(stderr, "kvload: '%s'? (mark LABEL, stop)\n", cmd);
		return false;
	}
	if (strlen(arg) > LABEL_MAX) {
		fprintf(stderr, "kvload: label over %d bytes: %s\n", LABEL_MAX,
			arg);
		return false;
	}
	if (n == MAX_PHASES) {
		fprintf(stderr, "kvload: over %d phases: mark %s ignored\n",
			MAX_PHASES, arg);
		return false;
	}
	strcpy(phases[n].label, arg);
	phases[n].start = now;
	atomic_store_explicit(&cur_phase, n, memory_order_release);
	*nphases = n + 1;
	fprintf(stderr, "kvload: phase %s at +%.2f s\n", arg,
		secs(now - t_begin));
	return false;
}

/*
 * Runs the commands from stdin until "stop", EOF (when @duration is 0),
 * SIGINT or SIGTERM on @sigfd, or the end of @duration seconds. Returns
 * the number of phases.
 */
static unsigned control(int sigfd, double duration)
{
	char buf[4096];
	size_t len = 0;
	unsigned nphases = 1;
	bool input = true;
	uint64_t deadline = duration > 0 ? t_begin + (uint64_t)(duration * 1e9)
					 : UINT64_MAX;

	for (;;) {
		struct pollfd p[2] = { { .fd = sigfd, .events = POLLIN },
				       { .fd = input ? 0 : -1,
					 .events = POLLIN } };
		uint64_t now = now_ns();
		int timeout = -1, n;
		ssize_t got;
		char *nl;

		if (now >= deadline)
			break;
		if (deadline != UINT64_MAX)
			timeout = (int)((deadline - now + 999999) / 1000000);
		n = poll(p, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("kvload: poll");
			break;
		}
		if (p[0].revents)
			break; /* SIGINT or SIGTERM */
		if (!p[1].revents)
			continue;
		got = read(0, buf + len, sizeof(buf) - 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got < 0)
				perror("kvload: stdin");
			/* EOF: a last line without "\n" still counts. */
			if (len) {
				buf[len] = '\0';
				if (control_line(buf, &nphases))
					break;
			}
			if (duration <= 0)
				break;
			input = false;
			continue;
		}
		len += (size_t)got;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			if (control_line(buf, &nphases))
				return nphases;
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
		if (len == sizeof(buf) - 1) {
			fprintf(stderr, "kvload: command line too long; "
					"ignored\n");
			len = 0;
		}
	}
	return nphases;
}

/* ---- Garbage mode ----------------------------------------------------------
 *
 * Blocking sockets with 2 s timeouts; every case is sent whole, then its
 * replies are read.
 */
struct greader {
	int fd;
	size_t len;
	char buf[IN_MAX];
};

static int g_connect(struct greader *r)
{
	struct timeval tv = { .tv_sec = 2 };

	r->len = 0;
	r->fd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0 ||
	    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    connect(r->fd, (struct sockaddr *)&server_addr, server_addrlen)) {
		perror("kvload: garbage: connect");
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		return -1;
	}
	return 0;
}

static bool g_send(struct greader *r, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("kvload: garbage: send");
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads until r->buf holds @want bytes. */
static bool g_fill(struct greader *r, size_t want)
{
	while (r->len < want) {
		ssize_t n = recv(r->fd, r->buf + r->len,
				 sizeof(r->buf) - r->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "kvload: garbage: recv: %s\n",
				n ? strerror(errno) : "connection closed");
			return false;
		}
		r->len += (size_t)n;
	}
	return true;
}

static void g_consume(struct greader *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

/* The next reply line, without its "\r\n", into @line. */
static bool g_line(struct greader *r, char *line, size_t max)
{
	char *nl;

	for (;;) {
		nl = memchr(r->buf, '\n', r->len);
		if (nl)
			break;
		if (r->len >= REPLY_LINE_MAX || !g_fill(r, r->len + 1)) {
			fprintf(stderr, "kvload: garbage: no reply line\n");
			return false;
		}
	}
	if (nl == r->buf || nl[-1] != '\r' || (size_t)(nl - r->buf) >= max) {
		fprintf(stderr, "kvload: garbage: bad reply line\n");
		return false;
	}
	memcpy(line, r->buf, (size_t)(nl - r->buf - 1));
	line[nl - r->buf - 1] = '\0';
	g_consume(r, (size_t)(nl - r->buf) + 1);
	return true;
}

static unsigned g_passed, g_failed;

static void g_verdict(bool ok, const char *name, const char *reply)
{
	printf("  %s  %-34s -> %s\n", ok ? "ok  " : "FAIL", name, reply);
	if (ok)
		g_passed++;
	else
		g_failed++;
}

/* Sends @len bytes and expects @nerr replies starting with "ERROR ". */
static void g_errors(struct greader *r, const char *name, const void *req,
		     size_t len, int nerr)
{
	char line[REPLY_LINE_MAX] = "(nothing)";
	bool ok = g_send(r, req, len);

	for (int i = 0; ok && i < nerr; i++)
		ok = g_line(r, line, sizeof(line)) &&
		     !strncmp(line, "ERROR ", 6);
	g_verdict(ok, name, line);
}

#define G_ERRORS(r, name, s, nerr) \
	g_errors((r), (name), (s), sizeof(s) - 1, (nerr))
#define G_SEND(r, s) g_send((r), (s), sizeof(s) - 1)

/* Expects the reply to a GET of a value < 100 bytes: @want, or NOTFOUND
 * if @want is NULL. */
static bool g_expect_value(struct greader *r, const char *want, char *line,
			   size_t max)
{
	size_t vlen;
	uint32_t crc;

	if (!g_line(r, line, max))
		return false;
	if (!want)
		return !strcmp(line, "NOTFOUND");
	if (!parse_value_line(line, strlen(line), &vlen, &crc) ||
	    vlen != strlen(want) || !g_fill(r, vlen + 2))
		return false;
	if (memcmp(r->buf, want, vlen) || memcmp(r->buf + vlen, "\r\n", 2) ||
	    crc32c(r->buf, vlen) != crc)
		return false;
	g_consume(r, vlen + 2);
	return true;
}

/* SET then GET of a small value: the connection is in step and the
 * server answers. */
static void g_roundtrip(struct greader *r, const char *name)
{
	static const char req[] = "SET kvload-garbage 5\r\nhello\r\n"
				  "GET kvload-garbage\r\n";
	char line[REPLY_LINE_MAX] = "(nothing)";
	bool ok = g_send(r, req, sizeof(req) - 1) &&
		  g_line(r, line, sizeof(line)) && !strcmp(line, "STORED") &&
		  g_expect_value(r, "hello", line, sizeof(line));

	g_verdict(ok, name, line);
}

#define BIG (1u << 20)

static int garbage(void)
{
	struct greader *r = malloc(sizeof(*r));
	char *big = malloc(BIG + 2), line[REPLY_LINE_MAX] = "(nothing)";
	size_t n;
	bool ok;

	if (!r || !big) {
		fprintf(stderr, "kvload: out of memory\n");
		free(r);
		free(big);
		return 1;
	}
	printf("kvload: garbage: malformed requests, each must get ERROR\n");
	if (g_connect(r))
		goto out;
	G_ERRORS(r, "unknown command", "HELLO world\r\n", 1);
	G_ERRORS(r, "empty line", "\r\n", 1);
	G_ERRORS(r, "bare newline", "\n", 1);
	G_ERRORS(r, "lowercase command", "get kvload-garbage\r\n", 1);
	G_ERRORS(r, "GET without a key", "GET\r\n", 1);
	G_ERRORS(r, "GET with two keys", "GET a b\r\n", 1);
	G_ERRORS(r, "GET with a trailing space", "GET a \r\n", 1);
	G_ERRORS(r, "control byte in a key", "GET a\x01z\r\n", 1);
	G_ERRORS(r, "SET without a length", "SET k\r\n", 1);
	G_ERRORS(r, "SET with a bad length", "SET k 12x\r\n", 1);
	G_ERRORS(r, "SET with a negative length", "SET k -1\r\n", 1);
	G_ERRORS(r, "SET with a 20-digit length",
		 "SET k 18446744073709551616\r\n", 1);
	G_ERRORS(r, "value without \\r\\n after it", "SET k 5\r\nhelloXY\r\n",
		 2); /* bad data terminator, then "XY" */

	n = (size_t)sprintf(big, "GET ");
	memset(big + n, 'k', 251);
	n += 251;
	n += (size_t)sprintf(big + n, "\r\n");
	g_errors(r, "key of 251 bytes", big, n, 1);

	n = 0;
	for (unsigned b = 0; b < 256; b++)
		if (b != '\n')
			big[n++] = (char)b;
	big[n++] = '\r';
	big[n++] = '\n';
	g_errors(r, "every byte but \\n", big, n, 1);

	memset(big, 'x', 600);
	memcpy(big + 600, "\r\n", 2);
	g_errors(r, "line of 600 bytes", big, 602, 1);

	/* 70000 bytes of requests as the data of a refused SET: skipped,
	 * not answered. */
	n = (size_t)sprintf(big, "SET k 70000\r\n");
	for (size_t i = 0; i < 70000; i++)
		big[n + i] = "GET k\r\n"[i % 7];
	n += 70000;
	n += (size_t)sprintf(big + n, "\r\n");
	g_errors(r, "value of 70000 bytes", big, n, 1);

	/* A line of 1 MiB of random bytes: one ERROR, bounded memory. */
	for (size_t i = 0; i < BIG; i++) {
		char b = (char)(mix64(i) % 255 + 1);

		big[i] = b == '\n' ? 'x' : b;
	}
	memcpy(big + BIG, "\r\n", 2);
	g_errors(r, "line of 1 MiB of random bytes", big, BIG + 2, 1);

	/* Pipelined: three requests in one write, answered in order. */
	ok = G_SEND(r, "SET kvload-p 1\r\na\r\nGET kvload-p\r\nNOPE\r\n") &&
	     g_line(r, line, sizeof(line)) && !strcmp(line, "STORED") &&
	     g_expect_value(r, "a", line, sizeof(line)) &&
	     g_line(r, line, sizeof(line)) && !strncmp(line, "ERROR ", 6);
	g_verdict(ok, "three pipelined requests", line);

	g_roundtrip(r, "SET and GET after all that");
	close(r->fd);

	/* Clients that go away mid-request. */
	if (g_connect(r))
		goto out;
	G_SEND(r, "SET kvload-half 100\r\n0123456789");
	close(r->fd);
	if (g_connect(r))
		goto out;
	G_SEND(r, "GET kvload-ha");
	close(r->fd);
	if (g_connect(r))
		goto out;
	close(r->fd);

	if (g_connect(r))
		goto out;
	g_roundtrip(r, "new connection: SET and GET");
	ok = G_SEND(r, "GET kvload-half\r\n") &&
	     g_expect_value(r, NULL, line, sizeof(line));
	g_verdict(ok, "truncated SET was not stored", line);
	close(r->fd);
out:
	free(big);
	free(r);
	printf("kvload: garbage: %u passed, %u failed\n", g_passed, g_failed);
	return g_failed || !g_passed ? 1 : 0;
}

/* ---- Options and main ---------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rw-kvload (--port N | --port-file PATH) [options]\n"
		"\n"
		"Load and check examples/kv/kvserver.c. Commands on stdin: "
		"'mark LABEL', 'stop'.\n"
		"\n"
		"  --host ADDR          server address (default 127.0.0.1)\n"
		"  --port N             server port\n"
		"  --port-file PATH     read the port from PATH, waiting up to "
		"10 s for it\n"
		"  --connections N      connections (default 8)\n"
		"  --threads N          threads (default 2)\n"
		"  --keys N             keys (default 1000)\n"
		"  --value-sizes LIST   value sizes in bytes, SIZE[:WEIGHT],...\n"
		"                       (default " DEFAULT_SIZES ")\n"
		"  --set-percent N      SETs among the requests (default 10)\n"
		"  --duration SEC       stop after SEC seconds (default 0: on "
		"'stop' or EOF)\n"
		"  --json FILE          also write the report as JSON\n"
		"  --garbage            send malformed requests and check the "
		"answers instead\n"
		"  --help               this text\n"
		"\n"
		"Exit status: 0 without errors, 1 with errors (wrong answers "
		"are not errors),\n"
		"2 for bad usage.\n");
}

static bool parse_unsigned(const char *s, unsigned long min, unsigned long max,
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

/* "SIZE[:WEIGHT],..." into sizes[] and size_weight[]. */
static bool parse_sizes(const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *item;
	bool ok = copy != NULL;

	nsizes = 0;
	total_weight = 0;
	for (item = ok ? strtok_r(copy, ",", &save) : NULL; ok && item;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		unsigned weight = 1;

		if (colon) {
			*colon = '\0';
			ok = parse_unsigned(colon + 1, 1, 1000, &weight);
		}
		ok = ok && nsizes < MAX_SIZES &&
		     parse_unsigned(item, 0, MAX_VALUE, &sizes[nsizes]);
		if (ok) {
			size_weight[nsizes++] = weight;
			total_weight += weight;
		}
	}
	free(copy);
	return ok && nsizes > 0;
}

static int resolve(const char *host, unsigned port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM },
			*res, *ai;
	char service[16];
	int err;

	snprintf(service, sizeof(service), "%u", port);
	err = getaddrinfo(host, service, &hints, &res);
	if (err) {
		fprintf(stderr, "kvload: %s: %s\n", host, gai_strerror(err));
		return -1;
	}
	/* IPv4 first: kvserver listens on 127.0.0.1 ("localhost" often
	 * resolves to ::1 first). */
	for (ai = res; ai->ai_next && ai->ai_family != AF_INET;
	     ai = ai->ai_next)
		;
	if (ai->ai_family != AF_INET)
		ai = res;
	memcpy(&server_addr, ai->ai_addr, ai->ai_addrlen);
	server_addrlen = ai->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The port written in @path, waiting up to 10 s for the file. */
static int read_port_file(const char *path, unsigned *port)
{
	uint64_t deadline = now_ns() + 10 * NS_PER_SEC;

	for (;;) {
		FILE *f = fopen(path, "r");

		if (f) {
			int n = fscanf(f, "%u", port);

			fclose(f);
			if (n == 1 && *port > 0 && *port < 65536)
				return 0;
			fprintf(stderr, "kvload: %s: no port in it\n", path);
			return -1;
		}
		if (errno != ENOENT) {
			fprintf(stderr, "kvload: %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		if (now_ns() > deadline) {
			fprintf(stderr, "kvload: %s: not there after 10 s\n",
				path);
			return -1;
		}
		nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
	}
}

static int loaders_start(struct loader *loaders)
{
	for (unsigned t = 0; t < nthreads; t++) {
		struct loader *l = &loaders[t];
		int err;

		l->id = t;
		l->rng = mix64(now_ns() ^ ((uint64_t)t << 32)) | 1;
		l->preload_next = (unsigned)((uint64_t)nkeys * t / nthreads);
		l->preload_end =
			(unsigned)((uint64_t)nkeys * (t + 1) / nthreads);
		l->nconns =
			nconnections / nthreads + (t < nconnections % nthreads);
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		l->conns = calloc(l->nconns, sizeof(*l->conns));
		if (l->epfd < 0 || !l->conns) {
			perror("kvload: epoll_create1/calloc");
			return -1;
		}
		for (unsigned i = 0; i < l->nconns; i++) {
			struct lconn *c = malloc(sizeof(*c));

			if (!c) {
				perror("kvload: malloc");
				return -1;
			}
			c->l = l;
			c->fd = -1;
			c->state = C_DOWN;
			c->retry_at = 0;
			c->key = 0;
			c->is_set = c->preload = false;
			l->conns[i] = c;
		}
		err = pthread_create(&l->thread, NULL, loader_main, l);
		if (err) {
			fprintf(stderr, "kvload: pthread_create: %s\n",
				strerror(err));
			return -1;
		}
		l->started = true;
	}
	return 0;
}

/* Waits for the threads to see `stopping`. */
static void loaders_join(struct loader *loaders)
{
	for (unsigned t = 0; t < nthreads; t++)
		if (loaders[t].started) {
			pthread_join(loaders[t].thread, NULL);
			loaders[t].started = false;
		}
}

static void loaders_free(struct loader *loaders)
{
	for (unsigned t = 0; t < nthreads; t++) {
		struct loader *l = &loaders[t];

		if (l->epfd >= 0)
			close(l->epfd);
		for (unsigned i = 0; l->conns && i < l->nconns; i++)
			free(l->conns[i]);
		free(l->conns);
		for (unsigned p = 0; p < MAX_PHASES; p++)
			free(l->stats[p]);
	}
	free(loaders);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "keys", required_argument, NULL, 'k' },
		{ "value-sizes", required_argument, NULL, 'v' },
		{ "set-percent", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "garbage", no_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1", *port_file = NULL, *json = NULL;
	struct loader *loaders = NULL;
	unsigned port = 0, nphases;
	uint64_t t_end;
	double duration = 0;
	bool garbage_mode = false;
	int sigfd = -1, ret = 1, c, idx = 0;
	int64_t errors;
	char *end;
	sigset_t sigs;

	parse_sizes(DEFAULT_SIZES);
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		bool ok = true;

		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			ok = parse_unsigned(optarg, 1, 65535, &port);
			break;
		case 'f':
			port_file = optarg;
			break;
		case 'c':
			ok = parse_unsigned(optarg, 1, MAX_CONNECTIONS,
					    &nconnections);
			break;
		case 't':
			ok = parse_unsigned(optarg, 1, MAX_THREADS, &nthreads);
			break;
		case 'k':
			ok = parse_unsigned(optarg, 1, 100000000, &nkeys);
			break;
		case 'v':
			ok = parse_sizes(optarg);
			break;
		case 's':
			ok = parse_unsigned(optarg, 0, 100, &set_percent);
			break;
		case 'd':
			errno = 0;
			duration = strtod(optarg, &end);
			ok = !errno && end != optarg && !*end &&
			     duration >= 0 && duration < 1e7;
			break;
		case 'j':
			json = optarg;
			break;
		case 'g':
			garbage_mode = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "kvload: bad value '%s' for --%s\n",
				optarg, opts[idx].name);
			return 2;
		}
	}
	if (optind < argc || (!port == !port_file)) {
		fprintf(stderr, "kvload: give --port or --port-file (and no "
				"other argument)\n");
		usage(stderr);
		return 2;
	}
	if (nthreads > nconnections)
		nthreads = nconnections;
	setvbuf(stdout, NULL, _IOLBF, 0);
	crc32c_init();
	if (port_file && read_port_file(port_file, &port))
		return 1;
	if (resolve(host, port))
		return 1;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		perror("kvload: signal");
		return 1;
	}
	if (garbage_mode)
		return garbage();

	if (pool_init()) {
		fprintf(stderr, "kvload: out of memory\n");
		return 1;
	}
	/* Before the threads start, so that they inherit the mask and the
	 * signals wait for the signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	if ((errno = pthread_sigmask(SIG_BLOCK, &sigs, NULL)) ||
	    (sigfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0) {
		perror("kvload: signalfd");
		goto out;
	}
	loaders = calloc(nthreads, sizeof(*loaders));
	if (!loaders) {
		perror("kvload: calloc");
		goto out;
	}
	for (unsigned t = 0; t < nthreads; t++)
		loaders[t].epfd = -1;

	atomic_store(&preload_left, (long)nkeys);
	strcpy(phases[0].label, "start");
	t_begin = phases[0].start = now_ns();
	fprintf(stderr,
		"kvload: %u connections, %u threads, %u keys, %u%% SET, "
		"server %s port %u\n",
		nconnections, nthreads, nkeys, set_percent, host, port);
	if (loaders_start(loaders)) {
		atomic_store(&stopping, true);
		goto out;
	}
	nphases = control(sigfd, duration);
	t_end = now_ns();
	atomic_store(&stopping, true);
	loaders_join(loaders);
	errors = report(loaders, nphases, t_end, json);
	ret = errors == 0 ? 0 : 1;
out:
	if (loaders) {
		loaders_join(loaders);
		loaders_free(loaders);
	}
	if (sigfd >= 0)
		close(sigfd);
	free(pool);
	return ret;
}
