// Answers several inputs at once and prints them in input order: the batch loop of the task
// commands and csq respond.
#pragma once

#include <cstddef>
#include <functional>

#include <nlohmann/json.hpp>

namespace csq::app {

// Runs produce(k) for every k in [0, n) on up to `threads` threads and passes each result to
// emit(k, result) in index order, as soon as it and every earlier one are ready; then done(count)
// when given. emit and done run under one lock. The first exception stops new items from
// starting and is rethrown once every thread has ended.
void run_ordered(size_t n, int threads, const std::function<nlohmann::ordered_json(size_t)>& produce,
                 const std::function<void(size_t, const nlohmann::ordered_json&)>& emit,
                 const std::function<void(size_t)>& done = {});

}  // namespace csq::app
