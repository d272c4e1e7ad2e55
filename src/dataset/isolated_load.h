// Loading meshes in a child process, so that a reader crash costs one file, not the whole job.
//
// Our own readers (OBJ, OFF and the game formats) are bounds-checked; assimp is not: Debian's
// assimp 5.2.5 segfaults in its post-processing on OpenArena's models/misc/telep.md3 (a surface
// with no vertices) and aborts on internal assertions (mesh/assimp_reader.cpp). prepare
// therefore reads the formats that go to assimp in reader processes: each is forked once, loads
// files on request and sends the meshes back over a socket; one that dies or runs past the time
// limit makes that file "unreadable" and is replaced by a fresh one on the next request. Its
// memory is capped per file (kReaderMemoryBudget), so a crafted header cannot exhaust the machine.
// (A process per file would cost a fork each: ~50 ms for a LibTorch-sized binary.)
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

#include "mesh/mesh.h"

namespace iflame {

// True when load_mesh hands PATH to assimp (judged by the extension).
bool is_assimp_path(const std::string& path);

// One reader process, started on first use. Not thread-safe (see IsolatedReaderPool).
class IsolatedReader {
 public:
  IsolatedReader() = default;
  ~IsolatedReader();
  IsolatedReader(const IsolatedReader&) = delete;
  IsolatedReader& operator=(const IsolatedReader&) = delete;

  // load_mesh(path) in the reader process. Throws iflame::Error naming PATH with the reader's
  // message, or "the reader crashed (signal 11, Segmentation fault)", or "the reader took
  // longer than N s". Loads in this process when no process can be started.
  Mesh load(const std::string& path, double timeout_s = 60.0);
  pid_t pid() const { return pid_; }  // -1 when none is running

 private:
  bool start();
  void stop();

  pid_t pid_ = -1;
  int fd_ = -1;  // our end of the socket pair
};

// Reader processes shared by threads: each load borrows an idle reader (starting one if none
// is idle), so there are at most as many processes as threads loading at once.
class IsolatedReaderPool {
 public:
  Mesh load(const std::string& path, double timeout_s = 60.0);
  size_t size() const;  // readers made so far

 private:
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<IsolatedReader>> idle_;
  size_t made_ = 0;
};

// One-off: a reader process for one file.
Mesh load_mesh_isolated(const std::string& path, double timeout_s = 60.0);

// A mesh file a user hands a command: assimp's formats in a reader process, our own readers
// (bounds-checked) here.
Mesh load_untrusted_mesh(const std::string& path);

// A reader process may map this much beyond what it mapped before the file, plus 16x the
// file's size.
constexpr uint64_t kReaderMemoryBudget = uint64_t(1) << 30;

}  // namespace iflame
