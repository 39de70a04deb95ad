// Emulated device memory: one arena of address space reserved at the first CUDA call,
// inaccessible to the process (PROT_NONE) except for the allocations an operation is
// running on. Each allocation ends 8-byte aligned right before a guard page (not CUDA's
// 256-byte alignment), so that host code dereferencing a device pointer, and a kernel or
// copy running past its allocation, fault at once; the fault handler names the address,
// the allocation and what was running.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emu.h"

typedef struct {
    char *start;        // the data (ends at the guard page)
    size_t bytes;       // as asked
    size_t page, pages; // the data pages; the guard page follows
} alloc;

typedef struct {
    size_t page, pages;
} extent;

static struct {
    char *base;
    size_t page_size, n_pages, capacity, used;
    extent *free;  // free page extents, by page
    int n_free, cap_free;
    alloc *live;   // by start
    int n_live, cap_live;
    alloc open[32];  // opened for the running operation
    int n_open;
    const char *activity;
} A;

static struct sigaction g_old_segv, g_old_bus;

// ---- sizes and the environment ----

static size_t parse_size(const char *name, const char *s) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    size_t mult = 1;
    if (end && *end) {
        switch (*end++) {
            case 'K': case 'k': mult = (size_t)1 << 10; break;
            case 'M': case 'm': mult = (size_t)1 << 20; break;
            case 'G': case 'g': mult = (size_t)1 << 30; break;
            default: end = NULL;
        }
    }
    if (errno || end == s || !end || *end || v == 0 || v > ((size_t)1 << 44) / mult)
        emu_fatal("%s=%s: not a size (bytes, or a number with K, M or G)", name, s);
    return (size_t)v * mult;
}

static void install_fault_handler(void);

static void arena_init(void) {
    if (A.base) return;
    A.page_size = (size_t)sysconf(_SC_PAGESIZE);
    const char *cap = getenv("GRUREC_EMU_GPU_MEMORY");
    A.capacity = cap && *cap ? parse_size("GRUREC_EMU_GPU_MEMORY", cap) : (size_t)2 << 30;
    // Room for the capacity, plus page rounding and guard pages of many small allocations.
    const size_t reserve = (2 * A.capacity + ((size_t)256 << 20)) / A.page_size * A.page_size;
    void *p = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) emu_fatal("cannot reserve %zu bytes of address space for device memory: %s", reserve, strerror(errno));
    A.base = p;
    A.n_pages = reserve / A.page_size;
    A.cap_free = 64;
    A.free = malloc((size_t)A.cap_free * sizeof *A.free);
    if (!A.free) emu_fatal("out of host memory");
    A.free[0] = (extent){1, A.n_pages - 1};  // page 0: the guard before the first allocation
    A.n_free = 1;
    install_fault_handler();
}

size_t emu_arena_capacity(void) {
    arena_init();
    return A.capacity;
}

size_t emu_arena_used(void) { return A.used; }

int emu_in_arena(const void *p) {
    return A.base && (const char *)p >= A.base && (const char *)p < A.base + A.n_pages * A.page_size;
}

// What counts against the capacity: the size rounded as a GPU's allocator would, roughly.
static size_t charged(size_t bytes) { return (bytes + 255) / 256 * 256; }

static void protect(const alloc *a, int prot) {
    if (mprotect(A.base + a->page * A.page_size, a->pages * A.page_size, prot) != 0)
        emu_fatal("mprotect of device memory failed: %s", strerror(errno));
}

// The index of the last live allocation starting at or before P, or -1.
static int find_live(const char *p) {
    int lo = 0, hi = A.n_live - 1, at = -1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        if (A.live[mid].start <= p) at = mid, lo = mid + 1;
        else hi = mid - 1;
    }
    return at;
}

static void grow(void **v, int *cap, size_t elem) {
    const int n = *cap * 2;
    void *w = realloc(*v, (size_t)n * elem);
    if (!w) emu_fatal("out of host memory");
    *v = w;
    *cap = n;
}

