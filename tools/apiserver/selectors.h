// Label and field selectors with Kubernetes syntax and matching rules.
//
// Label selectors: comma-separated requirements (AND) of the forms `key`, `!key`, `key=value`,
// `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key>N`, `key<N`. `!=` and
// `notin` also match objects without the label, as in Kubernetes.
// Field selectors: comma-separated `field=value`, `field==value`, `field!=value` terms, with `\`
// escaping `,`, `=` and `\` in values.
//
// Thread contract: immutable after Parse; safe to share between threads.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace tools::apiserver {

using StringMap = std::map<std::string, std::string>;

class LabelSelector {
 public:
  enum class Op {
    kEquals,
    kNotEquals,
    kIn,
    kNotIn,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan
  };
  struct Requirement {
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;
  };

  // An empty text selects everything. InvalidArgument with the Kubernetes-style message
  // ("unable to parse requirement: ...") on a syntax error or an invalid key or value.
  static common::Result<LabelSelector> Parse(std::string_view text);

  bool Matches(const StringMap& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  struct Requirement {
    std::string field;
    bool negate = false;  // !=
    std::string value;
  };

  // An empty text selects everything. InvalidArgument ("invalid selector: ...") on bad syntax.
  static common::Result<FieldSelector> Parse(std::string_view text);

  // A field missing from `fields` counts as "".
  bool Matches(const StringMap& fields) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace tools::apiserver
