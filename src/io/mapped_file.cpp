#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "base/progress_line.h"

namespace csq::io {

namespace {

constexpr size_t kHugePage = size_t(2) << 20;

// Closes the descriptor on every way out of the constructor.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() { ::close(fd); }
};

// Anonymous memory of `bytes` (a multiple of the page size) starting on a 2 MB boundary, so that
// all of it can be backed by huge pages; nullptr when the address space is exhausted.
uint8_t* map_huge_page_aligned(size_t bytes) {
  void* region = ::mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(region);
  const uintptr_t aligned = (base + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
  // Unmap the slack on both sides; the tail is never empty (alignment moves by less than kHugePage).
  if (aligned > base) ::munmap(region, aligned - base);
  ::munmap(reinterpret_cast<void*>(aligned + bytes), base + kHugePage - aligned);
  // A hint: where transparent huge pages are off or "never", this memory stays on small pages.
  ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<uint8_t*>(aligned);
}

}  // namespace

MappedFile::MappedFile(const std::string& path, FileMemory memory, size_t aligned_offset) : path_(path) {
  const FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) fail_input(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) fail_input(path + ": not a regular file");
  size_ = size_t(st.st_size);
  if (size_ == 0) return;

  if (memory == FileMemory::Mapped) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (p == MAP_FAILED) fail_input(path + ": cannot map: " + std::strerror(errno));
    data_ = mapping_ = static_cast<uint8_t*>(p);
    mapping_bytes_ = size_;
    return;
  }

  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const size_t lead = (kLoadAlignment - aligned_offset % kLoadAlignment) % kLoadAlignment;
  mapping_bytes_ = (lead + size_ + page - 1) / page * page;
  mapping_ = map_huge_page_aligned(mapping_bytes_);
  if (!mapping_) fail_input(path + ": cannot allocate " + std::to_string(size_) + " bytes to load it: " + std::strerror(errno));
  uint8_t* buffer = mapping_ + lead;
  // Read in pieces: a single read() stops at about 2 GB.
  constexpr size_t kPiece = size_t(64) << 20;
  // A slow disk, or a VM whose fresh pages fault through to the host, can make this take minutes:
  // past a few seconds the user sees how far it got.
  constexpr double kQuietSeconds = 3;
  ProgressLine progress;
  bool progress_shown = false;
  const auto show_progress = [&](size_t done, bool final) {
    if (!(progress_shown || progress.seconds() > kQuietSeconds) || !progress.due(final)) return;
    progress_shown = true;
    char figures[96];
    std::snprintf(figures, sizeof figures, ": %.2f of %.2f GB, %.0f MB/s", double(done) * 1e-9, double(size_) * 1e-9,
                  double(done) * 1e-6 / progress.seconds());
    progress.draw("loading " + path.substr(path.rfind('/') + 1) + figures, final);
  };
  for (size_t done = 0; done < size_;) {
    const ssize_t got = ::pread(file.fd, buffer + done, std::min(kPiece, size_ - done), off_t(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const std::string why = got < 0 ? std::string(std::strerror(errno))
                                      : "the file ended early (it was " + std::to_string(size_) + " bytes when opened)";
      ::munmap(mapping_, mapping_bytes_);  // no destructor runs for an object whose constructor throws
      fail_input(path + ": read failed at byte " + std::to_string(done) + ": " + why);
    }
    done += size_t(got);
    show_progress(done, done == size_);
  }
  data_ = buffer;
  // Weights are read-only: a stray write faults instead of changing the model.
  ::mprotect(mapping_, mapping_bytes_, PROT_READ);
}

MappedFile::~MappedFile() {
  if (mapping_) ::munmap(mapping_, mapping_bytes_);
}

std::ifstream open_input_file(const std::string& path, const std::string& cannot_open) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": " + cannot_open);
  if (struct stat st {}; ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail_input(path + ": is a directory, not a file");
  return in;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in = open_input_file(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace csq::io
