/* SPDX-License-Identifier: MIT */
/*
 * rewire/provider.h - a set of interchangeable providers of one service
 * (a clock, a hash, a random source), one of which is current; readers call
 * the current one, writers switch it and unregister providers safely.
 *
 * Overview
 *
 * This is the kernel's clocksource pattern made safe for user space. In 2010
 * the kernel found two holes in it (the thread "clocksource: remove
 * stop_machine", July 2010):
 *
 *  1. A reader that had done read_seqbegin() and was about to call the read
 *     function of the current clocksource could, if the compiler reloaded
 *     the clocksource pointer, mix the read function of one clocksource with
 *     the state of the next.
 *  2. clocksource_unregister() returned while a reader could still be inside
 *     the read function of the clocksource being removed, so freeing it was a
 *     use after free waiting for a slow (preempted, virtualized) reader.
 *
 * Here the set keeps (current provider, generation) under a seqcount, and
 * rw_provider_read() loads both once per attempt, calls that provider's read
 * function and retries if a writer switched providers meanwhile: the result
 * always comes from one provider that was current for the whole call of its
 * read function, together with the generation it was current in (1). The
 * whole read runs inside an RCU read-side critical section (rewire's own
 * read side, rewire/readside.h, which the grace periods of rewire/rcu.h
 * cover), and rw_provider_unregister() returns only after a grace
 * period, when no reader can still be inside the provider: the caller may
 * free it right away (2).
 *
 * The seqcount is a latch (the kernel's seqcount_latch, as used by its
 * NMI-safe clock): the set holds two copies of (provider, generation), and
 * readers never wait for a writer. A signal handler that interrupts a writer
 * in the middle of a switch reads the copy the writer is not changing.
 *
 * Usage
 *
 *	static int tsc_read(const struct rw_provider *p, void *out)
 *	{
 *		*(uint64_t *)out = rdtsc() - ((struct tsc *)p->priv)->base;
 *		return 0;
 *	}
 *
 *	static struct rw_provider_set clocks = RW_PROVIDER_SET_INIT;
 *
 *	struct rw_provider *tsc = calloc(1, sizeof(*tsc));
 *	tsc->name = "tsc";
 *	tsc->rating = 300;
 *	tsc->read = tsc_read;
 *	tsc->priv = tsc_state;
 *	err = rw_provider_register(&clocks, tsc);	// best rating: current
 *
 *	// reader, in any thread or signal handler
 *	uint64_t now;
 *	unsigned gen;
 *	err = rw_provider_read(&clocks, &now, &gen);	// -ENODEV if none
 *
 *	// writer
 *	err = rw_provider_select(&clocks, "hpet");	// pin a provider
 *	err = rw_provider_select(&clocks, NULL);	// back to best rating
 *	err = rw_provider_unregister(&clocks, tsc);	// waits for readers
 *	free(tsc_state);
 *	free(tsc);					// safe
 *
 * Choosing the current provider
 *
 *	event				current afterwards
 *	register p, not pinned		p if none is current or p's rating is
 *					higher than the current one's
 *	register p, pinned		unchanged
 *	select(name)			that provider; the set is pinned
 *	select(NULL)			best rating; the set is not pinned
 *	unregister current		best remaining rating, or none; the
 *					set is not pinned any more
 *	unregister another		unchanged
 *
 * "Best" is the highest rating, the earliest registered among equals, whose
 * enable hook (if any) succeeds.
 *
 * Caveats
 *
 * - A read function may be called more than once per rw_provider_read()
 *   (a retry after a switch), and the calls may have run different providers;
 *   only the last call's result and output are returned. It must be safe to
 *   call while its provider is being switched away from, and must not wait
 *   for a writer of any set (see the next item).
 * - Writer functions (register, select, unregister) may wait for an RCU grace
 *   period. They return -EDEADLK inside a read-side critical section,
 *   including from a read function, and from a hook of any set (they share
 *   one mutex). A writer must not hold a lock that a read function takes.
 * - A provider belongs to at most one set at a time. Its public fields must
 *   not change while it is registered (priv may point to data that does).
 * - One mutex serializes the writers of all sets, and it is held across the
 *   grace periods they wait for: writers are meant to be rare.
 * - A set holds no resources: it may be freed once its last provider is
 *   unregistered.
 * - fork() waits for a running writer function to finish (an atfork handler
 *   takes the writer mutex), so the child starts with consistent sets.
 */
#ifndef REWIRE_PROVIDER_H
#define REWIRE_PROVIDER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include <rewire/common.h>
#include <rewire/rcu.h>
#include <rewire/readside.h>

