// fastkkt/record.hpp — the record: one finished factorization P K Pᵀ = L D Lᵀ of an N×N KKT
// matrix, in caller memory of record_size(N) = N(N−1)/2 + 3N + 4 scalars:
//     L     N(N−1)/2  the strict lower triangle of the unit lower triangular L, packed by rows
//                     (row i at offset packed_row(i) = i(i−1)/2; entries inside a 2×2 block of D
//                     are 0);
//     d     N     the diagonal of D;
//     e     N     e[k] = D(k+1, k) when rows k, k+1 form a 2×2 block, else 0;
//     scale 2     the exponents s₁, s₂ of the equilibration D = diag(2^s₁ Iₙ, 2^s₂ Iₘ) when
//                 the factorization is of D K D (flag kScaled; equilibrate.hpp), else 0, 0;
//     perm  N     P as row indices: row k of P K Pᵀ is row perm[k] of K (stored as a scalar;
//                 −(p+1) marks the first row of a 2×2 block);
//     knorm 1     ‖K‖∞, for the backward error of iterative refinement;
//     flags 1     kRefine | kPivoted | kScaled bits (stored as a scalar).
// Four factorizations write it — factor_natural (ldlt.hpp), factor_natural_lanes (ldlt_lanes.hpp,
// unpacked lane by lane), factor_natural_blocked (ldlt_tiled.hpp) and factor_bunch_kaufman
// (ldlt.hpp) — so that one solve (factor_solve) serves all of them, and a record stored by
// `factorize` solves exactly as the factorization inside `solve` does. A factorization works in
// place on a square N×N buffer (`Factor::L`, the caller's scratch) and `pack_factor` then copies
// L into the record. A record that reaches a solve from outside is checked (valid_record): the
// solve indexes memory through perm.
// Nothing here allocates, throws, or knows about Python.
#pragma once

#include <cmath>

#include "fastkkt/common.hpp"

namespace fastkkt {

// Record flags.
enum : int { kRefine = 1, kPivoted = 2, kScaled = 4 };

inline index_t packed_size(index_t N) { return N * (N - 1) / 2; }
inline index_t packed_row(index_t i) { return i * (i - 1) / 2; }
inline index_t record_size(index_t N) { return packed_size(N) + 3 * N + 4; }

// A factorization being computed: L is the square N×N work buffer (row-major; its lower
// triangle holds K on entry and L on exit), the rest points into the record.
template <class T>
struct Factor {
  T* L;
  T* d;
  T* e;
  T* scale;
  T* perm;
  T* knorm;
  T* flags;
  index_t N;

  static Factor view(T* rec, index_t N, T* square) {
    const index_t P = packed_size(N);
    return {square,
            rec + P,
            rec + P + N,
            rec + P + 2 * N,
            rec + P + 2 * N + 2,
            rec + P + 3 * N + 2,
            rec + P + 3 * N + 3,
            N};
  }
};

// Copies the strict lower triangle of the square work buffer into the record's packed L.
template <class T>
void pack_factor(const T* square, index_t N, T* rec) {
  for (index_t i = 1; i < N; ++i) {
    const T* Si = square + i * N;
    T* Ri = rec + packed_row(i);
    for (index_t j = 0; j < i; ++j) Ri[j] = Si[j];
  }
}

// A finished factorization, read from a record (L packed).
template <class T>
struct ConstFactor {
  const T* L;
  const T* d;
  const T* e;
  const T* scale;
  const T* perm;
  T knorm;
  int flags;
  index_t N;

  static ConstFactor view(const T* rec, index_t N) {
    const index_t P = packed_size(N);
    return {rec,
            rec + P,
            rec + P + N,
            rec + P + 2 * N,
            rec + P + 2 * N + 2,
            rec[P + 3 * N + 2],
            static_cast<int>(rec[P + 3 * N + 3]),
            N};
  }
};

// Whether `rec` can be a record of size N that the factorizations above wrote: a permutation
// of 0 … N−1 (each row index once, 2×2 markers never on the last row and always followed by a
// plain index), finite ‖K‖∞, known flags, and integer equilibration exponents, which are 0
// without kScaled. O(N) with `seen` (N bytes of scratch). The solve
// indexes memory through perm, so a record from elsewhere must never reach it unchecked.
template <class T>
bool valid_record(const T* rec, index_t N, unsigned char* seen) {
  const ConstFactor<T> F = ConstFactor<T>::view(rec, N);
  const T flags = rec[packed_size(N) + 3 * N + 3];
  const T base = flags >= T(kScaled) ? flags - T(kScaled) : flags;
  if (!std::isfinite(F.knorm) || !(base == 0 || base == kRefine || base == (kRefine | kPivoted)))
    return false;
  for (int k = 0; k < 2; ++k) {
    const T s = F.scale[k];
    if (!(std::abs(s) <= T(4096) && s == std::floor(s)) || (flags < T(kScaled) && s != 0))
      return false;
  }
  for (index_t k = 0; k < N; ++k) seen[k] = 0;
  for (index_t k = 0; k < N; ++k) {
    const T p = F.perm[k];
    const T idx = p < 0 ? -p - 1 : p;
    if (!(idx >= 0 && idx < static_cast<T>(N)) || idx != std::floor(idx)) return false;
    if (p < 0 && (k + 1 >= N || F.perm[k + 1] < 0)) return false;
    const auto i = static_cast<index_t>(idx);
    if (seen[i]) return false;
    seen[i] = 1;
  }
  return true;
}

// Whether `rec` (valid, status kSolved) is a natural-order factorization that needs no
// refinement: identity permutation, no 2×2 blocks, flags 0. Its solve is then exactly
// solve_natural_lanes on its L and d.
template <class T>
bool plain_record(const T* rec, index_t N) {
  const ConstFactor<T> F = ConstFactor<T>::view(rec, N);
  if (F.flags != 0) return false;
  bool plain = true;
  for (index_t k = 0; k < N; ++k) plain &= F.perm[k] == static_cast<T>(k) && F.e[k] == 0;
  return plain;
}

// Zeros in a kept record whose factorization failed: nothing reads it (its status says so), and
// every record handed back is then fully written, whatever the path.
template <class T>
void clear_record(T* rec, index_t N) {
  for (index_t k = 0; k < record_size(N); ++k) rec[k] = 0;
}

}  // namespace fastkkt
