// Repository references, the Hugging Face cache layout, resolving --model without network,
// and csq.lock: reading (errors name the field), writing and checking a directory against it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include "base/error.h"
#include "io/digest.h"
#include "io/hub_cache.h"
#include "io/model_lock.h"
#include "test_paths.h"

namespace csq::io {
namespace {
namespace fs = std::filesystem;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string error_of(const std::function<void()>& action, ErrorCode* code = nullptr) {
  try {
    action();
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Points HF_HUB_CACHE at a fresh directory for one test and restores the environment after.
class CacheEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(test::temp_dir()) / ("hub_cache_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    if (const char* old = std::getenv("HF_HUB_CACHE")) saved_ = old;
    setenv("HF_HUB_CACHE", (root_ / "hub").c_str(), 1);
  }
  void TearDown() override {
    if (saved_) setenv("HF_HUB_CACHE", saved_->c_str(), 1);
    else unsetenv("HF_HUB_CACHE");
  }
  // A snapshot of `repo` at kCommit with `files`, blobs linked as huggingface_hub does.
  fs::path make_snapshot(const std::string& repo, const std::vector<std::pair<std::string, std::string>>& files) {
    const fs::path repo_dir = hub::repo_cache_dir(root_ / "hub", repo);
    for (const auto& [path, text] : files) {
      Sha256 h;
      h.update(text.data(), text.size());
      const fs::path blob = repo_dir / "blobs" / h.hex_digest();
      write_file(blob, text);
      const fs::path link = repo_dir / "snapshots" / kCommit / path;
      fs::create_directories(link.parent_path());
      fs::create_symlink(blob.lexically_relative(link.parent_path()), link);
    }
    write_file(repo_dir / "refs" / "main", kCommit);
    return repo_dir / "snapshots" / kCommit;
  }
  fs::path root_;
  std::optional<std::string> saved_;
};

TEST(HubRef, ParsesRepositoryAndRevision) {
  auto ref = hub::parse_repo_ref("athena/CyberSecQwen-4B");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->repo, "athena/CyberSecQwen-4B");
  EXPECT_EQ(ref->revision, "main");
  ref = hub::parse_repo_ref("org/model.v2:refs/pr/3");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->repo, "org/model.v2");
  EXPECT_EQ(ref->revision, "refs/pr/3");
  // Not shaped like a repository: left to the loader as a path.
  EXPECT_FALSE(hub::parse_repo_ref("model.gguf"));
  EXPECT_FALSE(hub::parse_repo_ref("/models/a"));
  EXPECT_FALSE(hub::parse_repo_ref("models/a/b"));
  // Shaped like one but breaking the Hub's rules: a usage error naming the rule.
  ErrorCode code{};
  EXPECT_NE(error_of([] { hub::parse_repo_ref("org/a--b"); }, &code).find("'--'"), std::string::npos);
  EXPECT_EQ(code, ErrorCode::Usage);
  EXPECT_NE(error_of([] { hub::parse_repo_ref("org/name:"); }).find("empty revision"), std::string::npos);
  EXPECT_NE(error_of([] { hub::parse_repo_ref("org/name:a..b"); }).find("malformed revision"), std::string::npos);
  EXPECT_NE(error_of([] { hub::parse_repo_ref("org/-x"); }).find("start or end"), std::string::npos);
  EXPECT_NE(error_of([] { hub::parse_repo_ref("./a"); }).find("start or end"), std::string::npos);
}

TEST(HubRef, SafeRelativePaths) {
  EXPECT_TRUE(hub::is_safe_relative_path("config.json"));
  EXPECT_TRUE(hub::is_safe_relative_path("onnx/model.onnx"));
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a/", "x\ny"})
    EXPECT_FALSE(hub::is_safe_relative_path(bad)) << bad;
}

TEST_F(CacheEnv, CacheDirFollowsHuggingFaceEnvironment) {
  EXPECT_EQ(hub::cache_dir(), root_ / "hub");
  unsetenv("HF_HUB_CACHE");
  const char* old_home = std::getenv("HF_HOME");
  const std::string saved_home = old_home ? old_home : "";
  setenv("HF_HOME", "/srv/hf", 1);
  EXPECT_EQ(hub::cache_dir(), fs::path("/srv/hf/hub"));
  if (old_home) setenv("HF_HOME", saved_home.c_str(), 1);
  else unsetenv("HF_HOME");
  EXPECT_EQ(hub::repo_cache_dir("/c", "Org/Name"), fs::path("/c/models--Org--Name"));
}

TEST_F(CacheEnv, ResolvesNamesFromTheCacheAndPathsWin) {
  const fs::path snapshot = make_snapshot("org/tiny", {{"config.json", "{}"}, {"model.safetensors", "x"}});
  EXPECT_EQ(hub::resolve_model_path("org/tiny"), snapshot.string());
  EXPECT_EQ(hub::resolve_model_path("org/tiny:main"), snapshot.string());
  EXPECT_EQ(hub::resolve_model_path("org/tiny:" + kCommit), snapshot.string());
  // A directory that exists under the same name wins over the repository.
  const fs::path local = root_ / "org" / "tiny";
  fs::create_directories(local);
  const fs::path cwd = fs::current_path();
  fs::current_path(root_);
  EXPECT_EQ(hub::resolve_model_path("org/tiny"), "org/tiny");
  fs::current_path(cwd);
  // Unknown revision or repository: the error says where it looked and what to run.
  ErrorCode code{};
  const std::string missing = error_of([] { hub::resolve_model_path("org/tiny:v9"); }, &code);
  EXPECT_EQ(code, ErrorCode::BadInput);
  EXPECT_NE(missing.find("csq pull org/tiny:v9"), std::string::npos) << missing;
  EXPECT_NE(missing.find((root_ / "hub").string()), std::string::npos) << missing;
  EXPECT_NE(error_of([] { hub::resolve_model_path("org/other"); }).find("csq pull org/other"), std::string::npos);
  // Missing paths that cannot be repository names are left for the loader to report.
  EXPECT_EQ(hub::resolve_model_path("./missing"), "./missing");
  EXPECT_EQ(hub::resolve_model_path("models/x.gguf/"), "models/x.gguf/");
}

TEST_F(CacheEnv, ASnapshotOfOneGgufResolvesToTheFile) {
  const fs::path snapshot = make_snapshot("org/q", {{"README.md", "# q"}, {"q-Q4_K_M.gguf", "GGUF"}});
  EXPECT_EQ(hub::resolve_model_path("org/q"), (snapshot / "q-Q4_K_M.gguf").string());
  make_snapshot("org/two", {{"a.gguf", "A"}, {"b.gguf", "B"}});
  EXPECT_NE(error_of([] { hub::resolve_model_path("org/two"); }).find("several .gguf files"), std::string::npos);
}

ModelLock lock_for(const std::vector<std::pair<std::string, std::string>>& files) {
  ModelLock lock{"org/tiny", "main", kCommit, {}};
  for (const auto& [path, text] : files) {
    Sha256 h;
    h.update(text.data(), text.size());
    lock.files.push_back({path, text.size(), h.hex_digest()});
  }
  return lock;
}

TEST_F(CacheEnv, LockRoundTripsAndChecksADirectory) {
  const std::vector<std::pair<std::string, std::string>> files = {{"config.json", "{\"a\":1}"},
                                                                 {"sub/model.safetensors", "weights"}};
  const fs::path dir = make_snapshot("org/tiny", files);
  const ModelLock lock = lock_for(files);
  const std::string lock_path = (root_ / "csq.lock").string();
  write_lock(lock, lock_path);
  const ModelLock read = read_lock(lock_path);
  EXPECT_EQ(read.repo, "org/tiny");
  EXPECT_EQ(read.commit, kCommit);
  ASSERT_EQ(read.files.size(), 2u);
  EXPECT_EQ(read.files[1].path, "sub/model.safetensors");
  EXPECT_EQ(read.files[1].size, 7u);
  EXPECT_TRUE(check_directory(read, dir).ok());
  EXPECT_NO_THROW(require_lock(lock_path, dir.string()));
  EXPECT_NO_THROW(require_lock(lock_path, (dir / "sub" / "model.safetensors").string()));

  // A changed byte, a missing file and a file the lock does not list are each reported.
  const fs::path copy = root_ / "copy";
  fs::create_directories(copy / "sub");
  write_file(copy / "config.json", "{\"a\":2}");
  write_file(copy / "extra.jinja", "{{ x }}");
  const LockCheck check = check_directory(read, copy);
  ASSERT_EQ(check.files.size(), 3u);
  EXPECT_EQ(check.files[0].status, FileStatus::WrongHash);
  EXPECT_EQ(check.files[1].status, FileStatus::Missing);
  EXPECT_EQ(check.files[2].status, FileStatus::NotInLock);
  EXPECT_EQ(check.files[2].path, "extra.jinja");
  const std::string refused = error_of([&] { require_lock(lock_path, copy.string()); });
  EXPECT_NE(refused.find("config.json: wrong sha256"), std::string::npos) << refused;
  EXPECT_NE(refused.find("sub/model.safetensors: missing"), std::string::npos) << refused;
  EXPECT_NE(refused.find("extra.jinja: not in the lock"), std::string::npos) << refused;
  write_file(copy / "config.json", "{\"a\":22}");
  EXPECT_EQ(check_directory(read, copy).files[0].status, FileStatus::WrongSize);
}

TEST_F(CacheEnv, MalformedLocksNameTheField) {
  const fs::path path = root_ / "bad.lock";
  auto error_for = [&](const std::string& text) {
    write_file(path, text);
    ErrorCode code{};
    std::string message = error_of([&] { read_lock(path.string()); }, &code);
    EXPECT_EQ(code, ErrorCode::BadInput) << message;
    return message;
  };
  const std::string head = R"({"version":1,"repo":"o/n","revision":"main","commit":")" + kCommit + "\",";
  EXPECT_NE(error_for("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_for(R"({"version": 8e527})").find("not valid JSON"), std::string::npos);  // found by fuzz_hub_metadata
  EXPECT_NE(error_for(R"({"version":2})").find("'version' must be 1"), std::string::npos);
  EXPECT_NE(error_for(R"({"version":1,"repo":"o/n","revision":"main","commit":"abc","files":[]})").find("'commit'"),
            std::string::npos);
  EXPECT_NE(error_for(head + R"("files":[{"path":"../x","size":1,"sha256":")" + std::string(64, 'a') + "\"}]}")
                .find("files[0]: path '../x'"),
            std::string::npos);
  EXPECT_NE(error_for(head + R"("files":[{"path":"a","size":-1,"sha256":")" + std::string(64, 'a') + "\"}]}")
                .find("files[0]: field 'size'"),
            std::string::npos);
  EXPECT_NE(error_for(head + R"("files":[{"path":"a","size":1,"sha256":"XYZ"}]})").find("files[0]: field 'sha256'"),
            std::string::npos);
  EXPECT_NE(error_for(head + R"("files":[{"size":1}]})").find("files[0]: missing field 'path'"), std::string::npos);
}

}  // namespace
}  // namespace csq::io
