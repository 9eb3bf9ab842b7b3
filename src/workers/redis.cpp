#include "workers/redis.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <thread>

namespace csq::workers {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{time_t(ms.count() / 1000), suseconds_t((ms.count() % 1000) * 1000)};
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = char(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// Percent-decoding of the user and password parts; `part` names them in the error.
std::string percent_decode(std::string_view text, const char* part) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1, lo = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) fail_usage(std::string("Redis URL: the ") + part + " has a '%' not followed by two hex digits");
    out += char(hi * 16 + lo);
    i += 2;
  }
  return out;
}

int parse_number(std::string_view text, int lo, int hi, const std::string& what) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi)
    fail_usage("Redis URL: " + what + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
               ", not '" + std::string(text) + "'");
  return value;
}

RedisReply copy_reply(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::Status; out.text.assign(r.str, r.len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::Error; out.text.assign(r.str, r.len); break;
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::String; out.text.assign(r.str, r.len); break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::Integer; out.integer = r.integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::Array;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy_reply(*r.element[i]));
      break;
    default: out.type = RedisReply::Type::Nil; break;
  }
  return out;
}

// Writing to a connection the server closed raises SIGPIPE, which would end the process: the
// signal is blocked in this thread for the duration of a command, and one it raised is consumed.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE)) {
      const timespec now{0, 0};
      sigtimedwait(&pipe_, nullptr, &now);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

// A refused password or database is not cured by waiting: fail at once.
class RedisRefused : public Error {
 public:
  explicit RedisRefused(const std::string& message) : Error(ErrorCode::Usage, message) {}
};

}  // namespace

std::string RedisUrl::redacted() const {
  std::string out = "redis://";
  if (!user.empty() || !password.empty()) out += user + (password.empty() ? "" : ":***") + "@";
  return out + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

RedisUrl parse_redis_url(std::string_view url) {
  if (url.starts_with("rediss://"))
    fail_usage("Redis URL: rediss:// (TLS) is not supported: Debian 12's hiredis 0.14 has no TLS (hiredis_ssl came "
               "with hiredis 1.0); reach a TLS Redis through a local TLS tunnel (stunnel, spiped) and give redis://");
  if (!url.starts_with("redis://")) fail_usage("Redis URL: expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
  std::string_view rest = url.substr(8);
  RedisUrl out;
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = credentials.find(':');
    if (colon == std::string_view::npos) fail_usage("Redis URL: credentials must be [USER]:PASSWORD before '@'");
    out.user = percent_decode(credentials.substr(0, colon), "user");
    out.password = percent_decode(credentials.substr(colon + 1), "password");
  }
  std::string_view hostport = rest;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) out.db = parse_number(db, 0, 1 << 20, "the database (after '/')");
  }
  if (hostport.find_first_of("?#") != std::string_view::npos) fail_usage("Redis URL: query parameters are not supported");
  if (hostport.starts_with("[")) {  // [IPv6]:port
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) fail_usage("Redis URL: '[' without ']' in the host");
    out.host = std::string(hostport.substr(1, close - 1));
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport[0] != ':') fail_usage("Redis URL: expected ':PORT' after ']'");
    if (!hostport.empty()) out.port = parse_number(hostport.substr(1), 1, 65535, "the port");
  } else if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    out.host = std::string(hostport.substr(0, colon));
    out.port = parse_number(hostport.substr(colon + 1), 1, 65535, "the port");
  } else if (!hostport.empty()) {
    out.host = std::string(hostport);
  }
  if (out.host.empty()) fail_usage("Redis URL: the host is empty");
  return out;
}

RedisClient::RedisClient(RedisUrl url, RedisOptions options) : url_(std::move(url)), options_(options) {}

RedisClient::~RedisClient() { disconnect(); }

void RedisClient::disconnect() {
  if (context_) redisFree(context_);
  context_ = nullptr;
}

std::string RedisClient::try_connect() {
  const timeval connect_timeout = to_timeval(options_.connect_timeout);
  redisContext* c = redisConnectWithTimeout(url_.host.c_str(), url_.port, connect_timeout);
  if (!c) return "out of memory";
  if (c->err) {
    std::string why = c->errstr;
    redisFree(c);
    return why;
  }
  redisSetTimeout(c, to_timeval(options_.command_timeout));
  context_ = c;
  auto setup = [&](const std::vector<std::string>& args, const std::string& what) {
    RedisReply reply = command(args);
    if (reply.is_error()) {
      disconnect();
      throw RedisRefused("Redis at " + url_.redacted() + " refused " + what + ": " + reply.text);
    }
  };
  try {
    if (!url_.password.empty())
      setup(url_.user.empty() ? std::vector<std::string>{"AUTH", url_.password}
                              : std::vector<std::string>{"AUTH", url_.user, url_.password},
            "the password");
    if (url_.db != 0) setup({"SELECT", std::to_string(url_.db)}, "database " + std::to_string(url_.db));
  } catch (const RedisConnectionLost& e) {
    return e.what();
  }
  return "";
}

void RedisClient::connect_with_backoff() {
  const auto start = std::chrono::steady_clock::now();
  std::chrono::milliseconds wait = options_.backoff_initial;
  for (int attempt = 1;; ++attempt) {
    const std::string why = try_connect();
    if (why.empty()) {
      if (connections_++ > 0) ++reconnects_;
      return;
    }
    if (std::chrono::steady_clock::now() - start + wait > options_.give_up_after)
      fail_runtime("cannot connect to Redis at " + url_.redacted() + ": " + why + " (gave up after " +
                   std::to_string(attempt) + " attempts)");
    if (on_retry) on_retry(attempt, wait, why);
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, options_.backoff_max);
  }
}

RedisReply RedisClient::command(const std::vector<std::string>& args) {
  if (args.empty()) fail_usage("Redis command: no arguments");
  if (!context_) connect_with_backoff();
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  const SigpipeBlocked no_sigpipe;
  auto* reply = static_cast<redisReply*>(redisCommandArgv(context_, int(args.size()), argv.data(), lengths.data()));
  if (!reply) {
    const std::string why = context_->errstr;
    disconnect();
    throw RedisConnectionLost("Redis connection to " + url_.redacted() + " lost during " + args[0] + ": " + why);
  }
  RedisReply out = copy_reply(*reply);
  freeReplyObject(reply);
  return out;
}

RedisReply RedisClient::checked(const std::vector<std::string>& args) {
  RedisReply reply = command(args);
  if (reply.is_error()) fail_runtime("Redis " + args[0] + " failed: " + reply.text);
  return reply;
}

}  // namespace csq::workers
