#include "util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "util/error.h"

namespace iflame {

std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_stream_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  const bool regular = ::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode);
  if (S_ISDIR(st.st_mode)) {
    std::fclose(f);
    throw Error(path, "is a folder, not a file");
  }
  std::vector<uint8_t> data;
  if (regular) data.reserve(size_t(st.st_size));
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (!regular && data.size() + n > max_stream_bytes) {
      std::fclose(f);
      throw Error(path, "not a regular file, and longer than " + std::to_string(max_stream_bytes) +
                            " bytes: stopped reading (is it the right path?)");
    }
    data.insert(data.end(), buf, buf + n);
  }
  bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) throw Error(path, "read error");
  return data;
}

std::string read_file_text(const std::string& path) {
  auto bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(path, std::string("cannot write: ") + std::strerror(errno));
  int error = 0;  // the first failure's errno
  auto check = [&](bool ok) {
    if (!ok && !error) error = errno ? errno : EIO;
  };
  check(std::fwrite(data, 1, size, f) == size);
  check(std::fflush(f) == 0);
  check(::fsync(::fileno(f)) == 0);
  check(std::fclose(f) == 0);
  if (error) {
    std::remove(tmp.c_str());
    throw Error(path, std::string("write failed: ") + std::strerror(error));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path, "cannot rename temporary file into place: " + ec.message());
  }
}

void drop_partial_last_line(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size == 0) return;
  std::ifstream in(path, std::ios::binary);
  char last = 0;
  in.seekg(-1, std::ios::end);
  if (!in.get(last) || last == '\n') return;  // the usual case: nothing read but one byte
  in.seekg(0);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
  std::filesystem::resize_file(path, keep, ec);
  if (ec) throw Error(path, "cannot cut its torn last line: " + ec.message());
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw Error(dir, std::string("cannot open the folder to sync it: ") + std::strerror(errno));
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw Error(dir, std::string("cannot sync the folder: ") + std::strerror(errno));
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace iflame
