#include "eval/overlap.h"

#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/jsonl.h"

namespace csq::eval {
namespace {

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t mix(uint64_t h, uint64_t v) { return (h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2))) * 1099511628211ull; }

std::vector<uint64_t> word_hashes(std::string_view text) {
  std::vector<uint64_t> out;
  for (const auto& w : overlap_words(text)) out.push_back(fnv1a(w));
  return out;
}

uint64_t gram(const std::vector<uint64_t>& words, size_t at, size_t n) {
  uint64_t h = 0;
  for (size_t k = 0; k < n; ++k) h = mix(h, words[at + k]);
  return h;
}

bool contains_at(const std::vector<uint64_t>& doc, const std::vector<uint64_t>& needle, size_t at) {
  if (at + needle.size() > doc.size()) return false;
  for (size_t k = 0; k < needle.size(); ++k)
    if (doc[at + k] != needle[k]) return false;
  return true;
}

}  // namespace

std::vector<std::string> overlap_words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 'A' && c <= 'Z') cur += char(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) cur += ch;
    else if (!cur.empty()) words.push_back(std::move(cur)), cur.clear();
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

std::string item_text(const Item& item) {
  std::string t = item.question;
  for (const auto& o : item.options) t += "\n" + o;
  return t;
}

std::vector<std::string> read_training_texts(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_input(path + ": cannot open training file");
  std::vector<std::string> out;
  for_each_jsonl_line(in, path, [&](const std::string& line, const std::string& at, size_t) {
    const nlohmann::json j = parse_jsonl_line(line, at);
    std::string text;
    if (j.is_object() && j.contains("messages") && j["messages"].is_array()) {
      for (const auto& m : j["messages"]) {
        if (!m.is_object() || !m.contains("content") || !m["content"].is_string())
          fail_input(at + ": each of \"messages\" needs a string \"content\"");
        text += m["content"].get<std::string>() + "\n";
      }
    } else if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) {
      text = j["prompt"].get<std::string>();
      if (j.contains("response") && j["response"].is_string()) text += "\n" + j["response"].get<std::string>();
    } else if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      text = j["text"].get<std::string>();
    } else {
      fail_input(at + ": expected {\"prompt\", \"response\"}, {\"messages\": [...]} or {\"text\"}");
    }
    out.push_back(std::move(text));
  });
  return out;
}

OverlapReport compute_overlap(const std::vector<std::string>& train_texts, const Benchmark& benchmark, int n,
                              double threshold) {
  if (n < 1) fail_usage("--ngram must be at least 1");
  const size_t N = size_t(n);
  OverlapReport rep;
  rep.train_records = train_texts.size();
  rep.items = benchmark.items.size();
  rep.n = n;
  rep.threshold = threshold;

  std::vector<std::vector<uint64_t>> docs;
  docs.reserve(train_texts.size());
  for (const auto& t : train_texts) docs.push_back(word_hashes(t));
  // Every n-gram of the training set, with where it occurs (for the exact check).
  std::unordered_map<uint64_t, std::vector<std::pair<uint32_t, uint32_t>>> grams;
  for (uint32_t d = 0; d < docs.size(); ++d)
    for (size_t at = 0; at + N <= docs[d].size(); ++at) grams[gram(docs[d], at, N)].push_back({d, uint32_t(at)});

  double fraction_sum = 0;
  for (const auto& item : benchmark.items) {
    OverlapItem r;
    r.index = item.index;
    const auto words = word_hashes(item_text(item));
    if (words.size() >= N) {
      size_t found = 0;
      const size_t total = words.size() - N + 1;
      for (size_t at = 0; at < total; ++at) found += grams.count(gram(words, at, N));
      r.fraction = double(found) / double(total);
      if (auto it = grams.find(gram(words, 0, N)); it != grams.end())
        for (const auto& [d, at] : it->second)
          if (contains_at(docs[d], words, at)) {
            r.exact = true;
            break;
          }
    } else if (!words.empty()) {  // shorter than one n-gram: only a whole-sequence match counts
      for (const auto& doc : docs) {
        for (size_t at = 0; at + words.size() <= doc.size() && !r.exact; ++at) r.exact = contains_at(doc, words, at);
        if (r.exact) break;
      }
      r.fraction = r.exact ? 1.0 : 0.0;
    }
    rep.exact += r.exact;
    rep.any_ngram += r.fraction > 0;
    rep.above_threshold += r.fraction >= threshold;
    fraction_sum += r.fraction;
    rep.per_item.push_back(r);
  }
  rep.mean_fraction = rep.items ? fraction_sum / double(rep.items) : 0.0;
  return rep;
}

nlohmann::ordered_json OverlapReport::to_json(bool with_items) const {
  nlohmann::ordered_json j;
  j["train_records"] = train_records;
  j["items"] = items;
  j["ngram"] = n;
  j["threshold"] = threshold;
  j["exact"] = exact;
  j["any_ngram"] = any_ngram;
  j["above_threshold"] = above_threshold;
  j["exact_rate"] = items ? double(exact) / double(items) : 0.0;
  j["mean_ngram_fraction"] = mean_fraction;
  if (with_items) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& r : per_item) list.push_back({{"index", r.index}, {"exact", r.exact}, {"fraction", r.fraction}});
    j["per_item"] = list;
  }
  return j;
}

}  // namespace csq::eval
