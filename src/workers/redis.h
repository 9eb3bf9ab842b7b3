// A small synchronous Redis client over hiredis for the stream workers: redis:// URLs with a
// password (never printed), replies copied out of hiredis, and reconnection with exponential
// backoff. A command whose connection broke is reported as lost, not resent: only the caller
// knows whether sending it again is harmless (XACK) or makes a duplicate (XADD).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

struct redisContext;

namespace csq::workers {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // Redis 6 ACL user; empty: AUTH with the password alone
  std::string password;  // empty: no AUTH
  int db = 0;
  // The URL with the password replaced by "***": the only form that may appear in logs.
  std::string redacted() const;
};

// Parses redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (user and password percent-decoded).
// rediss:// is refused with an explanation: Debian 12's hiredis 0.14 has no TLS (hiredis_ssl
// came with hiredis 1.0). Throws csq::Error (usage) naming the part that is wrong; the message
// never contains the password.
RedisUrl parse_redis_url(std::string_view url);

struct RedisReply {
  enum class Type { Nil, Status, Error, Integer, String, Array };
  Type type = Type::Nil;
  int64_t integer = 0;
  std::string text;  // Status, Error, String
  std::vector<RedisReply> elements;
  bool is_nil() const { return type == Type::Nil; }
  bool is_error() const { return type == Type::Error; }
};

// The connection broke during a command: it may or may not have been executed.
class RedisConnectionLost : public Error {
 public:
  explicit RedisConnectionLost(const std::string& message) : Error(ErrorCode::Runtime, message) {}
};

struct RedisOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{10000};  // a blocking XREADGROUP must block less than this
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  std::chrono::milliseconds give_up_after{60000};  // connecting fails for good after this long
};

class RedisClient {
 public:
  // Connects lazily: the first command connects (with backoff).
  RedisClient(RedisUrl url, RedisOptions options = {});
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command. Connects first when not connected, retrying with exponential backoff up
  // to give_up_after (csq::Error then, or at once when the server refuses the password).
  // Throws RedisConnectionLost when the connection breaks during the command (the next call
  // reconnects). A Redis error reply is returned as a reply of type Error, not thrown.
  RedisReply command(const std::vector<std::string>& args);
  // As command(), but an error reply throws csq::Error naming the command (not its arguments,
  // which may hold alert text or a password).
  RedisReply checked(const std::vector<std::string>& args);

  bool connected() const { return context_ != nullptr; }
  int reconnects() const { return reconnects_; }  // successful connections after the first
  const RedisUrl& url() const { return url_; }
  // Called before each wait between connection attempts (attempt number, wait): for a log line.
  std::function<void(int, std::chrono::milliseconds, const std::string&)> on_retry;

 private:
  void connect_with_backoff();
  std::string try_connect();  // empty on success, else why not
  void disconnect();

  RedisUrl url_;
  RedisOptions options_;
  redisContext* context_ = nullptr;
  int connections_ = 0;
  int reconnects_ = 0;
};

}  // namespace csq::workers
