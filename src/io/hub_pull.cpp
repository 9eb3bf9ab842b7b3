#include "io/hub_pull.h"

#include <curl/curl.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/error.h"
#include "io/digest.h"
#include "io/mapped_file.h"

namespace csq::io::hub {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxInfoBytes = size_t(64) << 20;  // the model info of a repository with many thousands of files

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string trim(std::string text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  return first == std::string::npos ? "" : text.substr(first, last - first + 1);
}

// Percent-encodes all but RFC 3986's unreserved characters (and '/' when asked).
std::string url_quote(const std::string& text, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += char(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

// Text from a server (its X-Error-Message) shown to the user: printable ASCII only, bounded.
std::string printable(const std::string& text) {
  std::string out;
  for (unsigned char c : text.substr(0, 300)) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return out;
}

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using HeaderListPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// The response of the last hop (after redirects) of one request.
struct ResponseHead {
  long status = 0;
  std::string error_message;   // X-Error-Message, the Hub's reason for a refusal
  int64_t content_range_start = -1;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* head = static_cast<ResponseHead*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    *head = ResponseHead{};
    const size_t space = line.find(' ');
    if (space != std::string::npos) head->status = std::strtol(line.c_str() + space + 1, nullptr, 10);
    return size * count;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * count;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  const std::string value = trim(line.substr(colon + 1));
  if (name == "x-error-message") head->error_message = printable(value);
  if (name == "content-range" && value.rfind("bytes ", 0) == 0)
    head->content_range_start = std::strtoll(value.c_str() + 6, nullptr, 10);
  return size * count;
}

class Http {
 public:
  Http(const std::string& token) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    handle_.reset(curl_easy_init());
    if (!handle_) fail_runtime("cannot initialise libcurl");
    curl_slist* list = curl_slist_append(nullptr, "Accept-Encoding: identity");
    // libcurl sends a custom Authorization header only to the host (and port) of the first
    // URL, so the token never reaches the blob host a download is redirected to.
    if (!token.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + token).c_str());
    headers_.reset(list);
  }

  // Sets up a GET of `url`; body bytes go to `write(data, size)`, which returns false to abort.
  void prepare(const std::string& url, ResponseHead& head, const std::string& range,
               std::function<bool(const char*, size_t)>& write) {
    CURL* h = handle_.get();
    curl_easy_reset(h);
    error_[0] = 0;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers_.get());
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "csq/0.1.0");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stalled connection gives up after a minute
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &head);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &write);
    if (!range.empty()) curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
  }

  CURLcode perform() { return curl_easy_perform(handle_.get()); }

  std::string describe(CURLcode rc) const {
    return std::string(curl_easy_strerror(rc)) + (error_[0] ? std::string(": ") + error_ : "");
  }

 private:
  static size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto& write = *static_cast<std::function<bool(const char*, size_t)>*>(user);
    return write(data, size * count) ? size * count : 0;
  }

  CurlPtr handle_;
  HeaderListPtr headers_;
  char error_[CURL_ERROR_SIZE] = {};
};

bool retryable_status(long status) { return status == 408 || status == 429 || status >= 500; }

// The error for a refused request: who refused what, the Hub's reason, and what to do.
Error refusal(long status, const std::string& what, const ResponseHead& head, const PullOptions& o) {
  const std::string reason = head.error_message.empty() ? "" : " (" + head.error_message + ")";
  std::string message = what + ": the Hub answered HTTP " + std::to_string(status) + reason;
  if (status == 401 || status == 403)
    message += o.token.empty() ? "; the repository is gated, private or missing: set HF_TOKEN or pass --token-file"
                               : "; the token was refused: check it, and accept the model's conditions on its page";
  else if (status == 404)
    message += "; check the repository name and the revision ('" + o.ref.revision + "')";
  // A server may echo what it was sent; the token never reaches the terminal.
  for (size_t at; !o.token.empty() && (at = message.find(o.token)) != std::string::npos;)
    message.replace(at, o.token.size(), "***");
  return Error(status == 401 || status == 403 || status == 404 ? ErrorCode::BadInput : ErrorCode::Runtime, message);
}

void backoff(int attempt) { std::this_thread::sleep_for(std::chrono::seconds(std::min(1 << std::min(attempt, 5), 30))); }

