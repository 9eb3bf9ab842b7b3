// A member of a Redis Streams consumer group that turns input entries into result entries with
// at-least-once delivery: it reads a bounded batch (XREADGROUP), processes it, writes each result
// to the output stream (XADD, with the input's id and an idempotency key) and acknowledges the
// input only after its result is written (XACK). Entries a dead worker left pending longer than
// claim_after are claimed (XAUTOCLAIM); an entry that failed max_attempts deliveries goes to the
// dead-letter stream with its error. A connection lost mid-step is retried after reconnecting:
// a result may then be written twice, and both copies carry the same idempotency key.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "workers/redis.h"

namespace csq::workers {

struct StreamWorkerConfig {
  std::string stream;
  std::string group;
  std::string consumer;
  std::string out_stream;
  std::string field = "alert";             // the input entry's field holding the alert
  std::chrono::milliseconds claim_after{60000};
  int max_in_flight = 16;                  // entries read (and processed) per batch
  std::string dead_letter;                 // empty: failing entries stay pending
  int max_attempts = 3;                    // deliveries before an entry is dead-lettered
  std::chrono::milliseconds block{1000};   // XREADGROUP wait when the stream is idle
};

struct StreamEntry {
  std::string id;
  std::string alert;  // the configured field; missing: error says so
  std::string error;  // set when the entry has no such field
};

// One entry's outcome: a result to write, or the error that kept it from having one.
struct Outcome {
  bool ok = false;
  std::string text;  // the result (JSON) or the error message
};
using BatchProcessor = std::function<std::vector<Outcome>(const std::vector<StreamEntry>&)>;

struct WorkerCounts {
  uint64_t read = 0;           // entries delivered by XREADGROUP (new and own pending)
  uint64_t claimed = 0;        // entries taken over with XAUTOCLAIM
  uint64_t results = 0;        // result entries written
  uint64_t failed = 0;         // processing failures left pending for another attempt
  uint64_t dead_lettered = 0;
  uint64_t acknowledged = 0;   // XACK that removed an entry from the pending list
  uint64_t connection_losses = 0;
};

// Runs a command, again after a lost connection once the client has reconnected (`on_loss` is
// told each time), waiting out LOADING while a restarted server reads its data back. An error
// reply throws csq::Error naming the command and the stream.
RedisReply run_surviving_restarts(RedisClient& redis, const std::vector<std::string>& args, const std::string& stream,
                                  const std::function<void()>& on_loss);

// Adds records to a stream, the first stage of a pipeline (csq detect's alerts): `field` holds
// the record, `idempotency_key` a key the producer chooses. An XADD whose connection broke is
// sent again after reconnecting, so a consumer may see a record twice, both with one key.
class StreamPublisher {
 public:
  StreamPublisher(RedisClient& redis, std::string stream, std::string field = "alert");
  void publish(const std::string& record, const std::string& idempotency_key);
  uint64_t published() const { return published_; }

 private:
  RedisClient& redis_;
  std::string stream_, field_;
  uint64_t published_ = 0;
};

class StreamWorker {
 public:
  StreamWorker(RedisClient& redis, StreamWorkerConfig config, BatchProcessor process);

  // Creates the group at the stream's start (and the stream) unless it exists.
  void ensure_group();
  // One round: claims idle entries, else reads this consumer's own pending ones (after a start
  // or a lost connection), else new ones; processes, writes, acknowledges. Returns the number
  // of entries handled (0: nothing to do within `block`).
  size_t poll_once();
  // Rounds until `stop` is set.
  void run(const std::atomic<bool>& stop);
  const WorkerCounts& counts() const { return counts_; }

  // The idempotency key of the result for input `id`: the same for every copy written.
  static std::string idempotency_key(const StreamWorkerConfig& config, const std::string& id);

 private:
  std::vector<StreamEntry> entries_of(const RedisReply& list) const;
  void handle(const std::vector<StreamEntry>& batch);
  int64_t deliveries(const std::string& id);
  // Runs a step again after a lost connection (the client reconnects on the next command).
  RedisReply retrying(const std::vector<std::string>& args);

  RedisClient& redis_;
  StreamWorkerConfig config_;
  BatchProcessor process_;
  WorkerCounts counts_;
  bool read_own_pending_ = true;  // after a start or a lost connection
  std::string own_cursor_ = "0";   // where reading this consumer's pending entries goes on
  std::string claim_cursor_ = "0-0";
};

}  // namespace csq::workers
