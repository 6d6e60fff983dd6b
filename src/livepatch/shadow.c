/* SPDX-License-Identifier: MIT */
/*
 * Shadow variables: data attached to (obj, id), the kernel's klp_shadow
 * (kernel/livepatch/shadow.c) on liburcu's lock-free hash table.
 *
 * Readers (rw_shadow_get) look the table up inside an RCU read-side
 * critical section and take no lock. Writers (alloc, free) are serialized
 * by shadow_lock and also run the table operations inside a read-side
 * critical section, as cds_lfht asks.
 *
 * Allocation (get_or_alloc_common) runs in these steps:
 *
 *   1. Look (obj, id) up without the lock; if it exists, return it (or
 *      fail, for rw_shadow_alloc).
 *   2. Allocate the zeroed variable outside the lock (calloc may be slow).
 *   3. Take shadow_lock and look again: another thread may have published
 *      the variable since step 1. If so, free ours at once (no reader ever
 *      saw it) and go to the end of step 1.
 *   4. Still under the lock, run the constructor on the private data. A
 *      failure frees it; nothing was published.
 *   5. Publish: cds_lfht_add() orders every write of steps 2 and 4 before
 *      the node becomes reachable (a full barrier before its commit), and
 *      a lookup acts as rcu_dereference(), so a reader sees the data the
 *      constructor wrote. Release the lock.
 *
 * Since every insertion happens under shadow_lock after a lookup under the
 * same lock, a key is never in the table twice, and the constructor of the
 * losers of a race never runs: exactly one constructor per variable.
 *
 * Freeing (free_locked, then retire):
 *
 *   1. Under shadow_lock, unpublish the node (cds_lfht_del). New lookups no
 *      longer find it; readers that found it earlier may still use it.
 *   2. After the lock is released, call the destructor on the data, in the
 *      calling thread, once.
 *   3. Free the memory with rw_rcu_call(): after a grace period, when no
 *      reader that could have found the node is left.
 *
 * The destructor runs at step 2, before the grace period, as in the kernel
 * (klp_shadow_free_struct() calls it before kfree_rcu()):
 *   - the caller typically frees a shadow variable while destroying @obj,
 *     and frees @obj right after: a destructor deferred to the call_rcu
 *     thread would get a dangling @obj;
 *   - it runs in the caller's context, where the caller's locks are held,
 *     not on liburcu's call_rcu thread where a slow destructor would hold
 *     up every other callback of the process;
 *   - patches ported from kernel livepatches keep their meaning.
 * The price, the same as in the kernel: a reader that found the variable
 * before it was unpublished may still read the data while or after the
 * destructor runs. The data's memory stays valid until the grace period,
 * but what the destructor releases does not: a destructor must only release
 * what no reader can still reach, or the caller must make sure that no
 * reader uses the variable any more (the usual case: the object is dying).
 * The destructor runs outside shadow_lock (unlike the kernel's), so it may
 * call any rw_shadow_* function.
 */
#include "lp.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rewire/rcu.h>

/* After rewire/rcu.h: the table binds to the bp flavour explicitly. */
#include <urcu/rculfhash.h>

struct shadow {
	struct cds_lfht_node node; /* in shadow_table */
	struct rw_rcu_head rcu;	   /* frees it after a grace period */
	struct shadow *dead_next;  /* list of unpublished ones, free_all */
	void *obj;		   /* key: never changes once published */
	unsigned long id;	   /* key: never changes once published */
	_Alignas(max_align_t) unsigned char data[];
};

struct shadow_key {
	const void *obj;
	unsigned long id;
};

/*
 * Buckets of the table: a fixed number, as the kernel's 4096-entry
 * klp_shadow_hash. liburcu-cds resizes a table automatically only from a
 * worker thread of its own, which would be a hidden thread of the patched
 * program (transitions check every thread; fork does not copy it) whose
 * synchronization ThreadSanitizer cannot see. 64 KiB of buckets keep
 * chains short up to tens of thousands of variables.
 */