ModelInfo fetch_model_info(const PullOptions& o) {
  const std::string url = o.endpoint + "/api/models/" + o.ref.repo + "/revision/" + url_quote(o.ref.revision, false) +
                          "?blobs=true";
  const std::string what = o.ref.repo + " revision " + o.ref.revision;
  Http http(o.token);
  std::string body;
  for (int attempt = 0;; ++attempt) {
    ResponseHead head;
    body.clear();
    std::function<bool(const char*, size_t)> write = [&](const char* data, size_t size) {
      if (body.size() + size > kMaxInfoBytes) return false;
      body.append(data, size);
      return true;
    };
    http.prepare(url, head, "", write);
    const CURLcode rc = http.perform();
    if (rc == CURLE_WRITE_ERROR) fail_input(what + ": the model info is larger than 64 MiB");
    if (rc == CURLE_OK && head.status == 200) break;
    const bool retry = rc != CURLE_OK || retryable_status(head.status);
    if (!retry) throw refusal(head.status, what, head, o);
    if (attempt >= o.retries) {
      if (rc != CURLE_OK) fail_runtime(what + ": cannot reach " + o.endpoint + ": " + http.describe(rc));
      throw refusal(head.status, what, head, o);
    }
    backoff(attempt);
  }
  return parse_model_info(body, what);
}

bool glob_matches(const std::vector<std::string>& patterns, const std::string& path) {
  for (std::string pattern : patterns) {
    if (!pattern.empty() && pattern.back() == '/') pattern += '*';  // "dir/" selects the folder, as huggingface_hub does
    if (fnmatch(pattern.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

struct Digests {
  std::string sha256;
  std::string git_blob_id;
};

Digests hash_file(const fs::path& path, uint64_t size) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) fail_runtime(path.string() + ": cannot open to verify it: " + std::strerror(errno));
  Sha256 sha256;
  GitBlobSha1 git(size);
  std::vector<char> piece(1 << 20);
  size_t got = 0;
  while ((got = std::fread(piece.data(), 1, piece.size(), file.get())) > 0) {
    sha256.update(piece.data(), got);
    git.update(piece.data(), got);
  }
  if (std::ferror(file.get())) fail_runtime(path.string() + ": read error while verifying");
  return {sha256.hex_digest(), git.hex_digest()};
}

// Compares a complete file with the Hub's hash; the sha256 for the lock, or why it does not match.
std::pair<std::string, std::string> verify(const RemoteFile& f, const fs::path& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec || size != f.size)
    return {"", std::to_string(size) + " bytes where the Hub lists " + std::to_string(f.size)};
  const Digests d = hash_file(path, f.size);
  if (f.lfs && d.sha256 != f.sha256)
    return {"", "sha256 of the received bytes is " + d.sha256 + ", the Hub lists " + f.sha256};
  if (!f.lfs && d.git_blob_id != f.blob_id)
    return {"", "git blob id of the received bytes is " + d.git_blob_id + ", the Hub lists " + f.blob_id};
  return {d.sha256, ""};
}

void make_parent(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) fail_runtime(path.parent_path().string() + ": cannot create: " + ec.message());
}

class Puller {
 public:
  Puller(const PullOptions& o, const PullCallbacks& callbacks, ModelInfo info)
      : o_(o), callbacks_(callbacks), info_(std::move(info)) {
    model_dir_ = o.dir.empty() ? repo_cache_dir(o.cache, o.ref.repo) / "snapshots" / info_.commit : o.dir;
  }

