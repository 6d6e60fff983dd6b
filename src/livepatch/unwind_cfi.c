/* SPDX-License-Identifier: MIT */
/*
 * One step of a stack walk by a frame's DWARF call frame information, for
 * the frames that libunwind 1.6 refuses: code built with pac-ret
 * (-mbranch-protection=pac-ret or =standard) on aarch64. See
 * rw__lp_cfi_step() in unwind_remote.h for the interface and unwind.c for
 * the walks that call it.
 *
 * Why our own (doc/DESIGN-NOTES.md, "pac-ret frames"): libunwind 1.6's
 * CFI parser rejects DW_CFA_AARCH64_negate_ra_state (0x2d, the op that
 * says "the return address is now signed") with -UNW_EINVAL, in its local
 * and its generic library alike (run_cfi_program(), src/dwarf/Gparser.c;
 * the fix, libunwind commit f67ef286, is in 1.7). No accessor reaches the
 * parser: the local library looks CFI up without its accessors, and the
 * generic one reads the CFI bytes through access_mem, which sees words,
 * not opcodes. libdw 0.188 parses the op but leaves the address signed
 * ("XXX not handled yet", libdw/cfi.c), and allocates; libgcc's unwinder
 * handles it but walks only the calling thread's own stack, from its own
 * frame. So this file evaluates the CFI of one frame, the way libunwind
 * 1.7 and libgcc do, and the walk goes on with libunwind from the caller.
 *
 * What it evaluates: the FDE found through the object's .eh_frame_hdr
 * (_dl_find_object(), glibc 2.35: no lock, no allocation), its CIE, and
 * the row for the address: the CFA as register + offset, the rules
 * same value, undefined, offset(N), val_offset(N), register(R), and
 * negate_ra_state (the return address is stripped with XPACLRI, which
 * removes the code of either key). Anything else that matters (a CFA by
 * expression, a return address by expression, a register this frame's
 * CFA or return address needs that is unknown, a signal frame's CIE, an
 * encoding other than those GNU ld and lld write) is an error: the walk
 * fails, it never guesses.
 *
 * Async-signal-safe: no allocation, no lock; every byte of CFI and of the
 * stack is read through rw__lp_peek() (a system call that fails instead
 * of faulting), a 256-byte window at a time. Stack use about 2 KiB.
 */
#include "../entry.h"

#include "unwind_remote.h"

#ifdef RW_BACKEND_AARCH64

#include <dlfcn.h>
#include <string.h>

/* DWARF pointer encodings (DW_EH_PE_*). */
#define PE_ABSPTR 0x00
#define PE_ULEB128 0x01
#define PE_UDATA2 0x02
#define PE_UDATA4 0x03
#define PE_UDATA8 0x04
#define PE_SLEB128 0x09
#define PE_SDATA2 0x0a
#define PE_SDATA4 0x0b
#define PE_SDATA8 0x0c
#define PE_PCREL 0x10
#define PE_DATAREL 0x30
#define PE_INDIRECT 0x80
#define PE_OMIT 0xff

/* DW_CFA_* that take their operand in the low 6 bits. */
#define CFA_ADVANCE_LOC 0x40
#define CFA_OFFSET 0x80
#define CFA_RESTORE 0xc0

enum {
	CFA_NOP = 0x00,
	CFA_SET_LOC = 0x01,
	CFA_ADVANCE_LOC1 = 0x02,
	CFA_ADVANCE_LOC2 = 0x03,
	CFA_ADVANCE_LOC4 = 0x04,
	CFA_OFFSET_EXTENDED = 0x05,
	CFA_RESTORE_EXTENDED = 0x06,
	CFA_UNDEFINED = 0x07,
	CFA_SAME_VALUE = 0x08,
	CFA_REGISTER = 0x09,
	CFA_REMEMBER_STATE = 0x0a,
	CFA_RESTORE_STATE = 0x0b,
	CFA_DEF_CFA = 0x0c,
	CFA_DEF_CFA_REGISTER = 0x0d,
	CFA_DEF_CFA_OFFSET = 0x0e,
	CFA_DEF_CFA_EXPRESSION = 0x0f,
	CFA_EXPRESSION = 0x10,
	CFA_OFFSET_EXTENDED_SF = 0x11,
	CFA_DEF_CFA_SF = 0x12,
	CFA_DEF_CFA_OFFSET_SF = 0x13,
	CFA_VAL_OFFSET = 0x14,
	CFA_VAL_OFFSET_SF = 0x15,
	CFA_VAL_EXPRESSION = 0x16,
	CFA_AARCH64_NEGATE_RA_STATE = 0x2d, /* DW_CFA_GNU_window_save */
	CFA_GNU_ARGS_SIZE = 0x2e,
	CFA_GNU_NEGATIVE_OFFSET_EXTENDED = 0x2f,
};

