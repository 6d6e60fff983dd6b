// SPDX-License-Identifier: MIT
/*
 * The program `rewire trace --function`, funccount, funclatency and `ls
 * --functions` are tested against (test_cli_ftrace.sh,
 * test_cli_funccount.sh). Built as a distribution builds a program (-O2
 * with dpkg-buildflags' flags) and patchable (rewire_target_patchable()),
 * with no annotation on the functions traced: they are ordinary external
 * functions, which -flive-patching=inline-only-static keeps GCC from
 * inlining or cloning.
 *
 * Threads: FT_WORKERS workers wait for a phase; a background thread calls
 * bg_tick() all the time (never selected by the tests' ft_* globs); main
 * runs the phases, which the test starts with signals, and prints what it
 * did, so that the test knows exactly how many calls were made:
 *
 *	SIGUSR1	work phase: each worker calls ft_work() FT_CALLS times;
 *		ft_work() calls ft_leaf() and ft_debug_hook() once each.
 *		Prints "work phase N done calls=C", with the tracepoint
 *		ft_phase fired before and after.
 *	SIGUSR2	sleep phase: one worker calls ft_sleep_1ms() FT_SLEEPS
 *		times. Prints "sleep phase N done calls=C".
 *
 * After each phase, and at start ("ready"), it prints the first 9 bytes of
 * ft_work, ft_leaf and ft_sleep_1ms (endbr64 and the entry's NOPs:
 * "entry ft_work=f30f1efa0f1f440000": rewire-entries ran), so that
 * the test sees them patched while traced and restored afterwards.
 *
 * Also: ft_nopatch (no patchable entry: its attribute turns the NOPs off),
 * ft_counter (a variable, not a function). --lifetime SEC: exit after SEC
 * seconds (the test harness's safety net).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rewire/tracepoint.h>

#define FT_WORKERS 3
#define FT_CALLS 200
#define FT_SLEEPS 20

RW_DECLARE_TRACEPOINT(ft_phase, (int, phase), (const char *, what));
RW_DEFINE_TRACEPOINT(ft_phase, (int, phase), (const char *, what));

int ft_work(int x);
int ft_leaf(int x);
void ft_debug_hook(int x);
void ft_sleep_1ms(void);
int ft_nopatch(int x);
unsigned long bg_tick(unsigned long x);

volatile long ft_counter;
static volatile unsigned sink;

int ft_leaf(int x)
{
	return x * 3 + (int)(ft_counter & 1);
}

void ft_debug_hook(int x)
{
	if (x < 0)
		fprintf(stderr, "negative %d\n", x);
}

int ft_work(int x)
{
	int y = ft_leaf(x) + 1;

	ft_debug_hook(y);
	ft_counter++;
	return y;
}

void ft_sleep_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

__attribute__((patchable_function_entry(0, 0))) int ft_nopatch(int x)
{
	return x ^ 0x5a;
}

unsigned long bg_tick(unsigned long x)
{
	return x * 7 + 1;
}

/* A phase: 1 work, 2 sleep; the workers' generation counter. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int phase_kind, phase_gen, phase_left;
static _Atomic bool stop;

static void *worker(void *arg)
{
	long id = (long)arg;
	int seen = 0;

	for (;;) {
		int kind;

		pthread_mutex_lock(&lock);
		while (phase_gen == seen && !atomic_load(&stop))
			pthread_cond_wait(&cond, &lock);
		seen = phase_gen;
		kind = phase_kind;
		pthread_mutex_unlock(&lock);
		if (atomic_load(&stop))
			return NULL;
		if (kind == 1) {
			for (int i = 0; i < FT_CALLS; i++)
				sink += (unsigned)ft_work(i);
		} else if (kind == 2 && id == 0) {
			for (int i = 0; i < FT_SLEEPS; i++)
				ft_sleep_1ms();
		}
		pthread_mutex_lock(&lock);
		if (--phase_left == 0)
			pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
}

static void *background(void *arg)
{
	unsigned long x = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		x = bg_tick(x);
		usleep(1000);
	}
	return NULL;
}

static void print_entries(void)
{
	static const struct {
		const char *name;
		const void *addr;
	} fns[] = {
		{ "ft_work", (const void *)ft_work },
		{ "ft_leaf", (const void *)ft_leaf },
		{ "ft_sleep_1ms", (const void *)ft_sleep_1ms },
	};

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		const unsigned char *p = fns[i].addr;

		/* endbr64 (-fcf-protection) and the 5-byte entry. */
		printf("entry %s=", fns[i].name);
		for (int k = 0; k < 9; k++)
			printf("%02x", p[k]);
		printf("\n");
	}
}

static void run_phase(int kind, int n)
{
	rw_trace_ft_phase(n, kind == 1 ? "work" : "sleep");
	pthread_mutex_lock(&lock);
	phase_kind = kind;
	phase_left = FT_WORKERS;
	phase_gen++;
	pthread_cond_broadcast(&cond);
	while (phase_left)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	rw_trace_ft_phase(n, "done");
	print_entries();
	printf("%s phase %d done calls=%d\n", kind == 1 ? "work" : "sleep", n,
	       kind == 1 ? FT_WORKERS * FT_CALLS : FT_SLEEPS);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	pthread_t w[FT_WORKERS], bg;
	struct timespec deadline;
	int lifetime = 120, n = 0;
	sigset_t set;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) {
			lifetime = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--lifetime SEC]\n",
				argv[0]);
			return 2;
		}
	}
	/* Every thread blocks the phase signals; main takes them with
	 * sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (long i = 0; i < FT_WORKERS; i++)
		pthread_create(&w[i], NULL, worker, (void *)i);
	pthread_create(&bg, NULL, background, NULL);
	sink += (unsigned)ft_nopatch(1);
	print_entries();
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += lifetime;
	for (;;) {
		struct timespec now, wait = { 0, 100000000 };
		int sig = sigtimedwait(&set, NULL, &wait);

		if (sig == SIGUSR1)
			run_phase(1, ++n);
		else if (sig == SIGUSR2)
			run_phase(2, ++n);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec >= deadline.tv_sec)
			break;
	}
	atomic_store(&stop, true);
	pthread_mutex_lock(&lock);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < FT_WORKERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(bg, NULL);
	return 0;
}
