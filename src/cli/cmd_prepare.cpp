// iflame prepare --input DIR_OR_LIST... --out DATASET: folders of meshes -> a training dataset
// (dataset/format.h) and a JSON report. The work is in dataset/prepare.h.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "dataset/format.h"
#include "dataset/prepare.h"
#include "mesh/load.h"
#include "util/args.h"
#include "util/error.h"
#include "util/parallel.h"

namespace iflame::cli {
namespace {

// The mesh extensions, wrapped at about 95 columns and indented.
std::string extension_list() {
  std::string out = "  ", line;
  for (const std::string& e : mesh_extensions()) {
    if (line.size() + e.size() > 92) {
      out += line + "\n  ";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + e;
  }
  return out + line;
}

}  // namespace

int run_prepare(int argc, char** argv) {
  PrepareOptions opt;
  std::string split_by = "dir";
  int64_t jobs = 0, bits = opt.bits;
  bool no_progress = false, overwrite = false;
  const std::string summary =
      "example: iflame prepare --input ShapeNetCore.v2 --out shapenet.ifds --max-faces 800\n"
      "\n"
      "Builds a training dataset from meshes: walks every --input folder recursively (ShapeNetCore v2\n"
      "synset/model_id/models/model_normalized.obj, Objaverse-style GLB folders and plain folders all\n"
      "work), reads .txt/.lst inputs as lists of paths (one a line, relative to the list's folder;\n"
      "blank lines and # comments skipped; listed folders are walked) and takes mesh files given\n"
      "directly. Files are sorted by path, so the result does not depend on --jobs or directory order.\n"
      "\n"
      "Mesh files are those with one of these extensions (any extension in a list):\n" +
      extension_list() +
      "\n\n"
      "Each mesh is loaded, rotated from Z-up to Y-up when it lies under a --z-up folder\n"
      "((x, y, z) -> (x, z, -y); UFO:AI .md2 is Z-up), canonicalized as the reference does (normalize,\n"
      "quantize to 2^bits + 1 levels, merge, sort) and kept when its canonical face count is within\n"
      "[--min-faces, --max-faces].\n"
      "Exact duplicates (identical face rows) are dropped, keeping the first in path order.\n"
      "With --near-dup T > 0, near-duplicates are dropped too (level-of-detail copies, poses, the\n"
      "same prop in two games): each mesh's surface is sampled twice (--near-dup-points, the eval\n"
      "normalization), the two samplings' Chamfer distance being its floor, and every pair of meshes\n"
      "is compared by its excess: Chamfer distance minus the mean of their floors. A pair is a\n"
      "near-duplicate when the excess is below max(T, --near-dup-relative x mean floor). A mesh is\n"
      "kept unless a kept mesh with more faces (ties: earlier path) is its near-duplicate, so no two\n"
      "kept meshes are that close and no validation mesh is a copy of a training mesh.\n"
      "\n"
      "Split: train/val by object group, so the variants of one object never straddle the split.\n"
      "A mesh is named \"label/path-inside-its-input\" (label = the input folder's name) and its group\n"
      "key is, by --split-by:\n"
      "  dir          its folder (ShapeNet: the model folder; game data: the unit's folder); a file\n"
      "               directly inside an input folder is its own group, but there flattened names\n"
      "               (a__b__c.obj) count their \"__\"-separated parts as folders\n"
      "  file         the file itself\n"
      "  stem-prefix  its folder plus the file stem cut at the first '_', '-', ' ' or digit,\n"
      "               lower-cased: archmage_attack.g3d, archmage_walk.g3d -> \"archmage\" (pose and\n"
      "               LOD variants of 0 A.D., MegaGlest, SuperTuxKart objects)\n"
      "A group goes to val when fmix64(FNV-1a-64(key)) / 2^64 < --val-fraction: stable across runs,\n"
      "machines and file sets. The source of a mesh (per-source counts) is its input folder's name,\n"
      "or for a file directly inside it, the part of its name before \"__\" if any (mg__x.obj -> mg).\n"
      "\n"
      "Unusable files are skipped, never fatal, and listed in the report with a reason: unreadable\n"
      "(the reader's message), zero_size (empty file, or all vertices at one point), too_few_faces\n"
      "(including no faces left after quantization), too_many_faces, duplicate and near_duplicate\n"
      "(of which file).\n"
      "Formats read by assimp are loaded in a child process, so a reader that crashes or hangs\n"
      "(--reader-timeout) costs that one file only.\n"
      "\n"
      "Output: DATASET, one memory-mappable little-endian file (magic IFLMDSET, version " +
      std::to_string(kDatasetVersion) + "): per mesh its\n"
      "name, group, source, split, normalized float32 vertices and int32 triangles (for augmentation\n"
      "before quantizing, as the reference trains) and uint16 canonical face rows (9 per face), plus\n"
      "the tokenizer bits; written to a temporary file and renamed into place (an existing DATASET is\n"
      "refused unless --overwrite is given). The report\n"
      "(--report, default DATASET.report.json) holds the inputs, kept (train/val) and skipped counts\n"
      "by reason, every skipped file with its reason, per-source counts, a face-count histogram\n"
      "(bins of 50), token-length statistics, wall time and meshes/s.\n"
      "\n"
      "A progress bar (count, rate, ETA) is drawn on stderr when it is a terminal; a one-line\n"
      "summary is printed at the end in any case. Exit code 0 when at least one mesh was kept.";
  ArgParser args("prepare", summary);
  args.list("input", &opt.inputs, "folders, .txt/.lst lists of paths, or mesh files (repeatable)")
      .option("out", &opt.out, "the dataset file to write (e.g. corpus.ifds)")
      .option("max-faces", &opt.max_faces, "keep meshes with at most this many canonical faces")
      .option("min-faces", &opt.min_faces, "keep meshes with at least this many canonical faces")
      .option("val-fraction", &opt.val_fraction, "share of object groups that go to the validation split")
      .option("bits", &bits, "quantization bits (2^bits + 1 coordinate levels), 2..15")
      .option("split-by", &split_by, "group key for the split: dir, file or stem-prefix")
      .option("jobs", &jobs, "threads (0 = one per hardware thread, " + std::to_string(hardware_jobs()) + " here)")
      .list("z-up", &opt.z_up, "folders whose meshes are Z-up (rotated to Y-up before canonicalization)")
      .option("report", &opt.report, "where to write the JSON report (default: DATASET.report.json)")
      .option("reader-timeout", &opt.reader_timeout_s,
              "seconds a file read by assimp may take (it is read in a child process; a crash or\n"
              "      a timeout skips the file as unreadable)")
      .option("near-dup", &opt.near_dup,
              "drop near-duplicates whose Chamfer distance is less than this above the sampling floor (0 = off)")
      .option("near-dup-relative", &opt.near_dup_relative, "near-duplicate tolerance as a share of the sampling floor")
      .option("near-dup-points", &opt.near_dup_points, "surface points per mesh for --near-dup (16..8192)")
      .flag("no-progress", &no_progress, "never draw the progress bar")
      .flag("overwrite", &overwrite, "replace an existing DATASET (and its report)");
  if (!args.parse(argc, argv)) return 0;
  if (opt.inputs.empty()) throw Error("prepare: --input is required (see `iflame prepare --help`)");
  if (opt.out.empty()) throw Error("prepare: --out is required (see `iflame prepare --help`)");
  if (jobs < 0 || jobs > 4096) throw Error("--jobs must be between 0 and 4096");
  opt.jobs = int(jobs);
  if (bits < 2 || bits > 15) throw Error("--bits must be between 2 and 15 (tokens are stored as uint16)");
  opt.bits = int(bits);
  opt.split_by = parse_split_by(split_by);
  if (no_progress) opt.progress = 0;
  // A dataset can take an hour to build; one mistyped --out must not replace it unasked.
  std::error_code ec;
  if (!overwrite && std::filesystem::exists(opt.out, ec)) {
    throw Error(opt.out, "exists already; choose another --out, or --overwrite to replace it");
  }

  const PrepareResult result = prepare_dataset(opt);
  std::printf("%s\n", result.summary.c_str());
  std::fflush(stdout);
  if (result.kept == 0) {
    throw Error(opt.out, "no mesh was kept (see " + result.report_path + " for the reasons)");
  }
  return 0;
}

}  // namespace iflame::cli
