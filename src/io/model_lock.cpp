#include "io/model_lock.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "io/digest.h"
#include "io/hub_cache.h"
#include "io/mapped_file.h"

namespace csq::io {
namespace fs = std::filesystem;
namespace {

const nlohmann::json& field(const nlohmann::json& object, const char* name, const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) fail_input(where + ": missing field '" + name + "'");
  return *it;
}

std::string string_field(const nlohmann::json& object, const char* name, const std::string& where) {
  const nlohmann::json& value = field(object, name, where);
  if (!value.is_string()) fail_input(where + ": field '" + name + "' must be a string");
  return value.get<std::string>();
}

FileCheck check_file(const LockedFile& locked, const fs::path& file) {
  FileCheck check{locked.path, FileStatus::Ok, ""};
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    check.status = FileStatus::Missing;
    return check;
  }
  const uint64_t size = fs::file_size(file, ec);
  if (ec || size != locked.size) {
    check.status = FileStatus::WrongSize;
    check.detail = std::to_string(size) + " bytes, the lock says " + std::to_string(locked.size);
    return check;
  }
  const std::string digest = sha256_file(file.string());
  if (digest != locked.sha256) {
    check.status = FileStatus::WrongHash;
    check.detail = "sha256 " + digest + ", the lock says " + locked.sha256;
  }
  return check;
}

}  // namespace

ModelLock read_lock(const std::string& path) { return parse_lock(read_text_file(path), path); }

ModelLock parse_lock(const std::string& text, const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 8e527
    fail_input(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) fail_input(path + ": expected a JSON object");
  const nlohmann::json& version = field(j, "version", path);
  if (!version.is_number_integer() || version.get<int64_t>() != 1)
    fail_input(path + ": field 'version' must be 1 (this csq reads lock version 1)");
  ModelLock lock;
  lock.repo = string_field(j, "repo", path);
  lock.revision = string_field(j, "revision", path);
  lock.commit = string_field(j, "commit", path);
  if (!hub::is_commit_hash(lock.commit)) fail_input(path + ": field 'commit' must be 40 lowercase hex digits");
  const nlohmann::json& files = field(j, "files", path);
  if (!files.is_array()) fail_input(path + ": field 'files' must be an array");
  std::set<std::string> seen;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string where = path + ": files[" + std::to_string(i) + "]";
    if (!files[i].is_object()) fail_input(where + ": expected an object");
    LockedFile f;
    f.path = string_field(files[i], "path", where);
    if (!hub::is_safe_relative_path(f.path)) fail_input(where + ": path '" + f.path + "' is not a plain relative path");
    if (!seen.insert(f.path).second) fail_input(where + ": path '" + f.path + "' is listed twice");
    const nlohmann::json& size = field(files[i], "size", where);
    if (!size.is_number_unsigned()) fail_input(where + ": field 'size' must be a non-negative integer");
    f.size = size.get<uint64_t>();
    f.sha256 = string_field(files[i], "sha256", where);
    if (!is_lower_hex(f.sha256, 64)) fail_input(where + ": field 'sha256' must be 64 lowercase hex digits");
    lock.files.push_back(std::move(f));
  }
  return lock;
}

void write_lock(const ModelLock& lock, const std::string& path) {
  nlohmann::ordered_json j;
  j["version"] = 1;
  j["repo"] = lock.repo;
  j["revision"] = lock.revision;
  j["commit"] = lock.commit;
  j["files"] = nlohmann::ordered_json::array();
  std::vector<LockedFile> files = lock.files;
  std::sort(files.begin(), files.end(), [](const LockedFile& a, const LockedFile& b) { return a.path < b.path; });
  for (const LockedFile& f : files) j["files"].push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail_runtime(temp + ": cannot write the lock file");
    out << j.dump(2) << "\n";
    if (!out.flush()) fail_runtime(temp + ": write error");
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) fail_runtime("cannot move " + temp + " to " + path + ": " + ec.message());
}

const char* file_status_name(FileStatus status) {
  switch (status) {
    case FileStatus::Ok: return "ok";
    case FileStatus::Missing: return "missing";
    case FileStatus::WrongSize: return "wrong size";
    case FileStatus::WrongHash: return "wrong sha256";
    case FileStatus::NotInLock: return "not in the lock";
  }
  return "?";
}

bool LockCheck::ok() const {
  return std::all_of(files.begin(), files.end(), [](const FileCheck& f) { return f.status == FileStatus::Ok; });
}

std::string LockCheck::summary() const {
  std::string out;
  for (const FileCheck& f : files) {
    if (f.status == FileStatus::Ok) continue;
    out += "\n  " + f.path + ": " + file_status_name(f.status) + (f.detail.empty() ? "" : " (" + f.detail + ")");
  }
  return out;
}

LockCheck check_directory(const ModelLock& lock, const fs::path& dir, const fs::path& ignore,
                          const std::function<void(const FileCheck&)>& on_file) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail_input(dir.string() + ": not a directory");
  LockCheck result;
  std::set<std::string> locked;
  for (const LockedFile& f : lock.files) {
    locked.insert(f.path);
    result.files.push_back(check_file(f, dir / f.path));
    if (on_file) on_file(result.files.back());
  }
  const fs::path ignored = ignore.empty() ? fs::path() : fs::weakly_canonical(ignore, ec);
  std::vector<std::string> extra;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) fail_runtime(dir.string() + ": cannot list: " + ec.message());
    if (it->is_directory(ec)) continue;
    if (!ignored.empty() && fs::weakly_canonical(it->path(), ec) == ignored) continue;
    const std::string relative = it->path().lexically_relative(dir).generic_string();
    if (!locked.count(relative)) extra.push_back(relative);
  }
  std::sort(extra.begin(), extra.end());
  for (const std::string& path : extra) {
    result.files.push_back({path, FileStatus::NotInLock, ""});
    if (on_file) on_file(result.files.back());
  }
  return result;
}

void require_lock(const std::string& lock_path, const std::string& model_path) {
  const ModelLock lock = read_lock(lock_path);
  std::error_code ec;
  const fs::path model(model_path);
  if (fs::is_directory(model, ec)) {
    const LockCheck check = check_directory(lock, model, lock_path);
    if (!check.ok())
      fail_input(model_path + " does not match " + lock_path + " (" + lock.repo + " at " + lock.commit + "):" +
                 check.summary());
    return;
  }
  const std::string name = model.filename().string();
  const auto it = std::find_if(lock.files.begin(), lock.files.end(), [&](const LockedFile& f) {
    return f.path == name || (f.path.size() > name.size() && f.path.ends_with("/" + name));
  });
  if (it == lock.files.end()) fail_input(model_path + ": " + lock_path + " does not list a file named " + name);
  const FileCheck check = check_file(*it, model);
  if (check.status != FileStatus::Ok)
    fail_input(model_path + " does not match " + lock_path + ": " + file_status_name(check.status) +
               (check.detail.empty() ? "" : " (" + check.detail + ")"));
}

}  // namespace csq::io
