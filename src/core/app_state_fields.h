// Helpers shared by the files that apply AppState's ops (app_state.cc, jobs.cc): typed,
// bounded access to a command's JSON fields and the common refusals. Internal to core.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/credits.h"
#include "base/error.h"
#include "core/app_state.h"
#include "program/program_state.h"

namespace atrium::core::internal {

using nlohmann::json;

inline constexpr int64_t kMicrosPerSecond = 1'000'000;
inline constexpr int64_t kWalltimeMaxS = 30 * 24 * 3600;
inline constexpr size_t kTextMax = program::ProgramState::kTextBytesMax;
inline constexpr size_t kListMax = 1'000;

inline Error Invalid(std::string message, std::string field) {
  return Error{ErrorCode::kInvalidArgument, std::move(message), std::move(field)};
}

inline Error Forbidden(std::string message) {
  return Error{ErrorCode::kForbidden, std::move(message), ""};
}

// Typed, bounded access to a JSON object's fields, and a check that it has no others.
class Fields {
 public:
  Fields(const json& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

  Status Only(std::initializer_list<std::string_view> allowed) const {
    if (!object_.is_object()) return Invalid("expected an object", Name(""));
    for (const auto& [key, value] : object_.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Error{ErrorCode::kUnknownField, "unknown field " + Name(key), Name(key)};
      }
    }
    return OkStatus();
  }

  bool Has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }

  Result<std::string> Text(const char* key, size_t max_bytes = kTextMax,
                           bool required = true) const {
    if (!Has(key)) {
      if (required) return Invalid(Name(key) + " is required", Name(key));
      return std::string();
    }
    const json& value = object_.at(key);
    if (!value.is_string()) return Invalid(Name(key) + " must be a string", Name(key));
    std::string text = value.get<std::string>();
    if (text.size() > max_bytes) {
      return Error{ErrorCode::kTooLong,
                   Name(key) + " is longer than " + std::to_string(max_bytes) + " bytes",
                   Name(key)};
    }
    return text;
  }

  Result<std::string> Id(const char* key, bool slash = false, bool required = true) const {
    ATRIUM_ASSIGN_OR_RETURN(std::string id, Text(key, AppState::kIdBytesMax + 1, required));
    if (id.empty() && !required) return id;
    if (!ValidId(id, slash)) {
      return Error{ErrorCode::kInvalidId,
                   Name(key) + " must be 1-128 characters of letters, digits and . _ : @ -",
                   Name(key)};
    }
    return id;
  }

  Result<int64_t> Int(const char* key, int64_t min, int64_t max,
                      std::optional<int64_t> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      return Invalid(Name(key) + " is required", Name(key));
    }
    const json& value = object_.at(key);
    if (!value.is_number_integer()) return Invalid(Name(key) + " must be an integer", Name(key));
    if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max)) {
      return Error{ErrorCode::kOutOfRange, Name(key) + " is out of range", Name(key)};
    }
    const auto number = value.get<int64_t>();
    if (number < min || number > max) {
      return Error{
          ErrorCode::kOutOfRange,
          Name(key) + " must be between " + std::to_string(min) + " and " + std::to_string(max),
          Name(key)};
    }
    return number;
  }

  Result<bool> Bool(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    if (!object_.at(key).is_boolean())
      return Invalid(Name(key) + " must be true or false", Name(key));
    return object_.at(key).get<bool>();
  }

  Result<Credits> Amount(const char* key, bool required = true) const {
    ATRIUM_ASSIGN_OR_RETURN(const std::string text, Text(key, 40, required));
    if (text.empty()) return Credits::Zero();
    auto parsed = Credits::Parse(text);
    if (!parsed.ok())
      return Invalid(Name(key) + " must be a decimal amount such as \"12.5\"", Name(key));
    if (parsed->is_negative()) return Invalid(Name(key) + " must not be negative", Name(key));
    return *parsed;
  }

  Result<std::vector<std::string>> Strings(const char* key, bool ids) const {
    std::vector<std::string> out;
    if (!Has(key)) return out;
    const json& value = object_.at(key);
    if (!value.is_array()) return Invalid(Name(key) + " must be an array of strings", Name(key));
    if (value.size() > kListMax) {
      return Error{ErrorCode::kTooLong, Name(key) + " has too many items", Name(key)};
    }
    for (const json& item : value) {
      if (!item.is_string()) return Invalid(Name(key) + " must be an array of strings", Name(key));
      std::string text = item.get<std::string>();
      if (ids ? !ValidId(text, false) : text.size() > kTextMax) {
        return Error{ErrorCode::kInvalidId, Name(key) + " holds an invalid item", Name(key)};
      }
      out.push_back(std::move(text));
    }
    return out;
  }

  const json& Object(const char* key) const { return object_.at(key); }
  std::string Name(std::string_view key) const {
    if (prefix_.empty()) return std::string(key);
    return key.empty() ? prefix_ : prefix_ + "." + std::string(key);
  }

 private:
  const json& object_;
  std::string prefix_;
};

inline Status RequireRole(const Actor& actor, std::initializer_list<Role> roles) {
  if (std::find(roles.begin(), roles.end(), actor.role) != roles.end()) return OkStatus();
  return Forbidden("the " + std::string(ToString(actor.role)) + " role may not do this");
}

inline Status RequireStaff(const Actor& actor) {
  return RequireRole(actor, {Role::kAdmin, Role::kOfficer});
}

inline std::string SchedGrantName(const std::string& program, const std::string& grant) {
  return program + "/" + grant;
}

}  // namespace atrium::core::internal
