#include "server/static_assets.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "program/decision_log.h"

namespace atrium::server {

struct StaticAssets::File {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  std::string content_type;
  std::string body;
  std::string gzip;  // empty if not worth compressing
  std::string etag;
  std::string gzip_etag;
};

namespace {

constexpr size_t kFileBytesMax = 16 << 20;  // the dashboard's largest file is far smaller
constexpr size_t kPathBytesMax = 512;

std::string_view ContentType(std::string_view path) {
  const size_t dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

bool Compressible(std::string_view type) {
  return type.starts_with("text/") || type == "application/json" || type == "image/svg+xml";
}

// Letters, digits, . _ - and /; no empty, dot-led or ".." segment.
bool SafeRelative(std::string_view path) {
  if (path.empty() || path.size() > kPathBytesMax) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment.empty() || segment.front() == '.') return false;
    for (const char c : segment) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
      if (!ok) return false;
    }
    start = end + 1;
  }
  return true;
}

}  // namespace

std::string Gzip(std::string_view input, int level) {
  z_stream stream{};
  if (deflateInit2(&stream, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(input.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return result == Z_STREAM_END ? out : std::string();
}

bool AcceptsGzip(std::string_view header) {
  size_t start = 0;
  while (start < header.size()) {
    size_t end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    std::string_view item = header.substr(start, end - start);
    start = end + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const size_t semi = item.find(';');
    std::string_view name = item.substr(0, semi);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name != "gzip" && name != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view params = item.substr(semi + 1);
    while (!params.empty() && params.front() == ' ') params.remove_prefix(1);
    if (params.starts_with("q=0") &&
        params.find_first_not_of("q=0.", 0) == std::string_view::npos) {
      return false;
    }
    return true;
  }
  return false;
}

namespace {

bool EtagMatches(std::string_view header, const std::string& etag) {
  size_t start = 0;
  while (start < header.size()) {
    size_t end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    std::string_view item = header.substr(start, end - start);
    start = end + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

void CommonHeaders(StaticResponse& out) {
  out.headers.emplace_back("Content-Security-Policy", std::string(kDashboardCsp));
  out.headers.emplace_back("X-Content-Type-Options", "nosniff");
  out.headers.emplace_back("Referrer-Policy", "no-referrer");
  out.headers.emplace_back("X-Frame-Options", "DENY");
}

StaticResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  StaticResponse out;
  out.status = status;
  CommonHeaders(out);
  out.headers.emplace_back("Content-Type", "application/json");
  out.headers.emplace_back("Cache-Control", "no-store");
  out.body = std::string(R"({"error":{"code":")") + std::string(code) + R"(","message":")" +
             std::string(message) + "\"}}";
  return out;
}

}  // namespace

StaticAssets::StaticAssets(std::string root) : root_(std::move(root)) {}
StaticAssets::~StaticAssets() = default;

bool StaticAssets::Handles(std::string_view path) {
  return path == "/" || path == "/index.html" || path.starts_with("/assets/");
}

StaticResponse StaticAssets::Serve(const StaticRequest& request) {
  if (request.method != "GET" && request.method != "HEAD") {
    StaticResponse out = ErrorResponse(405, "not_found", "the dashboard's files are read with GET");
    out.headers.emplace_back("Allow", "GET, HEAD");
    return out;
  }
  std::string relative;
  if (request.path == "/" || request.path == "/index.html") {
    relative = "index.html";
  } else if (request.path.starts_with("/assets/") &&
             SafeRelative(request.path.substr(std::string_view("/").size()))) {
    relative = std::string(request.path.substr(1));
  } else {
    return ErrorResponse(404, "not_found", "no such file");
  }
  const std::string full = root_ + "/" + relative;
  struct stat info {};
  if (root_.empty() || stat(full.c_str(), &info) != 0 || !S_ISREG(info.st_mode) ||
      static_cast<size_t>(info.st_size) > kFileBytesMax) {
    return ErrorResponse(404, "not_found", "no such file");
  }
  const int64_t mtime_ns =
      static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
  std::shared_ptr<const File> file;
  {
    std::lock_guard lock(mutex_);
    const auto found = files_.find(relative);
    if (found != files_.end() && found->second->size == info.st_size &&
        found->second->mtime_ns == mtime_ns) {
      file = found->second;
    }
  }
  if (file == nullptr) {
    auto loaded = std::make_shared<File>();
    std::ifstream in(full, std::ios::binary);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (!in.good() && !in.eof()) return ErrorResponse(404, "not_found", "no such file");
    loaded->body = buffer.str();
    loaded->size = info.st_size;
    loaded->mtime_ns = mtime_ns;
    loaded->content_type = ContentType(relative);
    loaded->etag = "\"" + program::Sha256Hex(loaded->body).substr(0, 32) + "\"";
    if (Compressible(loaded->content_type) && loaded->body.size() > 256) {
      loaded->gzip = Gzip(loaded->body, 9);
      if (loaded->gzip.size() >= loaded->body.size()) loaded->gzip.clear();
      if (!loaded->gzip.empty()) {
        loaded->gzip_etag = "\"" + program::Sha256Hex(loaded->gzip).substr(0, 32) + "\"";
      }
    }
    std::lock_guard lock(mutex_);
    files_[relative] = loaded;
    file = std::move(loaded);
  }

  StaticResponse out;
  CommonHeaders(out);
  const bool gzip = !file->gzip.empty() && AcceptsGzip(request.accept_encoding);
  const std::string& etag = gzip ? file->gzip_etag : file->etag;
  out.headers.emplace_back("Content-Type", file->content_type);
  out.headers.emplace_back("Cache-Control", "no-cache");
  out.headers.emplace_back("ETag", etag);
  if (!file->gzip.empty()) out.headers.emplace_back("Vary", "Accept-Encoding");
  if (!request.if_none_match.empty() && EtagMatches(request.if_none_match, etag)) {
    out.status = 304;
    return out;
  }
  if (gzip) out.headers.emplace_back("Content-Encoding", "gzip");
  out.status = 200;
  if (request.method == "GET") out.body = gzip ? file->gzip : file->body;
  return out;
}

std::string FindWebRoot(const std::string& binary_path) {
  namespace fs = std::filesystem;
  auto has_index = [](const fs::path& dir) {
    std::error_code error;
    return fs::is_regular_file(dir / "index.html", error);
  };
  if (const char* env = std::getenv("ATRIUM_WEB_ROOT"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code error;
  fs::path binary = fs::weakly_canonical(fs::path(binary_path), error);
  if (error || binary_path.empty()) binary = fs::path(binary_path);
  const fs::path dir = binary.parent_path();
  if (!dir.empty()) {
    if (has_index(dir / ".." / "share" / "atrium" / "web")) {
      return (dir / ".." / "share" / "atrium" / "web").lexically_normal().string();
    }
    for (fs::path up = dir; !up.empty() && up != up.root_path(); up = up.parent_path()) {
      if (has_index(up / "web" / "public")) return (up / "web" / "public").string();
    }
  }
  if (has_index(fs::path("web") / "public")) return fs::absolute("web/public", error).string();
  return {};
}

}  // namespace atrium::server