#define NREGS 32  /* DWARF 0-30: x0-x30, 31: sp */
#define REG_RA 30 /* the return address column GCC and LLVM use */
#define REG_SP 31
#define REG_RA_SIGN_STATE 34 /* AADWARF64's pseudo-register */
#define STATE_DEPTH 4	     /* DW_CFA_remember_state nesting */

/* ---- Reading ------------------------------------------------------------ */

/* A window of memory read with one rw__lp_peek(). */
struct window {
	uintptr_t base;
	size_t len;
	uint8_t buf[256];
};

/* A position in CFI; err is set by the first failed read. */
struct cur {
	struct window *w;
	uintptr_t p;
	int err;
};

static uint8_t rd_u8(struct cur *c)
{
	struct window *w = c->w;
	uintptr_t a = c->p++;

	if (c->err)
		return 0;
	if (a - w->base >= w->len) {
		/* Never past the 4 KiB page of @a: the next one may be
		 * unmapped, and a page is at least that large. */
		size_t n = 4096 - (a & 4095);

		if (n > sizeof(w->buf))
			n = sizeof(w->buf);
		w->len = 0;
		if (rw__lp_peek(a, w->buf, n)) {
			c->err = -EFAULT;
			return 0;
		}
		w->base = a;
		w->len = n;
	}
	return w->buf[a - w->base];
}

static uint64_t rd_le(struct cur *c, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)rd_u8(c) << (8 * i);
	return v;
}

/* A LEB128's bits; @shift and @last (its last byte) for the sign. */
static uint64_t rd_leb(struct cur *c, unsigned *shift, uint8_t *last)
{
	uint64_t v = 0;
	uint8_t b;

	*shift = 0;
	do {
		b = rd_u8(c);
		if (*shift < 64)
			v |= (uint64_t)(b & 0x7f) << *shift;
		*shift += 7;
	} while ((b & 0x80) && !c->err);
	*last = b;
	return v;
}

static uint64_t rd_uleb(struct cur *c)
{
	unsigned shift;
	uint8_t last;

	return rd_leb(c, &shift, &last);
}

static int64_t rd_sleb(struct cur *c)
{
	unsigned shift;
	uint8_t last;
	uint64_t v = rd_leb(c, &shift, &last);

	if (shift < 64 && (last & 0x40))
		v |= ~(uint64_t)0 << shift;
	return (int64_t)v;
}

/*
 * An encoded pointer (DW_EH_PE_*); @datarel is the base of datarel
 * (the .eh_frame_hdr), 0 where that encoding is not allowed. An indirect
 * pointer is returned as the address of the pointer (only the
 * personality routine's is one, and it is skipped).
 */
static uintptr_t rd_encoded(struct cur *c, uint8_t enc, uintptr_t datarel)
{
	uintptr_t at = c->p;
	uint64_t v;

	switch (enc & 0x0f) {
	case PE_ABSPTR:
	case PE_UDATA8:
	case PE_SDATA8:
		v = rd_le(c, 8);
		break;
	case PE_ULEB128:
		v = rd_uleb(c);
		break;
	case PE_SLEB128:
		v = (uint64_t)rd_sleb(c);
		break;
	case PE_UDATA2:
		v = rd_le(c, 2);
		break;
	case PE_SDATA2:
		v = (uint64_t)(int64_t)(int16_t)rd_le(c, 2);
		break;
	case PE_UDATA4:
		v = rd_le(c, 4);
		break;
	case PE_SDATA4:
		v = (uint64_t)(int64_t)(int32_t)rd_le(c, 4);
		break;
	default:
		c->err = c->err ? c->err : -EOPNOTSUPP;
		return 0;
	}
	switch (enc & 0x70) {
	case 0:
		break;
	case PE_PCREL:
		v += at;
		break;
	case PE_DATAREL:
		if (!datarel)
			goto unsupported;
		v += datarel;
		break;
	default:
		goto unsupported;
	}
	return (uintptr_t)v;
unsupported:
	c->err = c->err ? c->err : -EOPNOTSUPP;
	return 0;
}

