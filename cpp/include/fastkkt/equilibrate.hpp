// fastkkt/equilibrate.hpp — equilibration of the Q and A blocks of a KKT matrix whose units
// differ, so that the singularity and inertia decisions do not depend on them.
//
// Every decision of the factorizations (ldlt.hpp) compares a pivot with N·ε times the largest
// entry of K (max|Kᵢⱼ|, or of a Schur complement): invariant to a common scaling of Q and A, but
// not to separate ones. With max|sym(Q)| ≈ σ_Q and max|A| ≈ σ_A, the pivots of the Q block are
// of order σ_Q and those of the second block (−A Q⁻¹ Aᵀ on the range of A) of order σ_A²/σ_Q,
// all compared with N·ε·max(σ_Q, σ_A). So with g = e_Q − e_A, the difference of the binary
// exponents of σ_Q and σ_A, the decisions lose a factor 2^L of their margin over N·ε,
//     L = max(−g, 2g)      (Q small: the Q pivots; Q large: the second block's pivots),
// on top of what the conditioning of the problem costs. A well-conditioned problem with
// Q ≈ 1e−15 and A ≈ 1 was reported singular although LAPACK solves it to 5e−16.
//
// The cure is a symmetric diagonal scaling by powers of two, D = diag(2^s₁ Iₙ, 2^s₂ Iₘ):
//     D K D = [ 2^{2s₁} sym(Q)    2^{s₁+s₂} Aᵀ ],     (D K D)(D⁻¹x) = D b,
//             [ 2^{s₁+s₂} A       0            ]
// i.e. the right-hand side becomes [−2^s₁ q; 2^s₂ c] and the solution z = 2^s₁ z', λ = 2^s₂ λ'.
// D K D has the inertia of K (Sylvester), so the status means the same. With
//     s₁ = −⌊e_Q/2⌋,  s₂ = −e_A − s₁     (max|x| = f·2^e, f ∈ [½, 1), as frexp gives it)
// the scaled blocks have max|2^{2s₁} sym(Q)| ∈ [½, 2) and max|2^{s₁+s₂} A| ∈ [½, 1): balanced,
// and of order 1, as far as can be from overflow (the Schur complements may grow up to
// pivot_growth() ≈ 1/√ε) and from the subnormal range. Scaling by a power of two is exact in
// binary floating point (std::ldexp; only results in the subnormal range round, which are far
// below ε relative to max|Kᵢⱼ| ≈ 1 for K itself); the exponents may exceed T's range (2^{s₂}
// need not be representable: Q ≈ 1e300 against A ≈ 1e−300), so they are applied with ldexp,
// never as a factor. The right-hand side and the solution scale the same way; where they leave
// T's range the solution overflows to ±Inf and is reported singular, as an overflowing solution
// always is (kkt.hpp, reject_nonfinite).
//
// The rule: equilibrate exactly when L > (p − ⌈log₂N⌉)/2 (integer division), p the digits of T:
// the tests accept pivots down to N·ε = 2^{−(p−1−log₂N)} relative, and an imbalance may take at
// most half of that margin, the other half staying for the conditioning of the problem (for
// N = 11: 24 bits in double, 10 in float; N = 200: 22 and 8). Measured before this header
// (random_qp, Q·2^g against A): double went wrong from L = 60 (N = 11, 200), float from
// L = 12 (N = 200) and 18 (N = 11). Never when max|sym(Q)| or max|A| is 0 (m = 0, Q = 0:
// nothing to balance) or not finite. Below the bound the factorizations see K itself, so an
// ordinary, balanced problem keeps every bit of its result, its path through the kernels and
// its speed; an unbalanced one costs one more pass over K (O(N²) next to the O(N³)
// factorization) and takes the one-problem path instead of the interleaved one.
//
// Refinement (kkt.hpp, solve_element) works on the scaled system: its residual is
// D(b − K x) with x = D x', computed from the original Q and A (exact: D is a power of two per
// row), and its backward error ‖D(b − Kx)‖∞ / (‖DKD‖∞ ‖D⁻¹x‖∞ + ‖Db‖∞) is the one the
// factorization of D K D controls; ‖DKD‖∞ is the record's knorm.
//
// The record of an equilibrated factorization (ldlt.hpp) has the kScaled flag and s₁, s₂ in
// its two `scale` entries (0 otherwise), so a stored factorization (factorize, the adjoint solve
// of fastkkt.torch's backward pass) solves with the same D. The decision depends only on Q and
// A, so `solve`, `factorize(...).solve`, a shared (broadcast) Q and A, every kernel and every
// thread count still give the same bits.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "fastkkt/ldlt.hpp"

