#include "server/tokens.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>

#include "base/assert.h"
#include "journal/sha256.h"

namespace atrium::server {
namespace {

std::string RandomHex(size_t bytes) {
  std::array<unsigned char, 64> buffer{};
  ATRIUM_CHECK(bytes <= buffer.size(), "random draw too large");
  ATRIUM_CHECK(RAND_bytes(buffer.data(), static_cast<int>(bytes)) == 1,
               "the operating system's random source failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    out.push_back(kHex[buffer[i] >> 4]);
    out.push_back(kHex[buffer[i] & 15]);
  }
  return out;
}

std::string HashHex(std::string_view salt_hex, std::string_view secret) {
  journal::Sha256 hash;
  hash.Update(salt_hex).Update(secret);
  return journal::ToHex(hash.Finish());
}

bool IsHex(std::string_view text) {
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string NewSealSecret() { return RandomHex(32); }

IssuedToken IssueToken() {
  IssuedToken token;
  token.id = RandomHex(8);
  token.secret = RandomHex(32);
  token.salt_hex = RandomHex(16);
  token.hash_hex = HashHex(token.salt_hex, token.secret);
  token.text = "atr_" + token.id + "_" + token.secret;
  return token;
}

std::optional<ParsedToken> ParseToken(std::string_view text) {
  // atr_ + 16 + _ + 64
  if (text.size() != 4 + 16 + 1 + 64 || text.substr(0, 4) != "atr_" || text[20] != '_') {
    return std::nullopt;
  }
  ParsedToken parsed{std::string(text.substr(4, 16)), std::string(text.substr(21))};
  if (!IsHex(parsed.id) || !IsHex(parsed.secret)) return std::nullopt;
  return parsed;
}

bool TokenMatches(const core::TokenRecord& record, std::string_view secret) {
  const std::string hash = HashHex(record.salt_hex, secret);
  return hash.size() == record.hash_hex.size() &&
         CRYPTO_memcmp(hash.data(), record.hash_hex.data(), hash.size()) == 0;
}

}  // namespace atrium::server