#define SHADOW_BUCKETS 4096

/*
 * The table, created once (table_once) and never destroyed. Set with
 * release semantics so that rw_shadow_get() can test it without
 * pthread_once(): NULL means no variable was ever allocated (or the table
 * could not be created).
 */
static struct cds_lfht *shadow_table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/*
 * Serializes every insertion and removal. The constructor runs under it;
 * it nests inside nothing of rewire, and nothing of rewire nests inside it
 * except what a constructor calls. A constructor that calls back into an
 * allocating or freeing shadow function gets -EDEADLK from the lock, which
 * these functions turn into a failure (NULL, or nothing freed).
 */
static struct rw__lock shadow_lock = RW__LOCK_INIT;

/*
 * ThreadSanitizer does not see the ordering of liburcu-cds's publication
 * (it is not instrumented): a node is released before it is added and
 * acquired by every match that reads its key. The free after a grace
 * period is annotated by rw_rcu_call() and rw_rcu_read_unlock().
 */
#ifdef RW_TSAN
#define TSAN_PUBLISH(s) __tsan_release(s)
#define TSAN_SEE(s) __tsan_acquire(s)
#else
#define TSAN_PUBLISH(s) ((void)(s))
#define TSAN_SEE(s) ((void)(s))
#endif

/* A 64-bit mix of the key (splitmix64's finalizer). */
static unsigned long shadow_hash(const void *obj, unsigned long id)
{
	uint64_t h = (uint64_t)(uintptr_t)obj ^
		     ((uint64_t)id * 0x9e3779b97f4a7c15ull);

	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (unsigned long)h;
}

static int shadow_match(struct cds_lfht_node *node, const void *key)
{
	struct shadow *s = caa_container_of(node, struct shadow, node);
	const struct shadow_key *k = key;

	TSAN_SEE(s);
	return s->obj == k->obj && s->id == k->id;
}

/*
 * Fork: a child must not inherit shadow_lock held by a thread that does
 * not exist there. The handlers are installed with the table: before it
 * exists nothing can hold the lock.
 */
static bool fork_locked;

static void shadow_atfork_prepare(void)
{
	fork_locked = rw__lock_acquire(&shadow_lock) == 0;
}

static void shadow_atfork_parent(void)
{
	if (fork_locked)
		rw__lock_release(&shadow_lock);
}

static void shadow_atfork_child(void)
{
	if (fork_locked)
		rw__lock_reset(&shadow_lock);
}

static void table_create(void)
{
	struct cds_lfht *t;

	t = cds_lfht_new_flavor(SHADOW_BUCKETS, SHADOW_BUCKETS, SHADOW_BUCKETS,
				0, &urcu_bp_flavor, NULL);
	if (!t) {
		rw__log("cannot create the shadow variable table");
		return;
	}
	if (pthread_atfork(shadow_atfork_prepare, shadow_atfork_parent,
			   shadow_atfork_child))
		rw__log("pthread_atfork failed: fork during a shadow update "
			"may leave the child's lock held");
	__atomic_store_n(&shadow_table, t, __ATOMIC_RELEASE);
}

/* The table, created on first use; NULL if it cannot be created. */
static struct cds_lfht *table_get(void)
{
	pthread_once(&table_once, table_create);
	return __atomic_load_n(&shadow_table, __ATOMIC_ACQUIRE);
}

/* Inside a read-side critical section: the variable (@obj, @id) or NULL. */
static struct shadow *lookup(struct cds_lfht *t, void *obj, unsigned long id)
{
	struct shadow_key key = { .obj = obj, .id = id };
	struct cds_lfht_iter iter;
	struct cds_lfht_node *node;

	cds_lfht_lookup(t, shadow_hash(obj, id), shadow_match, &key, &iter);
	node = cds_lfht_iter_get_node(&iter);
	return node ? caa_container_of(node, struct shadow, node) : NULL;
}

