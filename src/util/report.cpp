#include "util/report.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace iflame {

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size(), 3);
  for (size_t c = 0; c < header.size(); ++c) w[c] = std::max(w[c], header[c].size());
  for (const auto& r : rows) {
    for (size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
  }
  std::ostringstream s;
  auto line = [&](const std::vector<std::string>& cells, bool right) {
    s << "|";
    for (size_t c = 0; c < w.size(); ++c) {
      const std::string v = c < cells.size() ? cells[c] : "";
      const std::string pad(w[c] - std::min(w[c], v.size()), ' ');
      s << " " << (right && c > 0 ? pad + v : v + pad) << " |";
    }
    s << "\n";
  };
  line(header, false);
  s << "|";
  for (size_t c = 0; c < w.size(); ++c) s << " " << std::string(w[c] - 1, '-') << (c > 0 ? ":" : "-") << " |";
  s << "\n";
  for (const auto& r : rows) line(r, true);
  return s.str();
}

std::string fmt(const char* printf_format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, value);
  return buf;
}

std::string today() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::localtime(&t));
  return buf;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<int64_t> int_list(const std::string& s, const std::string& what, int64_t min_value) {
  std::vector<int64_t> out;
  for (const auto& item : split_commas(s)) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min_value) {
      throw Error(what + " needs integers >= " + std::to_string(min_value) + ", got '" + item + "'");
    }
    out.push_back(v);
  }
  if (out.empty()) throw Error(what + " needs at least one value");
  return out;
}

void emit(const std::string& text, const std::string& out_path) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (out_path.empty()) return;
  std::ofstream f(out_path);
  if (!f) throw Error(out_path, "cannot write");
  f << text;
}

std::string csv_line(const std::vector<std::string>& cells) {
  std::string s;
  for (size_t i = 0; i < cells.size(); ++i) {
    std::string v = cells[i];
    if (v.find_first_of(",\"\n") != std::string::npos) {
      std::string q = "\"";
      for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      v = q + "\"";
    }
    s += (i ? "," : "") + v;
  }
  return s + "\n";
}

}  // namespace iflame