  PullResult run(std::vector<RemoteFile> selected) {
    // The cache stores identical contents once: one download per blob, a link for each path.
    std::map<std::string, size_t> task_of_blob;
    for (RemoteFile& f : selected) {
      progress_.total_bytes += f.size;
      if (o_.dir.empty()) {
        auto [it, fresh] = task_of_blob.emplace(f.etag(), tasks_.size());
        if (!fresh) {
          tasks_[it->second].links.push_back(f.path);
          continue;
        }
      }
      tasks_.push_back({f, {f.path}});
    }
    progress_.files_total = int(selected.size());
    std::sort(tasks_.begin(), tasks_.end(), [](const Task& a, const Task& b) { return a.file.size > b.file.size; });
    std::vector<std::thread> workers;
    const int jobs = std::max(1, std::min<int>(o_.jobs, int(tasks_.size())));
    for (int i = 0; i < jobs; ++i) workers.emplace_back([this] { work(); });
    while (finished_workers_.load() < jobs) {
      report_progress();
      std::unique_lock lock(done_mutex_);
      done_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return finished_workers_.load() >= jobs; });
    }
    for (auto& w : workers) w.join();
    report_progress();
    if (!failures_.empty()) {
      ErrorCode code = ErrorCode::Runtime;
      std::string message = o_.ref.repo + ": " + std::to_string(failures_.size()) + " of " +
                            std::to_string(tasks_.size()) + " downloads failed";
      for (const auto& [path, error] : failures_) {
        message += "\n  " + path + ": " + error.what();
        if (error.code() == ErrorCode::BadInput) code = ErrorCode::BadInput;
      }
      throw Error(code, message);
    }
    PullResult result;
    result.lock = {o_.ref.repo, o_.ref.revision, info_.commit, locked_};
    result.model_dir = model_dir_;
    result.downloaded_bytes = transferred_.load();
    return result;
  }

 private:
  struct Task {
    RemoteFile file;
    std::vector<std::string> links;  // the paths with these contents
  };

  void event(PullEvent e) {
    std::lock_guard lock(event_mutex_);
    if (callbacks_.on_event) callbacks_.on_event(e);
  }

  void report_progress() {
    if (!callbacks_.on_progress) return;
    PullProgress p = progress_;
    p.done_bytes = done_.load();
    p.transferred_bytes = transferred_.load();
    p.files_done = files_done_.load();
    std::lock_guard lock(event_mutex_);
    callbacks_.on_progress(p);
  }

  void work() {
    Http http(o_.token);
    for (;;) {
      const size_t index = next_task_.fetch_add(1);
      if (index >= tasks_.size()) break;
      const Task& task = tasks_[index];
      try {
        fetch(http, task);
      } catch (const Error& e) {
        std::lock_guard lock(failure_mutex_);
        failures_.emplace_back(task.file.path, e);
        event({PullEvent::Failed, task.file.path, task.file.size, 0, e.what()});
      }
    }
    ++finished_workers_;
    done_cv_.notify_all();
  }

  fs::path final_path(const Task& t) const {
    return o_.dir.empty() ? repo_cache_dir(o_.cache, o_.ref.repo) / "blobs" / t.file.etag() : o_.dir / t.file.path;
  }

  fs::path partial_path(const Task& t) const {
    return o_.dir.empty() ? fs::path(final_path(t).string() + ".incomplete")
                          : o_.dir / ".csq-download" / (t.file.path + ".incomplete");
  }

  void fetch(Http& http, const Task& task) {
    const RemoteFile& f = task.file;
    const fs::path final_file = final_path(task);
    std::error_code ec;
    if (fs::is_regular_file(final_file, ec) && !fs::is_symlink(final_file, ec)) {
      auto [sha256, problem] = verify(f, final_file);
      if (problem.empty()) {
        done_ += f.size;
        publish(task, sha256);
        event({PullEvent::Reused, f.path, f.size, 0, sha256});
        return;
      }
      fs::remove(final_file, ec);  // bytes from elsewhere that do not match: fetch them again
    }
    const fs::path partial = partial_path(task);
    make_parent(partial);
    download(http, f, partial);
    auto [sha256, problem] = verify(f, partial);
    if (!problem.empty()) {
      fs::remove(partial, ec);
      done_ -= f.size;
      fail_input(problem + "; the download was discarded");
    }
    make_parent(final_file);
    fs::rename(partial, final_file, ec);
    if (ec) fail_runtime("cannot move " + partial.string() + " to " + final_file.string() + ": " + ec.message());
    publish(task, sha256);
    event({PullEvent::Verified, f.path, f.size, 0, sha256});
  }

  // Makes verified contents visible under every path that has them, and records them for the lock.
  void publish(const Task& task, const std::string& sha256) {
    std::error_code ec;
    for (const std::string& path : task.links) {
      if (o_.dir.empty()) {
        const fs::path link = model_dir_ / path;
        make_parent(link);
        fs::remove(link, ec);
        fs::create_symlink(final_path(task).lexically_relative(link.parent_path()), link, ec);
        if (ec) fail_runtime(link.string() + ": cannot create the snapshot link: " + ec.message());
      }
      std::lock_guard lock(failure_mutex_);
      locked_.push_back({path, task.file.size, sha256});
      ++files_done_;
    }
  }

  // Brings `partial` to the file's full size, resuming from what is already there.
  void download(Http& http, const RemoteFile& f, const fs::path& partial) {
    const std::string url =
        o_.endpoint + "/" + o_.ref.repo + "/resolve/" + info_.commit + "/" + url_quote(f.path, true);
    std::error_code ec;
    uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (have > f.size) {
      fs::remove(partial, ec);
      have = 0;
    }
    if (have > 0) event({PullEvent::Resume, f.path, f.size, have, ""});
    else event({PullEvent::Start, f.path, f.size, 0, ""});
    done_ += have;
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(partial.c_str(), "ab"), std::fclose);
      if (!out) fail_runtime(partial.string() + ": cannot open for writing: " + std::strerror(errno));
      if (have == f.size) return;  // complete already (or empty)
      ResponseHead head;
      std::string abort_reason;
      const uint64_t requested_from = have;
      std::function<bool(const char*, size_t)> write = [&](const char* data, size_t size) {
        if (head.status != 200 && head.status != 206) return true;  // an error page: not file content
        if (head.status == 206 && head.content_range_start != int64_t(requested_from)) {
          abort_reason = "the server sent a range starting at " + std::to_string(head.content_range_start) +
                         " when asked for " + std::to_string(requested_from);
          return false;
        }
        if (head.status == 200 && have > 0 && have == requested_from) {
          // The server ignored the range: start the file again.
          if (ftruncate(fileno(out.get()), 0) != 0 || std::fseek(out.get(), 0, SEEK_SET) != 0) {
            abort_reason = "cannot truncate " + partial.string();
            return false;
          }
          done_ -= have;
          have = 0;
        }
        if (have + size > f.size) {
          abort_reason = "the server sent more than the " + std::to_string(f.size) + " bytes the model info lists";
          return false;
        }
        if (std::fwrite(data, 1, size, out.get()) != size) {
          abort_reason = partial.string() + ": write failed (" + std::strerror(errno) + ")";
          return false;
        }
        have += size;
        done_ += size;
        transferred_ += size;
        return true;
      };
      http.prepare(url, head, have > 0 ? std::to_string(have) + "-" : "", write);
      const CURLcode rc = http.perform();
      if (std::fflush(out.get()) != 0) fail_runtime(partial.string() + ": write failed: " + std::strerror(errno));
      out.reset();
      if (!abort_reason.empty()) {
        if (abort_reason.find("more than") != std::string::npos || abort_reason.find("range starting") != std::string::npos) {
          fs::remove(partial, ec);
          done_ -= have;
          fail_input(abort_reason);
        }
        fail_runtime(abort_reason);
      }
      std::string why;
      if (rc == CURLE_OK && (head.status == 200 || head.status == 206)) {
        if (have == f.size) return;
        why = "the transfer ended at " + std::to_string(have) + " of " + std::to_string(f.size) + " bytes";
      } else if (rc == CURLE_OK && head.status == 416) {
        fs::remove(partial, ec);  // the part on disk does not fit the file the server has
        done_ -= have;
        have = 0;
        why = "the server refused the range (416)";
      } else if (rc == CURLE_OK && !retryable_status(head.status)) {
        throw refusal(head.status, "download", head, o_);
      } else {
        why = rc == CURLE_OK ? "HTTP " + std::to_string(head.status) : http.describe(rc);
      }
      if (attempt >= o_.retries)
        fail_runtime(why + " (" + std::to_string(have) + " bytes kept in " + partial.string() + "; run the pull again to resume)");
      event({PullEvent::Retry, f.path, f.size, have, why});
      backoff(attempt);
    }
  }

  const PullOptions& o_;
  const PullCallbacks& callbacks_;
  ModelInfo info_;
  fs::path model_dir_;
  std::vector<Task> tasks_;
  std::atomic<size_t> next_task_{0};
  std::atomic<int> finished_workers_{0};
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> transferred_{0};
  std::atomic<int> files_done_{0};
  PullProgress progress_;
  std::mutex event_mutex_, failure_mutex_, done_mutex_;
  std::condition_variable done_cv_;
  std::vector<std::pair<std::string, Error>> failures_;
  std::vector<LockedFile> locked_;
};

}  // namespace

