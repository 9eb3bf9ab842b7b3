// A read-only view of a whole file, mapped or loaded. Model weights are used in place from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

namespace csq::io {

// How a file's bytes reach memory.
enum class FileMemory {
  // Mapped from the page cache on demand: opens at once, pages shared with other processes.
  Mapped,
  // Read once into this process's memory, on 2 MB pages where the kernel provides them
  // (transparent huge pages): weights streamed for every generated token then read faster,
  // with a TLB entry per 2 MB instead of per 4 KB and hardware prefetchers that do not stop at
  // every 4 KB page boundary. Costs the read at start-up; resident memory is the same.
  Loaded,
};

class MappedFile {
 public:
  // Throws csq::Error (BadInput) naming the path when it cannot be opened, mapped or read.
  // Loaded: the byte at file offset `aligned_offset` lands on a kLoadAlignment boundary (a
  // safetensors payload starts 8 + header bytes in, which writers pad to 8 only; the AMX tiles
  // load weight rows a cache line at a time).
  explicit MappedFile(const std::string& path, FileMemory memory = FileMemory::Mapped, size_t aligned_offset = 0);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  static constexpr size_t kLoadAlignment = 64;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint8_t* mapping_ = nullptr;  // what to unmap: data_, or the loaded buffer data_ lies in
  size_t mapping_bytes_ = 0;
};

// `path` opened for reading. Bad input naming it when it cannot be opened ("PATH: " +
// `cannot_open`) or is a directory, which would open and read as empty.
std::ifstream open_input_file(const std::string& path, const std::string& cannot_open = "cannot open for reading");
// Reads a whole (small) text file such as config.json; the error names the path.
std::string read_text_file(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace csq::io
