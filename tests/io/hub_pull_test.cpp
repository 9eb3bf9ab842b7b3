// `csq pull` against a fake Hugging Face Hub on 127.0.0.1: the model info API, resolve URLs
// redirected to a second "blob host", ranged requests, a connection dropped halfway, a changed
// byte, a gated repository (401 without the token) and a revision that does not exist (404).
// The files it serves are the tiny fixture model's, so the pulled model also runs, by name,
// from the cache, inside a network namespace without interfaces.
#include <gtest/gtest.h>
#include <httplib.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "io/digest.h"
#include "io/model_lock.h"
#include "test_paths.h"

namespace csq::test {
namespace {
namespace fs = std::filesystem;

const std::string kCommit = "5a1c2e3f4b5c6d7e8f90a1b2c3d4e5f60718293a";
const std::string kToken = "hf_TestSecret7f3a9c";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string sha256_hex(const std::string& bytes) {
  io::Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex_digest();
}

std::string git_blob_id(const std::string& bytes) {
  io::GitBlobSha1 h(bytes.size());
  h.update(bytes.data(), bytes.size());
  return h.hex_digest();
}

struct HubFile {
  std::string path;
  std::string content;
  bool lfs = false;
  std::string etag() const { return lfs ? sha256_hex(content) : git_blob_id(content); }
};

// The Hub's API server and a separate blob host the downloads are redirected to, as on huggingface.co.
class FakeHub {
 public:
  explicit FakeHub(std::vector<HubFile> files) : files_(std::move(files)) {
    for (const HubFile& f : files_) by_etag_[f.etag()] = &f;
    api_.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req.matches[1], req, res)) return;
      const std::string revision = req.matches[2];
      if (revision != "main" && revision != "v1" && revision != kCommit) {
        res.status = 404;
        res.set_header("X-Error-Message", "Invalid rev id: " + revision);
        return;
      }
      nlohmann::json siblings = nlohmann::json::array();
      for (const HubFile& f : files_) {
        nlohmann::json s{{"rfilename", f.path}, {"size", f.content.size()}, {"blobId", git_blob_id(f.content)}};
        if (f.lfs) s["lfs"] = {{"sha256", sha256_hex(f.content)}, {"size", f.content.size()}, {"pointerSize", 134}};
        siblings.push_back(s);
      }
      res.set_content(nlohmann::json{{"id", req.matches[1]}, {"sha", kCommit}, {"siblings", siblings}}.dump(),
                      "application/json");
    });
    api_.Get(R"(/([^/]+/[^/]+)/resolve/([0-9a-f]{40})/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req.matches[1], req, res)) return;
      const std::string path = req.matches[3];
      for (const HubFile& f : files_) {
        if (f.path != path) continue;
        res.status = 302;
        res.set_header("Location", "http://127.0.0.1:" + std::to_string(blob_port_) + "/blobs/" + f.etag());
        return;
      }
      res.status = 404;
    });
    blobs_.Get(R"(/blobs/([0-9a-f]+))", [this](const httplib::Request& req, httplib::Response& res) { serve_blob(req, res); });
    // Listening from here on: connections wait in the backlog until the threads accept them.
    api_port_ = api_.bind_to_any_port("127.0.0.1");
    blob_port_ = blobs_.bind_to_any_port("127.0.0.1");
    api_thread_ = std::thread([this] { api_.listen_after_bind(); });
    blob_thread_ = std::thread([this] { blobs_.listen_after_bind(); });
  }
  ~FakeHub() {
    api_.stop();
    blobs_.stop();
    api_thread_.join();
    blob_thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(api_port_); }
  // The next download of `path` stops after half of the file.
  void drop_once(const std::string& path) {
    std::lock_guard lock(mutex_);
    drop_once_.insert(path);
  }
  // Every download of `path` has one byte changed.
  void corrupt(const std::string& path) {
    std::lock_guard lock(mutex_);
    corrupt_.insert(path);
  }
  std::vector<std::string> ranges_seen(const std::string& path) {
    std::lock_guard lock(mutex_);
    return ranges_[path];
  }
  int blob_requests_with_authorization() {
    std::lock_guard lock(mutex_);
    return blob_auth_headers_;
  }

 private:
  // test/gated answers 401 without the right token; repositories other than test/* do not exist.
  bool authorised(const std::string& repo, const httplib::Request& req, httplib::Response& res) {
    const bool gated = repo == "test/gated";
    if (repo.rfind("test/", 0) == 0 && (!gated || req.get_header_value("Authorization") == "Bearer " + kToken))
      return true;
    res.status = 401;
    res.set_header("X-Error-Message", gated ? "Access to model test/gated is restricted; token " +
                                                  req.get_header_value("Authorization") + " refused"
                                            : "Repository not found");
    return false;
  }

  void serve_blob(const httplib::Request& req, httplib::Response& res) {
    auto it = by_etag_.find(req.matches[1]);
    if (it == by_etag_.end()) {
      res.status = 404;
      return;
    }
    const HubFile& f = *it->second;
    bool drop = false, corrupt = false;
    {
      std::lock_guard lock(mutex_);
      if (req.has_header("Authorization")) ++blob_auth_headers_;
      ranges_[f.path].push_back(req.get_header_value("Range"));
      drop = drop_once_.erase(f.path) > 0;
      corrupt = corrupt_.count(f.path) > 0;
    }
    const std::string* content = &f.content;
    res.set_content_provider(content->size(), "application/octet-stream",
                             [content, drop, corrupt](size_t offset, size_t length, httplib::DataSink& sink) {
                               const size_t end = offset + length;
                               const size_t stop = drop ? content->size() / 2 : end;
                               while (offset < end) {
                                 if (offset >= stop) return false;  // the connection closes mid-file
                                 std::string piece = content->substr(offset, std::min<size_t>({65536, end - offset, stop - offset}));
                                 const size_t flipped = content->size() / 3;
                                 if (corrupt && flipped >= offset && flipped < offset + piece.size())
                                   piece[flipped - offset] ^= 0x01;
                                 sink.write(piece.data(), piece.size());
                                 offset += piece.size();
                               }
                               return true;
                             });
  }

  std::vector<HubFile> files_;
  std::map<std::string, const HubFile*> by_etag_;
  httplib::Server api_, blobs_;
  int api_port_ = 0, blob_port_ = 0;
  std::thread api_thread_, blob_thread_;
  std::mutex mutex_;
  std::set<std::string> drop_once_, corrupt_;
  std::map<std::string, std::vector<std::string>> ranges_;
  int blob_auth_headers_ = 0;
};