ModelInfo parse_model_info(const std::string& body, const std::string& what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 8e527
    fail_input(what + ": the model info is not JSON (" + e.what() + ")");
  }
  const std::string where = what + ": model info";
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !is_commit_hash(j["sha"].get<std::string>()))
    fail_input(where + ": field 'sha' must be a 40-hex commit id");
  if (!j.contains("siblings") || !j["siblings"].is_array()) fail_input(where + ": field 'siblings' must be an array");
  ModelInfo info;
  info.commit = j["sha"].get<std::string>();
  for (size_t i = 0; i < j["siblings"].size(); ++i) {
    const nlohmann::json& s = j["siblings"][i];
    const std::string at = where + ": siblings[" + std::to_string(i) + "]";
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string())
      fail_input(at + ": field 'rfilename' must be a string");
    RemoteFile f;
    f.path = s["rfilename"].get<std::string>();
    if (!is_safe_relative_path(f.path) || f.path.rfind(".csq-download/", 0) == 0)
      fail_input(at + ": file name '" + printable(f.path) + "' is not a plain relative path");
    if (!s.contains("size") || !s["size"].is_number_unsigned()) fail_input(at + " (" + f.path + "): no 'size'");
    f.size = s["size"].get<uint64_t>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const nlohmann::json& lfs = s["lfs"];
      if (!lfs.contains("sha256") || !lfs["sha256"].is_string() || !is_lower_hex(lfs["sha256"].get<std::string>(), 64))
        fail_input(at + " (" + f.path + "): field 'lfs.sha256' must be 64 lowercase hex digits");
      f.lfs = true;
      f.sha256 = lfs["sha256"].get<std::string>();
    } else {
      if (!s.contains("blobId") || !s["blobId"].is_string() || !is_lower_hex(s["blobId"].get<std::string>(), 40))
        fail_input(at + " (" + f.path + "): field 'blobId' must be 40 lowercase hex digits");
      f.blob_id = s["blobId"].get<std::string>();
    }
    info.files.push_back(std::move(f));
  }
  return info;
}

