// Correlation rules over alert streams: windows that open, close (expire) and overlap, per
// group-by key; event_count, value_count, temporal, temporal_ordered, chains and generate.
#include <gtest/gtest.h>

#include "detect/correlation.h"

namespace csq::detect {
namespace {

const char* kBase = R"(title: failed logon
id: base-failed
name: failed_logon
author: tester
logsource: {product: windows, service: security}
detection:
    sel:
        EventID: 4625
    condition: sel
---
title: successful logon
id: base-ok
name: successful_logon
author: tester
logsource: {product: windows, service: security}
detection:
    sel:
        EventID: 4624
    condition: sel
)";

struct Harness {
  RuleSet set;
  std::unique_ptr<CorrelationEngine> engine;
  std::vector<Alert> fired;

  explicit Harness(const std::string& correlation) {
    load_rules_text(std::string(kBase) + "---\n" + correlation, "c.yml", {}, set);
    for (const auto& p : set.problems) ADD_FAILURE() << p.line << ": " << p.reason;
    std::vector<std::shared_ptr<const Rule>> corr;
    for (const auto& r : set.rules)
      if (r->correlation) corr.push_back(r);
    engine = std::make_unique<CorrelationEngine>(corr, set);
    EXPECT_TRUE(engine->problems().empty());
  }
  const Rule* rule(const std::string& id) {
    for (const auto& r : set.rules)
      if (r->id == id) return r.get();
    return nullptr;
  }
  // An alert of base rule `id` at second `sec` for user `user` from host `host`.
  size_t feed(const std::string& id, int sec, const std::string& user, const std::string& host = "h1") {
    Alert a;
    a.rule = rule(id);
    char t[32];
    std::snprintf(t, sizeof t, "2024-01-01T00:%02d:%02d.000Z", sec / 60, sec % 60);
    a.time = t;
    a.event = "{\"TargetUserName\": \"" + user + "\", \"IpAddress\": \"" + host + "\"}";
    const size_t before = fired.size();
    engine->feed(a, [&](Alert&& c) { fired.push_back(std::move(c)); });
    return fired.size() - before;
  }
};

const char* kEventCount = R"(title: brute force
id: corr-count
name: many_failed
author: tester
level: high
correlation:
    type: event_count
    rules: [failed_logon]
    group-by: [TargetUserName]
    timespan: 60s
    condition:
        gte: 3
)";

TEST(DetectCorrelation, EventCountWindowOpensAndFires) {
  Harness h(kEventCount);
  EXPECT_EQ(h.feed("base-failed", 0, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 10, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 20, "bob"), 1u);
  EXPECT_EQ(h.fired[0].rule->id, "corr-count");
  EXPECT_EQ(h.fired[0].fields[0], (std::pair<std::string, std::string>{"TargetUserName", "bob"}));
  EXPECT_EQ(h.fired[0].fields[1].second, "3");
  // The window restarts after firing: two more are not enough.
  EXPECT_EQ(h.feed("base-failed", 25, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 26, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 27, "bob"), 1u);
}

TEST(DetectCorrelation, EventCountWindowCloses) {
  Harness h(kEventCount);
  h.feed("base-failed", 0, "bob");
  h.feed("base-failed", 30, "bob");
  // 61 s after the first: it fell out of the window, only two remain.
  EXPECT_EQ(h.feed("base-failed", 61, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 80, "bob"), 1u);  // 30, 61, 80 within 60 s
}

TEST(DetectCorrelation, GroupsHaveSeparateOverlappingWindows) {
  Harness h(kEventCount);
  h.feed("base-failed", 0, "bob");
  h.feed("base-failed", 1, "alice");
  h.feed("base-failed", 2, "bob");
  h.feed("base-failed", 3, "alice");
  EXPECT_EQ(h.feed("base-failed", 4, "carol"), 0u);
  EXPECT_EQ(h.feed("base-failed", 5, "alice"), 1u);
  EXPECT_EQ(h.fired.back().fields[0].second, "alice");
  EXPECT_EQ(h.feed("base-failed", 6, "bob"), 1u);
  EXPECT_EQ(h.fired.back().fields[0].second, "bob");
  // Other rules do not count.
  EXPECT_EQ(h.feed("base-ok", 7, "carol"), 0u);
  EXPECT_EQ(h.feed("base-ok", 8, "carol"), 0u);
}

