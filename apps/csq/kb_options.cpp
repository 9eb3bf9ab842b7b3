#include "kb_options.h"

#include <cstdlib>
#include <filesystem>

namespace csq::app {

const char* default_kb_dir() { return CSQ_DEFAULT_KB; }

void add_kb_option(CLI::App* cmd, std::string& dir) {
  cmd->add_option("--kb", dir,
                  std::string("ATT&CK knowledge-base directory (default: $CSQ_KB, else ") + default_kb_dir() + ")");
}

std::unique_ptr<kb::KnowledgeBase> load_kb(const std::string& flag) {
  return kb::KnowledgeBase::load(kb::resolve_kb_dir(flag, default_kb_dir()));
}

std::unique_ptr<kb::KnowledgeBase> load_kb_if_present(const std::string& flag) {
  const char* env = std::getenv("CSQ_KB");
  if (flag.empty() && !(env && *env) && !std::filesystem::is_directory(default_kb_dir())) return nullptr;
  return load_kb(flag);
}

}  // namespace csq::app
