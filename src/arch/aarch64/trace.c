/* SPDX-License-Identifier: MIT */
/*
 * Function tracing on aarch64 (src/entry.c, src/arch/entry_arch.h): the
 * trampolines and the common entry and return code.
 *
 * An entry compiled with -fpatchable-function-entry=2 is two NOPs (after
 * BTI C under -mbranch-protection). Tracing it writes the first NOP into
 * `B trampoline` (NOP <-> B is a CMODX pair: no other core can execute a
 * mix of the two); the second NOP stays. B keeps X30, so when the
 * trampoline runs, X30 holds the traced function's return address and SP
 * is the function's entry SP, exactly as the caller left them.
 *
 * A trampoline, one 32-byte slot of a pool within B reach of the entry:
 *
 *	+0	LDR  X16, rec		rec: struct rw__entry (tdata, cont)
 *	+4	LDR  X17, caller
 *	+8	BR   X17
 *	+12	BRK
 *	+16	.quad rec
 *	+24	.quad rw__trace_caller
 *
 * X16 and X17 (IP0, IP1) are free at a function entry: a linker veneer or
 * a PLT stub between the call and the entry may clobber them. The literal
 * load and BR reach rw__trace_caller wherever librewire is mapped; BR
 * through X16/X17 may land on BTI C, which the common code begins with.
 * The trampoline is written before its entry's B is (a64_code_write
 * cleans it to the point of unification; the entry batch's core sync
 * orders the rest), and is never written again.
 *
 * rw__trace_caller (X16 = rec, X30 = the return address):
 *
 *	BTI C
 *	make a 240-byte frame: a frame record (X29, X30) at its base, then
 *	  X0-X7 (arguments), X8 (indirect result), X18 (the static chain of
 *	  a GCC nested function), X16 (rec), Q0-Q7 (FP/SIMD arguments)
 *	enter(rec->tdata, &frame.x30)
 *	X17 = rec->cont (read after the call), restore the registers,
 *	X30 = frame.x30 (what enter left there), free the frame
 *	RET X17
 *
 * The slot enter() gets is the frame record's return address: a return
 * the tracer redirects is written there and becomes X30 again before the
 * traced function runs, before its PACIASP signs X30 (pointer
 * authentication signs the redirected address, AUTIASP checks it, and
 * the function returns through it) and before its prologue stores it. A
 * frame-pointer unwinder meeting the common code reads the same word.
 * The continuation is the body after the NOPs (RET, not BR: a body has
 * no BTI landing pad, and RET is not checked) or a live patch's target.
 * SVE: only the low 128 bits of Z0-Z7 are kept, as AAPCS64's base
 * procedure call standard needs; a function with scalable vector
 * arguments (the SVE PCS) must not be traced while a probe uses SVE.
 *
 * rw__trace_return is where a redirected return goes (X30 of the
 * returning function pointed at it): it saves X0-X7 and Q0-Q7 (every
 * register a result can be in, with room to spare), calls ret(sp) with
 * the stack pointer after the return, sets X30 to the answer and returns
 * there. Its CFI says the return address is undefined: an unwinder that
 * reaches it stops there.
 *
 * Graph tracing (src/ftrace.c). On x86-64 a shadow element names its
 * frame by the stack slot the call pushed, and that slot is read (is the
 * frame still hooked?) and written (the real address put back for an
 * unwinder). On aarch64 the return address is in X30 at the entry, then
 * wherever the prologue stores it, or nowhere (a leaf). The design, the
 * kernel's arm64 one (ftrace_graph_ret_addr keyed by the frame, not by a
 * slot):
 *
 *   - key: a frame is named by its CFA, the entry SP (= the SP after its
 *     return), as CFA - 8 so that x86-64's arithmetic holds (key = sp - 8
 *     at rw__trace_return, and live patching's stack checks ask
 *     rw__entry_real_return(tid, sp - 8) alike): RW__ENTRY_KEY(slot) =
 *     &frame.x30 + 224. rw__trace_return matches by the SP after the
 *     return, from the top of the shadow stack: sibling calls (same CFA,
 *     X30 already the trampoline's at the entry), longjmp, coroutines
 *     and migration to another thread work as on x86-64;
 *   - PAC: the redirected address becomes X30 before the function's
 *     PACIASP, so the function signs the trampoline's address with its
 *     CFA and AUTIASP checks it (test_trace_a64, and test_ftrace_graph_
 *     unwind's library is built with -mbranch-protection=standard);
 *   - liveness: nothing to read at a push. A top element with the same
 *     CFA is gone unless X30 is the trampoline's (a sibling call);
 *     elements of lower CFAs may be another stack's (a coroutine, an
 *     alternate signal stack) and stay; a full stack is swept by a walk
 *     of the stack (below): elements on the stretch the walk covered
 *     that no hooked frame there has are gone. Thread exit drops the
 *     elements inside the thread's own stack (pthread_getattr_np);
 *   - unhooking (unwinders, longjmp, cancellation, pthread_exit): a walk
 *     of the thread's stack by its CFI (src/ftrace.c, a64_walk: the
 *     .eh_frame found through .eh_frame_hdr, the CFA rules GCC emits,
 *     DW_CFA_AARCH64_negate_ra_state, the kernel's signal frames) finds
 *     each frame whose return address is the trampoline's, and the
 *     address it is saved at: a frame slot where the prologue stored
 *     X30, or the sigcontext of a signal that interrupted a leaf; the
 *     element of that CFA gives the real address, written there signed
 *     as the frame's CFI says its return address is signed there
 *     (DW_CFA_AARCH64_negate_ra_state, the CIE's 'B' augmentation; with
 *     PACIA1716 or PACIB1716 and the CFA: hints, NOPs without PAC), the
 *     way libgcc's unwinder authenticates it, so that the function's
 *     AUTIASP and every unwinder accept it. Never guessed from the value:
 *     a PAC has few bits, and the signed trampoline address equals the
 *     unsigned one now and then (an unwinder then failed, 1 run in 3);
 *     the walk goes on from the real address. The location is kept
 *     until the frames are hooked again (rehook writes the trampoline's
 *     address back, signed alike) and tells an unhooked frame that
 *     returned or was left (it no longer holds the trampoline's). It is
 *     rewire's own walk because libunwind 1.6 (Debian 12) cannot read
 *     the CFI of code built with pointer authentication (its
 *     unw_get_proc_info fails on DW_CFA_AARCH64_negate_ra_state). A
 *     frame it cannot step (no CFI, a CFA by expression) ends the walk:
 *     the frames beyond stay hooked, and an unwinder stops at the
 *     trampoline there as it would at any frame without CFI;
 *   - a coroutine returning on another thread leaves a tombstone (its
 *     key) in the owner's shadow stack instead of x86-64's write to the
 *     slot: the owner drops that element at its next hit.
 *
 * Live patching's stack checks find the real caller through the
 * trampoline with rw__entry_real_return(tid, sp - 8), the same call on
 * both machines: the outside check (unwind_remote.c) and the thread's own
 * check (unwind.c, through_tramp; test_lp_tramp).
 */
