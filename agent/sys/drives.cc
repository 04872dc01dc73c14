#include "agent/sys/drives.h"

#include <cctype>

namespace agent::sys {

bool IsNvmeNamespaceName(std::string_view name) {
  if (!name.starts_with("nvme")) return false;
  size_t i = 4;
  auto digits = [&]() {
    size_t start = i;
    while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
    return i > start;
  };
  if (!digits()) return false;
  if (i >= name.size() || name[i] != 'n') return false;
  ++i;
  if (!digits()) return false;
  return i == name.size();
}

}  // namespace agent::sys
