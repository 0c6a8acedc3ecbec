#include "server/static_assets.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace atrium::server {
namespace {

std::string Header(const StaticResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

std::string Gunzip(const std::string& input) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

class StaticAssetsTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("atrium-static-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "-" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(root_ / "assets" / "pages");
    Write("index.html", "<!doctype html><title>x</title>");
    script_ = "export const answer = 42;\n";
    for (int i = 0; i < 100; ++i) script_ += "console.log('line " + std::to_string(i) + "');\n";
    Write("assets/pages/app.js", script_);
    Write("assets/.secret", "no");
    Write("secret.txt", "outside assets");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(root_ / name, std::ios::binary) << text;
  }
  std::filesystem::path root_;
  std::string script_;
};

TEST_F(StaticAssetsTest, ServesFilesWithSecurityHeadersAndTheirType) {
  StaticAssets assets(root_.string());
  const StaticResponse index = assets.Serve({"GET", "/", "", ""});
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<!doctype html><title>x</title>");
  EXPECT_EQ(Header(index, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(Header(index, "Content-Security-Policy"), kDashboardCsp);
  EXPECT_EQ(Header(index, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(Header(index, "Cache-Control"), "no-cache");
  const StaticResponse script = assets.Serve({"GET", "/assets/pages/app.js", "", ""});
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.body, script_);
  EXPECT_EQ(Header(script, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(Header(script, "Content-Encoding"), "");
  const StaticResponse head = assets.Serve({"HEAD", "/assets/pages/app.js", "", ""});
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(Header(head, "ETag"), Header(script, "ETag"));
}

TEST_F(StaticAssetsTest, GzipWhereAcceptedAndRevalidatesWithEtags) {
  StaticAssets assets(root_.string());
  const StaticResponse gzip = assets.Serve({"GET", "/assets/pages/app.js", "br, gzip;q=0.8", ""});
  EXPECT_EQ(Header(gzip, "Content-Encoding"), "gzip");
  EXPECT_EQ(Header(gzip, "Vary"), "Accept-Encoding");
  EXPECT_LT(gzip.body.size(), script_.size());
  EXPECT_EQ(Gunzip(gzip.body), script_);
  const StaticResponse refused = assets.Serve({"GET", "/assets/pages/app.js", "gzip;q=0", ""});
  EXPECT_EQ(Header(refused, "Content-Encoding"), "");
  EXPECT_EQ(refused.body, script_);
  // Each representation has its own strong ETag; a match answers 304 with no body.
  const std::string plain_etag = Header(refused, "ETag");
  const std::string gzip_etag = Header(gzip, "ETag");
  EXPECT_NE(plain_etag, gzip_etag);
  const StaticResponse again =
      assets.Serve({"GET", "/assets/pages/app.js", "gzip", "\"other\", " + gzip_etag});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(assets.Serve({"GET", "/assets/pages/app.js", "", gzip_etag}).status, 200);
  // A changed file is read again.
  Write("assets/pages/app.js", "changed");
  const StaticResponse changed = assets.Serve({"GET", "/assets/pages/app.js", "", plain_etag});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "changed");
}

TEST_F(StaticAssetsTest, RefusesWhatIsNotADashboardFile) {
  StaticAssets assets(root_.string());
  for (const char* path : {"/assets/../secret.txt", "/assets/.secret", "/assets/pages/../app.js",
                           "/assets/", "/assets/pages", "/assets/missing.js", "/secret.txt",
                           "/assets//pages/app.js", "/assets/pages/app.js%00"}) {
    const StaticResponse out = assets.Serve({"GET", path, "", ""});
    EXPECT_EQ(out.status, 404) << path;
    EXPECT_EQ(Header(out, "Content-Type"), "application/json") << path;
  }
  const StaticResponse post = assets.Serve({"POST", "/", "", ""});
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(Header(post, "Allow"), "GET, HEAD");
  EXPECT_TRUE(StaticAssets::Handles("/"));
  EXPECT_TRUE(StaticAssets::Handles("/assets/app.js"));
  EXPECT_FALSE(StaticAssets::Handles("/v1/programs"));
  StaticAssets nowhere("");
  EXPECT_EQ(nowhere.Serve({"GET", "/", "", ""}).status, 404);
}

TEST_F(StaticAssetsTest, FindsTheWebRootAboveTheBinary) {
  std::filesystem::create_directories(root_ / "web" / "public");
  Write("web/public/index.html", "x");
  std::filesystem::create_directories(root_ / "build" / "dev" / "src" / "cli");
  const std::string found = FindWebRoot((root_ / "build/dev/src/cli/atrium").string());
  EXPECT_EQ(std::filesystem::weakly_canonical(found),
            std::filesystem::weakly_canonical(root_ / "web" / "public"));
}

}  // namespace
}  // namespace atrium::server