std::string default_endpoint() {
  std::string endpoint = env("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

std::string default_token() {
  if (auto token = trim(env("HF_TOKEN")); !token.empty()) return token;
  std::string path = env("HF_TOKEN_PATH");
  if (path.empty()) {
    const std::string home = env("HF_HOME");
    if (!home.empty()) path = home + "/token";
    else if (!env("HOME").empty()) path = env("HOME") + "/.cache/huggingface/token";
  }
  std::error_code ec;
  if (path.empty() || !fs::is_regular_file(path, ec)) return "";
  return trim(read_text_file(path));
}

PullResult pull(const PullOptions& o, const PullCallbacks& callbacks) {
  if (o.endpoint.rfind("http://", 0) != 0 && o.endpoint.rfind("https://", 0) != 0)
    fail_usage("endpoint '" + o.endpoint + "' must start with http:// or https://");
  for (char c : o.token)
    if (c < 0x21 || c == 0x7f) fail_usage("the Hugging Face token contains a space or control character");
  if (o.jobs < 1 || o.jobs > 64) fail_usage("--jobs must be between 1 and 64");
  if (o.retries < 0) fail_usage("--retries must not be negative");
  const std::string offline = env("HF_HUB_OFFLINE");
  if (!offline.empty() && offline != "0" && offline != "false")
    fail_usage("HF_HUB_OFFLINE is set: csq pull needs the network (unset it to download)");

  ModelInfo info = fetch_model_info(o);
  std::vector<RemoteFile> selected;
  for (const RemoteFile& f : info.files) {
    if (!o.include.empty() && !glob_matches(o.include, f.path)) continue;
    if (glob_matches(o.exclude, f.path)) continue;
    selected.push_back(f);
  }
  if (selected.empty())
    fail_input(o.ref.repo + " at " + info.commit + ": no file matches --include/--exclude (the revision has " +
               std::to_string(info.files.size()) + " files)");
  PullResult result = Puller(o, callbacks, std::move(info)).run(std::move(selected));

  std::error_code ec;
  if (o.dir.empty() && !is_commit_hash(o.ref.revision)) {
    const fs::path ref_file = repo_cache_dir(o.cache, o.ref.repo) / "refs" / o.ref.revision;
    make_parent(ref_file);
    const fs::path temp = ref_file.string() + ".tmp";
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(temp.c_str(), "wb"), std::fclose);
    if (!out || std::fputs(result.lock.commit.c_str(), out.get()) < 0 || std::fflush(out.get()) != 0)
      fail_runtime(temp.string() + ": cannot write");
    out.reset();
    fs::rename(temp, ref_file, ec);
    if (ec) fail_runtime(ref_file.string() + ": cannot write: " + ec.message());
  }
  if (!o.dir.empty()) {
    const fs::path staging = o.dir / ".csq-download";
    bool holds_files = false;
    for (auto it = fs::recursive_directory_iterator(staging, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      holds_files |= !it->is_directory(ec);
    if (!holds_files) fs::remove_all(staging, ec);
  }
  return result;
}

}  // namespace csq::io::hub
