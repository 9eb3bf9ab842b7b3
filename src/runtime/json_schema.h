// JSON Schema subset → byte-level expression (runtime/regex_dfa.h), for constrained output.
//
// Supported:
//   type (a name or a list of names): object, array, string, integer, number, boolean, null
//   object: properties (emitted in the schema's order, so pass an ordered_json), required
//     (optional properties may be omitted), additionalProperties (only the declared properties
//     are ever generated; without "properties", a schema value gives a string-keyed map of such
//     values and true/absent gives any object)
//   array: items, minItems, maxItems
//   string: minLength, maxLength (in code points), pattern (matched against the whole decoded
//     string, as if anchored with ^...$; not combined with the lengths)
//   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum — exact, by a digit automaton
//     for the range (bounds within ±1e18)
//   number: minimum, maximum with integer values — exact (a bounded number has no exponent);
//     exclusive or fractional bounds on numbers are rejected
//   enum, const (any JSON values, emitted in compact form), anyOf, $ref to "#/..." pointers
//     (e.g. #/$defs/Name; recursive references are rejected), $defs / definitions
//   annotations, accepted and ignored: title, description, $schema, $id, $comment, examples,
//     default, deprecated, readOnly, writeOnly
// Anything else (format, oneOf, allOf, not, multipleOf, prefixItems, minProperties, ...) is a
// usage error naming the keyword and its JSON path; so is a keyword that does not apply to the
// declared type, or a type keyword without "type".
//
// Output form: strings escape only what JSON requires (", \, control characters) and may also
// use \uXXXX escapes when free-form; a schema {} or a value without a type is any JSON value,
// nested at most kAnyValueDepth deep. Whitespace: none before or after the document; at each
// place JSON allows it, either nothing, one space, or a newline followed by up to 20 spaces or
// tabs — enough for compact, "a": 1 style and pretty-printed output, bounded so that a model
// cannot stall in whitespace.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/regex_dfa.h"

namespace csq {

inline constexpr int kAnyValueDepth = 3;

// Throws csq::Error (Usage) on an unsupported or contradictory schema.
rx::NodePtr json_schema_expression(const nlohmann::ordered_json& schema);

// Any JSON object whose values nest at most `max_depth` objects/arrays deep (the top one counts).
rx::NodePtr json_object_expression(int max_depth);

}  // namespace csq