TEST(DetectCorrelation, ClosedGroupsAreDropped) {
  Harness h(kEventCount);
  for (int i = 0; i < 3000; ++i) h.feed("base-failed", i % 3600, "user" + std::to_string(i));
  // Thousands of users, one event each, over an hour: only the last minute's groups stay open.
  EXPECT_LT(h.engine->open_groups(), 1200u);
  EXPECT_TRUE(h.fired.empty());
}

TEST(DetectCorrelation, ValueCountCountsDistinctValues) {
  Harness h(R"(title: spray
id: corr-values
author: tester
correlation:
    type: value_count
    rules: [base-failed]
    group-by: [IpAddress]
    timespan: 1m
    condition:
        field: TargetUserName
        gte: 3
)");
  EXPECT_EQ(h.feed("base-failed", 0, "a", "10.0.0.1"), 0u);
  EXPECT_EQ(h.feed("base-failed", 1, "a", "10.0.0.1"), 0u);  // same value again
  EXPECT_EQ(h.feed("base-failed", 2, "b", "10.0.0.1"), 0u);
  EXPECT_EQ(h.feed("base-failed", 3, "c", "10.0.0.2"), 0u);  // other group
  EXPECT_EQ(h.feed("base-failed", 4, "c", "10.0.0.1"), 1u);
  EXPECT_EQ(h.fired[0].fields.back().second, "3");
  // Values expire with their events.
  Harness e(R"(title: spray
id: corr-values
author: tester
correlation:
    type: value_count
    rules: [base-failed]
    group-by: [IpAddress]
    timespan: 10s
    condition:
        field: TargetUserName
        gte: 2
)");
  EXPECT_EQ(e.feed("base-failed", 0, "a"), 0u);
  EXPECT_EQ(e.feed("base-failed", 20, "b"), 0u);
  EXPECT_EQ(e.feed("base-failed", 25, "c"), 1u);
}

TEST(DetectCorrelation, TemporalAnyOrderWithinTimespan) {
  Harness h(R"(title: both
id: corr-temporal
author: tester
correlation:
    type: temporal
    rules: [base-failed, base-ok]
    group-by: [TargetUserName]
    timespan: 30s
)");
  EXPECT_EQ(h.feed("base-ok", 0, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 10, "bob"), 1u);  // either order
  EXPECT_EQ(h.feed("base-ok", 100, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 140, "bob"), 0u);  // 40 s apart: too far
  EXPECT_EQ(h.feed("base-failed", 100, "alice"), 0u);
}

TEST(DetectCorrelation, TemporalOrderedNeedsTheOrder) {
  Harness h(R"(title: fail then success
id: corr-ordered
author: tester
correlation:
    type: temporal_ordered
    rules: [base-failed, base-ok]
    group-by: [TargetUserName]
    timespan: 30s
)");
  EXPECT_EQ(h.feed("base-ok", 0, "bob"), 0u);
  EXPECT_EQ(h.feed("base-failed", 5, "bob"), 0u);  // success came first: no
  EXPECT_EQ(h.feed("base-ok", 10, "bob"), 1u);     // failed (5) then ok (10)
  EXPECT_EQ(h.feed("base-failed", 100, "bob"), 0u);
  EXPECT_EQ(h.feed("base-ok", 131, "bob"), 0u);    // 31 s later: window closed
}

TEST(DetectCorrelation, ChainsAndGenerate) {
  // The specification's example: many failed logons followed by a successful one.
  Harness h(std::string(kEventCount) + R"(---
title: brute force success
id: corr-chain
author: tester
correlation:
    type: temporal_ordered
    rules: [many_failed, successful_logon]
    group-by: [TargetUserName]
    timespan: 1h
)");
  h.feed("base-failed", 0, "bob");
  h.feed("base-failed", 1, "bob");
  EXPECT_EQ(h.feed("base-failed", 2, "bob"), 1u);  // many_failed fires
  EXPECT_EQ(h.feed("base-ok", 300, "bob"), 1u);
  EXPECT_EQ(h.fired.back().rule->id, "corr-chain");
  // generate is false by default: the referenced rules' own alerts are not shown.
  EXPECT_FALSE(h.engine->shows(h.rule("base-failed")));
  EXPECT_FALSE(h.engine->shows(h.rule("corr-count")));
  EXPECT_TRUE(h.engine->shows(h.rule("corr-chain")));
}

