// csq — run, evaluate, serve and fine-tune small security language models locally.
#include <cstdio>
#include <iostream>

#include "base/error.h"
#include "command.h"

namespace csq::app {

std::vector<CommandSetup>& command_registry() {
  static std::vector<CommandSetup> registry;
  return registry;
}

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    const size_t first = item.find_first_not_of(" \t");
    const size_t last = item.find_last_not_of(" \t");
    item = first == std::string::npos ? "" : item.substr(first, last - first + 1);
    if (item.empty()) fail_usage("--tokens: empty element in '" + text + "' (expected ids like 1,2,3)");
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value < 0 || value > INT32_MAX)
      fail_usage("--tokens: '" + item + "' is not a token id (expected a non-negative integer)");
    ids.push_back(int32_t(value));
    pos = comma + 1;
  }
  return ids;
}

}  // namespace csq::app

int main(int argc, char** argv) {
  CLI::App app{"csq — local security language models: run, evaluate, serve, fine-tune"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "csq 0.1.0");
  for (const auto& setup : csq::app::command_registry()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : int(csq::ErrorCode::Usage);
  } catch (const csq::Error& e) {
    std::fflush(stdout);
    std::cerr << "csq: error: " << e.what() << "\n";
    return int(e.code());
  } catch (const std::bad_alloc&) {
    std::cerr << "csq: error: out of memory\n";
    return int(csq::ErrorCode::Runtime);
  } catch (const std::exception& e) {
    std::cerr << "csq: error: " << e.what() << "\n";
    return int(csq::ErrorCode::Runtime);
  }
  return 0;
}
