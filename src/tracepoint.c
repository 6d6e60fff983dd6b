/* SPDX-License-Identifier: MIT */
/*
 * Tracepoints: probe arrays, bound stubs and the order of a change.
 * Model: src/tracepoint.pml (checked with Spin, ctest -L model).
 *
 * A change of probes (tp_change()) runs under tp_lock in these steps:
 *
 *   1. Build the new array (a copy; arrays are immutable once published).
 *   2. Pick the new static call target: none (no probe), a bound stub of
 *      the one probe and its data, or the iterator (two or more probes, or
 *      one on the generic backend). A new stub is written now, before
 *      anything can jump to it.
 *   3. Publish the new array. Only the iterator reads it, and the iterator
 *      takes function and data from the same element, so publishing first
 *      is safe whatever the static call targets.
 *   4. Going to no probe: disable the key first, so the site stops calling.
 *   5. Retarget the static call (one int3 batch; rewire/text_poke.h).
 *   6. Going from no probe: enable the key last, once the call is right.
 *   7. Free the old array and the old stub after a grace period: a reader
 *      that loaded either is inside a read-side critical section.
 *
 * No reader can pair a function with another probe's data at any point of
 * these steps, so no step has to wait for a grace period (the kernel waits
 * on 1->0->1 and N->2->1 instead, because its site loads the data itself).
 * A failure at step 2, 4, 5 or 6 undoes the earlier steps.
 *
 * The RW_TRACEPOINT_NAIVE test build (tp->naive) keeps the kernel's
 * pre-2021 scheme instead: the site passes probes[0].data of the array it
 * loaded, a single probe is the static call target itself, and nothing
 * waits. The torture test shows that this mixes function and data.
 *
 * Read side. Sites, the iterator, bound stubs, the generic adapter and the
 * recorders all run inside the site's section of the floor's own read side
 * (rw__rs_lock(), rewire/readside.h: an increment of a thread-local count,
 * no fence), not liburcu's: a site then costs a handful of instructions
 * around the probe. The library's own readers of funcs below use it too.
 * Arrays, stubs and bindings are retired with rw_rcu_call() and waited for
 * with rw_rcu_synchronize(), whose grace periods cover both read sides
 * (rewire/rcu.h), so nothing here depends on which side a reader used.
 *
 * Lock order: tp_lock, then the text lock (taken by static call and key
 * updates and for bound stubs). The call_rcu thread takes the text lock
 * alone, to free stubs.
 */
#include "arch/arch.h"
#include "objects.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rewire/tracepoint.h>

/* Serializes every change of every tracepoint's probes. */
static struct rw__lock tp_lock = RW__LOCK_INIT;

/*
 * A bound stub and what frees it: allocated together, so that retiring a
 * stub never allocates. tp->stub points to one of these.
 */
struct rw__tp_stub {
	struct rw_rcu_head rcu;
	void *code;
};

static void funcs_free(struct rw_rcu_head *head)
{
	free(caa_container_of(head, struct rw__tp_funcs, rcu));
}

static void stub_free(struct rw_rcu_head *head)
{
	struct rw__tp_stub *st =
		caa_container_of(head, struct rw__tp_stub, rcu);

	if (rw__lock_acquire(&rw__text_lock) == 0) {
		rw__arch_bound_stub_free(st->code);
		rw__lock_release(&rw__text_lock);
	}
	free(st);
}

/* Free after a grace period: readers may still hold them. */
static void retire(struct rw__tp_funcs *f, struct rw__tp_stub *st)
{
	if (f)
		rw_rcu_call(&f->rcu, funcs_free);
	if (st)
		rw_rcu_call(&st->rcu, stub_free);
}

/* tp_lock held: a stub that calls the one probe of @f with its data. */
static int stub_new(struct rw_tracepoint *tp, const struct rw__tp_funcs *f,
		    struct rw__tp_stub **out)
{
	struct rw__tp_stub *st = malloc(sizeof(*st));
	int err;

