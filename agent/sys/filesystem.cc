#include "agent/sys/filesystem.h"

#include <charconv>
#include <string>
#include <vector>

namespace agent::sys {
namespace {

std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto oct = [](char c) { return c >= '0' && c <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && oct(s[i + 1]) && oct(s[i + 2]) && oct(s[i + 3])) {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ParseU32(std::string_view s, uint32_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

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

common::Result<std::vector<MountEntry>> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    std::vector<std::string_view> f = SplitSpaces(line);
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    MountEntry e;
    uint32_t parent = 0;
    size_t colon = f.size() > 2 ? f[2].find(':') : std::string_view::npos;
    if (f.size() < 6 || sep + 2 >= f.size() || colon == std::string_view::npos ||
        !ParseU32(f[0], e.mount_id) || !ParseU32(f[1], parent) ||
        !ParseU32(f[2].substr(0, colon), e.major) || !ParseU32(f[2].substr(colon + 1), e.minor)) {
      return common::InvalidArgumentError("malformed mountinfo line: \"{}\"", line);
    }
    e.root = Unescape(f[3]);
    e.target = Unescape(f[4]);
    e.mount_options = std::string(f[5]);
    e.fstype = Unescape(f[sep + 1]);
    e.source = Unescape(f[sep + 2]);
    e.super_options = sep + 3 < f.size() ? std::string(f[sep + 3]) : std::string();
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace agent::sys