std::vector<HubFile> fixture_files() {
  const fs::path dir = fixture("hf/qwen3-tiny-vocab");
  std::vector<HubFile> files;
  for (const char* name : {"config.json", "generation_config.json", "tokenizer_config.json"})
    files.push_back({name, read_file(dir / name), false});
  for (const char* name : {"tokenizer.json", "model.safetensors"}) files.push_back({name, read_file(dir / name), true});
  files.push_back({"extra/notes.txt", "Served from a sub-folder.\n", false});
  return files;
}

bool network_namespaces_work() {
  static const bool works = std::system("unshare -n true >/dev/null 2>&1") == 0;
  return works;
}

// Runs csq through a shell (for `unshare -n`); output through files.
RunResult run_shell(const std::string& command) {
  const std::string out = temp_dir() + "/shell.out", err = temp_dir() + "/shell.err";
  const int status = std::system((command + " >" + out + " 2>" + err).c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

class HubPull : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_fixtures()) GTEST_SKIP() << "shared fixtures not found at " << fixtures_dir();
    root_ = fs::path(temp_dir()) / ("pull_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    hub_ = std::make_unique<FakeHub>(fixture_files());
    for (const char* name : {"HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE"}) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      unsetenv(name);
    }
    setenv("HF_ENDPOINT", hub_->endpoint().c_str(), 1);
    setenv("HF_HUB_CACHE", cache().c_str(), 1);
    setenv("HF_HOME", (root_ / "hf_home").c_str(), 1);  // no token from the user's own login
  }
  void TearDown() override {
    for (const char* name : {"HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE"}) unsetenv(name);
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
    hub_.reset();
  }
  fs::path cache() const { return root_ / "hub"; }
  fs::path repo_dir(const std::string& folder = "models--test--tiny") const { return cache() / folder; }
  fs::path snapshot() const { return repo_dir() / "snapshots" / kCommit; }
  std::string lock() const { return (root_ / "csq.lock").string(); }
  RunResult pull(std::vector<std::string> extra) {
    std::vector<std::string> args = {"pull"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (std::find(extra.begin(), extra.end(), "--lock") == extra.end()) args.insert(args.end(), {"--lock", lock()});
    return run_csq(args);
  }
  std::string fixture_sha256(const std::string& name) { return io::sha256_file(fixture("hf/qwen3-tiny-vocab/" + name)); }

  fs::path root_;
  std::unique_ptr<FakeHub> hub_;
  std::map<std::string, std::string> saved_;
};