#include "../arch.h"
#include "a64.h"

#include "../../entry.h"

#include <string.h>

void (*rw__trace_enter_fn)(void *data, uintptr_t *slot)
	__attribute__((visibility("hidden")));
uintptr_t (*rw__trace_ret_fn)(uintptr_t sp)
	__attribute__((visibility("hidden")));
void rw__trace_caller(void) __attribute__((visibility("hidden")));
void rw__trace_return(void) __attribute__((visibility("hidden")));
void rw__trace_code_end(void) __attribute__((visibility("hidden")));

_Static_assert(offsetof(struct rw__entry, tdata) == 0, "tdata at 0");
_Static_assert(offsetof(struct rw__entry, cont) == 8, "cont at 8");

__asm__(".text\n"
	".p2align 4\n"
	".type rw__trace_caller, %function\n"
	"rw__trace_caller:\n"
	".cfi_startproc\n"
	"	hint #34\n" /* BTI C */
	"	sub sp, sp, #240\n"
	".cfi_def_cfa_offset 240\n"
	"	stp x29, x30, [sp, #0]\n"
	".cfi_offset x29, -240\n"
	".cfi_offset x30, -232\n"
	"	mov x29, sp\n"
	"	stp x0, x1, [sp, #16]\n"
	"	stp x2, x3, [sp, #32]\n"
	"	stp x4, x5, [sp, #48]\n"
	"	stp x6, x7, [sp, #64]\n"
	"	stp x8, x18, [sp, #80]\n"
	"	str x16, [sp, #96]\n"
	"	stp q0, q1, [sp, #112]\n"
	"	stp q2, q3, [sp, #144]\n"
	"	stp q4, q5, [sp, #176]\n"
	"	stp q6, q7, [sp, #208]\n"
	"	ldr x0, [x16, #0]\n"
	"	add x1, sp, #8\n"
	"	adrp x2, rw__trace_enter_fn\n"
	"	ldr x2, [x2, #:lo12:rw__trace_enter_fn]\n"
	"	blr x2\n"
	"	ldr x16, [sp, #96]\n"
	"	ldr x17, [x16, #8]\n"
	"	ldp x0, x1, [sp, #16]\n"
	"	ldp x2, x3, [sp, #32]\n"
	"	ldp x4, x5, [sp, #48]\n"
	"	ldp x6, x7, [sp, #64]\n"
	"	ldp x8, x18, [sp, #80]\n"
	"	ldp q0, q1, [sp, #112]\n"
	"	ldp q2, q3, [sp, #144]\n"
	"	ldp q4, q5, [sp, #176]\n"
	"	ldp q6, q7, [sp, #208]\n"
	"	ldp x29, x30, [sp, #0]\n"
	"	add sp, sp, #240\n"
	".cfi_def_cfa_offset 0\n"
	".cfi_restore x29\n"
	".cfi_restore x30\n"
	"	ret x17\n"
	".cfi_endproc\n"
	".size rw__trace_caller, .-rw__trace_caller\n"
	".p2align 4\n"
	".cfi_startproc\n"
	".cfi_undefined x30\n"
	"	nop\n"
	".type rw__trace_return, %function\n"
	"rw__trace_return:\n"
	"	sub sp, sp, #208\n"
	".cfi_def_cfa_offset 208\n"
	"	stp x29, xzr, [sp, #0]\n"
	".cfi_offset x29, -208\n"
	"	mov x29, sp\n"
	"	stp x0, x1, [sp, #16]\n"
	"	stp x2, x3, [sp, #32]\n"
	"	stp x4, x5, [sp, #48]\n"
	"	stp x6, x7, [sp, #64]\n"
	"	stp q0, q1, [sp, #80]\n"
	"	stp q2, q3, [sp, #112]\n"
	"	stp q4, q5, [sp, #144]\n"
	"	stp q6, q7, [sp, #176]\n"
	"	add x0, sp, #208\n"
	"	adrp x1, rw__trace_ret_fn\n"
	"	ldr x1, [x1, #:lo12:rw__trace_ret_fn]\n"
	"	blr x1\n"
	"	mov x30, x0\n"
	"	ldp x0, x1, [sp, #16]\n"
	"	ldp x2, x3, [sp, #32]\n"
	"	ldp x4, x5, [sp, #48]\n"
	"	ldp x6, x7, [sp, #64]\n"
	"	ldp q0, q1, [sp, #80]\n"
	"	ldp q2, q3, [sp, #112]\n"
	"	ldp q4, q5, [sp, #144]\n"
	"	ldp q6, q7, [sp, #176]\n"
	"	ldr x29, [sp, #0]\n"
	"	add sp, sp, #208\n"
	".cfi_def_cfa_offset 0\n"
	".cfi_restore x29\n"
	"	ret\n"
	".cfi_endproc\n"
	".size rw__trace_return, .-rw__trace_return\n"
	".type rw__trace_code_end, %function\n"
	"rw__trace_code_end:\n"
	"	brk #0x7277\n"
	".size rw__trace_code_end, .-rw__trace_code_end\n");

