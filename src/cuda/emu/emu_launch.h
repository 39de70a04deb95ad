// The emulation's kernel launch: CUDA_LAUNCH (src/cuda/launch.h) turns
// `kernel<<<grid, block, shmem, stream>>>(args...)` into emu_launch_kernel(...), which copies
// the arguments converted to the kernel's parameter types (as a launch does), notes which
// of them are pointers (each must be device memory or null), and queues the grid on the
// stream (emu_launch in emu_grid.c). Included by the emulated cuda_runtime.h (C++ only).
#ifndef GRUREC_EMU_LAUNCH_H
#define GRUREC_EMU_LAUNCH_H

#include <stddef.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include "emu_grid.h"

template <class... P>
struct emu_call {
    void (*fn)(P...);
    std::tuple<P...> args;
};

template <class T>
inline void emu_note_arg(emu_ptr_arg *v, int &n, int &position, const T &a) {
    position++;
    if constexpr (std::is_pointer_v<T>) {
        v[n].ptr = (const void *)a;
        v[n].position = position;
        n++;
    }
}

template <class... P, class... A>
inline void emu_launch_kernel(const char *name, void (*fn)(P...), dim3 grid, dim3 block, size_t shared_bytes,
                              cudaStream_t stream, A &&...args) {
    static_assert(sizeof...(P) == sizeof...(A), "a kernel launch with the wrong number of arguments");
    using call = emu_call<P...>;
    call *c = new call{fn, std::tuple<P...>(std::forward<A>(args)...)};
    emu_ptr_arg ptrs[sizeof...(P) + 1];
    int n = 0, position = 0;
    std::apply([&](const auto &...a) { (emu_note_arg(ptrs, n, position, a), ...); }, c->args);
    emu_kernel k = {name,
                    {grid.x, grid.y, grid.z},
                    {block.x, block.y, block.z},
                    shared_bytes,
                    stream,
                    [](void *p) {
                        call *cc = static_cast<call *>(p);
                        std::apply(cc->fn, cc->args);
                    },
                    c,
                    [](void *p) { delete static_cast<call *>(p); },
                    ptrs,
                    n};
    emu_launch(&k);
}

#endif