TEST(DetectCorrelation, UnknownReferenceIsReported) {
  RuleSet set;
  load_rules_text(R"(title: c
author: a
correlation:
    type: event_count
    rules: [nope]
    group-by: [User]
    timespan: 5m
    condition: {gte: 2}
)",
                  "c.yml", {}, set);
  ASSERT_EQ(set.rules.size(), 1u);
  CorrelationEngine e({set.rules[0]}, set);
  ASSERT_EQ(e.problems().size(), 1u);
  EXPECT_NE(e.problems()[0].reason.find("unknown rules: nope"), std::string::npos);
  EXPECT_TRUE(e.empty());
  RuleSet bad;
  load_rules_text("title: c\ncorrelation:\n    type: event_count\n    rules: [x]\n    timespan: 5q\n    condition: {gte: 2}\n",
                  "c.yml", {}, bad);
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_NE(bad.problems[0].reason.find("unknown unit"), std::string::npos);
}

TEST(DetectCorrelation, ChainsThatReferenceThemselvesAreRefused) {
  // A self-reference (and a two-correlation loop) would feed each alert back through every
  // reference: four self-references made 4^8 alerts from one event.
  RuleSet set;
  load_rules_text(std::string(kBase) + R"(---
title: self
id: corr-self
correlation:
    type: event_count
    rules: [base-failed, corr-self, corr-self, corr-self]
    timespan: 5m
    condition: {gte: 1}
---
title: loop a
id: loop-a
correlation: {type: event_count, rules: [base-failed, loop-b], timespan: 5m, condition: {gte: 1}}
---
title: loop b
id: loop-b
correlation: {type: event_count, rules: [loop-a], timespan: 5m, condition: {gte: 1}}
---
title: fine
id: corr-fine
correlation: {type: event_count, rules: [base-failed, loop-a], timespan: 5m, condition: {gte: 2}}
)",
                  "c.yml", {}, set);
  ASSERT_TRUE(set.problems.empty()) << set.problems[0].reason;
  std::vector<std::shared_ptr<const Rule>> corr;
  for (const auto& r : set.rules)
    if (r->correlation) corr.push_back(r);
  CorrelationEngine e(corr, set);
  ASSERT_EQ(e.problems().size(), 3u);
  for (const auto& p : e.problems()) EXPECT_EQ(p.reason, "correlation chain references itself") << p.title;
  EXPECT_EQ(e.problems()[0].title, "self");
  EXPECT_EQ(e.problems()[1].title, "loop a");
  EXPECT_EQ(e.problems()[2].title, "loop b");
  // The correlation that only reads from the loop stays, and counts base-failed alone.
  Alert a;
  for (const auto& r : set.rules)
    if (r->id == "base-failed") a.rule = r.get();
  a.time = "2024-01-01T00:00:01.000Z";
  a.event = "{}";
  std::vector<Alert> fired;
  e.feed(a, [&](Alert&& x) { fired.push_back(std::move(x)); });
  EXPECT_TRUE(fired.empty());
  a.time = "2024-01-01T00:00:02.000Z";
  e.feed(a, [&](Alert&& x) { fired.push_back(std::move(x)); });
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].rule->title, "fine");
}

TEST(DetectCorrelation, TimeParsing) {
  EXPECT_EQ(parse_time_ms("1970-01-01T00:00:01.500Z"), 1500);
  EXPECT_EQ(parse_time_ms("2020-10-18 07:50:06.220"), 1603007406220);
  EXPECT_FALSE(parse_time_ms("yesterday"));
}

}  // namespace
}  // namespace csq::detect
