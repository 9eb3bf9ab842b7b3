// Compiles the functions that follow, up to avx2_end.h, for AVX2 + FMA + F16C while the rest of
// the build stays portable; such code runs only after cpu_has_avx2(). Include it after every
// other header, and pair it with avx2_end.h in the same file.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
