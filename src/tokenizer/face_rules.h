// Rules on face rows that a mesh generator should not break but a trained model can: a face
// row that copies an earlier one, and one without area (degenerate). Torch-free: the sampler
// masks the coordinates that break them (generate/sampler.h) and training pushes their
// probability down (train.unlikelihood).
#pragma once
#include <cstdint>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace iflame {

// Clears allowed[v] for each coordinate v that would complete, at the last index of a face row
// (t % 9 == 8), a copy of an earlier face row of `tokens` (t tokens: prompt and generated).
// Clears nothing when that would leave no coordinate allowed. Returns how many it cleared.
int64_t mask_repeated_face(const int64_t* tokens, int64_t t, const TokenizerConfig& tokenizer, uint8_t* allowed);

// Clears allowed[v] for each coordinate v that, at index t of `tokens` (the row so far: t % 9
// of its tokens), would leave the face row without area whatever follows: the second corner's
// last coordinate equal to the first corner's (t % 9 == 5); the third corner on the line of the
// first two (t % 9 == 8, or 7 when that line runs along the last axis). Clears nothing when the
// row so far holds a non-coordinate or when that would leave no coordinate allowed. Returns how
// many it cleared.
int64_t mask_degenerate_face(const int64_t* tokens, int64_t t, const TokenizerConfig& tokenizer, uint8_t* allowed);

// The coordinates that, at index t of `tokens` (t tokens so far), would complete a copy of an
// earlier face row or leave the face row without area, in increasing order: the union of what
// mask_repeated_face and mask_degenerate_face clear from an all-allowed choice. Empty at a row's
// other indices, and where every coordinate would (then no choice is better than another).
std::vector<int64_t> unlikely_coordinates(const int64_t* tokens, int64_t t, const TokenizerConfig& tokenizer);

// Whether the face row at tokens[start, start + 9) (start % 9 == 0) is broken: without area (its
// corners on one line of the grid) or with the corners of an earlier face row (the same face
// again, in either winding: a copy or a back side). Rows holding a non-coordinate are not.
bool face_row_is_broken(const int64_t* tokens, int64_t start, const TokenizerConfig& tokenizer);

}  // namespace iflame
