#include "tools/apiserver/selectors.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "tools/apiserver/validation.h"

namespace tools::apiserver {
namespace {

// Tokens of the label selector lexer (k8s.io/apimachinery/pkg/labels).
enum class Tok {
  kEnd,
  kIdentifier,
  kComma,
  kOpenParen,
  kCloseParen,
  kEquals,        // =
  kDoubleEquals,  // ==
  kNotEquals,     // !=
  kBang,          // !
  kIn,
  kNotIn,
  kGreater,
  kLess,
};

struct Token {
  Tok type = Tok::kEnd;
  std::string text;
};

bool IsSpecial(char c) {
  return c == '(' || c == ')' || c == ',' || c == '=' || c == '!' || c == '<' || c == '>';
}

std::vector<Token> Lex(std::string_view s) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '(' || c == ')' || c == ',') {
      tokens.push_back({c == '('   ? Tok::kOpenParen
                        : c == ')' ? Tok::kCloseParen
                                   : Tok::kComma,
                        std::string(1, c)});
      ++i;
    } else if (c == '=') {
      if (i + 1 < s.size() && s[i + 1] == '=') {
        tokens.push_back({Tok::kDoubleEquals, "=="});
        i += 2;
      } else {
        tokens.push_back({Tok::kEquals, "="});
        ++i;
      }
    } else if (c == '!') {
      if (i + 1 < s.size() && s[i + 1] == '=') {
        tokens.push_back({Tok::kNotEquals, "!="});
        i += 2;
      } else {
        tokens.push_back({Tok::kBang, "!"});
        ++i;
      }
    } else if (c == '>' || c == '<') {
      tokens.push_back({c == '>' ? Tok::kGreater : Tok::kLess, std::string(1, c)});
      ++i;
    } else {
      size_t start = i;
      while (i < s.size() && !IsSpecial(s[i]) && !std::isspace(static_cast<unsigned char>(s[i]))) {
        ++i;
      }
      std::string word(s.substr(start, i - start));
      Tok type = word == "in" ? Tok::kIn : word == "notin" ? Tok::kNotIn : Tok::kIdentifier;
      tokens.push_back({type, std::move(word)});
    }
  }
  tokens.push_back({Tok::kEnd, ""});
  return tokens;
}

common::Status ParseError(std::string_view what) {
  return common::InvalidArgumentError("unable to parse requirement: {}", what);
}

std::string Found(const Token& t) { return "found '" + t.text + "'"; }

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  common::Status ParseAll(std::vector<LabelSelector::Requirement>* out) {
    if (Peek().type == Tok::kEnd) return common::OkStatus();
    while (true) {
      LabelSelector::Requirement r;
      RETURN_IF_ERROR(ParseRequirement(&r));
      out->push_back(std::move(r));
      const Token& t = Next();
      if (t.type == Tok::kEnd) return common::OkStatus();
      if (t.type != Tok::kComma) return ParseError(Found(t) + ", expected: ',' or 'end of string'");
      if (Peek().type == Tok::kEnd) return ParseError("found '', expected: identifier");
    }
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }

  common::Status ParseRequirement(LabelSelector::Requirement* r) {
    bool negated = false;
    if (Peek().type == Tok::kBang) {
      Next();
      negated = true;
    }
    const Token& key = Next();
    if (key.type != Tok::kIdentifier) return ParseError(Found(key) + ", expected: identifier");
    if (std::vector<std::string> errs = IsQualifiedName(key.text); !errs.empty()) {
      return ParseError(fmt::format("key: Invalid value: \"{}\": {}", key.text, errs[0]));
    }
    r->key = key.text;
    if (negated) {
      r->op = LabelSelector::Op::kDoesNotExist;
      return common::OkStatus();
    }
    switch (Peek().type) {
      case Tok::kEnd:
      case Tok::kComma:
        r->op = LabelSelector::Op::kExists;
        return common::OkStatus();
      case Tok::kEquals:
      case Tok::kDoubleEquals:
      case Tok::kNotEquals: {
        r->op = Peek().type == Tok::kNotEquals ? LabelSelector::Op::kNotEquals
                                               : LabelSelector::Op::kEquals;
        Next();
        std::string value;
        if (Peek().type == Tok::kIdentifier) {
          value = Next().text;
        } else if (Peek().type != Tok::kEnd && Peek().type != Tok::kComma) {
          return ParseError(Found(Peek()) + ", expected: identifier");
        }
        RETURN_IF_ERROR(CheckValue(value));
        r->values.push_back(std::move(value));
        return common::OkStatus();
      }
      case Tok::kIn:
      case Tok::kNotIn: {
        r->op = Peek().type == Tok::kIn ? LabelSelector::Op::kIn : LabelSelector::Op::kNotIn;
        Next();
        if (Next().type != Tok::kOpenParen) return ParseError("found '', expected: '('");
        while (true) {
          std::string value;
          if (Peek().type == Tok::kIdentifier) value = Next().text;
          RETURN_IF_ERROR(CheckValue(value));
          r->values.push_back(std::move(value));
          const Token& t = Next();
          if (t.type == Tok::kCloseParen) break;
          if (t.type != Tok::kComma) return ParseError(Found(t) + ", expected: ',' or ')'");
        }
        if (r->values.size() == 1 && r->values[0].empty()) {
          return ParseError("for 'in', 'notin' operators, values set can't be empty");
        }
        return common::OkStatus();
      }
      case Tok::kGreater:
      case Tok::kLess: {
        r->op = Peek().type == Tok::kGreater ? LabelSelector::Op::kGreaterThan
                                             : LabelSelector::Op::kLessThan;
        Next();
        const Token& v = Next();
        int64_t n = 0;
        auto res = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
        if (v.type != Tok::kIdentifier || res.ec != std::errc() ||
            res.ptr != v.text.data() + v.text.size()) {
          return ParseError(fmt::format(
              "for 'Gt', 'Lt' operators, the value must be an integer, found '{}'", v.text));
        }
        r->values.push_back(v.text);
        return common::OkStatus();
      }
      default:
        return ParseError(Found(Peek()) + ", expected: in, notin, =, ==, !=, gt, lt");
    }
  }

  static common::Status CheckValue(const std::string& value) {
    if (std::vector<std::string> errs = IsValidLabelValue(value); !errs.empty()) {
      return ParseError(fmt::format("values[0]: Invalid value: \"{}\": {}", value, errs[0]));
    }
    return common::OkStatus();
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace

common::Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector selector;
  Parser parser(Lex(text));
  RETURN_IF_ERROR(parser.ParseAll(&selector.requirements_));
  return selector;
}