void *emu_arena_alloc(size_t bytes) {
    arena_init();
    if (bytes == 0 || charged(bytes) > A.capacity - A.used) return NULL;
    const size_t need = (bytes + 7) / 8 * 8, pages = (need + A.page_size - 1) / A.page_size;
    int f = 0;
    while (f < A.n_free && A.free[f].pages < pages + 1) f++;  // first fit, with the guard page
    if (f == A.n_free) return NULL;
    alloc a = {NULL, bytes, A.free[f].page, pages};
    A.free[f].page += pages + 1;
    A.free[f].pages -= pages + 1;
    if (A.free[f].pages == 0) {
        memmove(&A.free[f], &A.free[f + 1], (size_t)(A.n_free - f - 1) * sizeof *A.free);
        A.n_free--;
    }
    a.start = A.base + (a.page + pages) * A.page_size - need;
    if (A.n_live == A.cap_live) {
        if (!A.cap_live) {
            A.cap_live = 64;
            A.live = malloc((size_t)A.cap_live * sizeof *A.live);
            if (!A.live) emu_fatal("out of host memory");
        } else {
            grow((void **)&A.live, &A.cap_live, sizeof *A.live);
        }
    }
    const int at = find_live(a.start) + 1;
    memmove(&A.live[at + 1], &A.live[at], (size_t)(A.n_live - at) * sizeof *A.live);
    A.live[at] = a;
    A.n_live++;
    A.used += charged(bytes);
    // Fresh device memory holds no zeros on a GPU either: 0xff bytes are NaN floats.
    protect(&a, PROT_READ | PROT_WRITE);
    memset(A.base + a.page * A.page_size, 0xff, pages * A.page_size);
    protect(&a, PROT_NONE);
    return a.start;
}

int emu_arena_free(void *p) {
    const int at = find_live(p);
    if (at < 0 || A.live[at].start != (char *)p) return 0;
    const alloc a = A.live[at];
    memmove(&A.live[at], &A.live[at + 1], (size_t)(A.n_live - at - 1) * sizeof *A.live);
    A.n_live--;
    A.used -= charged(a.bytes);
    madvise(A.base + a.page * A.page_size, a.pages * A.page_size, MADV_DONTNEED);
    // Back to the free extents (data and guard page), merged with its neighbours.
    extent e = {a.page, a.pages + 1};
    int f = 0;
    while (f < A.n_free && A.free[f].page < e.page) f++;
    if (f > 0 && A.free[f - 1].page + A.free[f - 1].pages == e.page) {
        A.free[f - 1].pages += e.pages;
        if (f < A.n_free && A.free[f - 1].page + A.free[f - 1].pages == A.free[f].page) {
            A.free[f - 1].pages += A.free[f].pages;
            memmove(&A.free[f], &A.free[f + 1], (size_t)(A.n_free - f - 1) * sizeof *A.free);
            A.n_free--;
        }
        return 1;
    }
    if (f < A.n_free && e.page + e.pages == A.free[f].page) {
        A.free[f].page = e.page;
        A.free[f].pages += e.pages;
        return 1;
    }
    if (A.n_free == A.cap_free) grow((void **)&A.free, &A.cap_free, sizeof *A.free);
    memmove(&A.free[f + 1], &A.free[f], (size_t)(A.n_free - f) * sizeof *A.free);
    A.free[f] = e;
    A.n_free++;
    return 1;
}

void emu_describe(const void *ptr, char *why, size_t why_size) {
    const char *p = ptr;
    if (!emu_in_arena(p)) {
        snprintf(why, why_size, "not device memory (a host pointer?)");
        return;
    }
    const int at = find_live(p);
    if (at + 1 < A.n_live && p >= A.base + A.live[at + 1].page * A.page_size) {
        snprintf(why, why_size, "%zu bytes before the start of a device allocation of %zu bytes at %p",
                 (size_t)(A.live[at + 1].start - p), A.live[at + 1].bytes, (void *)A.live[at + 1].start);
        return;
    }
    if (at >= 0) {
        const alloc *a = &A.live[at];
        const char *guard = A.base + (a->page + a->pages) * A.page_size;
        if (p < a->start + a->bytes)
            snprintf(why, why_size, "%zu bytes into a device allocation of %zu bytes at %p", (size_t)(p - a->start),
                     a->bytes, (void *)a->start);
        else if (p < guard + A.page_size)
            snprintf(why, why_size, "%zu bytes past the end of a device allocation of %zu bytes at %p",
                     (size_t)(p - (a->start + a->bytes)), a->bytes, (void *)a->start);
        else
            snprintf(why, why_size, "device memory in no live allocation (freed?)");
        return;
    }
    snprintf(why, why_size, "device memory in no live allocation (freed?)");
}

