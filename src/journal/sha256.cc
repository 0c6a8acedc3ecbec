#include "journal/sha256.h"

#include <openssl/evp.h>

#include "base/assert.h"

namespace atrium::journal {

struct Sha256::Context {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : context_(new Context) {
  context_->md = EVP_MD_CTX_new();
  ATRIUM_CHECK(context_->md != nullptr, "EVP_MD_CTX_new failed");
  ATRIUM_CHECK(EVP_DigestInit_ex(context_->md, EVP_sha256(), nullptr) == 1, "SHA-256 init failed");
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(context_->md);
  delete context_;
}

Sha256& Sha256::Update(std::string_view bytes) {
  ATRIUM_CHECK(EVP_DigestUpdate(context_->md, bytes.data(), bytes.size()) == 1,
               "SHA-256 update failed");
  return *this;
}

Digest Sha256::Finish() {
  Digest digest{};
  unsigned int length = 0;
  ATRIUM_CHECK(
      EVP_DigestFinal_ex(context_->md, digest.data(), &length) == 1 && length == digest.size(),
      "SHA-256 final failed");
  return digest;
}

Digest Sha256Of(std::string_view bytes) { return Sha256().Update(bytes).Finish(); }

std::string ToHex(const Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (uint8_t byte : digest) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xF]);
  }
  return out;
}

}  // namespace atrium::journal
