// Untrusted text for a terminal, a log line or a Markdown ticket: no control character of it
// can start a line of its own or drive the terminal.
#pragma once

#include <string>
#include <string_view>

namespace csq {

// `text` with its control characters (C0, DEL, and C1 as UTF-8) written as \n, \r, \t or \xHH
// (one per byte); everything else, backslashes included, as it is.
std::string printable(std::string_view text);

}  // namespace csq
