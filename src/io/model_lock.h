// csq.lock: the repository, the commit and every file's size and SHA-256 of a model that
// `csq pull` fetched, so the same bytes can be checked later, offline, on another machine.
//   {"version": 1, "repo": "ORG/NAME", "revision": "main", "commit": "<40 hex>",
//    "files": [{"path": "config.json", "size": 840, "sha256": "<64 hex>"}, ...]}
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace csq::io {

struct LockedFile {
  std::string path;  // relative, '/'-separated
  uint64_t size = 0;
  std::string sha256;
};

struct ModelLock {
  std::string repo;
  std::string revision;
  std::string commit;
  std::vector<LockedFile> files;  // sorted by path
};

// Throws csq::Error (BadInput) naming the file and the field that is missing or malformed.
ModelLock read_lock(const std::string& path);
// The same for lock text; `where` names its origin in errors.
ModelLock parse_lock(const std::string& text, const std::string& where);
// Written to a temporary file first and renamed, so a reader never sees half a lock.
void write_lock(const ModelLock& lock, const std::string& path);

enum class FileStatus { Ok, Missing, WrongSize, WrongHash, NotInLock };
const char* file_status_name(FileStatus status);

struct FileCheck {
  std::string path;
  FileStatus status = FileStatus::Ok;
  std::string detail;  // what was found instead, for the failures
};

struct LockCheck {
  std::vector<FileCheck> files;  // the lock's files in order, then files the lock does not list
  bool ok() const;
  std::string summary() const;  // one line per failure
};

// Checks `dir` against the lock: every locked file present with its size and SHA-256, and no
// other file (symlinks are followed, as in the cache's snapshots). `ignore` (the lock file
// itself when it sits in `dir`) is skipped. `on_file` hears each file as it is checked.
LockCheck check_directory(const ModelLock& lock, const std::filesystem::path& dir,
                          const std::filesystem::path& ignore = {},
                          const std::function<void(const FileCheck&)>& on_file = {});

// Checks what `--model` resolved to against the lock at `lock_path`: a directory as above; a
// single file (a .gguf) must be a locked file with its size and hash. Throws csq::Error
// (BadInput) listing every mismatch.
void require_lock(const std::string& lock_path, const std::string& model_path);

}  // namespace csq::io
