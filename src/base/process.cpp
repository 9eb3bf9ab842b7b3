#include "base/process.h"

#include <fstream>
#include <string>

#include "base/error.h"

namespace csq {

int64_t peak_resident_kib(long pid) {
  const std::string path = pid == 0 ? "/proc/self/status" : "/proc/" + std::to_string(pid) + "/status";
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  fail_runtime("no VmHWM in " + path + (pid == 0 ? "" : " (has the process exited?)"));
}

bool reset_peak_resident() {
  std::ofstream clear("/proc/self/clear_refs");
  return static_cast<bool>(clear << "5" << std::flush);
}

}  // namespace csq
