// The Redis client of the stream workers: URL parsing (the password never in a message) and,
// against a real redis-server started here, password authentication, database selection, and
// reconnection with backoff after the server restarts (AOF persistence on, data kept).
#include "workers/redis.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "workers/redis_server.h"
#include "test_paths.h"

namespace csq::workers {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string usage_error(const std::string& url) {
  try {
    parse_redis_url(url);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Usage);
    return e.what();
  }
  ADD_FAILURE() << url << " was accepted";
  return "";
}

TEST(RedisUrl, PartsAndDefaults) {
  const RedisUrl full = parse_redis_url("redis://soc:p%40ss%3Aw0rd@redis.internal:6380/3");
  EXPECT_EQ(full.user, "soc");
  EXPECT_EQ(full.password, "p@ss:w0rd");
  EXPECT_EQ(full.host, "redis.internal");
  EXPECT_EQ(full.port, 6380);
  EXPECT_EQ(full.db, 3);
  EXPECT_EQ(full.redacted(), "redis://soc:***@redis.internal:6380/3");

  const RedisUrl password_only = parse_redis_url("redis://:s3cret@10.0.0.5");
  EXPECT_EQ(password_only.user, "");
  EXPECT_EQ(password_only.password, "s3cret");
  EXPECT_EQ(password_only.port, 6379);
  EXPECT_EQ(password_only.redacted(), "redis://:***@10.0.0.5:6379/0");

  const RedisUrl bare = parse_redis_url("redis://localhost");
  EXPECT_EQ(bare.host, "localhost");
  EXPECT_EQ(bare.redacted(), "redis://localhost:6379/0");
  EXPECT_EQ(parse_redis_url("redis://[::1]:7000/").host, "::1");
  EXPECT_EQ(parse_redis_url("redis://[::1]:7000/").port, 7000);
}

TEST(RedisUrl, ErrorsNameThePartAndNeverThePassword) {
  EXPECT_NE(usage_error("rediss://:topsecret@h:6380").find("hiredis 0.14 has no TLS"), std::string::npos);
  EXPECT_NE(usage_error("http://h:6379").find("redis://"), std::string::npos);
  EXPECT_NE(usage_error("redis://:topsecret@h:99999").find("the port"), std::string::npos);
  EXPECT_NE(usage_error("redis://:topsecret@h:6379/x").find("the database"), std::string::npos);
  EXPECT_NE(usage_error("redis://:top%zzsecret@h").find("password"), std::string::npos);
  EXPECT_NE(usage_error("redis://topsecret@h").find("[USER]:PASSWORD"), std::string::npos);
  EXPECT_NE(usage_error("redis://:topsecret@:6379").find("host is empty"), std::string::npos);
  for (const char* url : {"rediss://:topsecret@h:6380", "redis://:topsecret@h:99999", "redis://:topsecret@h:6379/x",
                          "redis://:top%zzsecret@h", "redis://topsecret@h"})
    EXPECT_EQ(usage_error(url).find("secret"), std::string::npos) << url;
}

TEST(RedisClient, AuthenticatesSelectsAndReconnectsAfterARestart) {
  if (!fs::exists("/usr/bin/redis-server")) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
  const fs::path dir = test::fresh_test_dir("redis");
  test::RedisServer redis(dir, test::free_port(), "c0rrect-horse");
  redis.start();

  RedisOptions options;
  options.give_up_after = 20s;
  RedisClient client(parse_redis_url(redis.url("c0rrect-horse") + "/2"), options);
  int retries = 0;
  client.on_retry = [&](int, std::chrono::milliseconds, const std::string&) { ++retries; };
  EXPECT_EQ(client.checked({"PING"}).text, "PONG");  // retries while the server starts
  for (int i = 0; i < 5; ++i) client.checked({"XADD", "alerts", "*", "alert", "{\"n\":" + std::to_string(i) + "}"});
  EXPECT_EQ(client.checked({"XLEN", "alerts"}).integer, 5);
  const RedisReply range = client.checked({"XRANGE", "alerts", "-", "+", "COUNT", "1"});
  ASSERT_EQ(range.elements.size(), 1u);
  EXPECT_EQ(range.elements[0].elements[1].elements[1].text, "{\"n\":0}");

  // The database was selected: db 0 has no stream.
  RedisClient db0(parse_redis_url(redis.url("c0rrect-horse")), options);
  EXPECT_EQ(db0.checked({"XLEN", "alerts"}).integer, 0);

  // A wrong password fails at once, saying so without the password; no password: NOAUTH.
  RedisClient wrong(parse_redis_url(redis.url("wr0ng-horse")), options);
  const auto before = std::chrono::steady_clock::now();
  try {
    wrong.command({"PING"});
    ADD_FAILURE() << "a wrong password was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("wr0ng"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("refused the password"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  RedisClient anonymous(parse_redis_url("redis://127.0.0.1:" + std::to_string(redis.port())), options);
  EXPECT_TRUE(anonymous.command({"XLEN", "alerts"}).is_error());
  EXPECT_THROW(anonymous.checked({"XLEN", "alerts"}), Error);

  // Restart: the broken command is reported lost; the next one reconnects with backoff and
  // finds the entries that AOF kept.
  redis.stop();
  EXPECT_THROW(client.command({"XLEN", "alerts"}), RedisConnectionLost);
  retries = 0;
  std::thread restart([&] {
    std::this_thread::sleep_for(300ms);
    redis.start();
  });
  const RedisReply after = client.checked({"XLEN", "alerts"});
  restart.join();
  EXPECT_EQ(after.integer, 5);
  EXPECT_GE(retries, 1);
  EXPECT_EQ(client.reconnects(), 1);
  std::printf("reconnected after %d waits; %lld entries kept across the restart\n", retries, (long long)after.integer);

  // The server gone for good: connecting gives up after give_up_after with a clear error.
  redis.stop();
  options.give_up_after = 500ms;
  RedisClient late(parse_redis_url(redis.url("c0rrect-horse")), options);
  try {
    late.command({"PING"});
    ADD_FAILURE() << "connected to a stopped server";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect to Redis at redis://:***@127.0.0.1:"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace csq::workers
