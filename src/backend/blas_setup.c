#include "backend/blas_setup.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *blas_core_name(void) { return openblas_get_corename(); }

void blas_select_core(char **argv) {
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE") || getenv("GRUREC_BLAS_REEXEC")) return;
    static const char *const generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge"};
    const char *core = openblas_get_corename();
    int fallback = 0;
    for (size_t i = 0; core && i < sizeof generic / sizeof *generic; i++) fallback |= strcmp(core, generic[i]) == 0;
    if (!fallback) return;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want || strcmp(want, core) == 0) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("GRUREC_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);  // only returns on failure: carry on with the slow core
    unsetenv("OPENBLAS_CORETYPE");
#else
    (void)argv;
#endif
}
