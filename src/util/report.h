// Text output shared by the commands that print tables (bench, eval): Markdown tables, one
// printf-formatted number, today's date.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace iflame {

// A Markdown table, columns padded, every column but the first right-aligned.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
// One number through a printf format ("%.2f").
std::string fmt(const char* printf_format, double value);
// YYYY-MM-DD, local time.
std::string today();
// The non-empty items of a comma-separated list ("a,,b" -> {"a", "b"}).
std::vector<std::string> split_commas(const std::string& s);
// The integers of a comma-separated option value, each >= min_value; throws iflame::Error
// naming the option (`what`) on anything else or when there is none.
std::vector<int64_t> int_list(const std::string& s, const std::string& what, int64_t min_value);
// One CSV line (cells with commas, quotes or newlines quoted, quotes doubled), newline ended.
std::string csv_line(const std::vector<std::string>& cells);
// A command's report: to stdout and, when `out_path` is set, to that file too (throws
// iflame::Error naming the file when it cannot be written).
void emit(const std::string& text, const std::string& out_path);

}  // namespace iflame
