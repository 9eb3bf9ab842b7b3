// --kb DIR, shared by the commands that read the ATT&CK knowledge base (kb, respond, serve).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "kb/kb.h"

namespace csq::app {

// The build's knowledge base (CSQ_DATA/attack), used when neither --kb nor $CSQ_KB is given.
const char* default_kb_dir();

void add_kb_option(CLI::App* cmd, std::string& dir);

// Loads the knowledge base that --kb, $CSQ_KB or the default names.
std::unique_ptr<kb::KnowledgeBase> load_kb(const std::string& flag);
// The same, except that null comes back when neither --kb nor $CSQ_KB is given and the default
// does not exist (csq serve then runs without /v1/kb).
std::unique_ptr<kb::KnowledgeBase> load_kb_if_present(const std::string& flag);

}  // namespace csq::app