RW_EXTERN_C_BEGIN

struct rw_provider_set;

/*
 * struct rw_provider - one provider. Fill in the public fields, then
 * register it. Writers hold the writer mutex while they call the hooks.
 */
struct rw_provider {
	/* Unique within its set; selects it in rw_provider_select(). */
	const char *name;
	/* Higher is better; decides the automatic choice. */
	int rating;
	/*
	 * Produce a value into @out. Called by rw_provider_read() inside an
	 * RCU read-side critical section, with @p current when the call
	 * began. Returns what rw_provider_read() returns (0, or a negative
	 * errno value of the provider's choosing). Must be async-signal-safe
	 * if readers run in signal handlers.
	 */
	int (*read)(const struct rw_provider *p, void *out);
	/*
	 * Optional: called before @p becomes current. A nonzero return
	 * (a negative errno value) keeps @p from becoming current.
	 */
	int (*enable)(struct rw_provider *p);
	/*
	 * Optional: called after @p stopped being current, once a grace
	 * period has passed: no reader is inside @p->read any more. Waiting
	 * for that grace period is what makes a switch away from a provider
	 * with a disable hook sleep.
	 */
	void (*disable)(struct rw_provider *p);
	/* For the provider's own use; rewire never touches it. */
	void *priv;

	/* private: the writer mutex protects both. */
	struct rw_provider *rw__next;	 /* in rw__set's list, best first */
	struct rw_provider_set *rw__set; /* NULL while unregistered */
};

/*
 * struct rw_provider_set - the providers of one service. Initialize with
 * RW_PROVIDER_SET_INIT or by zeroing it; no set-up call is needed. All
 * fields are private; rw_provider_read()'s inline fast path reads rw__seq
 * and the latch, so their layout is part of the ABI.
 */
struct rw_provider_set {
	/* Seqcount latch: readers use copy rw__seq & 1, that is
	 * rw__provider[rw__seq & 1] and rw__generation[rw__seq & 1]. Two
	 * arrays rather than an array of pairs, the providers first: a
	 * provider is then one scaled load from the set's address and the
	 * index. Written under the writer mutex (release), read lock-free
	 * (acquire) under RCU. */
	const struct rw_provider *rw__provider[2];
	unsigned rw__seq;
	unsigned rw__generation[2];
	/* Registered providers, sorted by rating, best first; ties in
	 * registration order. Writer mutex. */
	struct rw_provider *rw__list;
	/* The current provider was chosen by name. Writer mutex. */
	bool rw__pinned;
};

/*
 * RW_PROVIDER_SET_INIT - the initializer of an empty struct
 * rw_provider_set, the same as zeroing it:
 *
 *	static struct rw_provider_set clocks = RW_PROVIDER_SET_INIT;
 */
#define RW_PROVIDER_SET_INIT \
	{                    \
		.rw__seq = 0 \
	}

/**
 * rw_provider_register - add @p to @set.
 *
 * @p becomes current if the set is not pinned and @p's rating is higher than
 * the current provider's (or none is current). Making it current calls its
 * enable hook, publishes it, and, if the previous provider has a disable
 * hook, waits for a grace period and calls that hook.
 *
 * Takes the writer mutex; may sleep; not async-signal-safe. Readers that
 * obtain @p see everything written before this call and by @p->enable.
 *
 * Return: 0; -EINVAL if @set or @p is NULL or @p has no name or read
 * function; -EEXIST if @p is registered (in any set) or @set has a provider
 * of that name; -EDEADLK inside a read-side critical section or a hook; the
 * error of @p->enable, in which case @p is not registered. On error nothing
 * has changed.
 */
RW_EXPORT int rw_provider_register(struct rw_provider_set *set,
				   struct rw_provider *p);

/**
 * rw_provider_select - make the provider named @name current and pin the
 * set to it, or with @name NULL, unpin the set and make the best provider
 * current.
 *
 * Switching calls the new provider's enable hook, publishes it, and if the
 * old provider has a disable hook, waits for a grace period and calls it.
 * Selecting the current provider only pins the set. Takes the writer mutex;
 * may sleep; not async-signal-safe.
 *
 * Return: 0; -EINVAL if @set is NULL; -ENOENT if no provider of @set has
 * that name; -EDEADLK inside a read-side critical section or a hook; the
 * error of the enable hook. On error nothing has changed. With @name NULL,
 * providers whose enable hook fails are skipped and 0 is returned.
 */
RW_EXPORT int rw_provider_select(struct rw_provider_set *set, const char *name);

