// The JSON of `iflame serve`'s /v1/generate: requests checked field by field, responses and
// stream events built from a finished job. No HTTP here, so all of it is testable directly.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "generate/batcher.h"

namespace iflame::serve {

// What a request leaves out: the model's sampling defaults (its "sample.*" metadata).
struct RequestDefaults {
  SamplingOptions sampling;
  int64_t max_faces = 800;
};

struct ParsedRequest {
  GenerationRequest request;
  bool stream = false;
};

// The fields a generate request may hold, comma-separated (for errors and --help).
std::string known_fields();

// Fields: seed (integer >= 0), temperature, top_k, top_p, min_p, max_faces, constraints (bool),
// the switches of sampling_switches() by their `field` names (bool),
// greedy (bool), prompt (OBJ text to complete), stream (bool). Anything else, a wrong type, a
// value out of range or malformed JSON throws iflame::Error with a message for the client (the
// server answers 400). max_faces is checked against the server's cap by Batcher::submit.
ParsedRequest parse_generate_request(const std::string& body, const RequestDefaults& defaults,
                                     const TokenizerConfig& tokenizer);

// The response of a finished job: {"obj", "faces", "tokens", "finished", "timing"} (and
// "reason" when it was cancelled).
nlohmann::json response_json(const GenerationJob& job, const TokenizerConfig& tokenizer);

// A stream event for the face row `index`: {"face": [[x,y,z] x 3], "index": i}.
nlohmann::json face_event(const FaceRow& row, int64_t index, const TokenizerConfig& tokenizer);

}  // namespace iflame::serve
