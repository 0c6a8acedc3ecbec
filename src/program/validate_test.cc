#include "program/validate.h"

#include <gtest/gtest.h>

namespace atrium::program {
namespace {

TEST(ValidateTest, OrcidChecksum) {
  EXPECT_TRUE(ValidateOrcid("0000-0002-1825-0097").ok());  // ORCID's documented example
  EXPECT_TRUE(ValidateOrcid("0000-0002-1694-233X").ok());
  EXPECT_EQ(ValidateOrcid("0000-0002-1825-0098").code(), ErrorCode::kInvalidPersonId);
  EXPECT_EQ(ValidateOrcid("0000-0002-1825-009").code(), ErrorCode::kInvalidPersonId);
  EXPECT_EQ(ValidateOrcid("0000/0002-1825-0097").code(), ErrorCode::kInvalidPersonId);
  EXPECT_EQ(ValidateOrcid("000a-0002-1825-0097").code(), ErrorCode::kInvalidPersonId);
  for (uint64_t number = 0; number < 2000; number += 7) {
    EXPECT_TRUE(ValidateOrcid(OrcidFromNumber(number)).ok()) << OrcidFromNumber(number);
  }
  EXPECT_EQ(OrcidFromNumber(21'825'009), "0000-0002-1825-0097");
}

TEST(ValidateTest, PaperIds) {
  for (const char* good : {"10.1145/3600006.3613165", "doi:10.48550/arXiv.2403.01234",
                           "https://doi.org/10.1000/xyz(123)", "2403.01234", "arXiv:2403.01234v2",
                           "0704.0001", "hep-th/9901001", "math.AG/0601001v3"}) {
    EXPECT_TRUE(ValidatePaperId(good).ok()) << good;
  }
  for (const char* bad :
       {"", "10.12/abc", "10.1145/", "11.1145/abc", "2413.01234", "2403.123", "2403.01234vx",
        "HEP-th/9901001", "hep-th/990100", "see my website", "10.1145/has space"}) {
    EXPECT_EQ(ValidatePaperId(bad).code(), ErrorCode::kInvalidPaperId) << bad;
  }
}

TEST(ValidateTest, Repositories) {
  EXPECT_TRUE(ValidateRepository("https://github.com/acme/atrium", "Apache-2.0").ok());
  EXPECT_TRUE(ValidateRepository("https://gitlab.com/group/sub/project.git", "MIT").ok());
  EXPECT_TRUE(ValidateRepository("https://codeberg.org/someone/thing/", "GPL-3.0-only").ok());
  EXPECT_TRUE(ValidateRepository("https://git.sr.ht/~user/tool", "BSD-3-Clause").ok());
  for (const char* bad :
       {"http://github.com/acme/atrium", "https://example.com/acme/atrium",
        "https://github.com/acme", "https://github.com/", "github.com/acme/atrium",
        "https://github.com/acme/at rium", "https://github.com.evil.org/acme/atrium",
        "https://github.com//atrium"}) {
    EXPECT_EQ(ValidateRepository(bad, "MIT").code(), ErrorCode::kInvalidRepository) << bad;
  }
  EXPECT_EQ(ValidateRepository("https://github.com/acme/atrium", "Proprietary").code(),
            ErrorCode::kInvalidLicense);
  EXPECT_EQ(ValidateRepository("https://github.com/acme/atrium", "mit").code(),
            ErrorCode::kInvalidLicense);
  EXPECT_EQ(ValidateRepository("https://github.com/acme/atrium", "").code(),
            ErrorCode::kInvalidLicense);
}

}  // namespace
}  // namespace atrium::program
