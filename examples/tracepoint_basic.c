/* SPDX-License-Identifier: MIT */
/*
 * tracepoint_basic - a tracepoint fired by four threads; a typed probe and a
 * generic one attached and detached while they run.
 */
#include <rewire/tracepoint.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

RW_DECLARE_TRACEPOINT(request_done, (unsigned, worker), (long, latency_us),
		      (const char *, path));
RW_DEFINE_TRACEPOINT(request_done, (unsigned, worker), (long, latency_us),
		     (const char *, path));

static atomic_int stop;

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	long n = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* Free when nothing is attached: the site is one NOP. */
		rw_trace_request_done(id, n % 900, n % 2 ? "/index" : "/api");
		n++;
		usleep(100);
	}
	return NULL;
}

/* A typed probe: the compiler checks its arguments against the tracepoint. */
static void count_slow(void *data, unsigned worker, long latency_us,
		       const char *path)
{
	(void)worker;
	(void)path;
	if (latency_us > 500)
		atomic_fetch_add((atomic_long *)data, 1);
}

/* A generic probe: any tracepoint, arguments by name and kind. */
static void print_event(void *data, const struct rw_tracepoint *tp,
			const union rw_tp_value *args)
{
	char line[160];

	if (atomic_fetch_add((atomic_int *)data, 1) < 5) {
		rw_tracepoint_format(tp, args, line, sizeof(line));
		printf("  %s\n", line);
	}
}

int main(void)
{
	struct rw_tracepoint *tp = rw_tracepoint_ptr(request_done);
	pthread_t t[4];
	atomic_long slow = 0;
	atomic_int printed = 0;
	int err;

	for (unsigned i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);

	err = rw_tracepoint_probe_register(request_done, count_slow, &slow, 10);
	if (err) {
		fprintf(stderr, "register: %s\n", rw_strerror(err));
		return 1;
	}
	err = rw_tracepoint_probe_register_generic(tp, print_event, &printed,
						   0);
	if (err) {
		fprintf(stderr, "register: %s\n", rw_strerror(err));
		return 1;
	}
	usleep(200000);
	rw_tracepoint_probe_unregister_generic(tp, print_event, &printed);
	rw_tracepoint_probe_unregister(request_done, count_slow, &slow);
	/* After this, no probe can still be running with &slow or &printed. */
	rw_tracepoint_synchronize_unregister();

	atomic_store(&stop, 1);
	for (unsigned i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("%d events seen by the generic probe, %ld slow requests\n",
	       atomic_load(&printed), atomic_load(&slow));
	return 0;
}
