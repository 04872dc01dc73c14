#include "agent/sys/uevents.h"

#include <charconv>
#include <string>

namespace agent::sys {

common::Result<Uevent> ParseUevent(std::string_view datagram) {
  // Drop trailing NULs so that the last field is not followed by an empty one.
  while (!datagram.empty() && datagram.back() == '\0') datagram.remove_suffix(1);
  size_t header_end = datagram.find('\0');
  std::string_view header = datagram.substr(0, header_end);
  size_t at = header.find('@');
  if (header.empty() || at == std::string_view::npos || at == 0 || header == "libudev") {
    return common::InvalidArgumentError("uevent: header \"{}\" is not <action>@<devpath>",
                                        header.substr(0, 64));
  }
  Uevent event;
  std::string_view rest =
      header_end == std::string_view::npos ? std::string_view() : datagram.substr(header_end + 1);
  while (!rest.empty()) {
    size_t end = rest.find('\0');
    std::string_view field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (field.empty()) continue;
    size_t eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return common::InvalidArgumentError("uevent {}: field \"{}\" is not KEY=VALUE", header,
                                          field.substr(0, 64));
    }
    event.env[std::string(field.substr(0, eq))] = std::string(field.substr(eq + 1));
  }
  auto get = [&event](const char* key) {
    auto it = event.env.find(key);
    return it == event.env.end() ? std::string() : it->second;
  };
  event.action = get("ACTION");
  event.devpath = get("DEVPATH");
  event.subsystem = get("SUBSYSTEM");
  event.devname = get("DEVNAME");
  event.devtype = get("DEVTYPE");
  if (event.action.empty() || event.devpath.empty() || event.subsystem.empty()) {
    return common::InvalidArgumentError("uevent {}: ACTION, DEVPATH or SUBSYSTEM missing", header);
  }
  if (header.substr(0, at) != event.action || header.substr(at + 1) != event.devpath) {
    return common::InvalidArgumentError("uevent {}: header does not match ACTION={} DEVPATH={}",
                                        header, event.action, event.devpath);
  }
  // DEVNAME is relative to /dev ("nvme0n1", "md/foo"); strip a leading "/dev/" if present.
  if (event.devname.rfind("/dev/", 0) == 0) event.devname = event.devname.substr(5);
  std::string seq = get("SEQNUM");
  if (!seq.empty()) {
    auto [ptr, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), event.seqnum);
    if (ec != std::errc() || ptr != seq.data() + seq.size()) {
      return common::InvalidArgumentError("uevent {}: SEQNUM \"{}\" is not a number", header, seq);
    }
  }
  return event;
}

}  // namespace agent::sys
