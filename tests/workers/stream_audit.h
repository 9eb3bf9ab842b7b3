// For the stream worker tests (in-process workers and csq triage --redis processes): fills the
// input stream with alerts and poison entries, and audits the output and dead-letter streams
// against the inputs: every good input has a result, all copies of one carry its idempotency
// key, every poison entry is dead-lettered, and nothing is left pending.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "workers/redis.h"
#include "workers/stream_worker.h"

namespace csq::test {

// The stream names every worker test uses.
inline workers::StreamWorkerConfig pipeline_config(const std::string& consumer) {
  workers::StreamWorkerConfig c;
  c.stream = "alerts";
  c.group = "triage";
  c.consumer = consumer;
  c.out_stream = "triaged";
  c.dead_letter = "alerts-dead";
  return c;
}

struct Pipeline {
  std::vector<std::string> good_ids, bad_ids;  // inputs that must get a result / a dead letter
};

// `alerts` JSON alerts {"n": i}, a poison entry ("poison": not JSON) after every 200th from the
// 100th, and one entry without the `alert` field.
inline Pipeline fill_pipeline(workers::RedisClient& redis, int alerts) {
  Pipeline p;
  for (int i = 0; i < alerts; ++i) {
    p.good_ids.push_back(redis.checked({"XADD", "alerts", "*", "alert", "{\"n\":" + std::to_string(i) + "}"}).text);
    if (i % 200 == 100) p.bad_ids.push_back(redis.checked({"XADD", "alerts", "*", "alert", "poison"}).text);
  }
  p.bad_ids.push_back(redis.checked({"XADD", "alerts", "*", "message", "no alert field"}).text);
  return p;
}

inline int64_t xlen(workers::RedisClient& redis, const std::string& stream) {
  return redis.checked({"XLEN", stream}).integer;
}

inline int64_t pending_entries(workers::RedisClient& redis) {
  return redis.checked({"XPENDING", "alerts", "triage"}).elements.at(0).integer;
}

// Entries of the input stream not yet delivered to the group (XINFO GROUPS "lag"); -1 unknown.
inline int64_t group_lag(workers::RedisClient& redis) {
  const auto& group = redis.checked({"XINFO", "GROUPS", "alerts"}).elements.at(0).elements;
  for (size_t i = 0; i + 1 < group.size(); i += 2)
    if (group[i].text == "lag") return group[i + 1].type == workers::RedisReply::Type::Integer ? group[i + 1].integer : -1;
  return -1;
}

// Every input delivered and settled: poison dead-lettered, nothing pending.
inline bool pipeline_settled(workers::RedisClient& redis, const Pipeline& p) {
  return size_t(xlen(redis, "alerts-dead")) == p.bad_ids.size() && pending_entries(redis) == 0 && group_lag(redis) == 0;
}

struct Audit {
  size_t results = 0;  // result entries, copies included
  int duplicates = 0;  // copies beyond the first, each with its input's idempotency key
  int missing = 0;     // good inputs without a result
  size_t dead = 0;
  int64_t pending = 0;
};

// Reads both output streams and checks the guarantees (gtest failures name what broke).
inline Audit audit_pipeline(workers::RedisClient& redis, const Pipeline& p) {
  Audit a;
  std::map<std::string, std::set<std::string>> keys;  // input id -> idempotency keys seen
  std::map<std::string, int> copies;
  for (const workers::RedisReply& entry : redis.checked({"XRANGE", "triaged", "-", "+"}).elements) {
    std::map<std::string, std::string> f;
    const auto& fields = entry.elements[1].elements;
    for (size_t i = 0; i + 1 < fields.size(); i += 2) f[fields[i].text] = fields[i + 1].text;
    ++copies[f["input_id"]];
    keys[f["input_id"]].insert(f["idempotency_key"]);
    ++a.results;
  }
  for (const auto& id : p.good_ids) a.missing += copies.count(id) == 0;
  for (const auto& [id, n] : copies) {
    a.duplicates += n - 1;
    EXPECT_EQ(keys[id].size(), 1u) << id << " has copies with different idempotency keys";
    EXPECT_EQ(*keys[id].begin(), workers::StreamWorker::idempotency_key(pipeline_config(""), id));
  }
  EXPECT_EQ(copies.size(), p.good_ids.size()) << "results for ids that are not good inputs";
  std::set<std::string> dead;
  for (const workers::RedisReply& entry : redis.checked({"XRANGE", "alerts-dead", "-", "+"}).elements)
    dead.insert(entry.elements[1].elements[1].text);  // input_id comes first
  EXPECT_EQ(dead, std::set<std::string>(p.bad_ids.begin(), p.bad_ids.end()));
  a.dead = dead.size();
  a.pending = pending_entries(redis);
  EXPECT_EQ(a.missing, 0);
  EXPECT_EQ(a.pending, 0);
  return a;
}

}  // namespace csq::test
