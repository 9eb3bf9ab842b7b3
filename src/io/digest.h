// SHA-256 and SHA-1, streamed: the hashes the Hugging Face Hub publishes for a repository's files
// (sha256 for LFS files, git's blob SHA-1 for the others), checked before a download is kept.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace csq::io {

// The hashes of the MD4 family on 64-byte blocks with big-endian length padding, streamed.
template <size_t Words>
class BlockHash {
 public:
  using State = std::array<uint32_t, Words>;
  using Compress = void (*)(State& state, const uint8_t* block);
  void update(const void* data, size_t size);
  // The digest as lowercase hex (8 digits per state word); the object is spent afterwards.
  std::string hex_digest();

 protected:
  BlockHash(const State& initial, Compress compress) : state_(initial), compress_(compress) {}

 private:
  State state_;
  Compress compress_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

class Sha256 : public BlockHash<8> {
 public:
  Sha256();
};

class Sha1 : public BlockHash<5> {
 public:
  Sha1();
};

// Git's object id of a blob of `size` bytes: SHA-1 over "blob <size>\0" and then the content.
class GitBlobSha1 {
 public:
  explicit GitBlobSha1(uint64_t size);
  void update(const void* data, size_t size) { sha1_.update(data, size); }
  std::string hex_digest() { return sha1_.hex_digest(); }

 private:
  Sha1 sha1_;
};

// The SHA-256 of a whole file, read in 1 MiB pieces; the error names the path.
std::string sha256_file(const std::string& path);

bool is_lower_hex(const std::string& text, size_t length);

}  // namespace csq::io