/* ---- Finding the FDE ----------------------------------------------------- */

struct fde {
	uintptr_t pc_begin, pc_end;
	uintptr_t cie_instr, cie_end; /* the CIE's initial instructions */
	uintptr_t instr, end;	      /* the FDE's instructions */
	uint64_t code_align;
	int64_t data_align;
	uint8_t enc; /* of addresses in the FDE (DW_CFA_set_loc) */
};

/* The CIE at @cie into @f. 0 or a negative errno. */
static int parse_cie(struct window *w, uintptr_t cie, struct fde *f,
		     bool *has_z)
{
	struct cur c = { w, cie, 0 };
	char aug[8];
	uint64_t len, ra;
	uint8_t version;
	size_t n = 0;

	len = rd_le(&c, 4);
	if (len == 0xffffffff)
		return c.err ? c.err : -EOPNOTSUPP; /* 64-bit DWARF */
	f->cie_end = c.p + len;
	if (rd_le(&c, 4) != 0) /* a CIE's id in .eh_frame */
		return c.err ? c.err : -EINVAL;
	version = rd_u8(&c);
	if (version != 1 && version != 3 && version != 4)
		return c.err ? c.err : -EOPNOTSUPP;
	for (;;) {
		char ch = (char)rd_u8(&c);

		if (c.err)
			return c.err;
		if (!ch)
			break;
		if (n == sizeof(aug) - 1)
			return -EOPNOTSUPP;
		aug[n++] = ch;
	}
	aug[n] = 0;
	if (version == 4 && (rd_u8(&c) != 8 || rd_u8(&c) != 0))
		return c.err ? c.err : -EOPNOTSUPP;
	f->code_align = rd_uleb(&c);
	f->data_align = rd_sleb(&c);
	ra = version == 1 ? rd_u8(&c) : rd_uleb(&c);
	if (c.err)
		return c.err;
	if (ra != REG_RA)
		return -EOPNOTSUPP;
	f->enc = PE_ABSPTR;
	*has_z = aug[0] == 'z';
	if (*has_z) {
		uint64_t alen = rd_uleb(&c);
		uintptr_t aend = c.p + alen;

		for (size_t i = 1; i < n; i++) {
			switch (aug[i]) {
			case 'R': /* FDE address encoding */
				f->enc = rd_u8(&c);
				break;
			case 'P': { /* personality routine: skipped */
				uint8_t penc = rd_u8(&c);

				rd_encoded(&c, penc & (uint8_t)~PE_INDIRECT, 0);
				break;
			}
			case 'L': /* LSDA encoding: not needed */
				rd_u8(&c);
				break;
			case 'B': /* return address signed with the B key */
			case 'G': /* MTE-tagged frame */
				break;
			case 'S': /* a signal frame: libunwind's business */
			default:
				return -EOPNOTSUPP;
			}
		}
		if (c.err)
			return c.err;
		c.p = aend;
	} else if (n) {
		return -EOPNOTSUPP;
	}
	f->cie_instr = c.p;
	return c.err;
}

/* The FDE at @at; -ENOENT unless it covers @target. */
static int parse_fde(struct window *w, uintptr_t at, uintptr_t target,
		     struct fde *f)
{
	struct cur c = { w, at, 0 };
	uintptr_t id_at, cie;
	uint64_t len, id;
	bool has_z;
	int err;

