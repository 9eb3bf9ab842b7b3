// A greedy chat request of `max_tokens` tokens, end-of-generation ignored: the scheduler tests'
// requests, whose answers are compared token for token.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/engine.h"
#include "runtime/scheduler.h"

namespace csq::test {

inline GenerationRequest greedy_request(const Engine& engine, const nlohmann::ordered_json& messages,
                                        int64_t max_tokens) {
  GenerationRequest r;
  r.prompt = engine.encode_chat(engine.render(messages));
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

}  // namespace csq::test