/*
 * rw_shadow_get - the data of (@obj, @id), or NULL.
 *
 * Lock-free: one hash lookup inside an RCU read-side critical section,
 * from any thread (the bp flavour registers it on first use). Allocates
 * only on a thread's first read-side critical section; async-signal-safe
 * after that. The returned data stays allocated until the variable is
 * freed and a grace period has passed: a caller that may race with
 * rw_shadow_free() must call it, and use the data, between
 * rw_rcu_read_lock() and rw_rcu_read_unlock().
 */
RW_EXPORT void *rw_shadow_get(void *obj, unsigned long id)
{
	struct cds_lfht *t = __atomic_load_n(&shadow_table, __ATOMIC_ACQUIRE);
	struct shadow *s;
	void *data = NULL;

	if (!t)
		return NULL;
	rw_rcu_read_lock();
	s = lookup(t, obj, id);
	if (s)
		data = s->data;
	rw_rcu_read_unlock();
	return data;
}

/* Steps 1 to 5 of the allocation (top of the file). */
static void *get_or_alloc_common(void *obj, unsigned long id, size_t size,
				 rw_shadow_ctor_t ctor, void *ctor_data,
				 bool warn_on_exist)
{
	struct cds_lfht *t = table_get();
	struct shadow *s, *found;
	void *data;
	int err;

	if (!t)
		return NULL;

	/* Step 1. */
	data = rw_shadow_get(obj, id);
	if (data)
		goto exists;

	/* Step 2. */
	if (size > SIZE_MAX - sizeof(*s))
		return NULL;
	s = calloc(1, sizeof(*s) + size);
	if (!s)
		return NULL;
	cds_lfht_node_init(&s->node);
	s->obj = obj;
	s->id = id;

	/* Step 3. */
	err = rw__lock_acquire(&shadow_lock);
	if (err) {
		rw__log("shadow <%p, %lx>: called from a constructor or a "
			"signal handler of an update: %d",
			obj, id, err);
		free(s);
		return NULL;
	}
	rw_rcu_read_lock();
	found = lookup(t, obj, id);
	data = found ? found->data : NULL;
	rw_rcu_read_unlock();
	if (data) {
		/* Another thread won the race; ours was never visible, so
		 * it needs no grace period. */
		rw__lock_release(&shadow_lock);
		free(s);
		goto exists;
	}

	/* Step 4. */
	if (ctor) {
		err = ctor(obj, s->data, ctor_data);
		if (err) {
			rw__lock_release(&shadow_lock);
			rw__log("shadow <%p, %lx>: constructor failed: %d", obj,
				id, err);
			free(s);
			return NULL;
		}
	}

	/* Step 5. */
	TSAN_PUBLISH(s);
	rw_rcu_read_lock();
	cds_lfht_add(t, shadow_hash(obj, id), &s->node);
	rw_rcu_read_unlock();
	rw__lock_release(&shadow_lock);
	return s->data;

exists:
	if (warn_on_exist) {
		rw__log("duplicate shadow variable <%p, %lx>", obj, id);
		return NULL;
	}
	return data;
}

/*
 * rw_shadow_alloc - a new variable (@obj, @id) of @size zeroed bytes,
 * constructed by @ctor (may be NULL) with @ctor_data before it becomes
 * visible.
 *
 * Returns its data (aligned for any type), or NULL when (@obj, @id) exists
 * (logged), when @ctor returns non-zero (nothing is published), when
 * memory runs out, or when called from a constructor. @ctor runs under
 * the writers' lock, in the calling thread: it may call rw_shadow_get(),
 * but allocating or freeing shadow functions fail there. Not
 * async-signal-safe. Publication is a release: a thread that finds the
 * variable sees what @ctor wrote.
 */
