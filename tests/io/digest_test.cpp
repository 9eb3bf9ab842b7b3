// SHA-256 and SHA-1 against the FIPS 180 examples, and git's blob ids against `git hash-object`.
#include "io/digest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "base/error.h"
#include "test_paths.h"

namespace csq::io {
namespace {

std::string sha256_of(const std::string& text) {
  Sha256 h;
  h.update(text.data(), text.size());
  return h.hex_digest();
}

std::string sha1_of(const std::string& text) {
  Sha1 h;
  h.update(text.data(), text.size());
  return h.hex_digest();
}

TEST(Digest, Sha256MatchesFipsExamples) {
  EXPECT_EQ(sha256_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_of(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Digest, Sha1MatchesFipsExamples) {
  EXPECT_EQ(sha1_of(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_of("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(Digest, PiecesGiveTheSameDigestAsOneUpdate) {
  // Every split point of a text crossing two block boundaries, including the padding edge at 56.
  std::string text;
  for (int i = 0; i < 150; ++i) text += char('a' + i % 26);
  const std::string whole = sha256_of(text);
  for (size_t split = 0; split <= text.size(); ++split) {
    Sha256 h;
    h.update(text.data(), split);
    h.update(text.data() + split, text.size() - split);
    ASSERT_EQ(h.hex_digest(), whole) << "split at " << split;
  }
  for (size_t length : {55u, 56u, 63u, 64u, 119u, 120u}) {
    Sha1 a;
    a.update(text.data(), length);
    Sha1 b;
    b.update(text.data(), length / 2);
    b.update(text.data() + length / 2, length - length / 2);
    EXPECT_EQ(a.hex_digest(), b.hex_digest()) << length;
  }
}

TEST(Digest, GitBlobIdsMatchGitHashObject) {
  // `printf 'hello\n' | git hash-object --stdin` and the empty blob.
  GitBlobSha1 hello(6);
  hello.update("hello\n", 6);
  EXPECT_EQ(hello.hex_digest(), "ce013625030ba8dba906f756967f9e9ca394464a");
  GitBlobSha1 empty(0);
  EXPECT_EQ(empty.hex_digest(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST(Digest, Sha256OfAFileAndAMissingOne) {
  const std::string path = test::temp_dir() + "/digest_abc.txt";
  std::ofstream(path) << "abc";
  EXPECT_EQ(sha256_file(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  try {
    sha256_file(path + ".missing");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("digest_abc.txt.missing"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace csq::io