	if (!st)
		return -ENOMEM;
	err = rw__lock_acquire(&rw__text_lock);
	if (!err) {
		/* Near the trampoline's slot, which jumps to the stub. */
		err = rw__arch_bound_stub_alloc(
			rw__arch_tramp_slot((uintptr_t)tp->call->tramp),
			f->probes[0].func, f->probes[0].data, &st->code);
		rw__lock_release(&rw__text_lock);
	}
	if (err) {
		free(st);
		return err;
	}
	*out = st;
	return 0;
}

static unsigned count_of(const struct rw__tp_funcs *f)
{
	return f ? f->count : 0;
}

static int key_set(struct rw_tracepoint *tp, bool on)
{
	return on ? rw_static_key_enable(tp->key)
		  : rw_static_key_disable(tp->key);
}

/*
 * Steps 2 to 7, to the probes of @nf (NULL: none). tp_lock held. On error
 * nothing changed and @nf is freed.
 */
static int tp_change(struct rw_tracepoint *tp, struct rw__tp_funcs *nf)
{
	struct rw__tp_funcs *of = tp->funcs;
	unsigned on = count_of(of), nn = count_of(nf);
	void *old_target = rw__static_call_query(tp->call), *target;
	struct rw__tp_stub *st = NULL;
	int err;

	/* Step 2. */
	if (nn == 0) {
		target = NULL;
	} else if (nn == 1 && tp->naive) {
		target = nf->probes[0].func;
	} else if (nn == 1 && rw__arch_can_patch()) {
		err = stub_new(tp, nf, &st);
		if (err) {
			free(nf);
			goto out;
		}
		target = st->code;
	} else {
		target = tp->iterator;
	}
	/* Step 3. */
	rw_rcu_assign_pointer(tp->funcs, nf);
	/* Step 4. */
	if (on && !nn) {
		err = key_set(tp, false);
		if (err)
			goto fail_unpublish;
	}
	/* Step 5. */
	err = rw__static_call_update(tp->call, target);
	if (err)
		goto fail_key;
	/* Step 6. */
	if (!on && nn) {
		err = key_set(tp, true);
		if (err)
			goto fail_call;
	}
	/* Step 7. */
	retire(of, tp->stub);
	tp->stub = st;
	return 0;

fail_call:
	if (rw__static_call_update(tp->call, old_target))
		rw__log("tracepoint %s: static call not restored", tp->name);
fail_key:
	if (on && !nn && key_set(tp, true))
		rw__log("tracepoint %s: key not restored", tp->name);
fail_unpublish:
	rw_rcu_assign_pointer(tp->funcs, of);
	/* Readers may have seen the new array or stub. */
	retire(nf, st);
out:
	rw__log("tracepoint %s: %s", tp->name, rw_strerror(err));
	return err;
}

static int find(const struct rw__tp_funcs *f, void *func, void *data)
{
	for (unsigned i = 0; i < count_of(f); i++)
		if (f->probes[i].func == func && f->probes[i].data == data)
			return (int)i;
	return -1;
}

static struct rw__tp_funcs *funcs_alloc(unsigned n)
{
	struct rw__tp_funcs *f =
		calloc(1, sizeof(*f) + n * sizeof(struct rw__tp_probe));

	if (f)
		f->count = n;
	return f;
}

/* Step 1 of an add: before the first probe of lower priority. */
static int add_locked(struct rw_tracepoint *tp, void *probe, void *data,
		      int prio)
{
	struct rw__tp_funcs *of = tp->funcs, *nf;
	unsigned n = count_of(of), at = 0;

	if (find(of, probe, data) >= 0)
		return -EEXIST;
	nf = funcs_alloc(n + 1);
	if (!nf)
		return -ENOMEM;
	while (at < n && of->probes[at].prio >= prio)
		at++;
	if (at)
		memcpy(nf->probes, of->probes, at * sizeof(nf->probes[0]));
	nf->probes[at] = (struct rw__tp_probe){ probe, data, prio };
	if (n > at)
		memcpy(nf->probes + at + 1, of->probes + at,
		       (n - at) * sizeof(nf->probes[0]));
	return tp_change(tp, nf);
}

