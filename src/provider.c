/* SPDX-License-Identifier: MIT */
/*
 * Providers: a seqcount latch for (current provider, generation) and RCU
 * for the providers' lifetime.
 *
 * The latch (the kernel's seqcount_latch_t). The set holds two copies of
 * (provider, generation); readers use copy seq & 1. A writer, serialized by
 * the writer mutex:
 *
 *   1. seq++ (odd): new readers use copy 1, which still holds the old state;
 *   2. stores the new state into copy 0 (release stores, so a reader that
 *      sees any of it also sees step 1);
 *   3. seq++ (even, release): new readers use copy 0, the new state;
 *   4. stores the new state into copy 1.
 *
 * A reader loads seq (acquire), loads the copy it names (acquire), calls the
 * read function, and retries if seq has changed since (after an acquire
 * fence, so that whatever the read function loaded is ordered before the
 * check). A reader whose copy was being written in step 2 or 4 sees seq
 * change and retries; readers never wait, so a signal handler that
 * interrupts the writer between steps 1 and 4 still completes its read.
 *
 * The reader is rw__provider_read_inline() in rewire/provider.h, inlined
 * into the callers of rw_provider_read(); read_begin() and read_retry()
 * below are the same steps for rw_provider_current_name().
 *
 * Lifetime. Readers run inside a section of the floor's read side
 * (rw__rs_lock(), rewire/readside.h), which the grace periods of
 * rw_rcu_synchronize() cover as well as liburcu's readers. Once a
 * provider is in neither copy of the latch (step 4), a reader can only hold
 * it if its critical section began before, so after a grace period no reader
 * is inside its read function: then its disable hook may run, or, after
 * unregister, it may be freed. (The polled API, a cookie taken at the
 * switch and rw_rcu_cond_synchronize() at unregister, would let unregister
 * skip the wait for a provider retired long ago. It is not used: rcu.c's
 * "counter" implementation can call a cookie complete at once when it was
 * taken right after a rw_rcu_synchronize().)
 *
 * Locking. writer_lock is held across the enable and disable hooks and
 * across grace periods, so it nests outside every other lock of rewire
 * (the order in src/internal.h: tracepoints, RCU, text, cross-thread
 * calls): hooks may use the rest of rewire. Readers take no lock.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

#include <rewire/provider.h>

/* Serializes the writers of every set; protects the rw__next and rw__set
 * fields of every provider and rw__list and rw__pinned of every set; its
 * holder is the only writer of the latches. */
static struct rw__lock writer_lock = RW__LOCK_INIT;

/* fork(): set in prepare when it took writer_lock (it does not when the
 * forking thread holds it already). Only the forking thread touches it. */
static bool fork_locked;

/* fork: these run early among rewire's fork handlers (src/internal.h): a
 * writer holds writer_lock across grace periods and hooks, which may take
 * any other rewire lock. */
static void provider_atfork_prepare(void)
{
	fork_locked = rw__lock_acquire(&writer_lock) == 0;
}

static void provider_atfork_parent(void)
{
	if (fork_locked)
		rw__lock_release(&writer_lock);
	fork_locked = false;
}

static void provider_atfork_child(void)
{
	/* The child's tid differs from the parent's: the owner in the word
	 * is not the child's, so reset rather than release. */
	if (fork_locked)
		rw__lock_reset(&writer_lock);
	fork_locked = false;
}

static const struct rw__fork_handlers provider_fork = {
	provider_atfork_prepare,
	provider_atfork_parent,
	provider_atfork_child,
};

__attribute__((constructor)) static void provider_fork_init(void)
{
	rw__fork_handlers_register(RW__FORK_PROVIDER, &provider_fork);
}

/* Enter a writer function: not from a reader, then writer_lock. */
static int writer_begin(void)
{
	/* Checked before any change: rw_rcu_synchronize() would say
	 * -EDEADLK only after the switch it has to wait for was made. */
	if (rw__rcu_in_read_side())
		return -EDEADLK;
	return rw__lock_acquire(&writer_lock);
}

static void writer_end(void)
{
	rw__lock_release(&writer_lock);
}

/* --- The latch -------------------------------------------------------- */

static const struct rw_provider *current_locked(struct rw_provider_set *set)
{
	return __atomic_load_n(&set->rw__provider[0], __ATOMIC_RELAXED);
}