#define TRACE_TRAMP_SIZE 32
static struct a64_pool trace_pool = A64_POOL_INIT(TRACE_TRAMP_SIZE);

int rw__arch_trace_tramp_alloc(uintptr_t near, void *rec, void **tramp)
{
	uint32_t code[TRACE_TRAMP_SIZE / 4];
	uint64_t caller = (uintptr_t)rw__trace_caller, r = (uintptr_t)rec;
	uintptr_t at;
	int err;

	err = a64_pool_alloc(&trace_pool, near, &at);
	if (err)
		return err;
	code[0] = a64_ldr_lit(16, 16);
	code[1] = a64_ldr_lit(17, 20);
	code[2] = a64_br(17);
	code[3] = A64_BRK_RW;
	memcpy(&code[4], &r, 8);
	memcpy(&code[6], &caller, 8);
	err = a64_code_write(at, code, sizeof(code));
	if (err) {
		a64_pool_free(&trace_pool, at);
		return err;
	}
	*tramp = (void *)at;
	return 0;
}

void rw__arch_trace_set(void (*enter)(void *data, uintptr_t *slot),
			uintptr_t (*ret)(uintptr_t sp))
{
	__atomic_store_n(&rw__trace_enter_fn, enter, __ATOMIC_RELEASE);
	__atomic_store_n(&rw__trace_ret_fn, ret, __ATOMIC_RELEASE);
}

uintptr_t rw__arch_trace_return_addr(void)
{
	return (uintptr_t)rw__trace_return;
}

void rw__arch_trace_code(uintptr_t *start, uintptr_t *end)
{
	*start = (uintptr_t)rw__trace_caller;
	*end = (uintptr_t)rw__trace_code_end;
}