/* Step 1 of a removal: the array without the probe. */
static int remove_locked(struct rw_tracepoint *tp, void *probe, void *data)
{
	struct rw__tp_funcs *of = tp->funcs, *nf;
	int at = find(of, probe, data);
	unsigned n = count_of(of);

	if (at < 0)
		return -ENOENT;
	if (n == 1)
		return tp_change(tp, NULL);
	nf = funcs_alloc(n - 1);
	if (!nf)
		return -ENOMEM;
	memcpy(nf->probes, of->probes, (size_t)at * sizeof(nf->probes[0]));
	memcpy(nf->probes + at, of->probes + at + 1,
	       (n - (unsigned)at - 1) * sizeof(nf->probes[0]));
	return tp_change(tp, nf);
}

static bool tp_valid(const struct rw_tracepoint *tp)
{
	return tp && tp->call && tp->key && tp->iterator;
}

int rw_tracepoint_probe_register_raw(struct rw_tracepoint *tp, void *probe,
				     void *data, int prio)
{
	int err;

	if (!tp_valid(tp) || !probe)
		return -EINVAL;
	err = rw__lock_acquire(&tp_lock);
	if (err)
		return err;
	err = add_locked(tp, probe, data, prio);
	rw__lock_release(&tp_lock);
	return err;
}

int rw_tracepoint_probe_unregister_raw(struct rw_tracepoint *tp, void *probe,
				       void *data)
{
	int err;

	if (!tp_valid(tp) || !probe)
		return -EINVAL;
	err = rw__lock_acquire(&tp_lock);
	if (err)
		return err;
	err = remove_locked(tp, probe, data);
	rw__lock_release(&tp_lock);
	return err;
}

int rw_tracepoint_synchronize_unregister(void)
{
	return rw_rcu_synchronize();
}

unsigned rw_tracepoint_probe_count(const struct rw_tracepoint *tp)
{
	const struct rw__tp_funcs *f;
	unsigned n;

	if (!tp)
		return 0;
	rw__rs_lock();
	f = rw_rcu_dereference(tp->funcs);
	n = count_of(f);
	rw__rs_unlock();
	return n;
}

/* --- Generic probes ------------------------------------------------------ */

struct binding {
	struct rw_rcu_head rcu;
	rw_tp_generic_fn fn;
	void *data;
};

void rw__tp_generic_call(void *binding, const struct rw_tracepoint *tp,
			 const union rw_tp_value *args)
{
	const struct binding *b = binding;

	b->fn(b->data, tp, args);
}

/* tp_lock held: the attached binding of (@fn, @data), or NULL. */
static struct binding *binding_find(struct rw_tracepoint *tp,
				    rw_tp_generic_fn fn, void *data)
{
	const struct rw__tp_funcs *f = tp->funcs;

	for (unsigned i = 0; i < count_of(f); i++) {
		struct binding *b = f->probes[i].data;

		if (f->probes[i].func == tp->generic && b->fn == fn &&
		    b->data == data)
			return b;
	}
	return NULL;
}

size_t rw__tp_probe_funcs(const struct rw_tracepoint *tp, void **out,
			  size_t max)
{
	const struct rw__tp_funcs *f;
	size_t n;

	rw__rs_lock();
	f = rw_rcu_dereference(tp->funcs);
	n = count_of(f);
	for (size_t i = 0; i < n && i < max; i++) {
		const struct rw__tp_probe *pr = &f->probes[i];

		out[i] =
			pr->func == tp->generic
				? (void *)((const struct binding *)pr->data)->fn
				: pr->func;
	}
	rw__rs_unlock();
	return n;
}

static void binding_free(struct rw_rcu_head *head)
{
	free(caa_container_of(head, struct binding, rcu));
}

int rw_tracepoint_probe_register_generic(struct rw_tracepoint *tp,
					 rw_tp_generic_fn fn, void *data,
					 int prio)
{
	struct binding *b;
	int err;

	if (!tp_valid(tp) || !fn || !tp->generic)
		return -EINVAL;
	err = rw__lock_acquire(&tp_lock);
	if (err)
		return err;
	if (binding_find(tp, fn, data)) {
		err = -EEXIST;
		goto out;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		err = -ENOMEM;
		goto out;
	}
	b->fn = fn;
	b->data = data;
	err = add_locked(tp, tp->generic, b, prio);
	if (err)
		free(b);
out:
	rw__lock_release(&tp_lock);
	return err;
}

