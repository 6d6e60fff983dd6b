/* SPDX-License-Identifier: MIT */
/*
 * Static keys: reference counts and the batch that rewrites every site of
 * a key. The counting follows the kernel's kernel/jump_label.c, including
 * the fixes for its three historical races:
 *
 *  - -1 means "first enable in progress": a concurrent inc sees a value
 *    that is not > 0, takes the slow path and waits on the text lock, so it
 *    never returns before the sites are enabled;
 *  - a dec that meets -1 never makes it -2: the dec fast path only
 *    handles counts >= 2, everything else goes under the lock, where -1
 *    cannot be seen;
 *  - the last dec is an atomic decrement under the lock: there the count
 *    only moves between values >= 1, so the decrement that reaches 0 is
 *    the last reference even while inc and dec fast paths run (an earlier
 *    compare-and-swap 1 -> 0 with a fast-path fallback lost references).
 */
#include "static_key.h"

#include <limits.h>
#include <stdlib.h>

#undef rw_static_key_enable
#undef rw_static_key_disable
#undef rw_static_key_inc
#undef rw_static_key_dec
#undef rw_static_key_enabled
#undef rw_static_key_count
#undef rw_static_key_sites

/* The jump tables of every loaded object, newest first. Text lock. */
static struct rw__jump_table *tables;

static int entry_cmp(const void *a, const void *b)
{
	const struct rw__jump_entry *x = a, *y = b;
	uintptr_t kx = x->key & ~(uintptr_t)1, ky = y->key & ~(uintptr_t)1;

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return x->code < y->code ? -1 : x->code > y->code;
}

void rw__jump_table_add(struct rw__jump_table *t)
{
	if (t->stop > t->start)
		qsort(t->start, (size_t)(t->stop - t->start), sizeof(*t->start),
		      entry_cmp);
	t->next = tables;
	tables = t;
}

void rw__jump_table_del(struct rw__jump_table *t)
{
	for (struct rw__jump_table **pp = &tables; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			return;
		}
	}
}

int rw__entry_poke(const struct rw__jump_entry *e, bool enabled,
		   struct rw__poke *p)
{
	bool jump = rw__entry_jumps(e, enabled);
	struct rw__insn want, have;

	rw__arch_jump_insn(jump, e->code, e->target, &want);
	rw__arch_jump_insn(!jump, e->code, e->target, &have);
	return rw__poke_init(p, e->code, &have, &want);
}

/* Text lock held. Calls @fn for every site of @key in every table; stops
 * at and returns the first non-zero return value. */
static int key_for_each_site(struct rw_static_key *key,
			     int (*fn)(const struct rw__jump_entry *, void *),
			     void *arg)
{
	for (struct rw__jump_table *t = tables; t; t = t->next) {
		const struct rw__jump_entry *e = t->start;
		size_t lo = 0, hi = (size_t)(t->stop - e);

		/* First entry of the key (the table is sorted by key). */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (rw__entry_key(&e[mid]) < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; e + lo < t->stop && rw__entry_key(&e[lo]) == key; lo++) {
			int r = fn(&e[lo], arg);

			if (r)
				return r;
		}
	}
	return 0;
}

struct collect {
	struct rw__poke *pokes;
	size_t n, cap;
	bool enable;
};

static int collect_site(const struct rw__jump_entry *e, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct rw__poke *p = realloc(c->pokes, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		c->pokes = p;
		c->cap = cap;
	}
	return rw__entry_poke(e, c->enable, &c->pokes[c->n++]);
}

/* Text lock held: make every site of @key match @enable, in one batch. */
static int key_update(struct rw_static_key *key, bool enable)
{
	struct collect c = { .enable = enable };
	int err;

	if (!rw__arch_can_patch())
		return 0;
	err = key_for_each_site(key, collect_site, &c);
	if (!err)
		err = rw__text_poke_locked(c.pokes, c.n);
	free(c.pokes);
	if (err)
		rw__log("key %s: %s", key->name, rw_strerror(err));
	return err;
}

static int load(const struct rw_static_key *key)
{
	return __atomic_load_n(&key->enabled, __ATOMIC_ACQUIRE);
}

