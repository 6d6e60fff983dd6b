// SPDX-License-Identifier: MIT
/*
 * The C++ program of test_cli_funccount.sh: functions people name by
 * their demangled names (ns::compute(int), ns::compute(double), a method
 * ns::Engine::step()). Built like ft_target.c (-O2, dpkg-buildflags,
 * patchable). Two worker threads wait for SIGUSR1; then one calls
 * ns::compute(int) FTX_INT times and the other ns::compute(double)
 * FTX_DOUBLE times and ns::Engine::step() FTX_STEP times; main prints
 * "phase N done int=I double=D step=S". --lifetime SEC as ft_target.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define FTX_INT 300
#define FTX_DOUBLE 120
#define FTX_STEP 50

namespace ns
{
int compute(int x);
double compute(double x);

int compute(int x)
{
	return x * 2 + 1;
}

double compute(double x)
{
	return x * 0.5 + 1.0;
}

class Engine {
    public:
	long step(long v);

    private:
	long state_ = 0;
};

long Engine::step(long v)
{
	state_ += v;
	return state_;
}
} // namespace ns

static volatile double sink;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int gen, left;
static std::atomic<bool> stop{ false };

static void *worker(void *arg)
{
	long id = (long)arg;
	int seen = 0;
	ns::Engine e;

	for (;;) {
		pthread_mutex_lock(&lock);
		while (gen == seen && !stop.load())
			pthread_cond_wait(&cond, &lock);
		seen = gen;
		pthread_mutex_unlock(&lock);
		if (stop.load())
			return nullptr;
		if (id == 0) {
			for (int i = 0; i < FTX_INT; i++)
				sink = sink + ns::compute(i);
		} else {
			for (int i = 0; i < FTX_DOUBLE; i++)
				sink = sink + ns::compute(i * 1.0);
			for (int i = 0; i < FTX_STEP; i++)
				sink = sink + (double)e.step(i);
		}
		pthread_mutex_lock(&lock);
		if (--left == 0)
			pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
}

int main(int argc, char **argv)
{
	pthread_t w[2];
	int lifetime = 120, n = 0;
	struct timespec start;
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
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	for (long i = 0; i < 2; i++)
		pthread_create(&w[i], nullptr, worker, (void *)i);
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct timespec now, wait = { 0, 100000000 };

		if (sigtimedwait(&set, nullptr, &wait) == SIGUSR1) {
			pthread_mutex_lock(&lock);
			left = 2;
			gen++;
			pthread_cond_broadcast(&cond);
			while (left)
				pthread_cond_wait(&cond, &lock);
			pthread_mutex_unlock(&lock);
			/* std::string: libstdc++ is linked, as in any C++
			 * program of size (rewire demangles with its
			 * __cxa_demangle). */
			std::string done = "phase " + std::to_string(++n);

			printf("%s done int=%d double=%d step=%d\n",
			       done.c_str(), FTX_INT, FTX_DOUBLE, FTX_STEP);
			fflush(stdout);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= lifetime)
			break;
	}
	stop.store(true);
	pthread_mutex_lock(&lock);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (auto &t : w)
		pthread_join(t, nullptr);
	return 0;
}
