// EVTX reader: Windows XML Event Log files (Vista and later) decoded into the JSON layout that
// `evtx_dump -o json` writes, record by record, with damaged chunks and records reported and
// skipped instead of ending the read.
//
// Format: a 4 KiB file header, then 64 KiB chunks (header with CRC32s, a string table and a
// template table, then event records). Each record holds Binary XML: template instances whose
// substitution values fill the template's placeholders (format references: libyal's "Windows
// XML Event Log (EVTX)" document, Microsoft's MS-EVEN6 §3.1.4.7).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

namespace csq::detect {

struct EvtxRecord {
  uint64_t record_id = 0;
  std::string time;              // the record's written time, ISO 8601 UTC, e.g. 2019-05-14T03:41:52.123456Z
  nlohmann::ordered_json event;  // {"Event": {"System": {...}, "EventData": {...}}} as `evtx_dump -o json` writes it
};

// One damaged piece of the file: `chunk` is the chunk's index in the file, `record_id` the
// record's id when its header was readable (else 0), `offset` the byte offset in the file.
struct EvtxProblem {
  uint64_t chunk = 0;
  uint64_t record_id = 0;
  uint64_t offset = 0;
  std::string reason;
};

struct EvtxStats {
  uint64_t chunks = 0;    // chunks with a valid signature
  uint64_t records = 0;   // records delivered to on_record
  uint64_t problems = 0;  // calls of on_problem
};

// Streams records in file order; memory bounded by one chunk and its templates. A file that is
// not EVTX (bad header) throws csq::Error (BadInput) naming the file and what was wrong; a
// damaged chunk or record is reported through on_problem (counted, with the reason) and
// reading continues with the next record or chunk. Never crashes, never allocates unboundedly.
// Whether the file starts with the EVTX signature "ElfFile\0", whatever its name ("-" is not).
bool is_evtx_file(const std::string& path);

EvtxStats read_evtx(const std::string& path, const std::function<void(EvtxRecord&&)>& on_record,
                    const std::function<void(const EvtxProblem&)>& on_problem);

// The same over bytes in memory (a whole file); `name` is used in error messages.
EvtxStats read_evtx(std::span<const uint8_t> file, const std::string& name,
                    const std::function<void(EvtxRecord&&)>& on_record,
                    const std::function<void(const EvtxProblem&)>& on_problem);

}  // namespace csq::detect
