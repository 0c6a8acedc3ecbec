// API tokens. A token is "atr_<id>_<secret>": the id (16 hex digits) finds its record,
// the secret (64 hex digits, 256 random bits) proves it. The state keeps only the id, a
// random salt and SHA-256(salt || secret); the secret is shown once, when it is made.
//
//   IssuedToken token = IssueToken();          // token.text goes to the user
//   record.salt_hex = token.salt_hex; record.hash_hex = token.hash_hex;
//   if (auto parsed = ParseToken(header)) ... TokenMatches(record, parsed->secret)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/app_state.h"

namespace atrium::server {

struct IssuedToken {
  std::string id;
  std::string secret;
  std::string salt_hex;
  std::string hash_hex;
  std::string text;  // what the user presents
};

// Draws id, secret and salt from the operating system's random source.
IssuedToken IssueToken();

// A program's seal secret (program_state.h): 256 random bits as 64 hex digits.
std::string NewSealSecret();

struct ParsedToken {
  std::string id;
  std::string secret;
};
std::optional<ParsedToken> ParseToken(std::string_view text);

// Compares in constant time.
bool TokenMatches(const core::TokenRecord& record, std::string_view secret);

}  // namespace atrium::server
