#include "util/args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "util/error.h"

namespace iflame {

ArgParser::ArgParser(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

ArgParser& ArgParser::flag(const std::string& name, bool* value, const std::string& help) {
  // `--name` alone turns the switch on; `--name=false` turns off one a default turned on.
  options_.push_back({name, help, "", "", false, false, [value](const std::string& s) { *value = s != "false"; }});
  return *this;
}

ArgParser& ArgParser::option(const std::string& name, std::string* value, const std::string& help) {
  options_.push_back({name, help, "S", *value, true, false, [value](const std::string& s) { *value = s; }});
  return *this;
}

ArgParser& ArgParser::option(const std::string& name, int64_t* value, const std::string& help) {
  options_.push_back({name, help, "N", std::to_string(*value), true, false, [value, name](const std::string& s) {
                        char* end = nullptr;
                        errno = 0;
                        long long v = std::strtoll(s.c_str(), &end, 10);
                        if (s.empty() || *end != '\0') throw Error("--" + name + " needs an integer, got '" + s + "'");
                        if (errno == ERANGE) throw Error("--" + name + " is out of range: '" + s + "'");
                        *value = v;
                      }});
  return *this;
}

ArgParser& ArgParser::option(const std::string& name, double* value, const std::string& help) {
  std::ostringstream def;
  def << *value;
  options_.push_back({name, help, "X", def.str(), true, false, [value, name](const std::string& s) {
                        char* end = nullptr;
                        double v = std::strtod(s.c_str(), &end);
                        if (s.empty() || *end != '\0') throw Error("--" + name + " needs a number, got '" + s + "'");
                        if (!std::isfinite(v)) throw Error("--" + name + " needs a finite number, got '" + s + "'");
                        *value = v;
                      }});
  return *this;
}

ArgParser& ArgParser::list(const std::string& name, std::vector<std::string>* values, const std::string& help) {
  options_.push_back({name, help, "S...", "", true, true, [values](const std::string& s) { values->push_back(s); }});
  return *this;
}

ArgParser& ArgParser::positional(const std::string& name, std::string* value, const std::string& help, bool required) {
  positionals_.push_back({name, help, required, false, [value](const std::string& s) { *value = s; }});
  return *this;
}

ArgParser& ArgParser::positional_list(const std::string& name, std::vector<std::string>* values, const std::string& help) {
  positionals_.push_back({name, help, true, true, [values](const std::string& s) { values->push_back(s); }});
  return *this;
}

bool ArgParser::parse(int argc, char** argv) {
  size_t pos_index = 0, pos_count = 0;
  auto find = [&](const std::string& name) -> Opt* {
    for (auto& o : options_) {
      if (o.name == name) return &o;
    }
    return nullptr;
  };
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", help().c_str());
      return false;
    }
    if (arg.size() > 2 && arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2), value;
      bool has_inline = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline = true;
      }
      Opt* o = find(name);
      if (!o) throw Error(command_ + ": unknown option --" + name + " (see `iflame " + command_ + " --help`)");
      given_.insert(name);
      if (!o->takes_value) {
        if (has_inline && value != "true" && value != "false") {
          throw Error(command_ + ": --" + name + " takes no value, or =true or =false, got '" + value + "'");
        }
        o->set(value);
        continue;
      }
      if (has_inline) {
        o->set(value);
        continue;
      }
      if (i + 1 >= argc) throw Error(command_ + ": --" + name + " needs a value");
      o->set(argv[++i]);
      // A list option takes every following word up to the next option.
      while (o->is_list && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) o->set(argv[++i]);
      continue;
    }
    if (pos_index >= positionals_.size()) throw Error(command_ + ": unexpected argument '" + arg + "'");
    positionals_[pos_index].set(arg);
    ++pos_count;
    if (!positionals_[pos_index].is_list) {
      ++pos_index;
      pos_count = 0;
    }
  }
  for (size_t p = pos_index; p < positionals_.size(); ++p) {
    if (positionals_[p].required && !(positionals_[p].is_list && pos_count > 0)) {
      throw Error(command_ + ": missing " + positionals_[p].name + " (see `iflame " + command_ + " --help`)");
    }
    pos_count = 0;
  }
  return true;
}

std::string ArgParser::help() const {
  std::ostringstream out;
  out << "usage: iflame " << command_;
  for (const auto& p : positionals_) out << " " << (p.required ? "" : "[") << p.name << (p.is_list ? "..." : "") << (p.required ? "" : "]");
  if (!options_.empty()) out << " [options]";
  out << "\n\n" << summary_ << "\n";
  if (!positionals_.empty()) {
    out << "\narguments:\n";
    for (const auto& p : positionals_) out << "  " << p.name << "\n      " << p.help << "\n";
  }
  out << "\noptions:\n";
  for (const auto& o : options_) {
    out << "  --" << o.name << (o.takes_value ? " " + o.metavar : "") << "\n      " << o.help;
    if (o.takes_value && !o.default_text.empty()) out << " (default: " << o.default_text << ")";
    out << "\n";
  }
  out << "  --help\n      show this help\n";
  return out.str();
}

void require_at_least(const std::string& option, int64_t value, int64_t min) {
  if (value < min) throw Error("--" + option + " must be >= " + std::to_string(min) + ", got " + std::to_string(value));
}

void require_finite_non_negative(const std::string& option, double value) {
  if (!(std::isfinite(value) && value >= 0)) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    throw Error("--" + option + " must be a finite number >= 0, got " + text);
  }
}

std::string wrap_words(const std::string& first, const std::string& words, size_t width, const std::string& indent) {
  std::string out, line = first;
  bool fresh = true;  // no word on `line` yet
  size_t start = 0;
  while (start < words.size()) {
    size_t end = words.find(' ', start);
    if (end == std::string::npos) end = words.size();
    const std::string word = words.substr(start, end - start);
    start = end + 1;
    if (word.empty()) continue;
    if (!fresh && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = indent;
    } else if (!fresh) {
      line += ' ';
    }
    line += word;
    fresh = false;
  }
  return out + line;
}

}  // namespace iflame
