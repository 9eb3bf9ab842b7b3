// Binary XML of one EVTX chunk: event records' token streams expanded (template instances,
// substitutions, nested fragments, array values) into an element tree, then rendered as the
// JSON that `evtx_dump -o json` writes. Internal to the EVTX reader (evtx.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace csq::detect::binxml {

// A malformed token stream or value; the message says what and where (chunk offset).
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "YYYY-MM-DDTHH:MM:SS.ffffffZ" for a FILETIME (100 ns ticks since 1601-01-01 UTC), truncated
// to microseconds as evtx_dump does.
std::string filetime_iso(uint64_t filetime);

// Decodes the records of one chunk. Names and nothing else are cached per chunk; every
// allocation is bounded by the limits below.
class ChunkDecoder {
 public:
  explicit ChunkDecoder(std::span<const uint8_t> chunk);

  // The record's Binary XML at [offset, offset + size) of the chunk as evtx_dump's JSON.
  // Throws FormatError.
  nlohmann::ordered_json decode(uint32_t offset, uint32_t size);

  static constexpr size_t kMaxNodes = 200'000;         // nodes of one expanded record
  static constexpr size_t kMaxTextBytes = 16u << 20;   // rendered text of one record
  static constexpr int kMaxNesting = 64;               // fragments / template instances in one another
  static constexpr size_t kMaxElementDepth = 512;      // open elements in one record

  static constexpr uint32_t kNone = 0xffffffffu;
  enum class Kind : uint8_t { Element, Value, EntityRef, CharRef, CData, PITarget, PIData };
  struct Node {
    Kind kind;
    uint8_t type = 0;     // Value: BinXML value type
    uint16_t code = 0;    // CharRef: the character
    uint32_t next = kNone;
    uint32_t a = 0;       // Element: element index; Value/CData/PIData: chunk offset; EntityRef/PITarget: name id
    uint32_t b = 0;       // Value/CData/PIData: size in bytes
  };
  struct Attr {
    uint32_t name;
    uint32_t first = kNone, last = kNone, next = kNone;
  };
  struct Element {
    uint32_t name;
    uint32_t first_attr = kNone, last_attr = kNone;
    uint32_t first_child = kNone, last_child = kNone;
    bool has_element_child = false;
  };
  struct Substitution {
    uint8_t type;
    uint32_t offset, size;
  };

 private:
  struct Builder;
  const std::string& name_at(uint32_t offset, uint32_t& id);
  uint32_t read_name_ref(size_t& pos);
  void parse(size_t begin, size_t end, bool template_definition, const std::vector<Substitution>* values,
             int nesting, Builder& b);
  void instantiate(size_t& pos, int nesting, Builder& b);
  void substitute(const Substitution& v, bool optional, int nesting, Builder& b);
  void add_node(Builder& b, Node n, size_t pos);
  void attach_element(Builder& b, uint32_t element, size_t pos);

  std::span<const uint8_t> chunk_;
  std::unordered_map<uint32_t, uint32_t> name_ids_;  // chunk offset -> index in names_
  std::vector<std::string> names_;
  uint32_t event_name_ = kNone;  // "Event", for records without any element

 public:
  // The expanded record (read by the renderer in evtx_binxml.cpp).
  std::vector<Element> elements_;
  std::vector<Node> nodes_;
  std::vector<Attr> attrs_;
  const std::string& name(uint32_t id) const { return names_[id]; }
  std::span<const uint8_t> bytes(uint32_t offset, uint32_t size) const { return chunk_.subspan(offset, size); }
};

}  // namespace csq::detect::binxml
