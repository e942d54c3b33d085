#include "config/json_lines.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "lcake/errors.hpp"

namespace lcake::core {
namespace {

// Walks text that nlohmann already accepted, recording the line of every value.
// nlohmann's SAX interface reports no positions, hence this small scanner.
class LineScanner {
 public:
  LineScanner(const std::string& text, LineMap& lines) : text_(text), lines_(lines) {}

  void scan_document() {
    if (text_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // a UTF-8 byte order mark, which nlohmann skips too
    skip_space();
    lines_[""] = line_;
    scan_value("");
  }

 private:
  void skip_space() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        return;
      }
      ++pos_;
    }
  }

  // Returns the raw text of a string literal, quotes included; pos_ after it.
  std::string scan_string() {
    size_t start = pos_++;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\') ++pos_;  // the escaped char can't end the string
      ++pos_;
    }
    ++pos_;
    return text_.substr(start, pos_ - start);
  }

  void scan_value(const std::string& pointer) {
    if (pos_ >= text_.size()) return;
    char c = text_[pos_];
    if (c == '{') {
      scan_object(pointer);
    } else if (c == '[') {
      scan_array(pointer);
    } else if (c == '"') {
      scan_string();
    } else {
      while (pos_ < text_.size() && std::string_view(",]} \t\r\n").find(text_[pos_]) == std::string_view::npos) ++pos_;
    }
  }

  void scan_object(const std::string& pointer) {
    ++pos_;
    skip_space();
    while (pos_ < text_.size() && text_[pos_] != '}') {
      int key_line = line_;
      // Decoding the key with nlohmann gets every escape (\u002f, \") right.
      std::string key = nlohmann::json::parse(scan_string()).get<std::string>();
      std::string child = pointer_append(pointer, key);
      lines_[child] = key_line;
      skip_space();
      ++pos_;  // ':'
      skip_space();
      scan_value(child);
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        skip_space();
      }
    }
    ++pos_;
  }

  void scan_array(const std::string& pointer) {
    ++pos_;
    skip_space();
    for (size_t index = 0; pos_ < text_.size() && text_[pos_] != ']'; ++index) {
      std::string child = pointer_append(pointer, index);
      lines_[child] = line_;
      scan_value(child);
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        skip_space();
      }
    }
    ++pos_;
  }

  const std::string& text_;
  LineMap& lines_;
  size_t pos_ = 0;
  int line_ = 1;
};

// nlohmann says "[json.exception.parse_error.101] parse error at line 3, column 5: <what>";
// keep only <what>, the position is reported as file:line.
std::string parse_error_reason(const std::string& what) {
  auto column = what.find("column ");
  if (column != std::string::npos) {
    auto colon = what.find(": ", column);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  auto bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

}  // namespace

std::string pointer_append(const std::string& pointer, const std::string& token) {
  std::string out = pointer + "/";
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string pointer_append(const std::string& pointer, size_t index) {
  return pointer + "/" + std::to_string(index);
}

void check_json_depth(const std::string& text, const std::string& display_name, bool in_file) {
  int depth = 0, line = 1;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') ++line;
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw InputError(display_name + (in_file ? ":" + std::to_string(line) : std::string()) + ": JSON nested deeper than " +
                         std::to_string(kMaxJsonDepth) + " levels: flatten the document");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

JsonDocument parse_json_document(const std::string& text, const std::string& display_name) {
  JsonDocument doc;
  check_json_depth(text, display_name);
  try {
    doc.value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    size_t end = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
    throw InputError(display_name + ":" + std::to_string(line) + ": invalid JSON: " + parse_error_reason(e.what()));
  }
  LineScanner(text, doc.lines).scan_document();
  return doc;
}

JsonDocument read_json_document(const std::filesystem::path& file, const std::string& display_name) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    bool exists = std::filesystem::exists(file, ec);
    throw InputError(display_name + ": " + (exists ? "cannot read the file" : "no such file"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_json_document(text.str(), display_name);
}

}  // namespace lcake::core
