// A built-in 5x7 bitmap font (printable ASCII) for captions, tick labels and legends.
#pragma once
#include <string>

#include "render/png.h"

namespace iflame::render {

// Glyph cell: 5x7 pixels plus one column of spacing, times `scale`.
inline constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kGlyphAdvance = 6;

// Width in pixels of `text` drawn at `scale` (no trailing spacing column).
int text_width(const std::string& text, int scale = 1);
inline int text_height(int scale = 1) { return kGlyphHeight * scale; }

// Draws `text` with its top-left corner at (x, y); each font pixel is a scale x scale square.
// Characters outside printable ASCII draw as '?'. Clipped to the image.
void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale = 1);

// `text` shortened with a trailing ".." so that it fits in `max_width` pixels at `scale`.
std::string fit_text(const std::string& text, int max_width, int scale = 1);

}  // namespace iflame::render
