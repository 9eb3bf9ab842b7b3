// Facts about a running process that benchmarks and reports print.
#pragma once

#include <cstdint>

namespace csq {

// The most memory the process has held resident (VmHWM of /proc/PID/status), in KiB; pid 0
// means this process. Throws csq::Error (Runtime) when it cannot be read (the process has
// exited, or there is no /proc).
int64_t peak_resident_kib(long pid = 0);

// Starts this process's peak (VmHWM) afresh from its current resident memory, so a measurement
// that needed a large temporary buffer does not count in the peak reported later. False where
// the kernel does not allow it (then the peak still includes the buffer).
bool reset_peak_resident();

}  // namespace csq
