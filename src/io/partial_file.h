// A file written under PATH.partial and renamed to PATH only once it is complete, so that a
// write that fails, throws or is interrupted never leaves a truncated file under the final
// name (a half-written GGUF that looks like a model), and an existing PATH stays intact until
// the new one replaces it. A PATH that exists and is no regular file (a FIFO, /dev/stdout) is
// written in place.
#pragma once

#include <cstdio>
#include <string>

namespace csq::io {

class PartialFile {
 public:
  // Opens PATH.partial for writing; throws csq::Error (Runtime) naming `path` when it cannot.
  explicit PartialFile(std::string path);
  ~PartialFile();  // removes the partial file unless commit() succeeded
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  FILE* get() const { return file_; }
  // Flushes, closes and renames the file to its final name; throws csq::Error (Runtime) naming
  // the path when `ok` is false (an earlier write failed) or any of these steps fails.
  void commit(bool ok);

 private:
  std::string path_, partial_;
  FILE* file_ = nullptr;
};

}  // namespace csq::io
