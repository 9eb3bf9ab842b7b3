#include "train/data.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "base/jsonl.h"
#include "io/mapped_file.h"
#include "runtime/engine.h"

namespace csq::train {
namespace {

using ojson = nlohmann::ordered_json;

ojson conversation(const ojson& object, const std::string& where) {
  if (!object.is_object()) fail_input(where + ": expected a JSON object");
  auto text_field = [&](const char* key) {
    const auto it = object.find(key);
    if (it == object.end() || !it->is_string()) fail_input(where + ": \"" + key + "\" must be a string");
    return it->get<std::string>();
  };
  if (object.contains("messages")) {
    const ojson& messages = object["messages"];
    if (!messages.is_array() || messages.empty()) fail_input(where + ": \"messages\" must be a non-empty array");
    bool has_assistant = false;
    for (size_t i = 0; i < messages.size(); ++i) {
      const ojson& m = messages[i];
      const std::string at = where + ": messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
          !m["content"].is_string())
        fail_input(at + " needs string \"role\" and \"content\"");
      const std::string role = m["role"];
      if (role != "system" && role != "user" && role != "assistant")
        fail_input(at + ": role '" + role + "' (expected system, user or assistant)");
      has_assistant = has_assistant || role == "assistant";
    }
    if (!has_assistant) fail_input(where + ": no assistant message to train on");
    return messages;
  }
  if (!object.contains("prompt") || !object.contains("response"))
    fail_input(where + ": expected {\"prompt\", \"response\"} or {\"messages\": [...]}");
  ojson messages = ojson::array();
  if (object.contains("system")) messages.push_back({{"role", "system"}, {"content", text_field("system")}});
  messages.push_back({{"role", "user"}, {"content", text_field("prompt")}});
  messages.push_back({{"role", "assistant"}, {"content", text_field("response")}});
  return messages;
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

Example render_example(const Engine& engine, const std::string& json_line, const std::string& where) {
  const ojson object = parse_jsonl_line<ojson>(json_line, where);
  const ojson messages = conversation(object, where);
  ChatRenderOptions whole;
  whole.add_generation_prompt = false;
  const std::string text = engine.render(messages, whole);

  // Each assistant turn starts where the prompt that asks for it ends (rendered with the
  // generation prompt, exactly as at inference) and ends where its own rendering ends, less
  // trailing whitespace after the end-of-turn token. Templates that render a turn differently
  // once later turns follow (Qwen3's hybrid template drops the empty <think> block of earlier
  // turns) end it after its content and end-of-turn marker inside the whole text instead.
  std::vector<std::pair<size_t, size_t>> trained;
  size_t searched = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    const ojson before(messages.begin(), messages.begin() + long(i));
    const ojson through(messages.begin(), messages.begin() + long(i + 1));
    const std::string prompt = engine.render(before);
    if (text.compare(0, prompt.size(), prompt) != 0 || prompt.size() < searched)
      fail_input(where + ": the chat template renders the conversation before turn " + std::to_string(i) +
                 " differently from the whole conversation, so its loss cannot be masked exactly; "
                 "split it into one example per assistant turn");
    const std::string upto = engine.render(through, whole);
    size_t end = 0;
    if (upto.size() >= prompt.size() && text.compare(0, upto.size(), upto) == 0) {
      end = upto.size();
      while (end > prompt.size() && is_space(text[end - 1])) --end;
    } else {
      const std::string content = messages[i]["content"];
      const size_t at = text.find(content, prompt.size());
      if (at == std::string::npos)
        fail_input(where + ": the chat template does not render assistant turn " + std::to_string(i) +
                   " verbatim, so its loss cannot be masked exactly");
      end = at + content.size();
      for (const char* marker : {"<|im_end|>", "<|eot_id|>", "<|end|>"})
        if (text.compare(end, std::strlen(marker), marker) == 0) end += std::strlen(marker);
    }
    trained.emplace_back(prompt.size(), end);
    searched = end;
  }

  Example example;
  size_t at = 0;
  auto append = [&](size_t begin, size_t end, bool train) {
    if (end <= begin) return;
    const std::vector<int32_t> ids = engine.encode_chat(text.substr(begin, end - begin));
    example.tokens.insert(example.tokens.end(), ids.begin(), ids.end());
    for (int32_t id : ids) example.labels.push_back(train ? id : -1);
  };
  for (const auto& [begin, end] : trained) {
    append(at, begin, false);
    append(begin, end, true);
    at = end;
  }
  append(at, text.size(), false);
  return example;
}

std::vector<Example> load_examples(const Engine& engine, const std::string& path, int64_t max_tokens,
                                   DataReport& report) {
  std::ifstream in = io::open_input_file(path, "cannot open the training data");
  std::vector<Example> examples;
  report.lines = for_each_jsonl_line(in, path, [&](const std::string& line, const std::string& where, size_t line_no) {
    Example e = render_example(engine, line, where);
    e.line = line_no;
    report.longest = std::max(report.longest, e.tokens.size());
    if (int64_t(e.tokens.size()) > max_tokens) {
      ++report.truncated;
      report.truncated_tokens += int64_t(e.tokens.size()) - max_tokens;
      if (report.truncated_lines.size() < 10) report.truncated_lines.push_back(e.line);
      e.tokens.resize(size_t(max_tokens));
      e.labels.resize(size_t(max_tokens));
    }
    // The first token's label is never used (nothing predicts it).
    const int64_t trained = std::count_if(e.labels.begin() + 1, e.labels.end(), [](int32_t l) { return l >= 0; });
    if (trained == 0) {
      // Only a cut can leave an example with no assistant token: drop it, and say so.
      ++report.dropped;
      if (report.dropped_lines.size() < 10) report.dropped_lines.push_back(e.line);
      return;
    }
    report.tokens += int64_t(e.tokens.size());
    report.trained_tokens += trained;
    examples.push_back(std::move(e));
  });
  report.examples = examples.size();
  if (examples.empty())
    fail_input(path + ": no training examples" +
               (report.dropped ? " (every one lost its answer when cut to " + std::to_string(max_tokens) +
                                     " tokens; raise --seq-len)"
                               : ""));
  return examples;
}

std::vector<size_t> shuffled_order(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) {
    // Unbiased draw from [0, i) by rejection, using only the generator's raw 64-bit output.
    const uint64_t bound = uint64_t(i), limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = rng();
    while (r >= limit);
    std::swap(order[i - 1], order[size_t(r % bound)]);
  }
  return order;
}

std::vector<std::vector<size_t>> pack_sequences(const std::vector<Example>& examples, const std::vector<size_t>& order,
                                                int64_t seq_len) {
  std::vector<std::vector<size_t>> sequences;
  int64_t used = seq_len;
  for (size_t index : order) {
    const int64_t n = int64_t(examples[index].tokens.size());
    if (used + n > seq_len) {
      sequences.emplace_back();
      used = 0;
    }
    sequences.back().push_back(index);
    used += n;
  }
  return sequences;
}

PackedBatch make_batch(const std::vector<Example>& examples, const std::vector<std::vector<size_t>>& sequences,
                       size_t first, size_t count) {
  PackedBatch batch;
  for (size_t s = first; s < std::min(sequences.size(), first + count); ++s)
    for (size_t index : sequences[s]) batch.add_example(examples[index].tokens, examples[index].labels);
  return batch;
}

}  // namespace csq::train
