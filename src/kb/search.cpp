#include "kb/search.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace csq::kb {
namespace {

// Porter's algorithm as published (Program 14(3), 1980) with its two later departures in the
// reference implementation (abli -> able became bli -> ble; logi -> log added).
class PorterStemmer {
 public:
  explicit PorterStemmer(std::string_view word) : b_(word), k_(int(word.size()) - 1) {}

  std::string run() {
    if (k_ <= 1) return b_;
    step1ab();
    if (k_ > 0) {
      step1c();
      step2();
      step3();
      step4();
      step5();
    }
    return b_;
  }

 private:
  bool consonant(int i) const {
    switch (b_[size_t(i)]) {
      case 'a': case 'e': case 'i': case 'o': case 'u': return false;
      case 'y': return i == 0 || !consonant(i - 1);
      default: return true;
    }
  }
  // The number of vowel-consonant sequences in b[0..j].
  int measure() const {
    int n = 0, i = 0;
    for (;; ++i) {
      if (i > j_) return n;
      if (!consonant(i)) break;
    }
    for (++i;;) {
      for (;; ++i) {
        if (i > j_) return n;
        if (consonant(i)) break;
      }
      ++i;
      ++n;
      for (;; ++i) {
        if (i > j_) return n;
        if (!consonant(i)) break;
      }
      ++i;
    }
  }
  bool vowel_in_stem() const {
    for (int i = 0; i <= j_; ++i)
      if (!consonant(i)) return true;
    return false;
  }
  bool double_consonant(int i) const { return i >= 1 && b_[size_t(i)] == b_[size_t(i - 1)] && consonant(i); }
  // consonant-vowel-consonant ending at i, the last not w, x or y (e.g. -hop, not -how).
  bool cvc(int i) const {
    if (i < 2 || !consonant(i) || consonant(i - 1) || !consonant(i - 2)) return false;
    const char c = b_[size_t(i)];
    return c != 'w' && c != 'x' && c != 'y';
  }
  bool ends(std::string_view s) {
    const int n = int(s.size());
    if (n > k_ + 1 || b_.compare(size_t(k_ - n + 1), size_t(n), s) != 0) return false;
    j_ = k_ - n;
    return true;
  }
  void truncate(int k) {
    k_ = k;
    b_.resize(size_t(k + 1));
  }
  void set_to(std::string_view s) {
    b_.resize(size_t(j_ + 1));
    b_ += s;
    k_ = int(b_.size()) - 1;
  }
  void replace_if_measured(std::string_view s) {
    if (measure() > 0) set_to(s);
  }
  // Tries each (suffix, replacement) in order; the first suffix that ends the word decides.
  void first_suffix(std::initializer_list<std::pair<std::string_view, std::string_view>> rules) {
    for (const auto& [suffix, replacement] : rules)
      if (ends(suffix)) {
        replace_if_measured(replacement);
        return;
      }
  }

