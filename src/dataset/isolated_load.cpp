#include "dataset/isolated_load.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>

#include "mesh/load.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

// Forks happen one at a time (the child closes every descriptor but its own socket anyway).
std::mutex g_fork_mutex;

constexpr int kChildFd = 3;

bool send_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);  // no SIGPIPE when the peer is gone
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

bool read_all(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

// Closes every descriptor from `low` up.
void close_from(int low) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, unsigned(low), ~0u, 0u) == 0) return;
#endif
  const long max = std::min(::sysconf(_SC_OPEN_MAX), 65536L);
  for (long fd = low; fd < max; ++fd) ::close(int(fd));
}

template <class T>
void append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Caps the reader's address space for one file: what it maps now, plus 1 GiB, plus 16x the
// file. A crafted header (a PLY declaring two billion vertices in 300 bytes) then fails with
// bad_alloc in the reader instead of growing until the machine kills something.
void cap_memory_for(const std::string& path) {
  long pages = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  if (pages <= 0) return;
  std::error_code ec;
  const uint64_t file = std::filesystem::file_size(path, ec);
  const uint64_t mapped = uint64_t(pages) * uint64_t(::sysconf(_SC_PAGESIZE));
  struct rlimit limit;
  if (::getrlimit(RLIMIT_AS, &limit) != 0) return;
  const uint64_t want = mapped + kReaderMemoryBudget + 16 * (ec ? 0 : file);
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? rlim_t(want) : std::min<rlim_t>(rlim_t(want), limit.rlim_max);
  ::setrlimit(RLIMIT_AS, &limit);
}

// Reply payload: "M" + u64 vertex count + u64 face count + arrays, or "E" + u64 length of the
// error's path + that path + the message.
std::string load_reply(const std::string& path) {
  std::string out;
  try {
    cap_memory_for(path);
    const Mesh m = load_mesh(path);
    out.reserve(17 + m.vertices.size() * sizeof(Vec3) + m.faces.size() * sizeof(Tri));
    out += 'M';
    append(out, uint64_t(m.vertices.size()));
    append(out, uint64_t(m.faces.size()));
    out.append(reinterpret_cast<const char*>(m.vertices.data()), m.vertices.size() * sizeof(Vec3));
    out.append(reinterpret_cast<const char*>(m.faces.data()), m.faces.size() * sizeof(Tri));
  } catch (const Error& e) {
    out = "E";
    append(out, uint64_t(e.path().size()));
    out += e.path();
    out += e.what();
  } catch (const std::exception& e) {
    out = "E";
    append(out, uint64_t(0));
    out += std::string("reader failed: ") + e.what();
    if (dynamic_cast<const std::bad_alloc*>(&e)) out += " (the file asks for more memory than its size allows)";
  }
  return out;
}

// The reader process: requests are u32 length + path; replies are u64 length + payload.
[[noreturn]] void child_loop() {
  for (;;) {
    uint32_t n = 0;
    if (!read_all(kChildFd, &n, sizeof n)) ::_exit(0);  // the parent hung up: done
    std::string path(n, '\0');
    if (!read_all(kChildFd, path.data(), n)) ::_exit(0);
    const std::string reply = load_reply(path);
    const uint64_t len = reply.size();
    if (!send_all(kChildFd, &len, sizeof len) || !send_all(kChildFd, reply.data(), reply.size())) ::_exit(3);
  }
}

Mesh decode(const std::string& data, const std::string& path) {
  auto corrupt = [&] { return Error(path, "the reader process sent a malformed reply"); };
  if (data.empty()) throw corrupt();
  if (data[0] == 'E') {
    uint64_t n = 0;
    if (data.size() < 9) throw corrupt();
    std::memcpy(&n, data.data() + 1, 8);
    if (n > data.size() - 9) throw corrupt();
    const std::string error_path = data.substr(9, size_t(n));
    std::string what = data.substr(9 + size_t(n));
    if (error_path.empty()) throw Error(path, what);
    if (what.rfind(error_path + ": ", 0) == 0) what = what.substr(error_path.size() + 2);
    throw Error(error_path, what);
  }
  if (data[0] != 'M' || data.size() < 17) throw corrupt();
  uint64_t nv = 0, nf = 0;
  std::memcpy(&nv, data.data() + 1, 8);
  std::memcpy(&nf, data.data() + 9, 8);
  const size_t body = data.size() - 17;
  if (nv > body / sizeof(Vec3) || nf > body / sizeof(Tri) || nv * sizeof(Vec3) + nf * sizeof(Tri) != body) throw corrupt();
  Mesh m;
  m.vertices.resize(size_t(nv));
  m.faces.resize(size_t(nf));
  std::memcpy(m.vertices.data(), data.data() + 17, size_t(nv) * sizeof(Vec3));
  std::memcpy(m.faces.data(), data.data() + 17 + size_t(nv) * sizeof(Vec3), size_t(nf) * sizeof(Tri));
  return m;
}

