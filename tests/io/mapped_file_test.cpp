// MappedFile in both modes: the same bytes, huge-page-aligned and read-only when loaded, and
// errors that name the file.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "test_paths.h"

namespace csq::io {
namespace {

std::vector<uint8_t> write_random_file(const std::string& path, size_t bytes) {
  std::vector<uint8_t> content(bytes);
  std::mt19937 rng(7);
  for (uint8_t& b : content) b = uint8_t(rng());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(content.data()), std::streamsize(bytes));
  return content;
}

TEST(MappedFile, LoadedAndMappedHoldTheFilesBytes) {
  // Not a multiple of the page size, and larger than one 64 MB read.
  const std::string path = test::temp_dir() + "/mapped-file.bin";
  const std::vector<uint8_t> content = write_random_file(path, (size_t(67) << 20) + 12345);
  for (FileMemory memory : {FileMemory::Mapped, FileMemory::Loaded}) {
    const MappedFile file(path, memory);
    ASSERT_EQ(file.size(), content.size());
    EXPECT_EQ(std::memcmp(file.data(), content.data(), content.size()), 0);
    EXPECT_EQ(file.path(), path);
  }
  // Loaded memory starts on a 2 MB boundary, so all of it can sit on huge pages.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(MappedFile(path, FileMemory::Loaded).data()) % (size_t(2) << 20), 0u);
  // Or with a chosen offset on a 64-byte boundary (a safetensors payload), the bytes unchanged.
  for (size_t offset : {size_t(8), size_t(48), size_t(64), size_t(12345)}) {
    const MappedFile file(path, FileMemory::Loaded, offset);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file.data() + offset) % MappedFile::kLoadAlignment, 0u) << offset;
    ASSERT_EQ(file.size(), content.size());
    EXPECT_EQ(std::memcmp(file.data(), content.data(), content.size()), 0) << offset;
  }
}

// A safetensors file padded to 8 bytes only, as save_pretrained writes them: loaded, its tensors
// still start on a cache line.
TEST(MappedFile, LoadedSafetensorsTensorsAreCacheLineAligned) {
  const std::string path = test::temp_dir() + "/unaligned.safetensors";
  std::string header = R"({"w":{"dtype":"BF16","shape":[32],"data_offsets":[0,64]}})";
  while ((8 + header.size()) % 64 != 16) header += ' ';
  const uint64_t len = header.size();
  std::vector<uint8_t> data(64);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&len), 8).write(header.data(), std::streamsize(len));
    out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
  }
  const SafetensorsFile file(path, FileMemory::Loaded);
  const SafetensorsTensor* w = file.find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w->data) % MappedFile::kLoadAlignment, 0u);
  EXPECT_EQ(std::memcmp(w->data, data.data(), data.size()), 0);
}

TEST(MappedFile, EmptyFileHasNoData) {
  const std::string path = test::temp_dir() + "/mapped-empty.bin";
  std::ofstream(path, std::ios::binary).close();
  for (FileMemory memory : {FileMemory::Mapped, FileMemory::Loaded}) {
    const MappedFile file(path, memory);
    EXPECT_EQ(file.size(), 0u);
    EXPECT_EQ(file.data(), nullptr);
  }
}

TEST(MappedFile, ErrorsNameThePath) {
  for (FileMemory memory : {FileMemory::Mapped, FileMemory::Loaded}) {
    const std::string missing = test::temp_dir() + "/no-such-file.gguf";
    try {
      MappedFile file(missing, memory);
      FAIL() << "opened a missing file";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::BadInput);
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    }
    EXPECT_THROW(MappedFile(test::temp_dir(), memory), Error);  // a directory
  }
}

TEST(MappedFile, ReadTextFileRefusesADirectory) {
  // A directory opens and reads as empty text: --context DIR gave a prompt without the context.
  try {
    read_text_file(test::temp_dir());
    FAIL() << "read a directory as an empty text";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadInput);
    EXPECT_EQ(std::string(e.what()), test::temp_dir() + ": is a directory, not a file");
  }
}

TEST(MappedFileDeathTest, LoadedWeightsAreReadOnly) {
  const std::string path = test::temp_dir() + "/mapped-readonly.bin";
  write_random_file(path, 4096 * 3);
  const MappedFile file(path, FileMemory::Loaded);
  EXPECT_DEATH(const_cast<uint8_t*>(file.data())[100] ^= 1, "");
}

}  // namespace
}  // namespace csq::io
