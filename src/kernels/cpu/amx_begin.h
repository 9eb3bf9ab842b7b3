// Compiles the functions that follow, up to avx512_end.h, for AMX (tile, bf16, int8) besides
// AVX-512 (F, BW, VL, VNNI, BF16), AVX2, FMA and F16C while the rest of the build stays portable;
// such code runs only after cpu_has_amx(). Include it after every other header, and pair it with
// avx512_end.h in the same file.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,amx-tile,amx-bf16,amx-int8,avx2,fma,f16c"))), \
                             apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,amx-tile,amx-bf16,amx-int8,avx2,fma,f16c")
// GCC 12's own AVX-512 intrinsics start from deliberately undefined vectors and warn about it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
