// fastkkt/common.hpp — what every part of the KKT engine shares: the index type, the status of
// an element, the scalar rules (machine ε; a·b + c fused only where the code says so; the
// accumulation type of residuals), scratch vectors that are not zeroed, and the size from which
// the tiled factorization takes over.
//
// The engine solves, per element of a batch, the KKT system
//     K x = b,   K = [ sym(Q) + D₁   Cᵀ  ]   (n + m = N rows),   sym(Q) = (Q + Qᵀ)/2,
//                    [ C            −D₂ ]
// with D₁ ≥ 0 (n) and D₂ ≥ 0 (m) diagonal and optional; the equality-constrained QP
//     minimize ½zᵀQz + qᵀz  subject to  Az = c
// is C = A, D₁ = D₂ = 0, x = [z; λ], b = [−q; c]. Its status (`Status`) is that of the public
// API's `info`: the inertia certificate of ldlt.hpp decides between a strict minimum, a singular
// K and a K of the wrong inertia.
// Nothing here allocates, throws, or knows about Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef FASTKKT_BLOCKED_FROM
#define FASTKKT_BLOCKED_FROM 176
#endif

namespace fastkkt {

using index_t = std::int64_t;

// Per-element status codes, as in the public API's `info` (exported to Python once, by
// module.cpp; fastkkt/_status.py reads them there). Two outcomes share the one int32 code space
// of an `info` array: what the factorization found, and what the input check refused.
//
// Factorization outcome: the public `info` of solve_ex.
enum FactorStatus : std::int32_t {
  kSolved = 0,      // solved; the point is the strict minimum
  kSingular = 1,    // K is (numerically) singular
  kNotMinimum = 2,  // K is nonsingular but its inertia is not (n, m): not a strict minimum
};
// Input-check outcome (numbered after the factorization outcomes); the binding layer turns each
// into ValueError, so these never reach a user's `info`.
enum InputStatus : std::int32_t {
  // Non-finite input (only when checking is on).
  kNonFiniteQ = kNotMinimum + 1,
  kNonFiniteq,
  kNonFiniteA,
  kNonFinitec,
  // A stored factorization that no factorization of this library wrote (a corrupted record).
  // Checked before every solve with a record.
  kInvalidRecord,
};
// An element's code: a FactorStatus or an InputStatus.
using Status = std::int32_t;

template <class T>
constexpr T eps() {
  return std::numeric_limits<T>::epsilon();
}

// a·b + c, fused into one rounding where the instruction set has FMA. The build uses
// -ffp-contract=off, so the compiler never fuses on its own: every kernel below performs the
// same operations in the same order whether it runs on one problem or on W interleaved ones,
// which is what makes `solve` and `factorize(...).solve` agree bit for bit.
template <class T>
inline T fmadd(T a, T b, T c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}
// From this size on the natural-order factorization is the tiled one (factor_natural_blocked).
constexpr index_t kBlockedFrom = FASTKKT_BLOCKED_FROM;

// Accumulation type of residuals: double for float (refinement in higher precision), else T.
template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class T>
T quiet_nan() {
  return std::numeric_limits<T>::quiet_NaN();
}

// std::allocator that leaves the elements of a resized vector uninitialized (default- rather
// than value-initialized): for the large scratch buffers below, which every kernel writes before
// it reads them. Zeroing them cost ~2% of a call at n + m = 640 (perf: memset).
template <class T>
struct uninitialized_allocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = uninitialized_allocator<U>;
  };
  uninitialized_allocator() = default;
  template <class U>
  uninitialized_allocator(const uninitialized_allocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <class T>
using scratch = std::vector<T, uninitialized_allocator<T>>;

}  // namespace fastkkt
