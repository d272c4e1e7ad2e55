// Small file helpers: whole-file reads, atomic writes, extensions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace iflame {

// Reads a whole file; throws iflame::Error naming the path when it cannot. A regular file is
// read at its size; anything else (a pipe, a device such as /dev/zero) at most up to
// kMaxStreamBytes, so that a wrong path cannot take unbounded memory.
inline constexpr size_t kMaxStreamBytes = size_t(1) << 30;
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_stream_bytes = kMaxStreamBytes);
std::string read_file_text(const std::string& path);

// Writes to PATH.tmp.<pid> then renames over PATH, so a reader never sees a half-written file.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// Cuts a last line that has no newline (a write torn by a kill or a full disk), so that lines
// appended later start on a line of their own. Does nothing to a missing or empty file.
void drop_partial_last_line(const std::string& path);
// fsync()s a folder, so that renames into it survive a power loss; throws iflame::Error naming it.
void fsync_directory(const std::string& dir);

// Lower-case extension with the dot (".obj"), "" when none.
std::string lower_extension(const std::string& path);

}  // namespace iflame