int rw_tracepoint_probe_unregister_generic(struct rw_tracepoint *tp,
					   rw_tp_generic_fn fn, void *data)
{
	struct binding *b;
	int err;

	if (!tp_valid(tp) || !fn || !tp->generic)
		return -EINVAL;
	err = rw__lock_acquire(&tp_lock);
	if (err)
		return err;
	b = binding_find(tp, fn, data);
	if (!b) {
		err = -ENOENT;
		goto out;
	}
	err = remove_locked(tp, tp->generic, b);
	if (!err)
		rw_rcu_call(&b->rcu, binding_free);
out:
	rw__lock_release(&tp_lock);
	return err;
}

/* --- Printing and lookup ------------------------------------------------- */

struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	size_t room = o->pos < o->len ? o->len - o->pos : 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->pos : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n;
}

static void put_string(struct out *o, const char *s)
{
	if (!s) {
		put(o, "(null)");
		return;
	}
	put(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c == '\n')
			put(o, "\\n");
		else if (c < 0x20 || c == 0x7f)
			put(o, "\\x%02x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

int rw_tracepoint_format(const struct rw_tracepoint *tp,
			 const union rw_tp_value *args, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };

	if (!tp || (tp->nargs && !args) || (!buf && len))
		return -EINVAL;
	if (len)
		buf[0] = '\0';
	put(&o, "%s:", tp->name);
	for (unsigned i = 0; i < tp->nargs; i++) {
		const struct rw_tp_field *f = &tp->fields[i];

		put(&o, " %s=", f->name);
		switch (f->kind) {
		case RW_TP_SIGNED:
			put(&o, "%lld", args[i].s);
			break;
		case RW_TP_UNSIGNED:
			put(&o, "%llu", args[i].u);
			break;
		case RW_TP_BOOL:
			put(&o, "%s", args[i].u ? "true" : "false");
			break;
		case RW_TP_FLOAT:
			put(&o, "%g", args[i].f);
			break;
		case RW_TP_STRING:
			put_string(&o, args[i].str);
			break;
		case RW_TP_POINTER:
		default:
			put(&o, "%p", args[i].ptr);
			break;
		}
	}
	return o.pos > (size_t)INT_MAX ? INT_MAX : (int)o.pos;
}

int rw_tracepoint_for_each(int (*fn)(struct rw_tracepoint *tp, void *arg),
			   void *arg)
{
	struct rw__objects_snapshot s;
	int r;

	if (!fn)
		return -EINVAL;
	r = rw__objects_snapshot(&s);
	if (r)
		return r;
	for (size_t i = 0; i < s.ntps && !r; i++)
		r = fn(s.tps[i], arg);
	rw__objects_snapshot_free(&s);
	return r;
}

struct rw_tracepoint *rw_tracepoint_find(const char *name)
{
	struct rw__objects_snapshot s;
	struct rw_tracepoint *found = NULL;

	if (!name || rw__objects_snapshot(&s))
		return NULL;
	for (size_t i = 0; i < s.ntps && !found; i++)
		if (strcmp(s.tps[i]->name, name) == 0)
			found = s.tps[i];
	rw__objects_snapshot_free(&s);
	return found;
}

/* --- fork ---------------------------------------------------------------- */

static bool fork_locked;

static void tp_atfork_prepare(void)
{
	fork_locked = rw__lock_acquire(&tp_lock) == 0;
}

static void tp_atfork_parent(void)
{
	if (fork_locked)
		rw__lock_release(&tp_lock);
}

static void tp_atfork_child(void)
{
	if (fork_locked)
		rw__lock_reset(&tp_lock);
}

static const struct rw__fork_handlers tp_fork = {
	tp_atfork_prepare,
	tp_atfork_parent,
	tp_atfork_child,
};

__attribute__((constructor)) static void tp_fork_init(void)
{
	rw__fork_handlers_register(RW__FORK_TRACEPOINT, &tp_fork);
}
