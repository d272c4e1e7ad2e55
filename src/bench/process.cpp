// Child processes (posix_spawn of this binary) and facts about the machine from /proc.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/bench.h"
#include "util/error.h"
#include "util/report.h"

extern char** environ;

namespace iflame::bench {

namespace {

// A "Key:   123 kB" line of a /proc file, in kB (-1 when absent).
int64_t proc_kb(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') return std::strtoll(line.c_str() + n + 1, nullptr, 10);
  }
  return -1;
}

std::string signal_text(int sig) {
  std::string s = "killed by signal " + std::to_string(sig);
  if (const char* name = strsignal(sig)) s += std::string(" (") + name + ")";
  if (sig == SIGKILL) s += ", most likely the out-of-memory killer";
  return s;
}

}  // namespace

std::map<std::string, std::string> child_environment(int64_t threads, const std::string& omp_wait) {
  const std::string n = std::to_string(threads);
  std::string policy = omp_wait;
  std::transform(policy.begin(), policy.end(), policy.begin(), [](unsigned char c) { return char(std::toupper(c)); });
  std::map<std::string, std::string> env = {
      {"OMP_WAIT_POLICY", policy}, {"OMP_NUM_THREADS", n}, {"OPENBLAS_NUM_THREADS", n}, {"MKL_NUM_THREADS", n}};
  return env;
}

void prefer_oom_kill() {
  std::ofstream f("/proc/self/oom_score_adj");
  if (f) f << 1000;
}

nlohmann::json machine_facts(int64_t threads) {
  return {{"cpu", cpu_model()},
          {"nproc", hardware_threads()},
          {"threads", threads},
          {"memory_total_mb", double(total_memory_kb()) / 1024.0},
          {"libtorch", libtorch_version()},
          {"date", today()}};
}

int run_as_child(const std::function<nlohmann::json()>& measure) {
  prefer_oom_kill();
  int status = 0;
  nlohmann::json out;
  try {
    out = measure();
  } catch (const std::exception& e) {
    out = {{"error", e.what()}};
    status = 1;
  }
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  return status;
}

int64_t hardware_threads() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int64_t(n) : 1;
}
int64_t current_rss_kb() { return proc_kb("/proc/self/status", "VmRSS"); }
int64_t peak_rss_kb() { return proc_kb("/proc/self/status", "VmHWM"); }
int64_t available_memory_kb() { return proc_kb("/proc/meminfo", "MemAvailable"); }
int64_t total_memory_kb() { return proc_kb("/proc/meminfo", "MemTotal"); }

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string self_executable() {
  std::vector<char> buf(4096);
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw Error("/proc/self/exe", "cannot read the path of this executable");
  return std::string(buf.data(), size_t(n));
}

ChildResult run_child(const std::string& exe, const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env, double timeout_s) {
  ChildResult r;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw Error("bench: pipe failed: " + std::string(std::strerror(errno)));

  // argv and environment (ours, with `env` overriding).
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e, key = kv.substr(0, kv.find('='));
    if (!env.count(key)) env_s.push_back(kv);
  }
  for (const auto& [k, v] : env) {
    if (!v.empty()) env_s.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC
  pid_t pid = 0;
  const auto start = std::chrono::steady_clock::now();
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    r.error = "cannot start " + exe + ": " + std::strerror(rc);
    return r;
  }

  // Read the child's stdout until it closes, killing it at the deadline.
  std::string out;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    int wait_ms = -1;
    if (timeout_s > 0) {
      const double left = timeout_s - std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (left <= 0) {
        timed_out = true;
        kill(pid, SIGKILL);
        break;
      }
      wait_ms = int(std::min(left * 1000.0, 60000.0)) + 1;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  close(fds[0]);

  int status = 0;
  rusage ru{};
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.rusage_maxrss_kb = ru.ru_maxrss;

  // The last line that parses as a JSON object is the result.
  std::istringstream lines(out);
  std::string line;
  bool have_json = false;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    try {
      r.json = nlohmann::json::parse(line);
      have_json = true;
    } catch (const nlohmann::json::exception&) {
    }
  }
  if (timed_out) {
    r.error = "timed out after " + std::to_string(int64_t(timeout_s)) + " s (killed)";
  } else if (WIFSIGNALED(status)) {
    r.error = signal_text(WTERMSIG(status));
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    r.error = "exited with status " + std::to_string(WEXITSTATUS(status));
    if (have_json && r.json.contains("error")) r.error += ": " + r.json["error"].get<std::string>();
  } else if (!have_json) {
    r.error = "printed no result";
  } else {
    r.ok = true;
  }
  return r;
}

}  // namespace iflame::bench