  void step1ab() {
    if (b_[size_t(k_)] == 's') {
      if (ends("sses")) truncate(k_ - 2);
      else if (ends("ies")) set_to("i");
      else if (b_[size_t(k_ - 1)] != 's') truncate(k_ - 1);
    }
    if (ends("eed")) {
      if (measure() > 0) truncate(k_ - 1);
    } else if ((ends("ed") || ends("ing")) && vowel_in_stem()) {
      truncate(j_);
      j_ = k_;
      if (ends("at")) set_to("ate");
      else if (ends("bl")) set_to("ble");
      else if (ends("iz")) set_to("ize");
      else if (double_consonant(k_)) {
        const char c = b_[size_t(k_)];
        if (c != 'l' && c != 's' && c != 'z') truncate(k_ - 1);
      } else {
        j_ = k_;
        if (measure() == 1 && cvc(k_)) set_to("e");
      }
    }
  }
  void step1c() {
    if (ends("y") && vowel_in_stem()) b_[size_t(k_)] = 'i';
  }
  void step2() {
    switch (b_[size_t(k_ - 1)]) {
      case 'a': first_suffix({{"ational", "ate"}, {"tional", "tion"}}); break;
      case 'c': first_suffix({{"enci", "ence"}, {"anci", "ance"}}); break;
      case 'e': first_suffix({{"izer", "ize"}}); break;
      case 'l': first_suffix({{"bli", "ble"}, {"alli", "al"}, {"entli", "ent"}, {"eli", "e"}, {"ousli", "ous"}}); break;
      case 'o': first_suffix({{"ization", "ize"}, {"ation", "ate"}, {"ator", "ate"}}); break;
      case 's': first_suffix({{"alism", "al"}, {"iveness", "ive"}, {"fulness", "ful"}, {"ousness", "ous"}}); break;
      case 't': first_suffix({{"aliti", "al"}, {"iviti", "ive"}, {"biliti", "ble"}}); break;
      case 'g': first_suffix({{"logi", "log"}}); break;
      default: break;
    }
  }
  void step3() {
    switch (b_[size_t(k_)]) {
      case 'e': first_suffix({{"icate", "ic"}, {"ative", ""}, {"alize", "al"}}); break;
      case 'i': first_suffix({{"iciti", "ic"}}); break;
      case 'l': first_suffix({{"ical", "ic"}, {"ful", ""}}); break;
      case 's': first_suffix({{"ness", ""}}); break;
      default: break;
    }
  }
  void step4() {
    auto any = [&](std::initializer_list<std::string_view> suffixes) {
      for (auto s : suffixes)
        if (ends(s)) return true;
      return false;
    };
    bool found = false;
    switch (b_[size_t(k_ - 1)]) {
      case 'a': found = any({"al"}); break;
      case 'c': found = any({"ance", "ence"}); break;
      case 'e': found = any({"er"}); break;
      case 'i': found = any({"ic"}); break;
      case 'l': found = any({"able", "ible"}); break;
      case 'n': found = any({"ant", "ement", "ment", "ent"}); break;
      case 'o':
        found = (ends("ion") && j_ >= 0 && (b_[size_t(j_)] == 's' || b_[size_t(j_)] == 't')) || ends("ou");
        break;
      case 's': found = any({"ism"}); break;
      case 't': found = any({"ate", "iti"}); break;
      case 'u': found = any({"ous"}); break;
      case 'v': found = any({"ive"}); break;
      case 'z': found = any({"ize"}); break;
      default: break;
    }
    if (found && measure() > 1) truncate(j_);
  }
  void step5() {
    j_ = k_;
    if (b_[size_t(k_)] == 'e') {
      const int m = measure();
      if (m > 1 || (m == 1 && !cvc(k_ - 1))) truncate(k_ - 1);
    }
    if (b_[size_t(k_)] == 'l' && double_consonant(k_) && measure() > 1) truncate(k_ - 1);
  }

