#include "agent/sys/filesystem.h"

#include <string>

namespace agent::sys {
namespace {

bool HasCommaItem(std::string_view list, std::string_view item) {
  while (!list.empty()) {
    size_t c = list.find(',');
    if (list.substr(0, c) == item) return true;
    if (c == std::string_view::npos) break;
    list.remove_prefix(c + 1);
  }
  return false;
}

}  // namespace

bool MountEntry::HasOption(std::string_view option) const {
  return HasCommaItem(mount_options, option);
}

bool MountEntry::read_only() const { return HasOption("ro"); }

}  // namespace agent::sys
