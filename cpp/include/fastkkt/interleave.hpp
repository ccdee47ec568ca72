// fastkkt/interleave.hpp — copying W rows, one from each of W problems, into one row of the
// interleaved ("compact") layout of kkt.hpp, where entry j of problem w goes to out[j·W + w].
//
// This is a transpose of a W × len block whose rows live in W unrelated places. Done entry by
// entry it writes each output cache line W times, once per problem, and assembling the KKT
// matrices that way cost as much as factoring them (perf, 4096×64×16). Here W consecutive
// entries of each of the W rows are loaded as W vectors, transposed in registers (an 8×8 or a
// 4×4 transpose of doubles: unpack pairs, then exchange 128-bit lanes), and stored as W whole
// vectors: every input and every output cache line is touched once.
// Values are only moved, never computed, so the result is the same on every path.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which -Wmaybe-uninitialized
// reports wherever they are inlined (GCC bug 105593, fixed in GCC 13 and 12.3). A diagnostic
// pragma applies by the location of the warning, which is in this header: silenced for it alone.
// Include this file before anything else that includes <immintrin.h> (Eigen does).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#endif

namespace fastkkt {

using index_t = std::int64_t;

// Problems per SIMD register in the interleaved kernels: one vector register of T.
template <class T>
constexpr int lanes() {
#if defined(__AVX512F__)
  return static_cast<int>(64 / sizeof(T));
#elif defined(__AVX__)
  return static_cast<int>(32 / sizeof(T));
#else
  return static_cast<int>(16 / sizeof(T));
#endif
}

namespace detail {

#if defined(__AVX512F__)
// dst[t][w] = src[w][j0 + t] for t, w < 8.
inline void transpose8x8(const double* const* src, index_t j0, double* const* dst) {
  const __m512d r0 = _mm512_loadu_pd(src[0] + j0), r1 = _mm512_loadu_pd(src[1] + j0);
  const __m512d r2 = _mm512_loadu_pd(src[2] + j0), r3 = _mm512_loadu_pd(src[3] + j0);
  const __m512d r4 = _mm512_loadu_pd(src[4] + j0), r5 = _mm512_loadu_pd(src[5] + j0);
  const __m512d r6 = _mm512_loadu_pd(src[6] + j0), r7 = _mm512_loadu_pd(src[7] + j0);
  // pairs: t0 = (r0[0] r1[0] | r0[2] r1[2] | r0[4] r1[4] | r0[6] r1[6]), t1 the odd columns
  const __m512d t0 = _mm512_unpacklo_pd(r0, r1), t1 = _mm512_unpackhi_pd(r0, r1);
  const __m512d t2 = _mm512_unpacklo_pd(r2, r3), t3 = _mm512_unpackhi_pd(r2, r3);
  const __m512d t4 = _mm512_unpacklo_pd(r4, r5), t5 = _mm512_unpackhi_pd(r4, r5);
  const __m512d t6 = _mm512_unpacklo_pd(r6, r7), t7 = _mm512_unpackhi_pd(r6, r7);
  // 128-bit lanes: 0x88 takes lanes (0, 2) of each operand, 0xdd lanes (1, 3)
  const __m512d u0 = _mm512_shuffle_f64x2(t0, t2, 0x88);  // columns 0, 4 of rows 0–3
  const __m512d u1 = _mm512_shuffle_f64x2(t0, t2, 0xdd);  // columns 2, 6
  const __m512d u2 = _mm512_shuffle_f64x2(t1, t3, 0x88);  // columns 1, 5
  const __m512d u3 = _mm512_shuffle_f64x2(t1, t3, 0xdd);  // columns 3, 7
  const __m512d u4 = _mm512_shuffle_f64x2(t4, t6, 0x88);  // the same for rows 4–7
  const __m512d u5 = _mm512_shuffle_f64x2(t4, t6, 0xdd);
  const __m512d u6 = _mm512_shuffle_f64x2(t5, t7, 0x88);
  const __m512d u7 = _mm512_shuffle_f64x2(t5, t7, 0xdd);
  _mm512_storeu_pd(dst[0], _mm512_shuffle_f64x2(u0, u4, 0x88));
  _mm512_storeu_pd(dst[1], _mm512_shuffle_f64x2(u2, u6, 0x88));
  _mm512_storeu_pd(dst[2], _mm512_shuffle_f64x2(u1, u5, 0x88));
  _mm512_storeu_pd(dst[3], _mm512_shuffle_f64x2(u3, u7, 0x88));
  _mm512_storeu_pd(dst[4], _mm512_shuffle_f64x2(u0, u4, 0xdd));
  _mm512_storeu_pd(dst[5], _mm512_shuffle_f64x2(u2, u6, 0xdd));
  _mm512_storeu_pd(dst[6], _mm512_shuffle_f64x2(u1, u5, 0xdd));
  _mm512_storeu_pd(dst[7], _mm512_shuffle_f64x2(u3, u7, 0xdd));
}
#elif defined(__AVX__)
// dst[t][w] = src[w][j0 + t] for t, w < 4.
inline void transpose4x4(const double* const* src, index_t j0, double* const* dst) {
  const __m256d r0 = _mm256_loadu_pd(src[0] + j0), r1 = _mm256_loadu_pd(src[1] + j0);
  const __m256d r2 = _mm256_loadu_pd(src[2] + j0), r3 = _mm256_loadu_pd(src[3] + j0);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst[0], _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst[1], _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst[2], _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst[3], _mm256_permute2f128_pd(t1, t3, 0x31));
}
#endif

// Whether interleave_rows<T, W> has a register transpose for T and W on this build.
template <class T, int W>
constexpr bool has_transpose() {
#if defined(__AVX512F__)
  return std::is_same_v<T, double> && W == 8;
#elif defined(__AVX__)
  return std::is_same_v<T, double> && W == 4;
#else
  return false;
#endif
}

// W×W blocks: dst[t][w] = src[w][j0 + t] for t, w < W (a register transpose where there is one).
template <class T, int W>
void transpose_block(const T* const* src, index_t j0, T* const* dst) {
  if constexpr (has_transpose<T, W>()) {
#if defined(__AVX512F__)
    transpose8x8(src, j0, dst);
#elif defined(__AVX__)
    transpose4x4(src, j0, dst);
#endif
  } else {
    for (int t = 0; t < W; ++t)
      for (int w = 0; w < W; ++w) dst[t][w] = src[w][j0 + t];
  }
}

}  // namespace detail

// out[j·W + w] = src[w][j·stride] for j < len and w < W: W rows into one interleaved row.
template <class T, int W>
void interleave_rows(const T* const* src, index_t stride, index_t len, T* out) {
  index_t j = 0;
  if (stride == 1) {
    T* dst[W];
    for (; j + W <= len; j += W) {
      for (int t = 0; t < W; ++t) dst[t] = out + (j + t) * W;
      detail::transpose_block<T, W>(src, j, dst);
    }
  }
  for (; j < len; ++j)
    for (int w = 0; w < W; ++w) out[j * W + w] = src[w][j * stride];
}

// dst[w][j] = in[j·W + w] for j < len and w < W: one interleaved row back into W rows.
template <class T, int W>
void deinterleave_row(const T* in, index_t len, T* const* dst) {
  index_t j = 0;
  const T* src[W];
  T* out[W];
  for (; j + W <= len; j += W) {
    for (int u = 0; u < W; ++u) {
      src[u] = in + (j + u) * W;
      out[u] = dst[u] + j;
    }
    detail::transpose_block<T, W>(src, 0, out);
  }
  for (; j < len; ++j)
    for (int w = 0; w < W; ++w) dst[w][j] = in[j * W + w];
}

}  // namespace fastkkt
