// Post-processing of generated text while it streams: user stop strings (matched across token
// boundaries and never emitted) and the split of <think>...</think> reasoning from the answer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace csq {

// Holds back the shortest tail of the text that could still grow into a stop string.
class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);
  // Appends `piece`; returns the text that is now safe to emit. After a stop string is seen,
  // stopped() is true and everything from the stop string on is dropped.
  std::string push(std::string_view piece);
  std::string flush();  // end of generation: the held-back text is emitted
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

// Routes streamed text into reasoning (inside <think>...</think>) and content. When the prompt
// already opened the block (the template ends in "<think>\n"), start with in_reasoning = true.
class ReasoningSplitter {
 public:
  explicit ReasoningSplitter(bool in_reasoning = false) : in_reasoning_(in_reasoning) {}
  struct Parts {
    std::string reasoning;
    std::string content;
  };
  Parts push(std::string_view piece);
  Parts flush();
  bool in_reasoning() const { return in_reasoning_; }

 private:
  void strip_after_close(std::string& content);

  bool in_reasoning_;
  bool after_close_ = false;  // newlines right after </think> are not part of the answer
  std::string pending_;
};

}  // namespace csq
