#include "detect/evtx.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "base/error.h"
#include "detect/evtx_binxml.h"

namespace csq::detect {
namespace {

constexpr size_t kFileHeaderSize = 4096;
constexpr size_t kChunkSize = 65536;
constexpr size_t kChunkHeaderSize = 512;
constexpr size_t kRecordHeaderSize = 24;  // signature, size, id, written time; the size is repeated after the data
constexpr uint32_t kNoCrc32 = 0x4;        // file and chunk flag: checksums not maintained

uint32_t u32(std::span<const uint8_t> d, size_t at) {
  uint32_t v;
  std::memcpy(&v, d.data() + at, 4);
  return v;
}
uint64_t u64(std::span<const uint8_t> d, size_t at) {
  uint64_t v;
  std::memcpy(&v, d.data() + at, 8);
  return v;
}
uint32_t crc32_of(std::span<const uint8_t> d) { return uint32_t(crc32(0L, d.data(), uInt(d.size()))); }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

bool all_zero(std::span<const uint8_t> d) {
  for (uint8_t b : d)
    if (b) return false;
  return true;
}

// Where chunks come from: a file read one chunk at a time, or bytes in memory.
using ChunkSource = std::function<std::span<const uint8_t>(uint64_t offset, size_t size)>;

class Walker {
 public:
  Walker(const std::function<void(EvtxRecord&&)>& on_record, const std::function<void(const EvtxProblem&)>& on_problem)
      : on_record_(on_record), on_problem_(on_problem) {}

  EvtxStats run(const std::string& name, uint64_t file_size, const ChunkSource& source) {
    if (file_size < 128)
      fail_input(name + ": not an EVTX file: " + std::to_string(file_size) + " bytes, shorter than the 128-byte file header");
    const auto header = source(0, std::min<uint64_t>(file_size, kFileHeaderSize));
    if (std::memcmp(header.data(), "ElfFile\0", 8) != 0)
      fail_input(name + ": not an EVTX file: the signature is not \"ElfFile\" (EVTX files of Windows Vista and later)");
    // A damaged file header costs nothing but the header: chunks stand on their own.
    if (!(u32(header, 120) & kNoCrc32) && crc32_of(header.first(120)) != u32(header, 124))
      problem(0, 0, 0, "file header: CRC32 mismatch (stored " + hex32(u32(header, 124)) + ", computed " + hex32(crc32_of(header.first(120))) + ")");
    const unsigned major = header[38] | header[39] << 8, minor = header[36] | header[37] << 8;
    if (major != 3) problem(0, 0, 0, "file header: format version " + std::to_string(major) + "." + std::to_string(minor) + ", expected 3.x; reading the chunks anyway");
    if (file_size < kFileHeaderSize) {
      problem(0, 0, file_size, "file truncated inside its 4096-byte header: no chunks");
      return stats_;
    }
    for (uint64_t index = 0, offset = kFileHeaderSize; offset < file_size; ++index, offset += kChunkSize)
      chunk(index, offset, source(offset, size_t(std::min<uint64_t>(kChunkSize, file_size - offset))));
    return stats_;
  }

 private:
  void problem(uint64_t chunk, uint64_t record_id, uint64_t offset, std::string reason) {
    ++stats_.problems;
    on_problem_(EvtxProblem{chunk, record_id, offset, std::move(reason)});
  }

