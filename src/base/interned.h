// Interned strings: a value stored once in an Interner and named by pointer (8 bytes), for
// the ids that records repeat many times over. A million job records naming a hundred
// grants and a thousand people keep those 1,100 strings once, not a million copies.
//
// An Interned reads like a const std::string (it converts to const std::string& and to
// std::string_view, compares with strings, prints into JSON). It is made only by an
// Interner's Intern() and stays valid as long as that Interner lives (moving the Interner
// keeps it valid). Interners never forget a value: intern only what the state keeps (ids
// of existing programs, grants and people), never unchecked input.
#pragma once

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>

namespace atrium {

class Interned {
 public:
  Interned() = default;  // the empty string

  const std::string& str() const { return text_ != nullptr ? *text_ : Empty(); }
  operator const std::string&() const { return str(); }  // NOLINT: reads as a string
  operator std::string_view() const { return str(); }    // NOLINT: reads as a string
  bool empty() const { return text_ == nullptr; }
  size_t size() const { return str().size(); }
  const char* data() const { return str().data(); }
  const char* c_str() const { return str().c_str(); }
  // A hash of its identity: O(1), and equal values of one Interner hash alike (for maps
  // keyed by interned values).
  size_t hash() const { return std::hash<const std::string*>()(text_); }

  friend bool operator==(const Interned& a, const Interned& b) {
    return a.text_ == b.text_ || a.str() == b.str();
  }
  friend bool operator==(const Interned& a, std::string_view b) { return a.str() == b; }
  friend std::strong_ordering operator<=>(const Interned& a, std::string_view b) {
    return std::string_view(a.str()).compare(b) <=> 0;
  }
  friend std::string operator+(std::string a, const Interned& b) { return a.append(b.str()); }
  friend std::string operator+(const Interned& a, std::string_view b) {
    return std::string(a.str()).append(b);
  }

 private:
  friend class Interner;
  explicit Interned(const std::string* text) : text_(text) {}
  static const std::string& Empty();

  const std::string* text_ = nullptr;
};

// JSON output (nlohmann's to_json, found by argument-dependent lookup): the text.
template <class Json>
void to_json(Json& json, const Interned& value) {
  json = value.str();
}

class Interner {
 public:
  Interner() = default;
  Interner(Interner&&) noexcept = default;
  Interner& operator=(Interner&&) noexcept = default;
  Interner(const Interner&) = delete;
  Interner& operator=(const Interner&) = delete;

  // The one Interned for this text ("" is the empty Interned).
  Interned Intern(std::string_view text);
  // The Interned for this text if it is kept, else the empty Interned (nothing is added).
  Interned Find(std::string_view text) const;
  // Distinct values kept.
  size_t size() const { return strings_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>()(text); }
  };
  // Nodes of an unordered_set never move (not on rehash, not when the set is moved): the
  // pointers Interned keeps stay valid.
  std::unordered_set<std::string, Hash, std::equal_to<>> strings_;
};

}  // namespace atrium