/* Copy @i of the latch. */
static void latch_store(struct rw_provider_set *set, unsigned i,
			const struct rw_provider *p, unsigned gen)
{
	rw_rcu_assign_pointer(set->rw__provider[i], p);
	__atomic_store_n(&set->rw__generation[i], gen, __ATOMIC_RELEASE);
}

/* Writer: steps 1-4 of the latch. writer_lock held, so seq is even. */
static void publish_locked(struct rw_provider_set *set,
			   const struct rw_provider *p)
{
	unsigned seq = __atomic_load_n(&set->rw__seq, __ATOMIC_RELAXED);
	unsigned gen =
		__atomic_load_n(&set->rw__generation[0], __ATOMIC_RELAXED) + 1;

	__atomic_store_n(&set->rw__seq, seq + 1, __ATOMIC_RELAXED);
	latch_store(set, 0, p, gen);
	__atomic_store_n(&set->rw__seq, seq + 2, __ATOMIC_RELEASE);
	latch_store(set, 1, p, gen);
}

/* Reader: the copy to use, and the seq to check it against afterwards. */
static unsigned read_begin(const struct rw_provider_set *set,
			   const struct rw_provider **p, unsigned *gen)
{
	unsigned seq = __atomic_load_n(&set->rw__seq, __ATOMIC_ACQUIRE);

	*p = rw_rcu_dereference(set->rw__provider[seq & 1]);
	*gen = __atomic_load_n(&set->rw__generation[seq & 1], __ATOMIC_ACQUIRE);
	return seq;
}

static bool read_retry(const struct rw_provider_set *set, unsigned seq)
{
#ifdef RW_TSAN
	/* ThreadSanitizer does not model fences (GCC refuses them under
	 * -fsanitize=thread). On x86-64 an acquire fence is only a compiler
	 * barrier, and everything the latch protects is read with acquire
	 * loads, which TSan does see. */
	__asm__ __volatile__("" ::: "memory");
#else
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
	return __atomic_load_n(&set->rw__seq, __ATOMIC_RELAXED) != seq;
}

/* --- Writers ---------------------------------------------------------- */

/*
 * Make @p (or none) current. writer_lock held.
 *
 *   1. @p's enable hook; its failure leaves everything as it was.
 *   2. Publish @p through the latch.
 *   3. Hand the provider that stopped being current to the caller, in
 *      *@retired (NULL if none did): the caller owes it retire_locked(), or
 *      a grace period and its disable hook.
 */
static int switch_locked(struct rw_provider_set *set, struct rw_provider *p,
			 struct rw_provider **retired)
{
	struct rw_provider *old = (struct rw_provider *)current_locked(set);
	int err;

	*retired = NULL;
	if (old == p)
		return 0;
	if (p && p->enable) {
		err = p->enable(p);
		if (err) {
			rw__log("enable %s: %s", p->name, rw_strerror(err));
			return err;
		}
	}
	publish_locked(set, p);
	rw__log("current: %s (was %s)", p ? p->name : "none",
		old ? old->name : "none");
	*retired = old;
	return 0;
}

/*
 * @old stopped being current (it is in neither copy of the latch): once a
 * grace period has passed, no reader is inside @old->read, and its disable
 * hook may run. Without a hook there is nothing to wait for. writer_lock
 * held; the caller is not in a read-side critical section (writer_begin()),
 * so the grace period cannot fail.
 */
static void retire_locked(struct rw_provider *old)
{
	if (!old || !old->disable)
		return;
	(void)rw_rcu_synchronize();
	old->disable(old);
}

/*
 * Make the best provider other than @skip current; @skip is being removed,
 * or NULL. Stops at the current provider if it is better than any that
 * would take over, so a failing enable hook never makes things worse. If
 * @skip was current and nobody else can be, none is current. *@retired as
 * for switch_locked().
 */
static void switch_best_locked(struct rw_provider_set *set,
			       struct rw_provider *skip,
			       struct rw_provider **retired)
{
	const struct rw_provider *cur = current_locked(set);

	*retired = NULL;
	for (struct rw_provider *q = set->rw__list; q; q = q->rw__next) {
		if (q == skip)
			continue;
		if (q == cur || switch_locked(set, q, retired) == 0)
			return;
	}
	if (cur == skip)
		(void)switch_locked(set, NULL, retired);
}

