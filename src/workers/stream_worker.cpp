#include "workers/stream_worker.h"

#include <thread>

namespace csq::workers {

RedisReply run_surviving_restarts(RedisClient& redis, const std::vector<std::string>& args, const std::string& stream,
                                  const std::function<void()>& on_loss) {
  std::chrono::milliseconds wait{50};
  for (;;) {
    try {
      RedisReply reply = redis.command(args);
      if (reply.is_error() && reply.text.starts_with("LOADING")) {
        std::this_thread::sleep_for(wait);
        wait = std::min(wait * 2, std::chrono::milliseconds(1000));
        continue;
      }
      if (reply.is_error()) fail_runtime("Redis " + args[0] + " on stream '" + stream + "' failed: " + reply.text);
      return reply;
    } catch (const RedisConnectionLost&) {
      on_loss();
    }
  }
}

StreamPublisher::StreamPublisher(RedisClient& redis, std::string stream, std::string field)
    : redis_(redis), stream_(std::move(stream)), field_(std::move(field)) {
  if (stream_.empty()) fail_usage("the output stream name is empty");
}

void StreamPublisher::publish(const std::string& record, const std::string& idempotency_key) {
  run_surviving_restarts(redis_, {"XADD", stream_, "*", field_, record, "idempotency_key", idempotency_key}, stream_, [] {});
  ++published_;
}

StreamWorker::StreamWorker(RedisClient& redis, StreamWorkerConfig config, BatchProcessor process)
    : redis_(redis), config_(std::move(config)), process_(std::move(process)) {
  if (config_.stream.empty() || config_.group.empty() || config_.consumer.empty() || config_.out_stream.empty())
    fail_usage("a stream worker needs a stream, a group, a consumer name and an output stream");
  if (config_.max_in_flight < 1) fail_usage("--max-in-flight must be at least 1");
  if (config_.max_attempts < 1) fail_usage("--max-attempts must be at least 1");
}

std::string StreamWorker::idempotency_key(const StreamWorkerConfig& config, const std::string& id) {
  return config.stream + "/" + config.group + "/" + id;
}

RedisReply StreamWorker::retrying(const std::vector<std::string>& args) {
  return run_surviving_restarts(redis_, args, config_.stream, [this] {
    ++counts_.connection_losses;
    // Entries a lost XREADGROUP delivered are in this consumer's pending list: read it again.
    read_own_pending_ = true;
    own_cursor_ = "0";
  });
}

void StreamWorker::ensure_group() {
  try {
    retrying({"XGROUP", "CREATE", config_.stream, config_.group, "0", "MKSTREAM"});
  } catch (const Error& e) {
    if (std::string(e.what()).find("BUSYGROUP") == std::string::npos) throw;
  }
}

std::vector<StreamEntry> StreamWorker::entries_of(const RedisReply& list) const {
  std::vector<StreamEntry> out;
  for (const RedisReply& item : list.elements) {
    if (item.elements.size() != 2) continue;  // an entry deleted while pending (nil fields)
    StreamEntry entry;
    entry.id = item.elements[0].text;
    const auto& fields = item.elements[1].elements;
    bool found = false;
    for (size_t i = 0; i + 1 < fields.size(); i += 2)
      if (fields[i].text == config_.field) {
        entry.alert = fields[i + 1].text;
        found = true;
      }
    if (!found) entry.error = "the entry has no field '" + config_.field + "'";
    out.push_back(std::move(entry));
  }
  return out;
}

int64_t StreamWorker::deliveries(const std::string& id) {
  const RedisReply reply = retrying({"XPENDING", config_.stream, config_.group, id, id, "1"});
  if (reply.elements.empty() || reply.elements[0].elements.size() < 4) return 0;  // no longer pending
  return reply.elements[0].elements[3].integer;
}

void StreamWorker::handle(const std::vector<StreamEntry>& batch) {
  std::vector<StreamEntry> valid;
  for (const auto& e : batch)
    if (e.error.empty()) valid.push_back(e);
  std::vector<Outcome> processed;
  try {
    processed = process_(valid);
    if (processed.size() != valid.size())
      fail_runtime("the processor returned " + std::to_string(processed.size()) + " outcomes for " +
                   std::to_string(valid.size()) + " entries");
  } catch (const Error& e) {
    processed.assign(valid.size(), Outcome{false, e.what()});
  }
  size_t next = 0;
  for (const StreamEntry& entry : batch) {
    const Outcome outcome = entry.error.empty() ? processed[next++] : Outcome{false, entry.error};
    if (outcome.ok) {
      retrying({"XADD", config_.out_stream, "*", "input_id", entry.id, "idempotency_key",
                idempotency_key(config_, entry.id), "consumer", config_.consumer, "result", outcome.text});
      ++counts_.results;
    } else {
      const int64_t attempts = deliveries(entry.id);
      if (config_.dead_letter.empty() || attempts < config_.max_attempts) {
        ++counts_.failed;  // left pending: claimed again after claim_after
        continue;
      }
      retrying({"XADD", config_.dead_letter, "*", "input_id", entry.id, "idempotency_key",
                idempotency_key(config_, entry.id), "attempts", std::to_string(attempts), "error", outcome.text,
                config_.field, entry.alert});
      ++counts_.dead_lettered;
    }
    counts_.acknowledged += uint64_t(retrying({"XACK", config_.stream, config_.group, entry.id}).integer);
  }
}

size_t StreamWorker::poll_once() {
  const std::string count = std::to_string(config_.max_in_flight);
  const RedisReply claimed = retrying({"XAUTOCLAIM", config_.stream, config_.group, config_.consumer,
                                       std::to_string(config_.claim_after.count()), claim_cursor_, "COUNT", count});
  std::vector<StreamEntry> batch;
  if (claimed.elements.size() >= 2) {
    claim_cursor_ = claimed.elements[0].text;
    batch = entries_of(claimed.elements[1]);
    counts_.claimed += batch.size();
  }
  if (batch.empty() && read_own_pending_) {
    const RedisReply own = retrying({"XREADGROUP", "GROUP", config_.group, config_.consumer, "COUNT", count, "STREAMS",
                                     config_.stream, own_cursor_});
    if (!own.is_nil() && !own.elements.empty()) batch = entries_of(own.elements[0].elements[1]);
    if (batch.empty()) read_own_pending_ = false;
    else own_cursor_ = batch.back().id;
    counts_.read += batch.size();
  }
  if (batch.empty()) {
    const RedisReply fresh = retrying({"XREADGROUP", "GROUP", config_.group, config_.consumer, "COUNT", count, "BLOCK",
                                       std::to_string(config_.block.count()), "STREAMS", config_.stream, ">"});
    if (!fresh.is_nil() && !fresh.elements.empty()) batch = entries_of(fresh.elements[0].elements[1]);
    counts_.read += batch.size();
  }
  if (!batch.empty()) handle(batch);
  return batch.size();
}

void StreamWorker::run(const std::atomic<bool>& stop) {
  ensure_group();
  while (!stop) poll_once();
}

}  // namespace csq::workers
