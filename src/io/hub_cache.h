// The Hugging Face Hub cache on disk, shared with huggingface_hub and the tools built on it:
//   <cache>/models--ORG--NAME/blobs/<sha256 or git blob id>
//                           /snapshots/<commit>/<file> -> ../../blobs/<id>
//                           /refs/<revision>            (holds the commit a branch or tag resolved to)
// and the rule that turns `--model ORG/NAME[:REVISION]` into a snapshot there without network.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace csq::io::hub {

// "ORG/NAME[:REVISION]"; the revision is a branch, a tag or a 40-hex commit ("main" by default).
struct RepoRef {
  std::string repo;
  std::string revision = "main";
};

// Nullopt when `text` does not have the shape of a repository reference; a text that has the
// shape but breaks the Hub's naming rules gets a usage error naming the rule.
std::optional<RepoRef> parse_repo_ref(const std::string& text);

bool is_commit_hash(const std::string& revision);

// A '/'-separated relative path that stays inside its directory: no empty, "." or ".." part,
// no leading '/', no backslash, no control character (file names from a lock or the Hub).
bool is_safe_relative_path(const std::string& path);

// $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's order).
std::filesystem::path cache_dir();

// <cache>/models--ORG--NAME
std::filesystem::path repo_cache_dir(const std::filesystem::path& cache, const std::string& repo);

// The commit a cached revision points at (refs/<revision>, or the revision itself when it is a
// commit whose snapshot exists); nullopt when the cache does not know it.
std::optional<std::string> cached_commit(const std::filesystem::path& cache, const RepoRef& ref);

// What a `--model` value names, without touching the network: a path that exists is returned
// as it is (a path always wins over a repository name); "ORG/NAME[:REVISION]" becomes the
// cached snapshot directory, or the snapshot's only .gguf file when it holds no config.json.
// Throws csq::Error (BadInput) saying where it looked and how to fetch the model.
std::string resolve_model_path(const std::string& model);

}  // namespace csq::io::hub
