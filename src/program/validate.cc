#include "program/validate.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace atrium::program {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool AllDigits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsDigit);
}
bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
}

// Forges that host public repositories. Self-hosted forges are not accepted because
// their public availability cannot be checked from the identifier alone.
constexpr std::array<std::string_view, 7> kPublicForges = {
    "github.com", "gitlab.com",     "codeberg.org", "bitbucket.org",
    "git.sr.ht",  "huggingface.co", "gitea.com"};

// A subset of the OSI-approved licenses by SPDX id: the ones research code uses.
constexpr std::array<std::string_view, 26> kOsiLicenses = {
    "0BSD",          "AFL-3.0",           "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-2.0",
    "Artistic-2.0",  "BSD-2-Clause",      "BSD-3-Clause",  "BSL-1.0",           "CDDL-1.0",
    "ECL-2.0",       "EPL-2.0",           "EUPL-1.2",      "GPL-2.0-only",      "GPL-2.0-or-later",
    "GPL-3.0-only",  "GPL-3.0-or-later",  "ISC",           "LGPL-2.1-only",     "LGPL-2.1-or-later",
    "LGPL-3.0-only", "LGPL-3.0-or-later", "MIT",           "MPL-2.0",           "UPL-1.0",
    "Zlib"};

bool IsNewArxiv(std::string_view id) {
  // YYMM.NNNN or YYMM.NNNNN, optional vN.
  const size_t dot = id.find('.');
  if (dot != 4 || !AllDigits(id.substr(0, 4))) return false;
  std::string_view rest = id.substr(5);
  const size_t v = rest.find('v');
  std::string_view number = rest.substr(0, v);
  if ((number.size() != 4 && number.size() != 5) || !AllDigits(number)) return false;
  const int month = (id[2] - '0') * 10 + (id[3] - '0');
  if (month < 1 || month > 12) return false;
  return v == std::string_view::npos || AllDigits(rest.substr(v + 1));
}

bool IsOldArxiv(std::string_view id) {
  // archive(.SUBJ)?/YYMMNNN, optional vN.
  const size_t slash = id.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  std::string_view archive = id.substr(0, slash);
  for (char c : archive) {
    if (!(std::islower(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
          std::isupper(static_cast<unsigned char>(c)))) {
      return false;
    }
  }
  if (!std::islower(static_cast<unsigned char>(archive[0]))) return false;
  std::string_view rest = id.substr(slash + 1);
  const size_t v = rest.find('v');
  std::string_view number = rest.substr(0, v);
  if (number.size() != 7 || !AllDigits(number)) return false;
  return v == std::string_view::npos || AllDigits(rest.substr(v + 1));
}

bool IsDoi(std::string_view id) {
  if (!StartsWith(id, "10.")) return false;
  const size_t slash = id.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view registrant = id.substr(3, slash - 3);
  if (registrant.size() < 4 || registrant.size() > 9 || !AllDigits(registrant)) return false;
  std::string_view suffix = id.substr(slash + 1);
  if (suffix.empty()) return false;
  return std::all_of(suffix.begin(), suffix.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("-._;()/:<>").find(c) != std::string_view::npos;
  });
}

}  // namespace

Status ValidateOrcid(std::string_view id) {
  if (id.size() != 19 || id[4] != '-' || id[9] != '-' || id[14] != '-') {
    return MakeError(ErrorCode::kInvalidPersonId, "person id must look like 0000-0002-1825-0097",
                     "id");
  }
  int total = 0;
  for (size_t index = 0; index + 1 < id.size(); ++index) {
    if (index == 4 || index == 9 || index == 14) continue;
    if (!IsDigit(id[index])) {
      return MakeError(ErrorCode::kInvalidPersonId, "person id has a non-digit", "id");
    }
    total = (total + (id[index] - '0')) * 2;
  }
  const int remainder = total % 11;
  const int check = (12 - remainder) % 11;
  const char expected = check == 10 ? 'X' : static_cast<char>('0' + check);
  if (id.back() != expected) {
    return MakeError(ErrorCode::kInvalidPersonId,
                     std::string("person id checksum fails: last character should be ") + expected,
                     "id");
  }
  return OkStatus();
}

Status ValidatePaperId(std::string_view id) {
  if (StartsWith(id, "https://doi.org/")) id.remove_prefix(16);
  if (StartsWith(id, "doi:")) id.remove_prefix(4);
  if (IsDoi(id)) return OkStatus();
  if (StartsWith(id, "arXiv:")) id.remove_prefix(6);
  if (IsNewArxiv(id) || IsOldArxiv(id)) return OkStatus();
  return MakeError(ErrorCode::kInvalidPaperId,
                   "not a DOI (10.NNNN/suffix) or an arXiv id (YYMM.NNNNN or archive/YYMMNNN)",
                   "reference");
}

std::string OrcidFromNumber(uint64_t number) {
  std::string digits = std::to_string(number % 1'000'000'000'000'000ULL);
  digits.insert(0, 15 - digits.size(), '0');
  int total = 0;
  for (char c : digits) total = (total + (c - '0')) * 2;
  const int check = (12 - total % 11) % 11;
  digits.push_back(check == 10 ? 'X' : static_cast<char>('0' + check));
  return digits.substr(0, 4) + "-" + digits.substr(4, 4) + "-" + digits.substr(8, 4) + "-" +
         digits.substr(12, 4);
}

bool IsOsiLicense(std::string_view spdx_id) {
  return std::find(kOsiLicenses.begin(), kOsiLicenses.end(), spdx_id) != kOsiLicenses.end();
}

Status ValidateRepository(std::string_view url, std::string_view license) {
  const auto bad = [&](const std::string& why) {
    return MakeError(ErrorCode::kInvalidRepository,
                     "repository must be https://<public forge>/<owner>/<name>: " + why,
                     "reference");
  };
  if (!StartsWith(url, "https://")) return bad("not an https URL");
  url.remove_prefix(8);
  const size_t slash = url.find('/');
  if (slash == std::string_view::npos) return bad("no path");
  std::string_view host = url.substr(0, slash);
  if (std::find(kPublicForges.begin(), kPublicForges.end(), host) == kPublicForges.end()) {
    return bad("host is not a known public forge");
  }
  std::string_view path = url.substr(slash + 1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.size() > 4 && path.substr(path.size() - 4) == ".git") path.remove_suffix(4);
  const size_t middle = path.find('/');
  if (middle == std::string_view::npos) return bad("no repository name");
  std::string_view owner = path.substr(0, middle);
  std::string_view name = path.substr(middle + 1);
  if (host == "git.sr.ht" && !owner.empty() && owner[0] == '~') owner.remove_prefix(1);
  // GitLab allows subgroups; every segment must be a plain name.
  for (std::string_view part : {owner, name}) {
    if (part.empty()) return bad("empty owner or name");
    for (char c : part) {
      if (!(IsNameChar(c) || (host == "gitlab.com" && c == '/'))) {
        return bad("owner and name may hold letters, digits, '-', '_' and '.'");
      }
    }
  }
  if (!IsOsiLicense(license)) {
    return MakeError(ErrorCode::kInvalidLicense,
                     "license must be an OSI-approved SPDX id (MIT, Apache-2.0, BSD-3-Clause, ...)",
                     "license");
  }
  return OkStatus();
}

}  // namespace atrium::program
