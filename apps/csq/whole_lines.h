// Output lines written whole: a reader of csq's JSON Lines (a file, the next command of a pipe)
// never finds a torn last line when the command is stopped by SIGINT or SIGTERM.
#pragma once

namespace csq::app {

// Hold one while writing and flushing a line: SIGINT or SIGTERM arriving meanwhile (a line longer
// than stdio's buffer takes several write()s, and a full pipe blocks between them) takes effect
// when the guard ends; a second one while the first waits takes effect at once. Signals the
// process ignores stay ignored. One writer at a time.
class WholeLineGuard {
 public:
  WholeLineGuard();
  ~WholeLineGuard();
  WholeLineGuard(const WholeLineGuard&) = delete;
  WholeLineGuard& operator=(const WholeLineGuard&) = delete;
};

}  // namespace csq::app