	len = rd_le(&c, 4);
	if (len == 0xffffffff)
		return c.err ? c.err : -EOPNOTSUPP;
	f->end = c.p + len;
	id_at = c.p;
	id = rd_le(&c, 4);
	if (c.err)
		return c.err;
	if (len == 0 || id == 0) /* a terminator or a CIE */
		return -EINVAL;
	cie = id_at - (uintptr_t)id;
	err = parse_cie(w, cie, f, &has_z);
	if (err)
		return err;
	c.p = id_at + 4;
	f->pc_begin = rd_encoded(&c, f->enc, 0);
	f->pc_end = f->pc_begin + rd_encoded(&c, f->enc & 0x0f, 0);
	if (has_z) {
		uint64_t alen = rd_uleb(&c); /* then c.p is past it */

		c.p += alen;
	}
	if (c.err)
		return c.err;
	if (target < f->pc_begin || target >= f->pc_end)
		return -ENOENT;
	f->instr = c.p;
	return 0;
}

/* The .eh_frame_hdr of the object that holds @target. */
static int eh_frame_hdr(uintptr_t target, uintptr_t *hdr)
{
#ifdef DLFO_EH_SEGMENT_TYPE
	struct dl_find_object dlfo;

	if (_dl_find_object((void *)target, &dlfo) != 0 || !dlfo.dlfo_eh_frame)
		return -ENOENT;
	*hdr = (uintptr_t)dlfo.dlfo_eh_frame;
	return 0;
#else
	/* glibc < 2.35 has no _dl_find_object(), and dl_iterate_phdr()
	 * takes the loader's lock, which a signal handler must not: pac-ret
	 * frames then fail the check, as with libunwind alone. */
	(void)target;
	(void)hdr;
	return -EOPNOTSUPP;
#endif
}

/*
 * The FDE for @target through the .eh_frame_hdr of the object that holds
 * it: a binary search table of (initial location, FDE), both 4-byte
 * offsets from the header (the form GNU ld, gold and lld write; another
 * is -EOPNOTSUPP).
 */
