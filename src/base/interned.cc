#include "base/interned.h"

namespace atrium {

const std::string& Interned::Empty() {
  static const std::string kEmpty;
  return kEmpty;
}

Interned Interner::Intern(std::string_view text) {
  if (text.empty()) return Interned();
  auto found = strings_.find(text);
  if (found == strings_.end()) found = strings_.emplace(text).first;
  return Interned(&*found);
}

Interned Interner::Find(std::string_view text) const {
  const auto found = strings_.find(text);
  return found == strings_.end() ? Interned() : Interned(&*found);
}

}  // namespace atrium
