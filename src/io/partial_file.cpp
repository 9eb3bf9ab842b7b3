#include "io/partial_file.h"

#include <filesystem>
#include <system_error>

#include "base/error.h"

namespace csq::io {

PartialFile::PartialFile(std::string path) : path_(std::move(path)), partial_(path_ + ".partial") {
  // A FIFO or a device (--out /dev/stdout) is written in place: nothing there to replace.
  std::error_code ec;
  const auto type = std::filesystem::status(path_, ec).type();
  if (type != std::filesystem::file_type::not_found && type != std::filesystem::file_type::regular) partial_ = path_;
  file_ = std::fopen(partial_.c_str(), "wb");
  if (!file_) fail_runtime(path_ + ": cannot open for writing");
}

PartialFile::~PartialFile() {
  if (!file_) return;
  std::fclose(file_);
  std::error_code ec;
  if (partial_ != path_) std::filesystem::remove(partial_, ec);
}

void PartialFile::commit(bool ok) {
  ok = ok && std::fflush(file_) == 0;
  if (!ok) fail_runtime(path_ + ": write failed (disk full?)");
  FILE* file = file_;
  file_ = nullptr;
  if (std::fclose(file) != 0) {
    std::error_code ec;
    if (partial_ != path_) std::filesystem::remove(partial_, ec);
    fail_runtime(path_ + ": write failed (disk full?)");
  }
  if (partial_ == path_) return;
  std::error_code ec;
  std::filesystem::rename(partial_, path_, ec);
  if (ec) {
    std::filesystem::remove(partial_, ec);
    fail_runtime("cannot move " + partial_ + " to " + path_ + ": " + ec.message());
  }
}

}  // namespace csq::io
