// Each `csq` subcommand lives in its own file and registers itself here, so commands can be
// added without touching main.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace csq::app {

// Adds one subcommand to the root app. The action installed with sub->callback() runs after
// parsing; it throws csq::Error on failure, which main maps to the exit code.
using CommandSetup = std::function<void(CLI::App& root)>;

std::vector<CommandSetup>& command_registry();

struct RegisterCommand {
  explicit RegisterCommand(CommandSetup setup) { command_registry().push_back(std::move(setup)); }
};

// Parses "1,2,3" (spaces allowed) into token ids; a usage error names the bad element.
std::vector<int32_t> parse_token_list(const std::string& text);

// `csq triage eval`, a subcommand of `csq triage` (cmd_triage_eval.cpp).
void add_triage_eval_command(CLI::App& triage);

}  // namespace csq::app