static int find_fde(struct window *w, uintptr_t target, struct fde *f)
{
	struct cur c = { w, 0, 0 };
	uintptr_t hdr, table, fde = 0;
	uint8_t ptr_enc, count_enc, table_enc;
	uint64_t count, lo, hi;
	int err;

	err = eh_frame_hdr(target, &hdr);
	if (err)
		return err;
	c.p = hdr;
	if (rd_u8(&c) != 1) /* version */
		return c.err ? c.err : -EOPNOTSUPP;
	ptr_enc = rd_u8(&c);
	count_enc = rd_u8(&c);
	table_enc = rd_u8(&c);
	if (c.err)
		return c.err;
	if (count_enc != PE_UDATA4 || table_enc != (PE_DATAREL | PE_SDATA4))
		return -EOPNOTSUPP;
	rd_encoded(&c, ptr_enc, hdr); /* .eh_frame: the table is enough */
	count = rd_le(&c, 4);
	table = c.p;
	if (c.err)
		return c.err;
	/* The last entry whose initial location is <= target. */
	lo = 0;
	hi = count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		uintptr_t loc;

		c.p = table + mid * 8;
		loc = hdr + (uintptr_t)(int64_t)(int32_t)rd_le(&c, 4);
		if (c.err)
			return c.err;
		if (loc <= target) {
			fde = hdr + (uintptr_t)(int64_t)(int32_t)rd_le(&c, 4);
			if (c.err)
				return c.err;
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	if (!fde)
		return -ENOENT;
	return parse_fde(w, fde, target, f);
}

/* ---- Running the CFI ------------------------------------------------------ */

enum { R_SAME, R_UNDEF, R_OFFSET, R_VAL_OFFSET, R_REG, R_EXPR };

struct rule {
	uint8_t how;
	int32_t val; /* offset from the CFA, or a register */
};

struct row {
	struct rule r[NREGS];
	uint8_t cfa_reg;
	bool cfa_expr;
	bool ra_signed;
	int32_t cfa_off;
};

struct state {
	struct row row, init; /* init: the row after the CIE's program */
	struct row saved[STATE_DEPTH];
	int depth;
};

/* A rule for @reg (ignored for the SIMD and other registers that no
 * frame address depends on; refused for the RA sign state). */
static int set_rule(struct row *row, uint64_t reg, uint8_t how, int64_t val)
{
	if (reg == REG_RA_SIGN_STATE)
		return -EOPNOTSUPP;
	if (reg >= NREGS)
		return 0;
	if (val != (int32_t)val)
		return -EOPNOTSUPP;
	row->r[reg].how = how;
	row->r[reg].val = (int32_t)val;
	return 0;
}

static int set_cfa(struct row *row, uint64_t reg, int64_t off)
{
	if (reg >= NREGS || off != (int32_t)off)
		return -EOPNOTSUPP;
	row->cfa_reg = (uint8_t)reg;
	row->cfa_off = (int32_t)off;
	row->cfa_expr = false;
	return 0;
}

/*
 * Run the CFI program [@p, @end) from location @loc while the location is
 * at most @target (the whole program for a CIE: @target ~0). 0 or a
 * negative errno.
 */
static int run(struct window *w, const struct fde *f, uintptr_t p,
	       uintptr_t end, uintptr_t loc, uintptr_t target, struct state *s)
{
	struct cur c = { w, p, 0 };
	struct row *row = &s->row;
	int err = 0;

	while (c.p < end && !err && !c.err) {
		uint8_t op = rd_u8(&c);
		uint64_t reg, delta = 0;
		int64_t off;

		switch (op & 0xc0) {
		case CFA_ADVANCE_LOC:
			delta = (op & 0x3f) * f->code_align;
			goto advance;
		case CFA_OFFSET:
			off = (int64_t)rd_uleb(&c) * f->data_align;
			err = set_rule(row, op & 0x3f, R_OFFSET, off);
			continue;
		case CFA_RESTORE:
			reg = op & 0x3f;
			if (reg == REG_RA_SIGN_STATE)
				err = -EOPNOTSUPP;
			else if (reg < NREGS)
				row->r[reg] = s->init.r[reg];
			continue;
		}
		switch (op) {
		case CFA_NOP:
			break;
		case CFA_SET_LOC:
			loc = rd_encoded(&c, f->enc, 0);
			if (loc > target)
				return c.err;
			break;
		case CFA_ADVANCE_LOC1:
			delta = rd_le(&c, 1) * f->code_align;
			goto advance;
		case CFA_ADVANCE_LOC2:
			delta = rd_le(&c, 2) * f->code_align;
			goto advance;
		case CFA_ADVANCE_LOC4:
			delta = rd_le(&c, 4) * f->code_align;
			goto advance;
		case CFA_OFFSET_EXTENDED:
			reg = rd_uleb(&c);
			off = (int64_t)rd_uleb(&c) * f->data_align;
			err = set_rule(row, reg, R_OFFSET, off);
			break;
		case CFA_OFFSET_EXTENDED_SF:
			reg = rd_uleb(&c);
			off = rd_sleb(&c) * f->data_align;
			err = set_rule(row, reg, R_OFFSET, off);
			break;
		case CFA_GNU_NEGATIVE_OFFSET_EXTENDED:
			reg = rd_uleb(&c);
			off = -(int64_t)rd_uleb(&c) * f->data_align;
			err = set_rule(row, reg, R_OFFSET, off);
			break;
		case CFA_VAL_OFFSET:
			reg = rd_uleb(&c);
			off = (int64_t)rd_uleb(&c) * f->data_align;
			err = set_rule(row, reg, R_VAL_OFFSET, off);
			break;
		case CFA_VAL_OFFSET_SF:
			reg = rd_uleb(&c);
			off = rd_sleb(&c) * f->data_align;
			err = set_rule(row, reg, R_VAL_OFFSET, off);
			break;
		case CFA_RESTORE_EXTENDED:
			reg = rd_uleb(&c);
			if (reg == REG_RA_SIGN_STATE)
				err = -EOPNOTSUPP;
			else if (reg < NREGS)
				row->r[reg] = s->init.r[reg];
			break;
		case CFA_UNDEFINED:
			err = set_rule(row, rd_uleb(&c), R_UNDEF, 0);
			break;
		case CFA_SAME_VALUE:
			err = set_rule(row, rd_uleb(&c), R_SAME, 0);
			break;
		case CFA_REGISTER:
			reg = rd_uleb(&c);
			off = (int64_t)rd_uleb(&c);
			err = set_rule(row, reg, R_REG, off);
			break;
		case CFA_EXPRESSION:
		case CFA_VAL_EXPRESSION:
			reg = rd_uleb(&c);
			delta = rd_uleb(&c); /* the expression's length */
			c.p += delta;	     /* not evaluated */
			err = set_rule(row, reg, R_EXPR, 0);
			break;
		case CFA_REMEMBER_STATE:
			if (s->depth == STATE_DEPTH)
				return -EOPNOTSUPP;
			s->saved[s->depth++] = *row;
			break;
		case CFA_RESTORE_STATE:
			if (!s->depth)
				return -EINVAL;
			*row = s->saved[--s->depth];
			break;
		case CFA_DEF_CFA:
			reg = rd_uleb(&c);
			err = set_cfa(row, reg, (int64_t)rd_uleb(&c));
			break;
		case CFA_DEF_CFA_SF:
			reg = rd_uleb(&c);
			err = set_cfa(row, reg, rd_sleb(&c) * f->data_align);
			break;
		case CFA_DEF_CFA_REGISTER:
			err = set_cfa(row, rd_uleb(&c), row->cfa_off);
			break;
		case CFA_DEF_CFA_OFFSET:
			err = set_cfa(row, row->cfa_reg, (int64_t)rd_uleb(&c));
			break;
		case CFA_DEF_CFA_OFFSET_SF:
			err = set_cfa(row, row->cfa_reg,
				      rd_sleb(&c) * f->data_align);
			break;
		case CFA_DEF_CFA_EXPRESSION:
			delta = rd_uleb(&c);
			c.p += delta;
			row->cfa_expr = true;
			break;
		case CFA_AARCH64_NEGATE_RA_STATE:
			row->ra_signed = !row->ra_signed;
			break;
		case CFA_GNU_ARGS_SIZE:
			rd_uleb(&c);
			break;
		default:
			return -EOPNOTSUPP;
		}
		continue;
advance:
		loc += delta;
		if (loc > target)
			break;
	}
	return c.err ? c.err : err;
}

/* ---- The step ------------------------------------------------------------- */

static bool known(const struct rw__lp_frame *fr, unsigned reg)
{
	return reg < NREGS && (fr->known >> reg & 1);
}

/*
 * An instruction of a function's patchable entry: NOP, BTI (C, J, JC) or
 * the B that patching writes over the first NOP.
 */
static bool entry_insn(uint32_t insn)
{
	return insn == 0xd503201fu ||		      /* NOP */
	       (insn & 0xffffff3fu) == 0xd503241fu || /* BTI, BTI C/J/JC */
	       (insn & 0xfc000000u) == 0x14000000u;   /* B */
}

/*
 * A thread interrupted in a function's patchable entry: GCC emits the
 * NOPs of -fpatchable-function-entry (after BTI C, with
 * -mbranch-protection) before .cfi_startproc, so no FDE covers them, and
 * a dispatcher returns to the second NOP. Nothing there touches the
 * frame: the caller's pc is x30, its sp this sp, x19-x29 as they are.
 * Taken only when the words from @fr->pc up to the start of an FDE (at
 * most three) are entry instructions; else -ENOENT, as for code without
 * CFI.
 */
static int entry_step(struct rw__lp_frame *fr)
{
	struct rw__lp_frame out;
	struct window w;
	struct fde f;
	uintptr_t ra;
	uint32_t insn;
	unsigned k;

	w.len = 0;
	w.base = 0;
	for (k = 1; k <= 3; k++) {
		if (rw__lp_peek(fr->pc + 4 * (k - 1), &insn, sizeof(insn)) ||
		    !entry_insn(insn))
			return -ENOENT;
		if (find_fde(&w, fr->pc + 4 * k, &f) == 0)
			break;
	}
	if (k > 3 || f.pc_begin != fr->pc + 4 * k)
		return -ENOENT;
	if (!known(fr, REG_RA) || !known(fr, REG_SP))
		return -EOPNOTSUPP;
	/* Before the function's PACIASP: not signed; stripping is a no-op
	 * on an unsigned address. */
	ra = rw__lp_strip_pac(fr->reg[REG_RA]);
	if (!ra)
		return -EINVAL;
	memset(&out, 0, sizeof(out));
	for (unsigned i = 19; i < REG_SP; i++)
		if (known(fr, i)) {
			out.reg[i] = fr->reg[i];
			out.known |= 1u << i;
		}
	out.reg[REG_SP] = fr->reg[REG_SP];
	out.known |= 1u << REG_SP;
	out.pc = ra;
	*fr = out;
	return 1;
}

static int step(struct rw__lp_frame *fr, bool exact)
{
	uintptr_t target = exact ? fr->pc : fr->pc - 1, cfa, ra;
	struct rw__lp_frame out;
	struct window w;
	struct state s;
	struct fde f;
	int err;

	w.len = 0;
	w.base = 0;
	err = find_fde(&w, target, &f);
	if (err == -ENOENT && exact)
		return entry_step(fr);
	if (err)
		return err;
	/* Initial rules: every register keeps its value (libgcc's and
	 * libunwind's default; AAPCS64 x19-x29 and sp are callee-saved,
	 * and the return address is in x30 until the prologue saves it). */
	memset(&s, 0, sizeof(s));
	err = run(&w, &f, f.cie_instr, f.cie_end, 0, ~(uintptr_t)0, &s);
	if (err)
		return err;
	s.init = s.row;
	s.depth = 0;
	err = run(&w, &f, f.instr, f.end, f.pc_begin, target, &s);
	if (err)
		return err;

	if (s.row.cfa_expr || !known(fr, s.row.cfa_reg))
		return -EOPNOTSUPP;
	cfa = fr->reg[s.row.cfa_reg] + (uintptr_t)(intptr_t)s.row.cfa_off;
	/* The caller's sp is the CFA, on aarch64 as everywhere Linux runs. */
	if (s.row.r[REG_SP].how != R_SAME)
		return -EOPNOTSUPP;

	memset(&out, 0, sizeof(out));
	for (unsigned i = 0; i < REG_SP; i++) {
		const struct rule *r = &s.row.r[i];
		uint64_t v;

		switch (r->how) {
		case R_SAME:
			/* x0-x18 do not survive a call (AAPCS64): no caller's
			 * rule can depend on their values. */
			if (known(fr, i) && i >= 19) {
				out.reg[i] = fr->reg[i];
				out.known |= 1u << i;
			}
			break;
		case R_OFFSET:
			if (rw__lp_peek(cfa + (uintptr_t)(intptr_t)r->val, &v,
					sizeof(v)))
				return -EFAULT;
			out.reg[i] = v;
			out.known |= 1u << i;
			break;
		case R_VAL_OFFSET:
			out.reg[i] = cfa + (uintptr_t)(intptr_t)r->val;
			out.known |= 1u << i;
			break;
		case R_REG:
			if (known(fr, (unsigned)r->val)) {
				out.reg[i] = fr->reg[r->val];
				out.known |= 1u << i;
			}
			break;
		default: /* undefined, or by an expression: unknown */
			break;
		}
	}
	/* The return address: undefined ends the stack (_start, clone's
	 * thread start); unknown is an error, never a guess. */
	if (s.row.r[REG_RA].how == R_UNDEF)
		return 0;
	if (!known(&out, REG_RA))
		return -EOPNOTSUPP;
	ra = out.reg[REG_RA];
	if (s.row.ra_signed)
		ra = rw__lp_strip_pac(ra);
	if (!ra)
		return -EINVAL;
	out.reg[REG_SP] = cfa;
	out.known |= 1u << REG_SP;
	out.pc = ra;
	*fr = out;
	return 1;
}

int rw__lp_cfi_step(struct rw__lp_frame *fr, bool exact)
{
	uintptr_t pc = fr->pc;
	int r = step(fr, exact);

	if (r > 0)
		rw__log("%s %lx: caller %lx", exact ? "pc" : "return", pc,
			fr->pc);
	else if (r == 0)
		rw__log("%s %lx: end of the stack", exact ? "pc" : "return",
			pc);
	else
		rw__log("%s %lx: not stepped (%d; x30 %lx, registers known "
			"%x)",
			exact ? "pc" : "return", pc, r,
			(unsigned long)fr->reg[REG_RA], fr->known);
	return r;
}

#endif /* RW_BACKEND_AARCH64 */
