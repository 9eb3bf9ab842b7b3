// Fetches a model repository from the Hugging Face Hub (or a mirror speaking its HTTP API):
// the model info lists the files of a revision with their sizes and hashes, each file comes
// from {endpoint}/{repo}/resolve/{commit}/{path} (usually redirected to a blob host), several
// at a time, resumed from its .incomplete part after an interruption, and checked against the
// Hub's hash (sha256 for LFS files, git's blob id for the others) before it becomes visible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/hub_cache.h"
#include "io/model_lock.h"

namespace csq::io::hub {

struct PullOptions {
  RepoRef ref;
  std::vector<std::string> include;  // fnmatch globs on the file path; empty = every file
  std::vector<std::string> exclude;
  std::filesystem::path dir;         // plain files here instead of the cache when set
  std::filesystem::path cache;       // the Hugging Face cache (cache_dir())
  std::string endpoint = "https://huggingface.co";
  std::string token;                 // sent only to the endpoint's host, never printed
  int jobs = 4;                      // files downloaded at once
  int retries = 5;                   // further attempts per file after a dropped transfer
};

// What happened to one file, for progress output (called from the download threads, one at a time).
struct PullEvent {
  enum Kind { Start, Resume, Retry, Verified, Reused, Failed } kind;
  std::string path;
  uint64_t size = 0;
  uint64_t offset = 0;   // Resume: bytes already on disk
  std::string message;   // Verified: the hash; Retry/Failed: why
};

struct PullProgress {
  uint64_t total_bytes = 0;       // of the selected files
  uint64_t done_bytes = 0;        // on disk (including resumed and reused bytes)
  uint64_t transferred_bytes = 0; // received in this run
  int files_total = 0;
  int files_done = 0;
};

struct PullCallbacks {
  std::function<void(const PullEvent&)> on_event;
  std::function<void(const PullProgress&)> on_progress;  // about 5 times a second
};

struct PullResult {
  ModelLock lock;                       // every selected file with its sha256
  std::filesystem::path model_dir;      // the snapshot directory, or `dir`
  uint64_t downloaded_bytes = 0;
};

// One file of a revision as the model info lists it.
struct RemoteFile {
  std::string path;
  uint64_t size = 0;
  bool lfs = false;
  std::string sha256;   // LFS files
  std::string blob_id;  // git's blob id: the others' only hash, and their name in the cache
  const std::string& etag() const { return lfs ? sha256 : blob_id; }
};

struct ModelInfo {
  std::string commit;
  std::vector<RemoteFile> files;
};

// Reads the Hub's answer to /api/models/ORG/NAME/revision/REV?blobs=true: text from the
// network, so every field is checked (file names must be plain relative paths, hashes hex of
// the right length). Throws csq::Error (BadInput) naming `what` and the field.
ModelInfo parse_model_info(const std::string& body, const std::string& what);

// The endpoint from $HF_ENDPOINT, else huggingface.co; a trailing '/' dropped.
std::string default_endpoint();
// $HF_TOKEN, else the file $HF_TOKEN_PATH, else $HF_HOME/token (where `huggingface-cli login`
// keeps it); empty when none is set.
std::string default_token();

// Throws csq::Error: Usage for bad options, BadInput when the Hub refuses (not found,
// authentication) or sends files that do not match their hashes, Runtime for network failures.
// Files already complete are kept; the lock is returned only when every selected file is in place.
PullResult pull(const PullOptions& options, const PullCallbacks& callbacks);

}  // namespace csq::io::hub
