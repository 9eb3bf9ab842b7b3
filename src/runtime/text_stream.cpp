#include "runtime/text_stream.h"

#include <algorithm>

namespace csq {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

}  // namespace

StopStringFilter::StopStringFilter(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopStringFilter::push(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  size_t first_stop = std::string::npos;
  for (const auto& stop : stops_) first_stop = std::min(first_stop, pending_.find(stop));
  if (first_stop != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first_stop);
    pending_.clear();
    return out;
  }
  size_t hold = 0;
  for (const auto& stop : stops_) hold = std::max(hold, partial_suffix(pending_, stop));
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringFilter::flush() {
  std::string out;
  out.swap(pending_);
  return stopped_ ? std::string() : out;
}

// Models put "\n\n" after </think>; the answer starts after it (as vLLM's Qwen3 parser does).
void ReasoningSplitter::strip_after_close(std::string& content) {
  if (!after_close_ || content.empty()) return;
  const size_t first = content.find_first_not_of('\n');
  content.erase(0, first == std::string::npos ? content.size() : first);
  if (!content.empty()) after_close_ = false;
}

ReasoningSplitter::Parts ReasoningSplitter::push(std::string_view piece) {
  pending_.append(piece);
  Parts parts;
  for (;;) {
    const std::string_view marker = in_reasoning_ ? kClose : kOpen;
    const size_t at = pending_.find(marker);
    if (at == std::string::npos) break;
    (in_reasoning_ ? parts.reasoning : parts.content) += pending_.substr(0, at);
    pending_.erase(0, at + marker.size());
    if (in_reasoning_) after_close_ = true;
    in_reasoning_ = !in_reasoning_;
  }
  const size_t hold = partial_suffix(pending_, in_reasoning_ ? kClose : kOpen);
  (in_reasoning_ ? parts.reasoning : parts.content) += pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  strip_after_close(parts.content);
  return parts;
}

ReasoningSplitter::Parts ReasoningSplitter::flush() {
  Parts parts;
  (in_reasoning_ ? parts.reasoning : parts.content) = pending_;
  pending_.clear();
  strip_after_close(parts.content);
  return parts;
}

}  // namespace csq