TEST_F(HubPull, PullsIntoTheCacheLayoutAndWritesALockThatVerifies) {
  const RunResult r = pull({"test/tiny"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, snapshot().string() + "\n");
  // huggingface_hub's layout: refs/main holds the commit, snapshot entries link into blobs/.
  EXPECT_EQ(read_file(repo_dir() / "refs" / "main"), kCommit);
  for (const HubFile& f : fixture_files()) {
    const fs::path link = snapshot() / f.path;
    ASSERT_TRUE(fs::is_symlink(link)) << link;
    const fs::path target = fs::read_symlink(link);
    EXPECT_EQ(target.generic_string(), (f.path.find('/') == std::string::npos ? "../../blobs/" : "../../../blobs/") + f.etag());
    EXPECT_EQ(read_file(link), f.content) << f.path;
  }
  EXPECT_NE(r.err.find("verified model.safetensors sha256 " + fixture_sha256("model.safetensors")), std::string::npos) << r.err;
  const io::ModelLock locked = io::read_lock(lock());
  EXPECT_EQ(locked.repo, "test/tiny");
  EXPECT_EQ(locked.revision, "main");
  EXPECT_EQ(locked.commit, kCommit);
  ASSERT_EQ(locked.files.size(), 6u);
  for (const io::LockedFile& f : locked.files) {
    if (f.path == "extra/notes.txt") continue;  // not a fixture file
    EXPECT_EQ(f.sha256, fixture_sha256(f.path)) << f.path;
  }

  const RunResult verified = run_csq({"verify", "--lock", lock(), snapshot().string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_NE(verified.out.find("matches"), std::string::npos);
  // Without a directory: the lock's commit in the cache.
  EXPECT_EQ(run_csq({"verify", "--lock", lock(), "--json"}).exit_code, 0);

  // A second pull downloads nothing: the blobs are there and still match.
  const RunResult again = pull({"test/tiny", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["downloaded_bytes"], 0);
  EXPECT_EQ(hub_->ranges_seen("model.safetensors").size(), 1u);
}

TEST_F(HubPull, ResumesADroppedDownloadWhereItStopped) {
  hub_->drop_once("model.safetensors");
  const RunResult first = pull({"test/tiny", "--retries", "0"});
  EXPECT_EQ(first.exit_code, 3) << first.err;
  EXPECT_NE(first.err.find("run the pull again to resume"), std::string::npos) << first.err;
  const HubFile model = fixture_files()[4];
  const fs::path partial = repo_dir() / "blobs" / (model.etag() + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  const uint64_t kept = fs::file_size(partial);
  EXPECT_GT(kept, 0u);
  EXPECT_LE(kept, model.content.size() / 2);
  EXPECT_FALSE(fs::exists(snapshot() / "model.safetensors"));  // nothing unverified is visible
  EXPECT_FALSE(fs::exists(lock()));

  const RunResult second = pull({"test/tiny"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("resume   model.safetensors at"), std::string::npos) << second.err;
  const std::vector<std::string> ranges = hub_->ranges_seen("model.safetensors");
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(kept) + "-");
  EXPECT_EQ(read_file(snapshot() / "model.safetensors"), model.content);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(run_csq({"verify", "--lock", lock()}).exit_code, 0);
}

TEST_F(HubPull, RetriesADroppedConnectionWithinOneRun) {
  hub_->drop_once("tokenizer.json");
  const RunResult r = pull({"test/tiny", "--retries", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("retry    tokenizer.json"), std::string::npos) << r.err;
  const std::vector<std::string> ranges = hub_->ranges_seen("tokenizer.json");
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[1].rfind("bytes=", 0), 0u) << ranges[1];
  EXPECT_EQ(read_file(snapshot() / "tokenizer.json"), fixture_files()[3].content);
}

TEST_F(HubPull, RejectsFilesWhoseBytesDoNotMatchTheHubsHash) {
  hub_->corrupt("model.safetensors");     // an LFS file: checked against its sha256
  hub_->corrupt("tokenizer_config.json");  // a plain file: checked against git's blob id
  const RunResult r = pull({"test/tiny"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("2 of 6 downloads failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("model.safetensors: sha256 of the received bytes is"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the Hub lists " + fixture_sha256("model.safetensors")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokenizer_config.json: git blob id of the received bytes is"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(snapshot() / "model.safetensors"));
  EXPECT_FALSE(fs::exists(snapshot() / "tokenizer_config.json"));
  EXPECT_TRUE(fs::exists(snapshot() / "config.json"));
  for (const auto& entry : fs::directory_iterator(repo_dir() / "blobs")) {
    EXPECT_NE(entry.path().extension(), ".incomplete") << entry.path();
    EXPECT_NE(entry.path().filename(), fixture_files()[4].etag());
  }
  EXPECT_FALSE(fs::exists(lock()));
}

TEST_F(HubPull, GatedRepositoriesNeedTheTokenWhichIsNeverPrinted) {
  RunResult r = pull({"test/gated"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("HTTP 401"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("set HF_TOKEN or pass --token-file"), std::string::npos) << r.err;

  const std::string wrong = "hf_WrongToken0000";
  const fs::path token_file = root_ / "token";
  std::ofstream(token_file) << wrong << "\n";
  r = pull({"test/gated", "--token-file", token_file.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("the token was refused"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(wrong), std::string::npos) << "the server echoed the token and csq printed it: " << r.err;
  EXPECT_EQ(r.out.find(wrong), std::string::npos);

  setenv("HF_TOKEN", kToken.c_str(), 1);
  r = pull({"test/gated", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(kToken), std::string::npos);
  EXPECT_EQ(r.out.find(kToken), std::string::npos);
  EXPECT_TRUE(fs::exists(repo_dir("models--test--gated") / "snapshots" / kCommit / "model.safetensors"));
  // The token went to the Hub only, not to the blob host the downloads were redirected to.
  EXPECT_EQ(hub_->blob_requests_with_authorization(), 0);
}

TEST_F(HubPull, MissingRevisionsAndRepositoriesAreBadInput) {
  RunResult r = pull({"test/tiny:no-such-branch"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("HTTP 404 (Invalid rev id: no-such-branch)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("revision ('no-such-branch')"), std::string::npos) << r.err;
  r = pull({"nobody/nothing"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Repository not found"), std::string::npos) << r.err;
  r = pull({"not-a-repo"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("expected ORG/NAME"), std::string::npos) << r.err;
  setenv("HF_HUB_OFFLINE", "1", 1);
  r = pull({"test/tiny"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("HF_HUB_OFFLINE"), std::string::npos) << r.err;
}

TEST_F(HubPull, DirectoryModeWithIncludeAndExclude) {
  const fs::path dir = root_ / "plain";
  const RunResult r = pull({"test/tiny:v1", "--dir", dir.string(), "--include", "*.json", "--include", "extra/",
                            "--exclude", "tokenizer*", "--lock", (dir / "csq.lock").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> present;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (!entry.is_directory()) present.insert(entry.path().lexically_relative(dir).generic_string());
  EXPECT_EQ(present, (std::set<std::string>{"config.json", "generation_config.json", "extra/notes.txt", "csq.lock"}));
  EXPECT_FALSE(fs::is_symlink(dir / "config.json"));
  EXPECT_FALSE(fs::exists(cache()));  // --dir does not touch the cache
  const std::string lock_path = (dir / "csq.lock").string();
  EXPECT_EQ(io::read_lock(lock_path).revision, "v1");
  RunResult v = run_csq({"verify", "--lock", lock_path, dir.string()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;

  // Carried to another machine: an added file and a changed byte are both refused.
  std::ofstream(dir / "chat_template.jinja") << "{{ messages }}";
  std::string config = read_file(dir / "config.json");
  config[config.size() / 2] ^= 0x20;
  std::ofstream(dir / "config.json", std::ios::binary) << config;
  v = run_csq({"verify", "--lock", lock_path, dir.string(), "--json"});
  EXPECT_EQ(v.exit_code, 2);
  const auto j = nlohmann::json::parse(v.out);
  EXPECT_EQ(j["ok"], false);
  std::map<std::string, std::string> status;
  for (const auto& f : j["files"]) status[f["path"]] = f["status"];
  EXPECT_EQ(status["config.json"], "wrong sha256");
  EXPECT_EQ(status["chat_template.jinja"], "not in the lock");
  EXPECT_EQ(status["generation_config.json"], "ok");
}

TEST_F(HubPull, ModelsRunByNameFromTheCacheWithoutNetwork) {
  ASSERT_EQ(pull({"test/tiny"}).exit_code, 0);
  const std::vector<std::string> gen = {"--prompt", "Hello", "--max-tokens", "6", "--temperature", "0", "--threads", "1", "--json"};
  std::vector<std::string> by_path = {"run", "--model", fixture("hf/qwen3-tiny-vocab")};
  by_path.insert(by_path.end(), gen.begin(), gen.end());
  std::vector<std::string> by_name = {"run", "--model", "test/tiny", "--require-lock", lock()};
  by_name.insert(by_name.end(), gen.begin(), gen.end());
  const RunResult expected = run_csq(by_path);
  ASSERT_EQ(expected.exit_code, 0) << expected.err;
  const RunResult named = run_csq(by_name);
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(nlohmann::json::parse(named.out)["text"], nlohmann::json::parse(expected.out)["text"]);

  RunResult info = run_csq({"info", "--model", "test/tiny:main", "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["path"], snapshot().string());

  // A lock that names other bytes refuses the model before it loads.
  io::ModelLock other = io::read_lock(lock());
  other.files[0].sha256 = std::string(64, '0');
  const std::string other_lock = (root_ / "other.lock").string();
  io::write_lock(other, other_lock);
  info = run_csq({"info", "--model", "test/tiny", "--require-lock", other_lock});
  EXPECT_EQ(info.exit_code, 2);
  EXPECT_NE(info.err.find(other.files[0].path + ": wrong sha256"), std::string::npos) << info.err;

  if (!network_namespaces_work()) GTEST_SKIP() << "unshare -n is not permitted here: the offline run was not checked";
  const std::string env = "HF_HUB_CACHE=" + cache().string() + " HF_ENDPOINT=" + hub_->endpoint();
  RunResult offline = run_shell(env + " unshare -n " + csq_binary() + " run --model test/tiny --prompt Hello "
                                "--max-tokens 6 --temperature 0 --threads 1 --json");
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_EQ(nlohmann::json::parse(offline.out)["text"], nlohmann::json::parse(expected.out)["text"]);
  // ... where pull itself cannot reach the Hub: the namespace really has no network.
  offline = run_shell(env + " unshare -n " + csq_binary() + " pull test/tiny --no-lock --retries 0");
  EXPECT_EQ(offline.exit_code, 3) << offline.err;
  EXPECT_NE(offline.err.find("cannot reach"), std::string::npos) << offline.err;
}

}  // namespace
}  // namespace csq::test