static struct rw_provider *find_locked(struct rw_provider_set *set,
				       const char *name)
{
	for (struct rw_provider *q = set->rw__list; q; q = q->rw__next)
		if (strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

int rw_provider_register(struct rw_provider_set *set, struct rw_provider *p)
{
	struct rw_provider *retired = NULL;
	const struct rw_provider *cur;
	struct rw_provider **link;
	int err;

	if (!set || !p || !p->name || !p->read)
		return -EINVAL;
	err = writer_begin();
	if (err)
		return err;
	if (p->rw__set || find_locked(set, p->name)) {
		err = -EEXIST;
		goto out;
	}
	cur = current_locked(set);
	if (!set->rw__pinned && (!cur || p->rating > cur->rating)) {
		err = switch_locked(set, p, &retired);
		if (err)
			goto out;
	}
	/* After every provider of equal or better rating. */
	for (link = &set->rw__list; *link; link = &(*link)->rw__next)
		if ((*link)->rating < p->rating)
			break;
	p->rw__next = *link;
	*link = p;
	p->rw__set = set;
	retire_locked(retired);
out:
	writer_end();
	return err;
}

int rw_provider_select(struct rw_provider_set *set, const char *name)
{
	struct rw_provider *p, *retired = NULL;
	int err;

	if (!set)
		return -EINVAL;
	err = writer_begin();
	if (err)
		return err;
	if (!name) {
		set->rw__pinned = false;
		switch_best_locked(set, NULL, &retired);
		goto out;
	}
	p = find_locked(set, name);
	if (!p) {
		err = -ENOENT;
		goto out;
	}
	err = switch_locked(set, p, &retired);
	if (!err)
		set->rw__pinned = true;
out:
	retire_locked(retired);
	writer_end();
	return err;
}

int rw_provider_unregister(struct rw_provider_set *set, struct rw_provider *p)
{
	struct rw_provider **link, *retired = NULL;
	int err;

	if (!set || !p)
		return -EINVAL;
	err = writer_begin();
	if (err)
		return err;
	if (p->rw__set != set) {
		err = -ENOENT;
		goto out;
	}
	/* 1. Out of the list, so that nothing can select it again. */
	for (link = &set->rw__list; *link != p; link = &(*link)->rw__next)
		;
	*link = p->rw__next;
	/* 2. Out of the latch, if it is current. */
	if (current_locked(set) == p) {
		set->rw__pinned = false;
		switch_best_locked(set, p, &retired);
	}
	/*
	 * 3. Wait for the readers that may still be inside p->read: those
	 *    that found it current now, and those that found it current before
	 *    an earlier switch away from it (a switch away from a provider
	 *    without a disable hook does not wait for them). Cannot fail:
	 *    writer_begin() checked.
	 */
	(void)rw_rcu_synchronize();
	/* 4. Its disable hook, if it was current until step 2. */
	if (retired && retired->disable)
		retired->disable(retired);
	p->rw__next = NULL;
	p->rw__set = NULL;
out:
	writer_end();
	return err;
}

/* --- Readers ---------------------------------------------------------- */

/* The exported function, for programs built with RW_PROVIDER_NO_INLINE
 * (or an older header): the header's inline code, which the others run. */
int(rw_provider_read)(const struct rw_provider_set *set, void *out,
		      unsigned *generation)
{
	return rw__provider_read_inline(set, out, generation);
}

int rw_provider_current_name(const struct rw_provider_set *set, char *buf,
			     size_t size, unsigned *generation)
{
	const struct rw_provider *p;
	unsigned seq, gen;
	int ret;

	if (!set || !buf || !size)
		return -EINVAL;
	rw__rs_lock();
	do {
		size_t n = 0;

		seq = read_begin(set, &p, &gen);
		ret = p ? 0 : -ENODEV;
		if (p) {
			while (p->name[n] && n < size - 1) {
				buf[n] = p->name[n];
				n++;
			}
			if (p->name[n])
				ret = -ERANGE;
		}
		buf[n] = '\0';
	} while (read_retry(set, seq));
	rw__rs_unlock();
	if (generation)
		*generation = gen;
	return ret;
}
