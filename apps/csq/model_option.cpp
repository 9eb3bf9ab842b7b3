#include "model_option.h"

#include <cstdio>
#include <memory>

#include "io/hub_cache.h"
#include "io/model_lock.h"

namespace csq::app {

CLI::Option* add_model_option(CLI::App* cmd, const std::string& names, std::string& model, const std::string& help,
                              std::string* as_given) {
  auto lock = std::make_shared<std::string>();
  CLI::Option* option = cmd->add_option(names, model, help);
  cmd->add_option("--require-lock", *lock,
                  "Refuse the model unless its files match this csq.lock (sizes and SHA-256; hashes every file)")
      ->needs(option);
  // Runs after this command's options are parsed and before its action.
  cmd->parse_complete_callback([&model, lock, as_given] {
    if (as_given) *as_given = model;
    if (model.empty()) return;
    model = io::hub::resolve_model_path(model);
    if (lock->empty()) return;
    std::fprintf(stderr, "checking %s against %s\n", model.c_str(), lock->c_str());
    io::require_lock(*lock, model);
  });
  return option;
}

}  // namespace csq::app
