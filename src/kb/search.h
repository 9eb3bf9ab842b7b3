// The lexical index behind KnowledgeBase::search: Okapi BM25 over the techniques, scored on two
// fields and summed: the id and name (weighted 2, so a query term in the title counts more than
// the same term repeated in a long text) and the body (description and detection text); the sum
// is scaled by the share of the query's terms the technique holds.
// Tokens are lower-case runs of letters and digits, stop words dropped, Porter-stemmed; an
// ATT&CK id (T1059.001) is one token, so a query may name ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace csq::kb {

// The search terms of `text`, in order, repeats kept.
std::vector<std::string> search_terms(std::string_view text);

// Porter's (1980) suffix-stripping algorithm on a lower-case ASCII word; other words unchanged.
std::string porter_stem(std::string_view word);

class SearchIndex {
 public:
  struct Document {
    std::string id, name, body;  // the id and name are indexed too
  };
  explicit SearchIndex(const std::vector<Document>& documents);

  struct Hit {
    uint32_t document;
    double score;
  };
  // Best first (ties by document order); documents with no query term are left out.
  std::vector<Hit> search(std::string_view query, size_t limit) const;

 private:
  struct Posting {
    uint32_t document;
    float frequency;
  };
  struct Field {
    std::unordered_map<std::string, std::vector<Posting>> postings;
    std::vector<float> lengths;
    double mean_length = 0;
    double weight = 1;
    void add(uint32_t document, const std::string& text);
  };
  Field title_, body_;
  size_t documents_ = 0;
};

}  // namespace csq::kb
