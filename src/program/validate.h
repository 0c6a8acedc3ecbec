// Format checks for what people type in: ORCID-style person ids, paper identifiers
// (DOI or arXiv id) and open-source repositories (a URL on a public forge plus an OSI
// license id). Pure functions; each failure is an Error with its own code.
//
//   ValidatePaperId("10.1145/3600006.3613165")  -> ok
//   ValidatePaperId("arXiv:2403.01234v2")        -> ok
//   ValidateRepository("https://github.com/acme/atrium", "Apache-2.0") -> ok
//   ValidateRepository("https://example.com/x", "MIT") -> invalid_repository
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace atrium::program {

// 16 digits in four groups of four; the last may be X; ISO 7064 MOD 11-2 checksum.
Status ValidateOrcid(std::string_view id);
// A DOI ("10.<4-9 digits>/<suffix>", optionally with a "doi:" or https://doi.org/ prefix)
// or an arXiv id (new style 2403.01234[v2] or old style hep-th/9901001, optionally with
// an "arXiv:" prefix).
Status ValidatePaperId(std::string_view id);
// https://<public forge>/<owner>/<repository>[.git] and an OSI-approved SPDX id.
Status ValidateRepository(std::string_view url, std::string_view license);
bool IsOsiLicense(std::string_view spdx_id);
// The ORCID-style id whose first 15 digits are `number` (zero-padded), with its check
// character: for generated people in tests, benchmarks and the demo.
std::string OrcidFromNumber(uint64_t number);

}  // namespace atrium::program
