#include "io/hub_cache.h"

#include <cstdlib>
#include <vector>

#include "base/error.h"
#include "io/mapped_file.h"

namespace csq::io::hub {
namespace fs = std::filesystem;
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}

// The Hub's rules for each half of a repository id (huggingface_hub's validate_repo_id).
void check_name_part(const std::string& part, const std::string& text) {
  if (part.empty() || part.size() > 96)
    fail_usage("'" + text + "': an organisation or model name must have 1 to 96 characters");
  if (part.find("--") != std::string::npos || part.find("..") != std::string::npos)
    fail_usage("'" + text + "': '--' and '..' are not allowed in a repository name");
  if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.')
    fail_usage("'" + text + "': a repository name cannot start or end with '-' or '.'");
}

void check_revision(const std::string& revision, const std::string& text) {
  if (revision.empty()) fail_usage("'" + text + "': empty revision after ':'");
  if (revision.size() > 255) fail_usage("'" + text + "': revision longer than 255 characters");
  for (char c : revision)
    if (c <= ' ' || c == 127 || c == '\\' || c == '~' || c == '^' || c == '?' || c == '*' || c == '[')
      fail_usage("'" + text + "': the revision contains a character git does not allow in a ref");
  if (revision.front() == '/' || revision.back() == '/' || revision.find("..") != std::string::npos ||
      revision.find("//") != std::string::npos)
    fail_usage("'" + text + "': malformed revision '" + revision + "'");
}

}  // namespace

std::optional<RepoRef> parse_repo_ref(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const size_t colon = text.find(':', slash);
  const std::string repo = text.substr(0, colon);
  if (repo.find('/', slash + 1) != std::string::npos) return std::nullopt;  // a path with more parts
  for (char c : repo)
    if (c != '/' && !is_name_char(c)) return std::nullopt;
  check_name_part(repo.substr(0, slash), text);
  check_name_part(repo.substr(slash + 1), text);
  RepoRef ref{repo, "main"};
  if (colon != std::string::npos) {
    ref.revision = text.substr(colon + 1);
    check_revision(ref.revision, text);
  }
  return ref;
}

bool is_safe_relative_path(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

bool is_commit_hash(const std::string& revision) {
  if (revision.size() != 40) return false;
  for (char c : revision)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

fs::path cache_dir() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  const std::string home = env("HOME");
  if (home.empty()) fail_usage("cannot locate the Hugging Face cache: set HF_HUB_CACHE, HF_HOME or HOME");
  return fs::path(home) / ".cache" / "huggingface" / "hub";
}

fs::path repo_cache_dir(const fs::path& cache, const std::string& repo) {
  std::string folder = "models--" + repo;
  const size_t slash = folder.find('/');
  if (slash != std::string::npos) folder.replace(slash, 1, "--");
  return cache / folder;
}

std::optional<std::string> cached_commit(const fs::path& cache, const RepoRef& ref) {
  const fs::path repo_dir = repo_cache_dir(cache, ref.repo);
  std::error_code ec;
  if (is_commit_hash(ref.revision)) {
    if (fs::is_directory(repo_dir / "snapshots" / ref.revision, ec)) return ref.revision;
    return std::nullopt;
  }
  const fs::path ref_file = repo_dir / "refs" / ref.revision;
  if (!fs::is_regular_file(ref_file, ec)) return std::nullopt;
  std::string commit = read_text_file(ref_file.string());
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == '\r' || commit.back() == ' ')) commit.pop_back();
  if (!is_commit_hash(commit))
    fail_input(ref_file.string() + ": expected a 40-hex commit id, found '" + commit.substr(0, 80) + "'");
  return commit;
}

std::string resolve_model_path(const std::string& model) {
  std::error_code ec;
  if (model.empty() || fs::exists(model, ec)) return model;
  std::optional<RepoRef> ref;
  try {
    ref = parse_repo_ref(model);
  } catch (const Error&) {
    // Breaks the Hub's naming rules (e.g. "./model"): a path after all.
  }
  if (!ref) return model;  // not a repository name either: the loader reports the missing path
  const fs::path cache = cache_dir();
  const std::optional<std::string> commit = cached_commit(cache, *ref);
  const std::string spec = ref->repo + (ref->revision == "main" ? "" : ":" + ref->revision);
  if (!commit)
    fail_input("'" + model + "' is not a file or directory, and revision '" + ref->revision + "' of " + ref->repo +
               " is not in the Hugging Face cache at " + cache.string() + " (fetch it with: csq pull " + spec + ")");
  const fs::path snapshot = repo_cache_dir(cache, ref->repo) / "snapshots" / *commit;
  if (!fs::is_directory(snapshot, ec))
    fail_input(model + ": the cache names commit " + *commit + " but " + snapshot.string() +
               " is missing (fetch it again with: csq pull " + spec + ")");
  if (fs::exists(snapshot / "config.json", ec)) return snapshot.string();
  std::vector<fs::path> ggufs;
  for (const auto& entry : fs::directory_iterator(snapshot, ec))
    if (entry.path().extension() == ".gguf") ggufs.push_back(entry.path());
  if (ggufs.size() == 1) return ggufs.front().string();
  if (ggufs.empty())
    fail_input(model + ": snapshot " + snapshot.string() + " has neither config.json nor a .gguf file");
  std::string names;
  for (const auto& p : ggufs) names += "\n  " + p.string();
  fail_input(model + ": snapshot holds several .gguf files; pass one of them as --model:" + names);
}

}  // namespace csq::io::hub
