// Fibers for the CUDA threads of a block that meets __syncthreads(): each runs on a stack
// of its own (with a guard page below it) and switches back to the block's scheduler at
// a barrier. On x86-64 the switch is a few instructions (saving the callee-saved registers
// and the SSE/x87 control words); elsewhere it is ucontext's. ASan is told of every switch.
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emu.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

enum { STACK_BYTES = 256 << 10 };  // touched pages only; ASan's frames are larger

struct emu_fiber {
    char *lo;  // the stack (above its guard page)
    void *sp;
#if !defined(__x86_64__)
    ucontext_t uc;
#endif
    void (*fn)(void *, int);
    void *arg;
    int index, done;
    void *fake;  // ASan's fake stack of this fiber
};

static emu_fiber **g_pool;
static int g_n_pool;
static emu_fiber *g_cur;  // the fiber running now
static size_t g_page;
#if defined(__x86_64__)
static void *g_sched_sp;
#else
static ucontext_t g_sched_uc;
#endif
#if EMU_ASAN
static void *g_sched_fake;  // the scheduler's stack, for ASan
static const void *g_sched_bottom;
static size_t g_sched_size;
#endif

#if defined(__x86_64__)
// emu_switch(save, to): saves the callee-saved state on this stack and its pointer in
// *SAVE, then continues on the stack TO with the state saved there.
void emu_switch(void **save, void *to);
__asm__(
    ".text\n"
    ".globl emu_switch\n"
    ".hidden emu_switch\n"
    ".type emu_switch, @function\n"
    "emu_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size emu_switch, .-emu_switch\n");
#endif

static void to_fiber(emu_fiber *f) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(&g_sched_fake, f->lo, STACK_BYTES);
#endif
#if defined(__x86_64__)
    emu_switch(&g_sched_sp, f->sp);
#else
    swapcontext(&g_sched_uc, &f->uc);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(g_sched_fake, NULL, NULL);
#endif
}

static void to_scheduler(emu_fiber *f) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(f->done ? NULL : &f->fake, g_sched_bottom, g_sched_size);
#endif
#if defined(__x86_64__)
    emu_switch(&f->sp, g_sched_sp);
#else
    swapcontext(&f->uc, &g_sched_uc);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake, &g_sched_bottom, &g_sched_size);
#endif
}

static void fiber_main(void) {
    emu_fiber *f = g_cur;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &g_sched_bottom, &g_sched_size);
#endif
    f->fn(f->arg, f->index);
    f->done = 1;
    to_scheduler(f);
    emu_fatal("a finished fiber was resumed");
}

emu_fiber *emu_fiber_get(int index) {
    if (index < g_n_pool) return g_pool[index];
    if (!g_page) g_page = (size_t)sysconf(_SC_PAGESIZE);
    emu_fiber **pool = realloc(g_pool, (size_t)(index + 1) * sizeof *pool);
    if (!pool) emu_fatal("out of host memory");
    g_pool = pool;
    for (; g_n_pool <= index; g_n_pool++) {
        emu_fiber *f = calloc(1, sizeof *f);
        char *m = mmap(NULL, STACK_BYTES + g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (!f || m == MAP_FAILED) emu_fatal("cannot map a fiber stack: %s", strerror(errno));
        mprotect(m, g_page, PROT_NONE);  // the guard page: an overflow faults
        f->lo = m + g_page;
        g_pool[g_n_pool] = f;
    }
    return g_pool[index];
}

void emu_fiber_start(emu_fiber *f, void (*fn)(void *, int), void *arg, int index) {
    f->fn = fn;
    f->arg = arg;
    f->index = index;
    f->done = 0;
    f->fake = NULL;
#if EMU_ASAN
    __asan_unpoison_memory_region(f->lo, STACK_BYTES);  // frames a finished thread left poisoned
#endif
#if defined(__x86_64__)
    // The frame emu_switch pops: control words, six registers, then fiber_main as the
    // return address (16-byte aligned + 8 on entry, as after a call; it never returns).
    uint64_t *top = (uint64_t *)(f->lo + STACK_BYTES);
    uint32_t ctl[2];
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(ctl[0]), "=m"(ctl[1]));
    top[-1] = 0;
    top[-2] = (uint64_t)(uintptr_t)fiber_main;
    for (int r = 3; r <= 8; r++) top[-r] = 0;
    memcpy(&top[-9], ctl, sizeof ctl);
    f->sp = &top[-9];
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->lo;
    f->uc.uc_stack.ss_size = STACK_BYTES;
    f->uc.uc_link = NULL;
    makecontext(&f->uc, fiber_main, 0);
#endif
}

int emu_fiber_resume(emu_fiber *f) {
    g_cur = f;
    to_fiber(f);
    g_cur = NULL;
    return f->done;
}

void emu_fiber_yield(void) {
    emu_fiber *f = g_cur;
    to_scheduler(f);
    g_cur = f;  // (the scheduler set it before resuming us)
}

int emu_on_fiber(void) { return g_cur != NULL; }

int emu_fiber_guard(const void *addr) {
    for (int k = 0; k < g_n_pool; k++)
        if ((const char *)addr >= g_pool[k]->lo - g_page && (const char *)addr < g_pool[k]->lo) return 1;
    return 0;
}
