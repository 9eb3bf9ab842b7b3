// csq::Error — the one error type of the library. Every failure on bad input is reported
// as an Error whose message names the file, the field and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace csq {

// Also the process exit codes of the `csq` program.
enum class ErrorCode : int {
  Usage = 1,     // the command line or request is malformed
  BadInput = 2,  // a file, model or input text is invalid
  Runtime = 3,   // the operation failed for another reason (I/O, resources)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail_input(const std::string& message) { throw Error(ErrorCode::BadInput, message); }
[[noreturn]] inline void fail_usage(const std::string& message) { throw Error(ErrorCode::Usage, message); }
[[noreturn]] inline void fail_runtime(const std::string& message) { throw Error(ErrorCode::Runtime, message); }

}  // namespace csq
