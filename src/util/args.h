// A small command-line parser for the subcommands: typed options with defaults and help text,
// positionals, `--key value` and `--key=value`, unknown options are errors.
// Kept instead of CLI11 (Debian's libcli11-dev): each file that parses options would compile in
// 6 s instead of 0.3 s (about 30 files: minutes a clean build; a demo binary is 317 KB instead
// of 64 KB, docs/runs/args/), for the same call sites; and our errors are iflame::Error naming
// the command and option.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace iflame {

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);

  // Registers options. `value` receives the parsed value; its current value is the default. A
  // flag is set by `--name` or `--name=true` and cleared by `--name=false` (against a default
  // that is on, e.g. from a model's metadata); both count as given.
  ArgParser& flag(const std::string& name, bool* value, const std::string& help);
  ArgParser& option(const std::string& name, std::string* value, const std::string& help);
  ArgParser& option(const std::string& name, int64_t* value, const std::string& help);
  ArgParser& option(const std::string& name, double* value, const std::string& help);
  // Repeatable option, or one that takes every following non-option word.
  ArgParser& list(const std::string& name, std::vector<std::string>* values, const std::string& help);
  ArgParser& positional(const std::string& name, std::string* value, const std::string& help, bool required = true);
  ArgParser& positional_list(const std::string& name, std::vector<std::string>* values, const std::string& help);

  // Returns false when --help was given (help is printed); throws iflame::Error on bad usage.
  bool parse(int argc, char** argv);
  std::string help() const;
  // Was option `name` on the command line (so that a default from elsewhere must not replace it)?
  bool given(const std::string& name) const { return given_.count(name) > 0; }

 private:
  struct Opt {
    std::string name, help, metavar, default_text;
    bool takes_value = true, is_list = false;
    std::function<void(const std::string&)> set;
  };
  struct Pos {
    std::string name, help;
    bool required = true, is_list = false;
    std::function<void(const std::string&)> set;
  };
  std::string command_, summary_;
  std::vector<Opt> options_;
  std::vector<Pos> positionals_;
  std::set<std::string> given_;
};

// Range checks for option values the parser's types do not cover, naming the option:
// "--NAME must be >= MIN, got V", "--NAME must be a finite number >= 0, got V" (NaN fails).
void require_at_least(const std::string& option, int64_t value, int64_t min);
void require_finite_non_negative(const std::string& option, double value);

// `first` followed by `words` broken into lines of at most `width` characters at spaces, every
// line after the first starting with `indent` (for lists in help text). Words are split at
// single spaces (runs of spaces count as one); a word never breaks, so a line holding a single
// word longer than the room left (after `first` or `indent`) is wider than `width`.
std::string wrap_words(const std::string& first, const std::string& words, size_t width, const std::string& indent);

}  // namespace iflame