// Reads exactly n bytes before the deadline. Returns 1 on success, 0 on end of file or error,
// -1 on timeout.
int read_until(int fd, char* p, size_t n, std::chrono::steady_clock::time_point deadline) {
  while (n > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return -1;
    pollfd pfd{fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, int(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) return 0;
    if (r <= 0) continue;
    const ssize_t got = ::read(fd, p, n);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return 0;
    p += got;
    n -= size_t(got);
  }
  return 1;
}

}  // namespace

bool is_assimp_path(const std::string& path) {
  static const char* ours[] = {".obj", ".off", ".pmd", ".g3d", ".md2", ".spm", ".pie"};
  const std::string ext = lower_extension(path);
  return is_mesh_path(path) && std::none_of(std::begin(ours), std::end(ours), [&](const char* e) { return ext == e; });
}

IsolatedReader::~IsolatedReader() { stop(); }

bool IsolatedReader::start() {
  std::lock_guard<std::mutex> lock(g_fork_mutex);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child: its socket end becomes descriptor 3, everything else above 2 is closed (the
    // parent's other readers' sockets included, so their end-of-file still reaches them).
    if (sv[1] != kChildFd) {
      if (::dup2(sv[1], kChildFd) < 0) ::_exit(4);
    } else {
      ::fcntl(kChildFd, F_SETFD, 0);
    }
    close_from(kChildFd + 1);
    child_loop();
  }
  ::close(sv[1]);
  if (pid < 0) {
    ::close(sv[0]);
    return false;
  }
  pid_ = pid;
  fd_ = sv[0];
  return true;
}

void IsolatedReader::stop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

Mesh IsolatedReader::load(const std::string& path, double timeout_s) {
  if (pid_ < 0 && !start()) return load_mesh(path);  // no process to spare: load here
  const uint32_t n = uint32_t(path.size());
  if (!send_all(fd_, &n, sizeof n) || !send_all(fd_, path.data(), path.size())) {
    stop();  // it died after the previous file; one more try with a fresh one
    if (!start()) return load_mesh(path);
    if (!send_all(fd_, &n, sizeof n) || !send_all(fd_, path.data(), path.size())) {
      stop();
      throw Error(path, "cannot talk to the reader process");
    }
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(std::min(std::max(timeout_s, 0.001), 1e7)));
  uint64_t len = 0;
  int r = read_until(fd_, reinterpret_cast<char*>(&len), sizeof len, deadline);
  std::string data;
  if (r == 1) {
    if (len > (uint64_t(1) << 40)) {
      stop();
      throw Error(path, "the reader process sent a malformed reply");
    }
    data.resize(size_t(len));
    r = read_until(fd_, data.data(), data.size(), deadline);
  }
  if (r == -1) {
    stop();
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g", timeout_s);
    throw Error(path, std::string("the reader took longer than ") + limit + " s (stopped)");
  }
  if (r == 0) {
    // The reader died on this file: collect its status and say how.
    ::close(fd_);
    fd_ = -1;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      const char* name = ::strsignal(sig);
      throw Error(path, "the reader crashed (signal " + std::to_string(sig) + ", " + (name ? name : "?") + ")");
    }
    throw Error(path, "the reader process ended (exit code " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  }
  return decode(data, path);
}

Mesh IsolatedReaderPool::load(const std::string& path, double timeout_s) {
  std::unique_ptr<IsolatedReader> reader;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      reader = std::move(idle_.back());
      idle_.pop_back();
    } else {
      reader = std::make_unique<IsolatedReader>();
      ++made_;
    }
  }
  struct Return {
    IsolatedReaderPool* pool;
    std::unique_ptr<IsolatedReader>& reader;
    ~Return() {
      std::lock_guard<std::mutex> lock(pool->mutex_);
      pool->idle_.push_back(std::move(reader));
    }
  } give_back{this, reader};
  return reader->load(path, timeout_s);
}

size_t IsolatedReaderPool::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return made_;
}

Mesh load_mesh_isolated(const std::string& path, double timeout_s) {
  IsolatedReader reader;
  return reader.load(path, timeout_s);
}

Mesh load_untrusted_mesh(const std::string& path) {
  return is_assimp_path(path) ? load_mesh_isolated(path) : load_mesh(path);
}

}  // namespace iflame
