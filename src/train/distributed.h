// Data-parallel training over torch.distributed's c10d (in LibTorch): a TCPStore rendezvous,
// a Gloo process group on CPU (NCCL on CUDA builds compiled with IFLAME_WITH_NCCL), bucketed
// gradient all-reduce, and the local launcher behind `iflame train --nproc N`.
//
// Environment (the torchrun names; flags of `iflame train` override them):
//   RANK, WORLD_SIZE          this worker's rank and the number of workers
//   MASTER_ADDR, MASTER_PORT  where rank 0 (or the local launcher) serves the TCPStore
//   LOCAL_WORLD_SIZE          workers on this host (they share its cores: threads / this)
//   LOCAL_RANK                this worker's index on its host (its GPU with train.device =
//                             cuda); default rank % LOCAL_WORLD_SIZE
//   GLOO_SOCKET_IFNAME        network interface for Gloo on multi-host runs (else the address
//                             the host name resolves to; 127.0.0.1 when MASTER_ADDR is local)
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/torch_compat.h"

namespace iflame {

struct DistOptions {
  int64_t rank = 0, world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  int64_t local_world_size = 1;
  int64_t local_rank = -1;  // -1: rank % local_world_size
  // The local launcher serves the store itself (so that it can pick a free port without a race);
  // otherwise rank 0 serves it.
  bool store_served_by_launcher = false;
  // The tensors to reduce live on CUDA: NCCL (needs a build with IFLAME_WITH_NCCL), else Gloo.
  bool cuda = false;
  // How long one collective may wait for the other ranks (IFLAME_DIST_TIMEOUT, seconds), and
  // joining the group at most the same or 10 minutes. Ranks other than 0 wait in the next
  // step's collectives while rank 0 validates and writes checkpoints, hence the hour; tests
  // set seconds.
  int64_t timeout_s = 3600;

  bool distributed() const { return world_size > 1; }
  // Reads the environment variables above; unset ones keep the current values.
  void read_environment();
  void validate() const;  // throws iflame::Error
};

// CPU threads of one worker: `threads` (<= 0: every hardware thread) shared by the workers
// of this host, at least 1.
int64_t worker_threads(int64_t threads, int64_t local_world_size);

// One worker's membership in the process group. All collectives block and must be called in
// the same order by every rank.
class Distributed {
 public:
  // Joins the group (waits for every rank, up to the store timeout). With world_size 1 there
  // is no group and the collectives do nothing.
  explicit Distributed(const DistOptions& options);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int64_t rank() const { return options_.rank; }
  int64_t local_rank() const {
    return options_.local_rank >= 0 ? options_.local_rank : options_.rank % options_.local_world_size;
  }
  int64_t world_size() const { return options_.world_size; }
  bool is_main() const { return options_.rank == 0; }
  const char* backend() const;

  // In place, element-wise sum over ranks (any dtype the backend supports: float, double, long).
  void all_reduce_sum(torch::Tensor& t);
  // In place: every rank gets rank `root`'s values (shapes and dtypes must agree).
  void broadcast(torch::Tensor& t, int64_t root = 0);
  // broadcast of many tensors, coalesced into flat buffers of about `bucket_bytes`.
  void broadcast_coalesced(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  void barrier();

  // Sums the gradients of `params` over the ranks, flattened into buckets of about
  // `bucket_bytes` (one all-reduce per bucket). A parameter whose gradient is undefined on
  // some rank counts as zero there; one undefined on every rank stays undefined.
  void all_reduce_gradients(const std::vector<torch::Tensor>& params, int64_t bucket_bytes = 25 << 20);

 private:
  struct Group;
  DistOptions options_;
  std::unique_ptr<Group> group_;
};

// `iflame train --nproc N`: runs N workers of this binary on this host (`args`: the command
// line after the executable, without --nproc), serving their store on a free port. Waits for
// all; if one fails, stops the others and returns non-zero after naming the rank. Returns 0
// when every worker succeeded.
int launch_local_workers(int64_t nproc, const std::vector<std::string>& args, const std::string& master_addr = "127.0.0.1");

}  // namespace iflame
