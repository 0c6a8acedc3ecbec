// The web dashboard's files (web/public, docs/dashboard.md), served by `atrium serve` at
// `/` and `/assets/...` beside the API. Transport-neutral: a request's method, path and
// two headers in, a status, headers and body out, so any HTTP layer can call it.
//
// Every answer carries a strict Content-Security-Policy (scripts, styles and data only
// from this origin, no inline script, no framing), X-Content-Type-Options: nosniff and
// Referrer-Policy: no-referrer. Files have a strong ETag (SHA-256 of the bytes sent) and
// Cache-Control: no-cache, so browsers revalidate and get 304 Not Modified; text files are
// sent gzip-compressed to clients that accept it. Files are read once and kept in memory
// until their size or modification time changes.
//
// Only regular files under the root whose path is made of letters, digits and . _ - /
// (no dot-files, no "..") are served; anything else is 404.
//
//   StaticAssets assets("/srv/atrium/web");
//   StaticResponse out = assets.Serve({"GET", "/", "gzip, br", ""});
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atrium::server {

struct StaticRequest {
  std::string_view method;  // GET or HEAD; anything else is 405
  std::string_view path;    // decoded path, without the query
  std::string_view accept_encoding;
  std::string_view if_none_match;
};

struct StaticResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // empty for HEAD and 304
};

// The Content-Security-Policy of every page.
inline constexpr std::string_view kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

class StaticAssets {
 public:
  explicit StaticAssets(std::string root);
  ~StaticAssets();

  // Whether the path is the dashboard's ("/" or under "/assets/").
  static bool Handles(std::string_view path);

  StaticResponse Serve(const StaticRequest& request);

  const std::string& root() const { return root_; }

 private:
  struct File;
  std::string root_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const File>> files_;
};

// gzip (RFC 1952) of the bytes at a zlib level (1 fast .. 9 small); "" if zlib fails.
std::string Gzip(std::string_view input, int level);
// Whether an Accept-Encoding header accepts gzip (a "gzip" or "*" token without q=0).
bool AcceptsGzip(std::string_view header);

// Where the dashboard's files are when --web-root is not given: the first of
// $ATRIUM_WEB_ROOT, <binary dir>/../share/atrium/web, the source tree's web/public found
// upwards from the binary (a build tree inside the repository) and ./web/public that
// holds an index.html; "" if none does.
std::string FindWebRoot(const std::string& binary_path);

}  // namespace atrium::server
