// Helpers shared by the server's route files (http_server.cpp, task_routes.cpp,
// console_routes.cpp): errors in the OpenAI shape.
#pragma once

#include <httplib.h>

#include <string>

#include "server/openai.h"

namespace csq::server {

inline ApiError error(int status, const std::string& message, const std::string& type = "invalid_request_error",
                      const std::string& code = "") {
  ApiError e;
  e.status = status;
  e.message = message;
  e.type = type;
  e.code = code;
  return e;
}

// `e` naming the request field it is about.
inline ApiError with_param(ApiError e, const std::string& param) {
  e.param = param;
  return e;
}

inline void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(e.body()), "application/json");
}

// Client Closed Request, as nginx logs it: the client left before the answer.
constexpr int kClientClosed = 499;

// A full request queue: a condition of the moment, which the client retries after Retry-After.
inline ApiError queue_full(httplib::Response& res) {
  res.set_header("Retry-After", "1");
  return error(429, "the server is busy: the request queue is full; retry shortly", "rate_limit_error");
}

// Registers a POST route whose body is read here, at most `max_bytes` of it as decoded: httplib
// 0.11 checks only a Content-Length against its limit, so a chunked body, or a small one that
// inflates (Content-Encoding: gzip), would be read whole whatever its size.
void post_bounded(httplib::Server& svr, const std::string& pattern, size_t max_bytes, httplib::Server::Handler handler);

// The console's pages and files (console_routes.cpp): served without the API key.
bool is_console_path(const std::string& path);

}  // namespace csq::server
