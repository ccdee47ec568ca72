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
// need not be representable: Q ≈ 1e300 against A ≈ 1e−300), so they are applied as one factor
// only where 2^k is a normal number, else with ldexp (Pow2). The right-hand side and the solution scale the same way; where they leave
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
// factorization), in the interleaved kernel too, where its lane is scaled in place exactly as
// the one-problem path scales it (same operations, same order: the same bits).
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

// x·2^k: one multiplication where 2^k is a normal number of U (exact: IEEE multiplication
// rounds the exact product, which is what ldexp returns, also into the subnormal range), else
// std::ldexp (a library call, several times slower than the factorization's own operations).
template <class U>
struct Pow2 {
  U f = 1;
  int k = 0;
  bool mul = true;
  explicit Pow2(int k_) : k(k_) {
    mul = k >= std::numeric_limits<U>::min_exponent - 1 &&
          k <= std::numeric_limits<U>::max_exponent - 1;
    if (mul) f = std::ldexp(U(1), k);
  }
  U operator()(U x) const { return mul ? x * f : std::ldexp(x, k); }
};

// K ← D K D on the lower triangle of the row-major N×N K (assembled, n rows of Q first), and
// max|Kᵢⱼ| and ‖K‖∞ of the result; rowsum is N scalars of scratch. Entry (i, j) is at
// K[(i·N + j)·S]: S = 1 for one problem, S = W for one lane of the interleaved layout.
template <class T, int S = 1>
void equilibrate(T* K, index_t N, index_t n, const Scaling& s, T* rowsum, T& kmax, T& knorm) {
  for (index_t i = 0; i < N; ++i) rowsum[i] = 0;
  T mx = 0;
  const Pow2<T> qq(2 * s.s1), qa(s.s1 + s.s2), aa(2 * s.s2);
  for (index_t i = 0; i < N; ++i) {
    T* Ki = K + i * N * S;
    T ri = 0;
    for (index_t j = 0; j <= i; ++j) {
      const T v = (i < n ? qq : j < n ? qa : aa)(Ki[j * S]);
      Ki[j * S] = v;
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

// x ← D^{sign} x for a vector of length N = n + m (sign = +1 or −1), any scalar type; entry i
// at x[i·S] (S = W: one lane of an interleaved vector).
template <class U, int S = 1>
void scale_vector(U* x, index_t n, index_t N, const Scaling& s, int sign) {
  const Pow2<U> p1(sign * s.s1), p2(sign * s.s2);
  for (index_t i = 0; i < n; ++i) x[i * S] = p1(x[i * S]);
  for (index_t i = n; i < N; ++i) x[i * S] = p2(x[i * S]);
}

// max|(D^{sign} x)ᵢ|.
template <class U>
U scaled_max(const U* x, index_t n, index_t N, const Scaling& s, int sign) {
  const Pow2<U> p1(sign * s.s1), p2(sign * s.s2);
  U mx = 0;
  for (index_t i = 0; i < N; ++i) mx = std::max(mx, std::abs((i < n ? p1 : p2)(x[i])));
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
