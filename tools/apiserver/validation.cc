#include "tools/apiserver/validation.h"

#include <regex>

#include <fmt/format.h>

namespace tools::apiserver {
namespace {

constexpr std::string_view kQualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
constexpr std::string_view kQualifiedNameErr =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character";
constexpr std::string_view kLabelValueFmt = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
constexpr std::string_view kLabelValueErr =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character";
constexpr std::string_view kDns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kDns1123LabelErr =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character";
constexpr std::string_view kDns1123SubdomainFmt =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr std::string_view kDns1123SubdomainErr =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character";

// validation.RegexError: the message, examples and the regular expression.
std::string RegexError(std::string_view msg, std::string_view fmt_str,
                       std::initializer_list<std::string_view> examples) {
  std::string s(msg);
  s += " (e.g. ";
  bool first = true;
  for (std::string_view e : examples) {
    if (!first) s += ",  or ";
    first = false;
    s += "'" + std::string(e) + "'";
  }
  s += ", regex used for validation is '" + std::string(fmt_str) + "')";
  return s;
}

std::string MaxLenError(size_t n) { return fmt::format("must be no more than {} characters", n); }

bool FullMatch(std::string_view value, const std::regex& re) {
  return std::regex_match(value.begin(), value.end(), re);
}

const std::regex& QualifiedNameRe() {
  static const std::regex re{std::string(kQualifiedNameFmt)};
  return re;
}
const std::regex& LabelValueRe() {
  static const std::regex re{std::string(kLabelValueFmt)};
  return re;
}
const std::regex& LabelRe() {
  static const std::regex re{std::string(kDns1123LabelFmt)};
  return re;
}
const std::regex& SubdomainRe() {
  static const std::regex re{std::string(kDns1123SubdomainFmt)};
  return re;
}

}  // namespace

std::vector<std::string> IsDns1123Subdomain(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 253) errs.push_back(MaxLenError(253));
  if (!FullMatch(value, SubdomainRe())) {
    errs.push_back(RegexError(kDns1123SubdomainErr, kDns1123SubdomainFmt, {"example.com"}));
  }
  return errs;
}

std::vector<std::string> IsDns1123Label(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(MaxLenError(63));
  if (!FullMatch(value, LabelRe())) {
    errs.push_back(RegexError(kDns1123LabelErr, kDns1123LabelFmt, {"my-name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> IsQualifiedName(std::string_view value) {
  std::vector<std::string> errs;
  std::string_view name = value;
  size_t slash = value.find('/');
  if (slash != std::string_view::npos) {
    if (value.find('/', slash + 1) != std::string_view::npos) {
      errs.push_back(
          "a qualified name " +
          RegexError(kQualifiedNameErr, kQualifiedNameFmt, {"MyName", "my.name", "123-abc"}) +
          " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
      return errs;
    }
    std::string_view prefix = value.substr(0, slash);
    name = value.substr(slash + 1);
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      for (const std::string& e : IsDns1123Subdomain(prefix)) errs.push_back("prefix part " + e);
    }
  }
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else if (name.size() > 63) {
    errs.push_back("name part " + MaxLenError(63));
  }
  if (!name.empty() && !FullMatch(name, QualifiedNameRe())) {
    errs.push_back("name part " + RegexError(kQualifiedNameErr, kQualifiedNameFmt,
                                             {"MyName", "my.name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> IsValidLabelValue(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(MaxLenError(63));
  if (!FullMatch(value, LabelValueRe())) {
    errs.push_back(RegexError(kLabelValueErr, kLabelValueFmt, {"MyValue", "my_value", "12345"}));
  }
  return errs;
}

// generateName prefixes may end in '-': they are validated as if it were an alphanumeric.
std::vector<std::string> NameIsDnsSubdomain(std::string_view name, bool prefix) {
  if (prefix && !name.empty() && name.back() == '-') {
    std::string masked(name);
    masked.back() = 'a';
    return IsDns1123Subdomain(masked);
  }
  return IsDns1123Subdomain(name);
}

std::vector<std::string> NameIsDnsLabel(std::string_view name, bool prefix) {
  if (prefix && !name.empty() && name.back() == '-') {
    std::string masked(name);
    masked.back() = 'a';
    return IsDns1123Label(masked);
  }
  return IsDns1123Label(name);
}

}  // namespace tools::apiserver