/**
 * rw_provider_unregister - remove @p from @set and wait until no reader can
 * be using it.
 *
 * Steps: if @p is current, the best remaining provider (or none) becomes
 * current and the set is unpinned; then wait for a grace period; then call
 * @p->disable if @p was current. When this returns, no reader is inside @p->read or can reach @p,
 * and @p and everything its read function uses may be freed.
 *
 * Takes the writer mutex; sleeps; not async-signal-safe.
 *
 * Return: 0; -EINVAL if @set or @p is NULL; -ENOENT if @p is not registered
 * in @set; -EDEADLK inside a read-side critical section (a reader cannot
 * wait for itself to leave) or a hook. On error nothing has changed.
 */
RW_EXPORT int rw_provider_unregister(struct rw_provider_set *set,
				     struct rw_provider *p);

/**
 * rw_provider_read - call the current provider's read function.
 * @out: passed to the read function.
 * @generation: if not NULL, receives the generation in which the provider
 * that produced the result was current. Generations count the changes of
 * the current provider (including to none); equal generations mean the
 * same provider.
 *
 * The result comes from one provider that stayed current from the start to
 * the end of the call of its read function, and that provider cannot be
 * unregistered (so freed) before this returns. Never waits for a writer;
 * retries while writers switch. Async-signal-safe if the read function is,
 * also as a thread's first read: the read side (rewire/readside.h)
 * registers the thread without allocating, signals blocked. Inline (see
 * below): costs the latch's few loads and a thread-local increment and
 * decrement around the read function.
 *
 * Memory ordering: the read function sees everything its provider's
 * registration and enable hook wrote. If it observes a store made after the
 * provider stopped being current, its result is discarded and the read
 * retried.
 *
 * Return: the read function's return value; -ENODEV if no provider is
 * current; -EINVAL if @set is NULL.
 */
RW_EXPORT int rw_provider_read(const struct rw_provider_set *set, void *out,
			       unsigned *generation);

/*
 * Private: the whole of rw_provider_read(), inline (src/provider.c
 * describes the latch). A read is then the latch's loads and check around
 * the call of the read function, inside a section of the floor's read side
 * (rewire/readside.h: a thread-local increment and decrement), with no
 * call into the library and no PLT. The exported rw_provider_read() runs
 * this same code; define RW_PROVIDER_NO_INLINE before including this header
 * to call it instead.
 */
static inline __attribute__((always_inline)) int
rw__provider_read_inline(const struct rw_provider_set *set, void *out,
			 unsigned *generation)
{
	const struct rw_provider *p;
	unsigned seq, gen = 0;
	int ret;

	if (__builtin_expect(!set, 0))
		return -EINVAL;
	rw__rs_lock();
	do {
		seq = __atomic_load_n(&set->rw__seq, __ATOMIC_ACQUIRE);
		p = rw_rcu_dereference(set->rw__provider[seq & 1]);
		/* Only when asked for: a dead atomic load is not removed. */
		if (generation)
			gen = __atomic_load_n(&set->rw__generation[seq & 1],
					      __ATOMIC_ACQUIRE);
		ret = p ? p->read(p, out) : -ENODEV;
		/* Whatever the read function loaded is ordered before the
		 * check. ThreadSanitizer does not model fences (GCC refuses
		 * them under -fsanitize=thread); on x86-64 an acquire fence
		 * is only a compiler barrier, and the latch is read with
		 * acquire loads, which TSan sees. */
#ifdef RW_TSAN
		__asm__ __volatile__("" ::: "memory");
#else
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
	} while (__builtin_expect(
		__atomic_load_n(&set->rw__seq, __ATOMIC_RELAXED) != seq, 0));
	rw__rs_unlock();
	if (generation)
		*generation = gen;
	return ret;
}

#ifndef RW_PROVIDER_NO_INLINE
#define rw_provider_read(set, out, generation) \
	rw__provider_read_inline(set, out, generation)
#endif

/**
 * rw_provider_current_name - copy the name of the current provider into
 * @buf (always NUL-terminated), and its generation into @generation if not
 * NULL, consistently with each other. Same guarantees as
 * rw_provider_read(); async-signal-safe.
 *
 * Return: 0; -ENODEV if no provider is current (@buf is then ""); -ERANGE
 * if the name was truncated; -EINVAL if @set or @buf is NULL or @size is 0.
 */
RW_EXPORT int rw_provider_current_name(const struct rw_provider_set *set,
				       char *buf, size_t size,
				       unsigned *generation);

RW_EXTERN_C_END

#endif /* REWIRE_PROVIDER_H */
