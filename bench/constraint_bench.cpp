// Cost of constrained decoding per generated token, on the real vocabulary: the time of
// TokenConstraint::mask (cold: each automaton state's first visit, which walks the vocabulary
// trie; cached: the same walk again) and of accept, over random walks that pick uniformly among
// the allowed tokens. One thread; no model in the timed part.
//
//   csq_constraint_bench [--model PATH] [--walks N] [--steps N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/constraint.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

struct Stats {
  std::vector<double> us;
  double mean() const {
    double s = 0;
    for (double x : us) s += x;
    return us.empty() ? 0 : s / double(us.size());
  }
  double quantile(double q) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, size_t(q * double(us.size())))];
  }
};

using Path = std::vector<int32_t>;

// Random walks from `compiled`'s start, picking uniformly among the allowed tokens (and ending
// now and then where the answer may end); times mask and accept, returns the token paths.
std::vector<Path> walk(const csq::TokenConstraint& compiled, int32_t n_vocab, int walks, int steps, Stats& mask, Stats& accept) {
  std::vector<Path> paths;
  std::vector<uint8_t> allowed;
  std::vector<int32_t> ids;
  for (int w = 0; w < walks; ++w) {
    std::mt19937 rng{uint32_t(w)};
    auto c = compiled.fresh();
    Path path;
    for (int s = 0; s < steps && !c->must_end(); ++s) {
      allowed.assign(size_t(n_vocab), 1);
      auto t0 = Clock::now();
      c->mask(allowed);
      mask.us.push_back(us_since(t0));
      ids.clear();
      for (int32_t id = 0; id < n_vocab; ++id) {
        if (allowed[size_t(id)]) ids.push_back(id);
      }
      if (ids.empty() || (c->can_end() && rng() % 8 == 0)) break;
      const int32_t id = ids[rng() % ids.size()];
      t0 = Clock::now();
      c->accept(id);
      accept.us.push_back(us_since(t0));
      path.push_back(id);
    }
    paths.push_back(std::move(path));
  }
  return paths;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = std::string(CSQ_FIXTURES_DIR) + "/hf/qwen3-tiny-vocab";
  int walks = 20, steps = 64;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) {
      model = argv[++i];
    } else if (a == "--walks" && i + 1 < argc) {
      walks = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--steps" && i + 1 < argc) {
      steps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: csq_constraint_bench [--model PATH] [--walks N] [--steps N]\n");
      return a == "--help" ? 0 : 1;
    }
  }
  try {
    const csq::Tokenizer tok = csq::load_tokenizer(model);
    auto t0 = Clock::now();
    const auto vocab = csq::constraint_vocabulary(tok);
    std::printf("vocabulary: %d ids, trie built in %.1f ms\n", tok.vocab_size(), us_since(t0) / 1000);

    const auto schema = nlohmann::ordered_json::parse(R"({
      "type": "object",
      "properties": {
        "cwe": {"type": "string", "pattern": "CWE-[1-9][0-9]{0,3}"},
        "severity": {"enum": ["low", "medium", "high", "critical"]},
        "score": {"type": "number", "minimum": 0, "maximum": 10},
        "summary": {"type": "string", "maxLength": 200},
        "techniques": {"type": "array", "items": {"type": "string", "pattern": "T[0-9]{4}(\\.[0-9]{3})?"}, "maxItems": 5},
        "asset": {"type": "object", "properties": {"kind": {"enum": ["host", "user", "app"]}, "name": {"type": "string"}}}
      },
      "required": ["cwe", "severity", "score", "summary"]
    })");
    struct Case {
      const char* name;
      std::function<std::unique_ptr<csq::TokenConstraint>()> make;
    };
    std::vector<Case> cases;
    auto add = [&](const char* name, std::function<std::unique_ptr<csq::TokenConstraint>()> make) {
      cases.push_back({name, std::move(make)});
    };
    add("choice A,B,C,D", [&] { return csq::make_choice_constraint(vocab, {"A", "B", "C", "D"}); });
    add("regex CWE-[0-9]{1,4}", [&] { return csq::make_regex_constraint(vocab, "CWE-[0-9]{1,4}"); });
    add("regex free text .{0,200}", [&] { return csq::make_regex_constraint(vocab, ".{0,200}"); });
    add("json schema (finding)", [&] { return csq::make_json_schema_constraint(vocab, schema); });
    add("json object", [&] { return csq::make_json_object_constraint(vocab); });

    std::printf("%-26s %9s %6s %11s %11s %11s %11s %9s\n", "constraint", "compile", "steps", "cold mean", "cold p90",
                "cached mean", "cached p90", "accept");
    const int32_t n_vocab = tok.vocab_size();
    for (Case& k : cases) {
      auto t = Clock::now();
      const auto compiled = k.make();
      const double compile_ms = us_since(t) / 1000;
      Stats first, accept_first, cached, accept;
      const std::vector<Path> paths = walk(*compiled, n_vocab, walks, steps, first, accept_first);
      walk(*compiled, n_vocab, walks, steps, cached, accept);
      // Cold: a fresh automaton (no DFA state, no mask cached) replayed to each sampled prefix.
      Stats cold;
      std::vector<uint8_t> allowed;
      for (size_t w = 0; w < paths.size(); ++w) {
        for (size_t len = 0; len <= paths[w].size(); len += 1 + paths[w].size() / 8) {
          auto c = k.make();
          for (size_t i = 0; i < len; ++i) c->accept(paths[w][i]);
          allowed.assign(size_t(n_vocab), 1);
          t = Clock::now();
          c->mask(allowed);
          cold.us.push_back(us_since(t));
        }
      }
      std::printf("%-26s %7.2fms %6zu %9.1fus %9.1fus %9.1fus %9.1fus %7.2fus\n", k.name, compile_ms, cached.us.size(),
                  cold.mean(), cold.quantile(0.9), cached.mean(), cached.quantile(0.9), accept.mean());
    }
  } catch (const csq::Error& e) {
    std::fprintf(stderr, "csq_constraint_bench: %s\n", e.what());
    return int(e.code());
  }
  return 0;
}
