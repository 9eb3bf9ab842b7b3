// A Jinja template interpreter for model chat templates, matching Jinja2 as transformers
// configures it: sandboxed, trim_blocks and lstrip_blocks on, loop controls, a tojson that
// is json.dumps(ensure_ascii=False), raise_exception() and strftime_now() globals.
//
// Unsupported constructs (template inheritance, includes, recursive loops, % formatting...)
// fail with csq::Error naming the construct and the line, never render something else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace csq::jinja {

struct Program;

// Bounds that make hostile templates fail cleanly instead of exhausting the machine.
struct Limits {
  size_t max_output = size_t(64) << 20;  // bytes of rendered text (and of any string built)
  int max_depth = 128;                   // nesting of statements/expressions; macro recursion
  int64_t max_iterations = 10'000'000;   // loop iterations and generated elements, in total
};

class Template {
 public:
  // Parses `source`; `name` appears in error messages. Throws csq::Error (BadInput).
  explicit Template(const std::string& source, std::string name = "template", Limits limits = {});

  // Renders with the top-level variables of `context` (a JSON object; key order kept).
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Limits limits_;
  std::shared_ptr<const Program> program_;  // immutable once parsed: copies share it
};

}  // namespace csq::jinja