  std::string b_;
  int k_;      // the word is b[0..k]
  int j_ = 0;  // the stem before the suffix ends() matched is b[0..j]
};

const std::unordered_set<std::string_view>& stop_words() {
  static const std::unordered_set<std::string_view> words = {
      "a",    "an",   "and",   "are",  "as",    "at",   "be",    "been", "being", "but",  "by",    "can",
      "could", "do",  "does",  "for",  "from",  "had",  "has",   "have", "how",   "i",    "if",    "in",
      "into", "is",   "it",    "its",  "may",   "more", "most",  "no",   "not",   "of",   "on",    "or",
      "other", "our", "should", "so",  "some",  "such", "than",  "that", "the",   "their", "them", "then",
      "there", "these", "they", "this", "those", "to",  "was",   "we",   "were",  "what", "when",  "where",
      "which", "while", "who",  "will", "with",  "would", "you", "your", "e.g", "eg", "ie", "also", "via"};
  return words;
}

bool word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_lower_letters(std::string_view w) {
  return std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

constexpr double kK1 = 1.2, kB = 0.75;
constexpr double kTitleWeight = 2;

}  // namespace

std::string porter_stem(std::string_view word) {
  if (word.size() <= 2 || !all_lower_letters(word)) return std::string(word);
  return PorterStemmer(word).run();
}

std::vector<std::string> search_terms(std::string_view text) {
  std::vector<std::string> terms;
  size_t i = 0;
  while (i < text.size()) {
    if (!word_byte(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && word_byte(static_cast<unsigned char>(text[end]))) ++end;
    std::string word(text.substr(i, end - i));
    for (char& c : word) c = char(std::tolower(static_cast<unsigned char>(c)));
    // T1059.001: a sub-technique id is one term, so that it finds that sub-technique, and T1059
    // its parent, not every sibling.
    const bool technique_id = word.size() == 5 && word[0] == 't' && std::all_of(word.begin() + 1, word.end(), is_digit);
    if (technique_id && end + 4 <= text.size() && text[end] == '.' && is_digit(text[end + 1]) && is_digit(text[end + 2]) &&
        is_digit(text[end + 3]) && (end + 4 == text.size() || !word_byte(static_cast<unsigned char>(text[end + 4])))) {
      word += text.substr(end, 4);
      end += 4;
    }
    i = end;
    if (stop_words().count(word)) continue;
    terms.push_back(porter_stem(word));
  }
  return terms;
}

void SearchIndex::Field::add(uint32_t document, const std::string& text) {
  std::unordered_map<std::string, float> frequencies;
  float length = 0;
  for (auto& term : search_terms(text)) {
    frequencies[std::move(term)] += 1;
    length += 1;
  }
  for (auto& [term, frequency] : frequencies) postings[term].push_back({document, frequency});
  lengths.push_back(length);
  mean_length += length;
}

SearchIndex::SearchIndex(const std::vector<Document>& documents) : documents_(documents.size()) {
  title_.weight = kTitleWeight;
  for (size_t d = 0; d < documents.size(); ++d) {
    title_.add(uint32_t(d), documents[d].id + " " + documents[d].name);
    body_.add(uint32_t(d), documents[d].body);
  }
  for (Field* f : {&title_, &body_})
    if (!documents.empty()) f->mean_length = std::max(f->mean_length / double(documents.size()), 1.0);
}

std::vector<SearchIndex::Hit> SearchIndex::search(std::string_view query, size_t limit) const {
  std::vector<std::string> terms = search_terms(query);
  std::sort(terms.begin(), terms.end());
  terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
  std::unordered_map<uint32_t, std::pair<double, std::vector<bool>>> scores;  // BM25, which terms matched
  const double n = double(documents_);
  for (size_t q = 0; q < terms.size(); ++q)
    for (const Field* f : {&title_, &body_}) {
      const auto it = f->postings.find(terms[q]);
      if (it == f->postings.end()) continue;
      const double df = double(it->second.size());
      const double idf = std::log(1 + (n - df + 0.5) / (df + 0.5));
      for (const Posting& p : it->second) {
        const double norm = kK1 * (1 - kB + kB * f->lengths[p.document] / f->mean_length);
        auto& [score, matched] = scores[p.document];
        score += f->weight * idf * p.frequency * (kK1 + 1) / (p.frequency + norm);
        matched.resize(terms.size());
        matched[q] = true;
      }
    }
  // Scaled by the share of query terms the document holds (Lucene's classic coordination factor).
  std::vector<Hit> hits;
  hits.reserve(scores.size());
  for (const auto& [doc, entry] : scores) {
    const double share = double(std::count(entry.second.begin(), entry.second.end(), true)) / double(terms.size());
    hits.push_back({doc, entry.first * share});
  }
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : a.document < b.document;
  });
  if (hits.size() > limit) hits.resize(limit);
  return hits;
}

}  // namespace csq::kb
