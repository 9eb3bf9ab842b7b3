// A GGUF or safetensors write that fails halfway (a tensor producer that throws, as a failed
// quantize or merge does) must leave no truncated file under the final name, keep a file that
// was already there, and leave no .partial behind.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "base/error.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "test_paths.h"

namespace csq::io {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string fresh_path(const std::string& name) {
  const std::string path = test::temp_dir() + "/" + name;
  fs::remove(path);
  fs::remove(path + ".partial");
  return path;
}

// A producer that fails after the first tensor was written, as an interrupted write does.
void fail_at_second_tensor(size_t index, std::vector<uint8_t>& bytes) {
  if (index == 1) throw std::runtime_error("interrupted");
  bytes.assign(16, 0);
}

GgufWriter two_tensor_gguf() {
  GgufWriter w;
  w.set_string("general.architecture", "test");
  w.add_tensor_info("a", DType::F32, {4});
  w.add_tensor_info("b", DType::F32, {4});
  return w;
}

TEST(PartialWrite, AGgufWriteThatFailsLeavesNoFileUnderTheFinalName) {
  const std::string path = fresh_path("failed.gguf");
  const GgufWriter w = two_tensor_gguf();
  EXPECT_THROW(w.write(path,
                       fail_at_second_tensor),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(PartialWrite, AFailedGgufWriteKeepsTheFileAlreadyThere) {
  const std::string path = fresh_path("kept.gguf");
  const GgufWriter w = two_tensor_gguf();
  w.write(path, [](size_t, std::vector<uint8_t>& bytes) { bytes.assign(16, 7); });
  const std::string before = read_all(path);
  EXPECT_THROW(w.write(path, [](size_t, std::vector<uint8_t>& bytes) { bytes.assign(3, 0); }), Error);
  EXPECT_EQ(read_all(path), before);
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(PartialWrite, ASafetensorsWriteThatFailsLeavesNoFileUnderTheFinalName) {
  const std::string path = fresh_path("failed.safetensors");
  const std::vector<SafetensorsDeclared> tensors = {{"a", DType::F32, {4}}, {"b", DType::F32, {4}}};
  EXPECT_THROW(write_safetensors(path, tensors,
                                 fail_at_second_tensor),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  write_safetensors(path, tensors, [](size_t, std::vector<uint8_t>& bytes) { bytes.assign(16, 1); });
  EXPECT_EQ(SafetensorsFile(path).tensors().size(), 2u);
}

TEST(PartialWrite, AnUnwritableDirectoryIsAnErrorNamingTheFile) {
  try {
    two_tensor_gguf().write("/nonexistent-dir/x.gguf", [](size_t, std::vector<uint8_t>& b) { b.assign(16, 0); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.gguf: cannot open for writing"), std::string::npos);
  }
}

// A path that is not a regular file (a FIFO, /dev/stdout) is written in place, as before: there is
// nothing to rename over it, and `--out /dev/stdout | ...` keeps working.
TEST(PartialWrite, AFifoIsWrittenInPlace) {
  const std::string fifo = fresh_path("out.fifo"), file = fresh_path("same.gguf");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const GgufWriter w = two_tensor_gguf();
  const auto produce = [](size_t, std::vector<uint8_t>& bytes) { bytes.assign(16, 3); };
  // The read end opened first (without blocking) lets the writer open it; the file fits the pipe.
  const int read_end = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(read_end, 0);
  w.write(fifo, produce);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = read(read_end, buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
  close(read_end);
  w.write(file, produce);
  EXPECT_EQ(got, read_all(file));
  EXPECT_FALSE(fs::exists(fifo + ".partial"));
  fs::remove(fifo);
}

}  // namespace
}  // namespace csq::io
