// The Aho–Corasick literal set against the plain reference (std::string::find per literal) on
// random literals and texts over a small alphabet, where overlaps and shared suffixes abound.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "detect/literal_set.h"

namespace csq::detect {
namespace {

TEST(DetectLiteralSet, ReportsExactlyTheLiteralsThatOccur) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab\\c.";
  auto random_text = [&](size_t max_len) {
    std::string s(1 + rng() % max_len, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int round = 0; round < 50; ++round) {
    std::vector<std::string> literals;
    LiteralSet set;
    for (int i = 0; i < 40; ++i) {
      literals.push_back(random_text(6));
      set.add(literals.back(), i);
    }
    set.build();
    EXPECT_EQ(set.size(), literals.size());
    for (int t = 0; t < 40; ++t) {
      const std::string text = random_text(30);
      std::set<int> got, want;
      set.scan(text, [&](int id) { got.insert(id); });
      for (int i = 0; i < int(literals.size()); ++i)
        if (text.find(literals[size_t(i)]) != std::string::npos) want.insert(i);
      EXPECT_EQ(got, want) << "text '" << text << "'";
    }
  }
}

TEST(DetectLiteralSet, BytesOutsideTheLiteralsAndEmptySets) {
  LiteralSet set;
  set.add("\xC3\xA9t\xC3\xA9", 1);  // UTF-8 bytes above 0x7F
  set.add("", 2);                   // ignored
  set.build();
  std::set<int> got;
  set.scan("zzz \xC3\xA9t\xC3\xA9 zzz", [&](int id) { got.insert(id); });
  EXPECT_EQ(got, std::set<int>{1});
  LiteralSet none;
  none.build();
  none.scan("anything", [&](int) { ADD_FAILURE(); });
}

}  // namespace
}  // namespace csq::detect
