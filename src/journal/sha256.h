// SHA-256 through OpenSSL's EVP interface: the hash of the journal's chain and of
// snapshots.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace atrium::journal {

using Digest = std::array<uint8_t, 32>;

// An incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& Update(std::string_view bytes);
  Digest Finish();

 private:
  struct Context;
  Context* context_;
};

Digest Sha256Of(std::string_view bytes);
std::string ToHex(const Digest& digest);

}  // namespace atrium::journal
