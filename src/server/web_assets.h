// The analyst console's files (web/), built into the binary by cmake/embed_web.cmake so that
// `csq serve` needs nothing beside itself and loads nothing from elsewhere.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace csq::server {

struct WebAsset {
  std::string_view name;    // file name in web/ ("console.js")
  const char* data;
  size_t size;
  std::string_view sha256;  // hex digest of the content: the ETag
};

// Every file of web/, sorted by name.
std::span<const WebAsset> web_assets();

}  // namespace csq::server