namespace fastkkt {

// The exponents of D = diag(2^s₁ Iₙ, 2^s₂ Iₘ); all zero: K is used as it is.
struct Scaling {
  int s1 = 0, s2 = 0;
  bool on = false;
};

// Imbalance L (see above) beyond which a K of size N is equilibrated.
template <class T>
int balanced_bits(index_t N) {
  int lg = 0;  // ⌈log₂N⌉
  while ((index_t(1) << lg) < N) ++lg;
  return (std::numeric_limits<T>::digits - lg) / 2;
}

// Floor of a / 2 for any sign of a.
inline int floor_half(int a) { return a >= 0 ? a / 2 : -((1 - a) / 2); }

// The scaling of a K of size N with max|sym(Q)| = qmax and max|A| = amax: off unless they are
// unbalanced.
template <class T>
Scaling choose_scaling(T qmax, T amax, index_t N) {
  Scaling s;
  if (!(qmax > 0 && amax > 0 && std::isfinite(qmax) && std::isfinite(amax))) return s;
  int eq = 0, ea = 0;
  std::frexp(qmax, &eq);
  std::frexp(amax, &ea);
  const int g = eq - ea;
  if (std::max(-g, 2 * g) <= balanced_bits<T>(N)) return s;
  s.s1 = -floor_half(eq);
  s.s2 = -ea - s.s1;
  s.on = true;
  return s;
}

// K ← D K D on the lower triangle of the row-major N×N K (assembled, n rows of Q first), and
// max|Kᵢⱼ| and ‖K‖∞ of the result; rowsum is N scalars of scratch.
template <class T>
void equilibrate(T* K, index_t N, index_t n, const Scaling& s, T* rowsum, T& kmax, T& knorm) {
  for (index_t i = 0; i < N; ++i) rowsum[i] = 0;
  T mx = 0;
  for (index_t i = 0; i < N; ++i) {
    T* Ki = K + i * N;
    const int ei = i < n ? s.s1 : s.s2;
    T ri = 0;
    for (index_t j = 0; j <= i; ++j) {
      const T v = std::ldexp(Ki[j], ei + (j < n ? s.s1 : s.s2));
      Ki[j] = v;
      const T a = std::abs(v);
      mx = std::max(mx, a);
      ri += a;
      if (j < i) rowsum[j] += a;
    }
    rowsum[i] += ri;
  }
  T nrm = 0;
  for (index_t i = 0; i < N; ++i) nrm = std::max(nrm, rowsum[i]);
  kmax = mx;
  knorm = nrm;
}

// x ← D^{sign} x for a vector of length N = n + m (sign = +1 or −1), any scalar type.
template <class U>
void scale_vector(U* x, index_t n, index_t N, const Scaling& s, int sign) {
  for (index_t i = 0; i < n; ++i) x[i] = std::ldexp(x[i], sign * s.s1);
  for (index_t i = n; i < N; ++i) x[i] = std::ldexp(x[i], sign * s.s2);
}

// max|(D^{sign} x)ᵢ|.
template <class U>
U scaled_max(const U* x, index_t n, index_t N, const Scaling& s, int sign) {
  U mx = 0;
  for (index_t i = 0; i < N; ++i)
    mx = std::max(mx, std::abs(std::ldexp(x[i], sign * (i < n ? s.s1 : s.s2))));
  return mx;
}

// Marks a finished record (ldlt.hpp layout) as a factorization of D K D.
template <class T>
void mark_scaled(T* rec, index_t N, const Scaling& s) {
  Factor<T> F = Factor<T>::view(rec, N, nullptr);
  F.scale[0] = static_cast<T>(s.s1);
  F.scale[1] = static_cast<T>(s.s2);
  *F.flags = static_cast<T>(static_cast<int>(*F.flags) | kScaled);
}

// The scaling a record was made with.
template <class T>
Scaling scaling_of(const ConstFactor<T>& F) {
  Scaling s;
  if (F.flags & kScaled) {
    s.s1 = static_cast<int>(F.scale[0]);
    s.s2 = static_cast<int>(F.scale[1]);
    s.on = true;
  }
  return s;
}

}  // namespace fastkkt