int emu_device_range(const void *p, size_t bytes, char *why, size_t why_size) {
    const char *c = p;
    const int at = emu_in_arena(p) ? find_live(c) : -1;
    if (at >= 0 && c <= A.live[at].start + A.live[at].bytes && bytes <= (size_t)(A.live[at].start + A.live[at].bytes - c))
        return 1;
    if (at >= 0 && c < A.live[at].start + A.live[at].bytes)
        snprintf(why, why_size, "%zu bytes from %zu bytes into a device allocation of %zu bytes at %p, past its end by %zu",
                 bytes, (size_t)(c - A.live[at].start), A.live[at].bytes, (void *)A.live[at].start,
                 bytes - (size_t)(A.live[at].start + A.live[at].bytes - c));
    else
        emu_describe(c, why, why_size);
    return 0;
}

void emu_access_begin(const char *what, const void *const *ptrs, int n) {
    A.activity = what;
    for (int k = 0; k < n; k++) {
        if (!ptrs[k]) continue;
        const int at = find_live(ptrs[k]);
        if (at < 0) emu_fatal("%s: %p is not device memory (unchecked pointer)", what, ptrs[k]);
        int seen = 0;
        for (int q = 0; q < A.n_open && !seen; q++) seen = A.open[q].start == A.live[at].start;
        if (seen) continue;
        if (A.n_open == (int)(sizeof A.open / sizeof A.open[0])) emu_fatal("%s: too many allocations at once", what);
        A.open[A.n_open++] = A.live[at];
        protect(&A.live[at], PROT_READ | PROT_WRITE);
    }
}

void emu_access_end(void) {
    for (int q = 0; q < A.n_open; q++) protect(&A.open[q], PROT_NONE);
    A.n_open = 0;
    A.activity = NULL;
}

void emu_set_activity(const char *what) { A.activity = what; }

// ---- faults ----

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    const char *addr = si->si_addr;
    char where[256], who[256], msg[700];
    int ours = 1;
    if (emu_in_arena(addr)) {
        emu_describe(addr, where, sizeof where);
        if (!A.activity)
            snprintf(who, sizeof who, "host code");
        else if (strncmp(A.activity, "kernel ", 7) == 0)
            snprintf(who, sizeof who, "%s (block %u, thread %u)", A.activity, emu_block_idx.x, emu_thread_idx.x);
        else
            snprintf(who, sizeof who, "%s", A.activity);
        snprintf(msg, sizeof msg, "grurec CUDA emulation: %s touched device memory at %p, %s%s\n", who,
                 (const void *)addr, where,
                 A.activity ? ": outside the memory it was given (on a GPU: another buffer, or an illegal address)"
                            : ": host code cannot dereference device memory (a GPU faults too; copy it first)");
    } else if (emu_fiber_guard(addr)) {
        snprintf(msg, sizeof msg, "grurec CUDA emulation: %s (block %u, thread %u) overflowed its emulated stack\n",
                 A.activity ? A.activity : "a kernel", emu_block_idx.x, emu_thread_idx.x);
    } else {
        ours = 0;
    }
    if (ours) {
        ssize_t w = write(2, msg, strlen(msg));
        (void)w;
    }
    // The previous handler (or the default action) sees the same fault when the access
    // is made again on return.
    struct sigaction *old = sig == SIGBUS ? &g_old_bus : &g_old_segv;
    if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler == SIG_IGN) old->sa_handler = SIG_DFL;
    sigaction(sig, old, NULL);
}

static void install_fault_handler(void) {
    // Kernel threads run on fiber stacks: the handler needs its own (one it can overflow
    // into, were a fiber's stack exhausted).
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_DISABLE)) {
        static char altstack[1 << 18];
        ss.ss_sp = altstack;
        ss.ss_size = sizeof altstack;
        ss.ss_flags = 0;
        sigaltstack(&ss, NULL);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
}
