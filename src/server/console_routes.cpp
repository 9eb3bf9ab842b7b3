// The analyst console: web/index.html at / and /ui, its other files at /ui/NAME, all from the
// binary (web_assets.h). Served without the API key (they hold no data; the page asks for the
// key and sends it with each API call), under a Content-Security-Policy that allows nothing but
// this origin's own files and API: no inline script or style, no other host, no framing.
#include <string>

#include "server/http_server.h"
#include "server/routes.h"
#include "server/web_assets.h"

namespace csq::server {
namespace {

constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const char* content_type(std::string_view name) {
  const auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

const WebAsset* find_asset(std::string_view name) {
  for (const WebAsset& a : web_assets())
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace

bool is_console_path(const std::string& path) { return path == "/" || path == "/ui" || path.starts_with("/ui/"); }

void HttpServer::install_console_routes(httplib::Server& svr) {
  auto serve = [this](const httplib::Request& req, httplib::Response& res, std::string_view name) {
    const WebAsset* asset = find_asset(name);
    if (!asset) {
      send_error(res, error(404, "the console has no file '" + std::string(name) + "'", "invalid_request_error", "not_found"));
      metrics_.count_request("/ui", 404);
      return;
    }
    // Revalidated on every load (the binary may have changed), answered 304 when unchanged.
    res.headers.erase("Cache-Control");
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("X-Frame-Options", "DENY");
    const std::string etag = "\"" + std::string(asset->sha256.substr(0, 32)) + "\"";
    res.set_header("ETag", etag);
    if (req.get_header_value("If-None-Match") == etag) {
      res.status = 304;
    } else {
      res.status = 200;
      res.set_content(asset->data, asset->size, content_type(asset->name));
    }
    metrics_.count_request("/ui", res.status);
  };
  auto index = [serve](const httplib::Request& req, httplib::Response& res) { serve(req, res, "index.html"); };
  svr.Get("/", index);
  svr.Get("/ui", index);
  svr.Get("/ui/", index);
  svr.Get(R"(/ui/([A-Za-z0-9_.-]{1,64}))",
          [serve](const httplib::Request& req, httplib::Response& res) { serve(req, res, req.matches[1].str()); });
}

}  // namespace csq::server