static bool cas(struct rw_static_key *key, int *old, int new)
{
	return __atomic_compare_exchange_n(&key->enabled, old, new, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* n -> n+1 for n >= 1; false if the key is disabled or being enabled. */
static int fast_inc(struct rw_static_key *key)
{
	int v = load(key);

	do {
		if (v <= 0)
			return 1;
		if (v == INT_MAX)
			return -EOVERFLOW;
	} while (!cas(key, &v, v + 1));
	return 0;
}

/* n -> n-1 for n >= 2; 1 if the count is 1 or less. */
static int fast_dec(struct rw_static_key *key)
{
	int v = load(key);

	do {
		if (v <= 1)
			return 1;
	} while (!cas(key, &v, v - 1));
	return 0;
}

/* Text lock held, count 0: run the 0 -> -1 -> 1 transition. */
static int first_enable(struct rw_static_key *key)
{
	int err;

	__atomic_store_n(&key->enabled, -1, __ATOMIC_RELEASE);
	err = key_update(key, true);
	__atomic_store_n(&key->enabled, err ? 0 : 1, __ATOMIC_RELEASE);
	return err;
}

/*
 * Text lock held, count >= 1: drop one reference; the last one disables
 * the sites. Under the lock the count can only move between values >= 1
 * (the fast paths never take it to or from 0), so the decrement that
 * reaches 0 is the last reference, whatever the fast paths do meanwhile.
 * While it is 0, an inc takes the slow path and waits for the lock.
 */
static int slow_dec(struct rw_static_key *key)
{
	int err;

	if (__atomic_fetch_sub(&key->enabled, 1, __ATOMIC_ACQ_REL) != 1)
		return 0;
	err = key_update(key, false);
	if (err)
		__atomic_store_n(&key->enabled, 1, __ATOMIC_RELEASE);
	return err;
}

RW_EXPORT int rw_static_key_inc(struct rw_static_key *key)
{
	int err;

	if (!key)
		return -EINVAL;
	err = fast_inc(key);
	if (err <= 0)
		return err;
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	if (load(key) == 0)
		err = first_enable(key);
	else
		err = fast_inc(key);
	rw__lock_release(&rw__text_lock);
	return err;
}

RW_EXPORT int rw_static_key_dec(struct rw_static_key *key)
{
	int err;

	if (!key)
		return -EINVAL;
	if (fast_dec(key) == 0)
		return 0;
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	err = load(key) <= 0 ? -EINVAL : slow_dec(key);
	rw__lock_release(&rw__text_lock);
	return err;
}

RW_EXPORT int rw_static_key_enable(struct rw_static_key *key)
{
	int err;

	if (!key)
		return -EINVAL;
	if (load(key) > 0)
		return 0;
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	if (load(key) == 0)
		err = first_enable(key);
	rw__lock_release(&rw__text_lock);
	return err;
}

RW_EXPORT int rw_static_key_disable(struct rw_static_key *key)
{
	int err, v = 1;

	if (!key)
		return -EINVAL;
	if (load(key) == 0)
		return 0;
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	if (cas(key, &v, 0)) {
		err = key_update(key, false);
		if (err)
			__atomic_store_n(&key->enabled, 1, __ATOMIC_RELEASE);
	} else if (v > 1) {
		err = -EBUSY; /* reference-counted: use rw_static_key_dec */
	}
	rw__lock_release(&rw__text_lock);
	return err;
}

RW_EXPORT bool rw_static_key_enabled(const struct rw_static_key *key)
{
	return key && load(key) > 0;
}

RW_EXPORT int rw_static_key_count(const struct rw_static_key *key)
{
	return key ? load(key) : 0;
}

static int count_site(const struct rw__jump_entry *e, void *arg)
{
	(void)e;
	(*(long *)arg)++;
	return 0;
}

RW_EXPORT long rw_static_key_sites(const struct rw_static_key *key)
{
	long n = 0;
	int err;

	if (!key)
		return -EINVAL;
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	key_for_each_site((struct rw_static_key *)key, count_site, &n);
	rw__lock_release(&rw__text_lock);
	return n;
}