bool LabelSelector::Matches(const StringMap& labels) const {
  for (const Requirement& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    switch (r.op) {
      case Op::kExists:
        if (!has) return false;
        break;
      case Op::kDoesNotExist:
        if (has) return false;
        break;
      case Op::kEquals:
      case Op::kIn:
        if (!has || std::find(r.values.begin(), r.values.end(), it->second) == r.values.end()) {
          return false;
        }
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end()) {
          return false;
        }
        break;
      case Op::kGreaterThan:
      case Op::kLessThan: {
        if (!has) return false;
        int64_t actual = 0;
        const std::string& s = it->second;
        auto res = std::from_chars(s.data(), s.data() + s.size(), actual);
        if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return false;
        int64_t bound = std::stoll(r.values[0]);
        if (r.op == Op::kGreaterThan ? !(actual > bound) : !(actual < bound)) return false;
        break;
      }
    }
  }
  return true;
}

common::Result<FieldSelector> FieldSelector::Parse(std::string_view text) {
  FieldSelector selector;
  if (text.empty()) return selector;
  // Split on unescaped commas.
  std::vector<std::string> terms;
  std::string current;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      current.push_back(text[i]);
      current.push_back(text[++i]);
    } else if (text[i] == ',') {
      terms.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(text[i]);
    }
  }
  terms.push_back(std::move(current));
  for (const std::string& term : terms) {
    if (term.empty()) continue;
    // The first unescaped operator splits field and value: != before == before =.
    size_t op_pos = std::string::npos;
    size_t op_len = 0;
    bool negate = false;
    for (size_t i = 0; i < term.size(); ++i) {
      if (term[i] == '\\') {
        ++i;
        continue;
      }
      if (term.compare(i, 2, "!=") == 0) {
        op_pos = i, op_len = 2, negate = true;
        break;
      }
      if (term.compare(i, 2, "==") == 0) {
        op_pos = i, op_len = 2;
        break;
      }
      if (term[i] == '=') {
        op_pos = i, op_len = 1;
        break;
      }
    }
    if (op_pos == std::string::npos) {
      return common::InvalidArgumentError("invalid selector: '{}'; can't understand '{}'", text,
                                          term);
    }
    Requirement r;
    r.field = term.substr(0, op_pos);
    r.negate = negate;
    std::string raw = term.substr(op_pos + op_len);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) {
        char next = raw[i + 1];
        if (next != ',' && next != '=' && next != '\\') {
          return common::InvalidArgumentError(
              "invalid field selector: invalid escape sequence: \\{}", next);
        }
        r.value.push_back(next);
        ++i;
      } else if (raw[i] == ',' || raw[i] == '=') {
        return common::InvalidArgumentError("invalid field selector: unescaped {} in value: {}",
                                            raw[i], raw);
      } else {
        r.value.push_back(raw[i]);
      }
    }
    selector.requirements_.push_back(std::move(r));
  }
  return selector;
}

bool FieldSelector::Matches(const StringMap& fields) const {
  for (const Requirement& r : requirements_) {
    auto it = fields.find(r.field);
    const std::string actual = it == fields.end() ? std::string() : it->second;
    if ((actual == r.value) == r.negate) return false;
  }
  return true;
}

}  // namespace tools::apiserver