RW_EXPORT void *rw_shadow_alloc(void *obj, unsigned long id, size_t size,
				rw_shadow_ctor_t ctor, void *ctor_data)
{
	return get_or_alloc_common(obj, id, size, ctor, ctor_data, true);
}

/*
 * rw_shadow_get_or_alloc - the data of (@obj, @id) if it exists, otherwise
 * as rw_shadow_alloc(). Concurrent callers with the same key all get the
 * same variable, and @ctor runs once for it. NULL on the failures of
 * rw_shadow_alloc() other than existence.
 */
RW_EXPORT void *rw_shadow_get_or_alloc(void *obj, unsigned long id, size_t size,
				       rw_shadow_ctor_t ctor, void *ctor_data)
{
	return get_or_alloc_common(obj, id, size, ctor, ctor_data, false);
}

static void shadow_free_rcu(struct rw_rcu_head *head)
{
	free(caa_container_of(head, struct shadow, rcu));
}

/* Steps 2 and 3 of freeing, for a list of unpublished variables. */
static void retire(struct shadow *dead, rw_shadow_dtor_t dtor)
{
	while (dead) {
		struct shadow *next = dead->dead_next;

		if (dtor)
			dtor(dead->obj, dead->data);
		rw_rcu_call(&dead->rcu, shadow_free_rcu);
		dead = next;
	}
}

/* Step 1 of freeing: shadow_lock held, inside a read-side section. */
static void unpublish(struct cds_lfht *t, struct shadow *s,
		      struct shadow **dead)
{
	if (cds_lfht_del(t, &s->node) == 0) {
		s->dead_next = *dead;
		*dead = s;
	}
}

/*
 * rw_shadow_free - unpublish (@obj, @id), if it exists; call @dtor (may be
 * NULL) on its data once, in the calling thread, after the variable is
 * unpublished and before the grace period (see the top of the file for
 * why); free its memory after a grace period. Takes the writers' lock for
 * the removal only; @dtor runs outside it. Does nothing when called from a
 * constructor. Not async-signal-safe.
 */
RW_EXPORT void rw_shadow_free(void *obj, unsigned long id,
			      rw_shadow_dtor_t dtor)
{
	struct cds_lfht *t = __atomic_load_n(&shadow_table, __ATOMIC_ACQUIRE);
	struct shadow *s, *dead = NULL;
	int err;

	if (!t)
		return;
	err = rw__lock_acquire(&shadow_lock);
	if (err) {
		rw__log("shadow <%p, %lx> not freed: called from a constructor "
			"or a signal handler of an update: %d",
			obj, id, err);
		return;
	}
	rw_rcu_read_lock();
	s = lookup(t, obj, id);
	if (s)
		unpublish(t, s, &dead);
	rw_rcu_read_unlock();
	rw__lock_release(&shadow_lock);
	retire(dead, dtor);
}

/*
 * rw_shadow_free_all - rw_shadow_free() of every variable with @id, of any
 * object. Walks the whole table under the writers' lock; the destructors
 * run after it is released. Variables with @id allocated while it runs may
 * or may not be freed.
 */
RW_EXPORT void rw_shadow_free_all(unsigned long id, rw_shadow_dtor_t dtor)
{
	struct cds_lfht *t = __atomic_load_n(&shadow_table, __ATOMIC_ACQUIRE);
	struct shadow *s, *dead = NULL;
	struct cds_lfht_iter iter;
	int err;

	if (!t)
		return;
	err = rw__lock_acquire(&shadow_lock);
	if (err) {
		rw__log("shadows of id %lx not freed: called from a "
			"constructor or a signal handler of an update: %d",
			id, err);
		return;
	}
	rw_rcu_read_lock();
	cds_lfht_for_each_entry(t, &iter, s, node) {
		TSAN_SEE(s);
		if (s->id == id)
			unpublish(t, s, &dead);
	}
	rw_rcu_read_unlock();
	rw__lock_release(&shadow_lock);
	retire(dead, dtor);
}