  void chunk(uint64_t index, uint64_t file_offset, std::span<const uint8_t> c) {
    const std::string where = "chunk " + std::to_string(index);
    if (all_zero(c)) return;  // never used: files are allocated ahead of their chunks
    if (c.size() < kChunkHeaderSize) {
      problem(index, 0, file_offset, where + ": truncated to " + std::to_string(c.size()) + " bytes, shorter than its 512-byte header");
      return;
    }
    if (std::memcmp(c.data(), "ElfChnk\0", 8) != 0) {
      problem(index, 0, file_offset, where + ": no chunk signature (\"ElfChnk\"); chunk skipped");
      return;
    }
    ++stats_.chunks;
    const bool truncated = c.size() < kChunkSize;
    if (truncated)
      problem(index, 0, file_offset + c.size(), where + ": truncated: the file ends " + std::to_string(c.size()) + " bytes into this 65536-byte chunk");
    const bool checked = !(u32(c, 120) & kNoCrc32);
    std::vector<uint8_t> header_bytes(c.begin(), c.begin() + 120);
    header_bytes.insert(header_bytes.end(), c.begin() + 128, c.begin() + kChunkHeaderSize);
    const bool header_ok = !checked || crc32_of(header_bytes) == u32(c, 124);
    if (!header_ok)
      problem(index, 0, file_offset, where + ": header CRC32 mismatch (stored " + hex32(u32(c, 124)) + ", computed " + hex32(crc32_of(header_bytes)) + "); records checked one by one");
    uint32_t end = u32(c, 48);  // free space: the records end here
    if (end < kChunkHeaderSize || end > kChunkSize) {
      problem(index, 0, file_offset + 48, where + ": free-space offset " + std::to_string(end) + " outside the chunk; records read up to its end");
      end = uint32_t(c.size());
    } else if (checked && !truncated && crc32_of(c.subspan(kChunkHeaderSize, end - kChunkHeaderSize)) != u32(c, 52)) {
      problem(index, 0, file_offset + kChunkHeaderSize, where + ": event records CRC32 mismatch (stored " + hex32(u32(c, 52)) + ", computed " + hex32(crc32_of(c.subspan(kChunkHeaderSize, end - kChunkHeaderSize))) + "); records checked one by one");
    }
    end = std::min<uint32_t>(end, uint32_t(c.size()));
    const uint64_t last_id = u64(c, 32);

    binxml::ChunkDecoder decoder(c);
    // A record header at `pos`: its signature and a size that fits the chunk; `strict` also
    // wants the size repeated at the record's end (the test used to find records again).
    auto record_at = [&](size_t pos, bool strict) {
      if (pos + kRecordHeaderSize > end || std::memcmp(c.data() + pos, "\x2a\x2a\0\0", 4) != 0) return false;
      const uint32_t size = u32(c, pos + 4);
      return size >= kRecordHeaderSize + 4 && size <= end - pos && (!strict || u32(c, pos + size - 4) == size);
    };
    auto resync = [&](size_t from) {
      while (from + kRecordHeaderSize <= end && !record_at(from, true)) ++from;
      return from;
    };
    auto resuming = [&](size_t next) {
      return next + kRecordHeaderSize <= end ? "; resuming at the next record, chunk offset " + std::to_string(next)
                                             : std::string("; rest of the chunk skipped");
    };
    for (size_t pos = kChunkHeaderSize; pos + kRecordHeaderSize <= end;) {
      const std::string at = " at chunk offset " + std::to_string(pos);
      if (!record_at(pos, false)) {
        if (u32(c, pos) == 0) break;  // zeroed slack after the last record
        const bool signature = std::memcmp(c.data() + pos, "\x2a\x2a\0\0", 4) == 0;
        const uint64_t id = signature ? u64(c, pos + 8) : 0;
        const size_t next = resync(pos + 1);
        problem(index, id, file_offset + pos,
                where + (signature ? ": record " + std::to_string(id) + ": size " + std::to_string(u32(c, pos + 4)) + " does not fit the chunk"
                                   : ": no record signature") + at + resuming(next));
        pos = next;
        continue;
      }
      const uint32_t size = u32(c, pos + 4);
      const uint64_t id = u64(c, pos + 8);
      const std::string record = where + ": record " + std::to_string(id) + at + ": ";
      // A record whose size is not repeated at its end may still be whole (Windows writes the
      // copy last): it is read, and reported.
      const bool copy_ok = u32(c, pos + size - 4) == size;
      try {
        EvtxRecord r{id, binxml::filetime_iso(u64(c, pos + 16)), decoder.decode(uint32_t(pos + kRecordHeaderSize), size - kRecordHeaderSize - 4)};
        ++stats_.records;
        on_record_(std::move(r));
        if (!copy_ok) problem(index, id, file_offset + pos, record + "size " + std::to_string(size) + " not repeated at the record's end (read anyway)");
      } catch (const binxml::FormatError& e) {
        const size_t next = copy_ok ? pos + size : resync(pos + 4);
        problem(index, id, file_offset + pos, record + e.what() + (copy_ok ? "" : "; size not repeated at the record's end" + resuming(next)));
        pos = next;
        continue;
      }
      pos += size;
      if (header_ok && id == last_id) break;
    }
  }

  const std::function<void(EvtxRecord&&)>& on_record_;
  const std::function<void(const EvtxProblem&)>& on_problem_;
  EvtxStats stats_;
};

}  // namespace

EvtxStats read_evtx(std::span<const uint8_t> file, const std::string& name,
                    const std::function<void(EvtxRecord&&)>& on_record,
                    const std::function<void(const EvtxProblem&)>& on_problem) {
  return Walker(on_record, on_problem).run(name, file.size(), [&](uint64_t offset, size_t size) {
    return file.subspan(size_t(offset), size);
  });
}

bool is_evtx_file(const std::string& path) {
  if (path == "-") return false;
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  return in.read(magic, 8) && std::memcmp(magic, "ElfFile", 8) == 0;
}

EvtxStats read_evtx(const std::string& path, const std::function<void(EvtxRecord&&)>& on_record,
                    const std::function<void(const EvtxProblem&)>& on_problem) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) fail_input(path + ": cannot open: " + std::strerror(errno));
  if (std::error_code ec; std::filesystem::is_directory(path, ec)) fail_input(path + ": is a directory, not an EVTX file");
  if (std::fseek(f.get(), 0, SEEK_END) != 0) fail_input(path + ": cannot seek: " + std::strerror(errno));
  const long size = std::ftell(f.get());
  if (size < 0) fail_input(path + ": not a regular file");
  std::vector<uint8_t> buffer(kChunkSize);
  return Walker(on_record, on_problem).run(path, uint64_t(size), [&](uint64_t offset, size_t n) {
    if (std::fseek(f.get(), long(offset), SEEK_SET) != 0 || std::fread(buffer.data(), 1, n, f.get()) != n)
      fail_runtime(path + ": read error at offset " + std::to_string(offset) + ": " + std::strerror(errno));
    return std::span<const uint8_t>(buffer.data(), n);
  });
}

}  // namespace csq::detect
