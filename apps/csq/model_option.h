// The --model option every model-loading command shares: a path, or ORG/NAME[:REVISION]
// resolved from the Hugging Face cache without network, checked against --require-lock FILE.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace csq::app {

// Adds `names` (e.g. "--model,-m") and --require-lock. Once the command line is parsed, `model`
// holds the resolved path (a path that exists always wins over a repository name) and, with
// --require-lock, the files have been checked against the lock; `as_given` (optional) keeps
// the text the user typed.
CLI::Option* add_model_option(CLI::App* cmd, const std::string& names, std::string& model, const std::string& help,
                              std::string* as_given = nullptr);

inline constexpr const char* kModelHelp =
    "Hugging Face model directory, .gguf file, or ORG/NAME[:REVISION] from the cache (csq pull)";

}  // namespace csq::app
