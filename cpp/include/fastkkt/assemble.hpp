// fastkkt/assemble.hpp — the KKT matrix from its blocks, and the residual b − K x from the blocks.
//
//     K = [ sym(Q) + D₁   Cᵀ  ]      sym(Q)ᵢⱼ = ½Qᵢⱼ + ½Qⱼᵢ (which cannot overflow),
//         [ C            −D₂ ]      D₁ (n), D₂ (m) optional nonnegative diagonals,
// is written into the lower triangle of a row-major N×N buffer (`assemble`, one problem;
// `assemble_wide`, the vector-block form for the tiled sizes) or of W interleaved buffers
// (`assemble_lanes`), together with max|Kᵢⱼ| and ‖K‖∞ (the largest absolute row sum of the full
// symmetric K), which the factorizations use for their tolerances. Finiteness is checked with
// one running sum of (x − x) — 0 for finite x, NaN otherwise. `assemble` and `assemble_lanes`
// give the same bits (every row sum receives its terms in the same order).
//
// kkt_residual forms r = b − K x from the original blocks — never from the factorization — in
// more than the working precision (double for float32; compensated sums for double, Ogita,
// Rump & Oishi 2005), for the iterative refinement of drivers.hpp.
// Nothing here allocates, throws, or knows about Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "fastkkt/common.hpp"
#include "fastkkt/interleave.hpp"

namespace fastkkt {

// One problem's matrix operands: pointers to element b of each, with their inner strides. The
// KKT matrix they define is the general one of the engine,
//     K = [ sym(Q) + D₁   Cᵀ  ]      (C is `A`: n columns, m rows),
//         [ C            −D₂ ]
// with D₁ (n) and D₂ (m) nonnegative diagonals, each absent (null: zero) by default; without
// them it is the equality QP's [[sym(Q), Aᵀ], [A, 0]], computed with the same operations (an
// absent diagonal adds nothing, not +0, so the bits are those of the QP's matrix).
template <class T>
struct ElementQA {
  const T* Q;
  index_t Qs0, Qs1;
  const T* A;
  index_t As0, As1;
  const T* D1 = nullptr;
  index_t D1s = 0;
  const T* D2 = nullptr;
  index_t D2s = 0;

  T d1(index_t i) const { return D1[i * D1s]; }
  T d2(index_t k) const { return D2[k * D2s]; }
};

// The rest of `assemble` and `assemble_wide` once the rows of Q are in K: the rows of A, with
// their absolute values into the row sums (chk and mx carry on from Q), the (2,2) block −D₂
// (zero without D₂; D₂ is checked with A), the finiteness check of A, and max|Kᵢⱼ| and ‖K‖∞;
// where `blockmax` is not null, max|sym(Q) + D₁| (mx on entry) and max|A| into its two
// entries, for the equilibration (equilibrate.hpp).
template <class T>
Status assemble_constraints(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K,
                            T* rowsum, T chk, T mx, T& kmax, T& knorm, T* blockmax) {
  const index_t N = n + m;
  T ma = 0, md = 0;  // max|A|, max D₂
  for (index_t k = 0; k < m; ++k) {
    T* Kk = K + (n + k) * N;
    const T* Ak = e.A + k * e.As0;
    T rk = 0;
    for (index_t j = 0; j < n; ++j) {
      const T a = Ak[j * e.As1];
      chk += a - a;
      Kk[j] = a;
      const T aa = std::abs(a);
      ma = std::max(ma, aa);
      rk += aa;
      rowsum[j] += aa;
    }
    for (index_t j = n; j <= n + k; ++j) Kk[j] = 0;
    if (e.D2) {
      const T dk = -e.d2(k);
      chk += dk - dk;
      Kk[n + k] = dk;
      md = std::max(md, std::abs(dk));
      rk += std::abs(dk);
    }
    rowsum[n + k] = rk;
  }
  if (check_finite && chk != 0) return kNonFiniteA;
  T nrm = 0;
  for (index_t i = 0; i < N; ++i) nrm = std::max(nrm, rowsum[i]);
  if (blockmax != nullptr) {
    blockmax[0] = mx;
    blockmax[1] = ma;
  }
  kmax = std::max(std::max(mx, ma), md);
  knorm = nrm;
  return kSolved;
}

// K into the lower triangle of the record's N×N block; returns kSolved or a kNonFinite code.
// sym(Q)ᵢⱼ is formed as ½Qᵢⱼ + ½Qⱼᵢ, which cannot overflow; it is finite iff both entries are,
// so one running sum of (x − x) — 0 for finite x, NaN otherwise — checks finiteness.
// Also returns max|Kᵢⱼ| and ‖K‖∞ (the largest absolute row sum of the full symmetric K).
// For N < kBlockedFrom, where the interleaved kernel assembles the same matrices, every row sum
// receives its terms in the order of `assemble_lanes` (row i, then rows i+1, i+2, … in order),
// so both give the same bits; the rows of Q are taken kRowBlock at a time and, for each column
// j, the entries Qⱼᵢ of that block are one short contiguous piece of row j (reading Q column by
// column went to memory once per entry). Larger systems take `assemble_wide`, whose vector
// blocks cost 10% less of the whole solve at 32×512×128 (A/B in one process).
constexpr index_t kRowBlock = 8;

template <class T>
Status assemble_wide(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K,
                     T* rowsum, T& kmax, T& knorm, T* blockmax = nullptr);

template <class T>
Status assemble(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K, T* rowsum,
                T& kmax, T& knorm, T* blockmax = nullptr) {
  const index_t N = n + m;
  if (N >= kBlockedFrom)
    return assemble_wide(e, n, m, check_finite, K, rowsum, kmax, knorm, blockmax);
  for (index_t i = 0; i < N; ++i) rowsum[i] = 0;
  T mx = 0, chk = 0;
  for (index_t i0 = 0; i0 < n; i0 += kRowBlock) {
    const index_t i1 = std::min(n, i0 + kRowBlock);
    T ri[kRowBlock] = {};
    for (index_t j = 0; j < i1; ++j) {
      const T* Qj = e.Q + j * e.Qs0;  // row j: Qⱼᵢ for the rows i of the block
      for (index_t i = std::max(i0, j); i < i1; ++i) {
        const T* Qi = e.Q + i * e.Qs0;
        T* Ki = K + i * N;
        if (i == j) {
          T qii = Qi[i * e.Qs1];
          if (e.D1) qii += e.d1(i);
          chk += qii - qii;
          Ki[i] = qii;
          mx = std::max(mx, std::abs(qii));
          rowsum[i] += ri[i - i0] + std::abs(qii);
        } else {
          const T s = T(0.5) * Qi[j * e.Qs1] + T(0.5) * Qj[i * e.Qs1];
          chk += s - s;
          Ki[j] = s;
          const T a = std::abs(s);
          mx = std::max(mx, a);
          ri[i - i0] += a;
          rowsum[j] += a;
        }
      }
    }
  }
  if (check_finite && chk != 0) return kNonFiniteQ;  // NaN != 0
  return assemble_constraints(e, n, m, check_finite, K, rowsum, chk, mx, kmax, knorm, blockmax);
}

// `assemble` for the large systems of the tiled factorization (N ≥ kBlockedFrom), where no
// other kernel has to reproduce its row sums: Q is taken in V×V blocks (V = lanes<T>()), block
// (I, J) below the diagonal with the transpose of block (J, I) — a register transpose where
// rows are contiguous, entry by entry otherwise, into the same buffer, so the arithmetic and
// the result do not depend on the layout — and every entry of a block row is one vector
// operation: ½Qᵢⱼ + ½Qⱼᵢ, its absolute value into the row sums of i (a vector per row, added up
// at the end of the block row) and of j (a vector add), the maximum and the finiteness check.
// The rows below the last whole block and the A block go entry by entry / row by row.
template <class T>
Status assemble_wide(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K,
                     T* rowsum, T& kmax, T& knorm, T* blockmax) {
  constexpr int V = lanes<T>();
  const index_t N = n + m, nfull = n / V * V;
  for (index_t i = 0; i < N; ++i) rowsum[i] = 0;
  T mx[V] = {}, chk[V] = {};
  alignas(64) T a[V][V], b[V][V];
  const auto load = [&](index_t r0, index_t c0) {  // a[r][c] = Q(r0 + r, c0 + c)
    for (int r = 0; r < V; ++r) {
      const T* row = e.Q + (r0 + r) * e.Qs0 + c0 * e.Qs1;
      if (e.Qs1 == 1) {
#pragma omp simd
        for (int c = 0; c < V; ++c) a[r][c] = row[c];
      } else {
        for (int c = 0; c < V; ++c) a[r][c] = row[c * e.Qs1];
      }
    }
  };
  const auto load_transposed = [&](index_t r0, index_t c0) {  // b[r][c] = Q(c0 + c, r0 + r)
    if (e.Qs1 == 1 && detail::has_transpose<T, V>()) {
      const T* src[V];
      T* dst[V];
      for (int c = 0; c < V; ++c) src[c] = e.Q + (c0 + c) * e.Qs0;
      for (int r = 0; r < V; ++r) dst[r] = b[r];
      detail::transpose_block<T, V>(src, r0, dst);
    } else {
      for (int r = 0; r < V; ++r)
        for (int c = 0; c < V; ++c) b[r][c] = e.Q[(c0 + c) * e.Qs0 + (r0 + r) * e.Qs1];
    }
  };
  for (index_t i0 = 0; i0 < nfull; i0 += V) {
    T racc[V][V] = {};  // per row of the block row: its row sum so far, by column within blocks
    for (index_t j0 = 0; j0 < i0; j0 += V) {
      load(i0, j0);
      load_transposed(i0, j0);
      T* Rj = rowsum + j0;
      for (int r = 0; r < V; ++r) {
        T* Kr = K + (i0 + r) * N + j0;
#pragma omp simd
        for (int c = 0; c < V; ++c) {
          const T v = T(0.5) * a[r][c] + T(0.5) * b[r][c];
          Kr[c] = v;
          chk[c] += v - v;
          const T av = std::abs(v);
          mx[c] = std::max(mx[c], av);
          racc[r][c] += av;
          Rj[c] += av;
        }
      }
    }
    // the diagonal block: entries c < r as above, then the diagonal
    load(i0, i0);
    for (int r = 0; r < V; ++r) {
      const index_t i = i0 + r;
      T* Ki = K + i * N;
      for (int c = 0; c < r; ++c) {
        const T v = T(0.5) * a[r][c] + T(0.5) * a[c][r];
        Ki[i0 + c] = v;
        chk[c] += v - v;
        const T av = std::abs(v);
        mx[c] = std::max(mx[c], av);
        racc[r][c] += av;
        rowsum[i0 + c] += av;
      }
      T qii = a[r][r];
      if (e.D1) qii += e.d1(i);
      Ki[i] = qii;
      chk[r] += qii - qii;
      mx[r] = std::max(mx[r], std::abs(qii));
      T sum = 0;
      for (int c = 0; c < V; ++c) sum += racc[r][c];
      rowsum[i] += sum + std::abs(qii);
    }
  }
  // rows past the last whole block, entry by entry
  T mx1 = 0, chk1 = 0;
  for (index_t i = nfull; i < n; ++i) {
    const T* Qi = e.Q + i * e.Qs0;
    T* Ki = K + i * N;
    T ri = 0;
    for (index_t j = 0; j < i; ++j) {
      const T v = T(0.5) * Qi[j * e.Qs1] + T(0.5) * e.Q[j * e.Qs0 + i * e.Qs1];
      Ki[j] = v;
      chk1 += v - v;
      const T av = std::abs(v);
      mx1 = std::max(mx1, av);
      ri += av;
      rowsum[j] += av;
    }
    T qii = Qi[i * e.Qs1];
    if (e.D1) qii += e.d1(i);
    Ki[i] = qii;
    chk1 += qii - qii;
    mx1 = std::max(mx1, std::abs(qii));
    rowsum[i] += ri + std::abs(qii);
  }
  for (int c = 0; c < V; ++c) {
    chk1 += chk[c];
    mx1 = std::max(mx1, mx[c]);
  }
  if (check_finite && chk1 != 0) return kNonFiniteQ;  // NaN != 0
  return assemble_constraints(e, n, m, check_finite, K, rowsum, chk1, mx1, kmax, knorm, blockmax);
}

// Compensated accumulation (Ogita, Rump & Oishi, "Accurate sum and dot product", SIAM J. Sci.
// Comput. 26(6), 2005: Dot2 with the FMA form of TwoProduct): a running sum s + e to which
// a·b is added as if in twice the working precision, so the result is as accurate as if it
// were computed in twice the working precision and then rounded.
template <class T>
struct Compensated {
  T s = 0, e = 0;
  void sub_product(T a, T b) {  // s + e −= a·b
    const T p = a * b;
    const T pe = std::fma(a, b, -p);  // a·b = p + pe exactly
    const T t = s - p;                // TwoSum(s, −p) = t + te exactly
    const T bv = t - s;
    const T te = (s - (t - bv)) + (-p - bv);
    s = t;
    e += te - pe;
  }
  T value() const { return s + e; }
};

// ‖K‖∞ of the original blocks (row sums of |sym(Q) + D₁|, |Aᵀ|, |A| and D₂), for the backward
// error in the caller's units of a solve with an equilibrated factorization (drivers.hpp).
template <class T>
T kkt_norm_inf(const ElementQA<T>& e, index_t n, index_t m) {
  T knorm = 0;
  for (index_t i = 0; i < n; ++i) {
    T s = e.D1 ? std::abs(e.d1(i)) : T(0);
    for (index_t j = 0; j < n; ++j)
      s += std::abs(T(0.5) * (e.Q[i * e.Qs0 + j * e.Qs1] + e.Q[j * e.Qs0 + i * e.Qs1]));
    for (index_t k = 0; k < m; ++k) s += std::abs(e.A[k * e.As0 + i * e.As1]);
    knorm = std::max(knorm, s);
  }
  for (index_t k = 0; k < m; ++k) {
    T s = e.D2 ? std::abs(e.d2(k)) : T(0);
    for (index_t j = 0; j < n; ++j) s += std::abs(e.A[k * e.As0 + j * e.As1]);
    knorm = std::max(knorm, s);
  }
  return knorm;
}

// r = b − K x, with K formed on the fly from the original Q, A (C), D₁ and D₂; returns ‖r‖∞. For float32 the
// residual is accumulated in double (every product of two floats is exact there); for double it
// is accumulated in twice the working precision (Compensated), so refinement converges to a
// backward error of about ε even where cond(K) is far beyond 1/ε (Higham, "Accuracy and Stability
// of Numerical Algorithms", §12.1: refinement with an extra-precise residual).
template <class T>
acc_t<T> kkt_residual(const ElementQA<T>& e, index_t n, index_t m, const T* b, const T* x,
                      acc_t<T>* r, acc_t<T>* rlo) {
  using Acc = acc_t<T>;
  const T* z = x;
  const T* lam = x + n;
  if constexpr (std::is_same_v<T, double>) {
    // ½(Qᵢⱼ + Qⱼᵢ) zⱼ summed over j, read as Qᵢⱼ contributions to rows i and j (½Qᵢⱼ is exact);
    // r holds the leading parts of the sums, rlo their trailing parts
    auto sub = [r, rlo](index_t i, double a, double y) {
      Compensated<double> acc{r[i], rlo[i]};
      acc.sub_product(a, y);
      r[i] = acc.s;
      rlo[i] = acc.e;
    };
    for (index_t i = 0; i < n + m; ++i) {
      r[i] = b[i];
      rlo[i] = 0;
    }
    for (index_t i = 0; i < n; ++i) {
      for (index_t j = 0; j < n; ++j) {
        const double h = 0.5 * e.Q[i * e.Qs0 + j * e.Qs1];
        sub(i, h, z[j]);
        sub(j, h, z[i]);
      }
    }
    if (e.D1)
      for (index_t i = 0; i < n; ++i) sub(i, e.d1(i), z[i]);
    if (e.D2)
      for (index_t k = 0; k < m; ++k) sub(n + k, -e.d2(k), lam[k]);
    for (index_t k = 0; k < m; ++k) {
      for (index_t j = 0; j < n; ++j) {
        const double a = e.A[k * e.As0 + j * e.As1];
        sub(j, a, lam[k]);
        sub(n + k, a, z[j]);
      }
    }
    for (index_t i = 0; i < n + m; ++i) r[i] += rlo[i];
  } else {
    (void)rlo;
    for (index_t i = 0; i < n + m; ++i) r[i] = b[i];
    for (index_t i = 0; i < n; ++i) {
      // ½(Qᵢⱼ + Qⱼᵢ) zⱼ summed over j, read as Qᵢⱼ contributions to rows i and j
      for (index_t j = 0; j < n; ++j) {
        const Acc h = Acc(0.5) * Acc(e.Q[i * e.Qs0 + j * e.Qs1]);
        r[i] -= h * Acc(z[j]);
        r[j] -= h * Acc(z[i]);
      }
    }
    if (e.D1)
      for (index_t i = 0; i < n; ++i) r[i] -= Acc(e.d1(i)) * Acc(z[i]);
    if (e.D2)
      for (index_t k = 0; k < m; ++k) r[n + k] += Acc(e.d2(k)) * Acc(lam[k]);
    for (index_t k = 0; k < m; ++k) {
      Acc s = 0;
      for (index_t j = 0; j < n; ++j) {
        const Acc a = Acc(e.A[k * e.As0 + j * e.As1]);
        r[j] -= a * Acc(lam[k]);
        s += a * Acc(z[j]);
      }
      r[n + k] -= s;
    }
  }
  // ‖r‖∞, NaN if any entry is (an overflow in K x: std::max alone would drop it)
  Acc nr = 0;
  bool nan = false;
  for (index_t i = 0; i < n + m; ++i) {
    const Acc a = std::abs(r[i]);
    nan = nan || a != a;
    nr = std::max(nr, a);
  }
  return nan ? std::numeric_limits<Acc>::quiet_NaN() : nr;
}

// `assemble` for W problems at once (all with D₁ / D₂ or all without), straight into the interleaved layout (entry (i, j) of
// problem w at C[(i·N + j)·W + w]). The arithmetic, and so every rounding of the row sums, is
// that of `assemble` with the W problems innermost: each lane gets bitwise what `assemble` gives.
// Row i of each Q is copied whole (interleave_rows), its upper part into C's upper triangle,
// which the factorization never reads; then row i of sym(Q) is formed in place from the lower
// part and column i of that upper triangle (rows j < i, copied earlier). Everything is read in
// order, and each row of C stays in L1 from its copy to its symmetrization.
// chkQ / chkA per lane: 0 when Q / Q and A are finite, NaN otherwise. rowsum is N×W scratch.
// Where qmax and amax are not null, max|sym(Q)| and max|A| per lane (as `assemble` gives them).
template <class T, int W>
void assemble_lanes(const ElementQA<T>* e, index_t n, index_t m, T* C, T* rowsum, T* kmax, T* knorm,
                    T* chkQ, T* chkA, T* qmax = nullptr, T* amax = nullptr) {
  const index_t N = n + m;
  const T* src[W];
  for (index_t i = 0; i < N * W; ++i) rowsum[i] = 0;
  T mx[W] = {}, chk[W] = {};
  for (index_t i = 0; i < n; ++i) {
    T* Ci = C + i * N * W;
    for (int w = 0; w < W; ++w) src[w] = e[w].Q + i * e[w].Qs0;
    interleave_rows<T, W>(src, e[0].Qs1, n, Ci);
    if (e[0].D1)
      for (int w = 0; w < W; ++w) Ci[i * W + w] += e[w].d1(i);
    T ri[W] = {};
    for (index_t j = 0; j < i; ++j) {
      T* Cij = Ci + j * W;
      const T* Cji = C + (j * N + i) * W;  // Qⱼᵢ, copied with row j
      T* Rj = rowsum + j * W;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T s = T(0.5) * Cij[w] + T(0.5) * Cji[w];
        Cij[w] = s;
        chk[w] += s - s;
        const T a = std::abs(s);
        mx[w] = std::max(mx[w], a);
        ri[w] += a;
        Rj[w] += a;
      }
    }
    const T* Cii = Ci + i * W;
    T* Ri = rowsum + i * W;
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      chk[w] += Cii[w] - Cii[w];
      mx[w] = std::max(mx[w], std::abs(Cii[w]));
      Ri[w] += ri[w] + std::abs(Cii[w]);
    }
  }
  for (int w = 0; w < W; ++w) chkQ[w] = chk[w];
  if (qmax != nullptr)
    for (int w = 0; w < W; ++w) qmax[w] = mx[w];
  T ma[W] = {};
  for (index_t k = 0; k < m; ++k) {
    T* Ck = C + (n + k) * N * W;
    for (int w = 0; w < W; ++w) src[w] = e[w].A + k * e[w].As0;
    interleave_rows<T, W>(src, e[0].As1, n, Ck);
    for (index_t j = n * W; j < (n + k + 1) * W; ++j) Ck[j] = 0;
    T rk[W] = {};
    for (index_t j = 0; j < n; ++j) {
      const T* Ckj = Ck + j * W;
      T* Rj = rowsum + j * W;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        chk[w] += Ckj[w] - Ckj[w];
        const T aa = std::abs(Ckj[w]);
        mx[w] = std::max(mx[w], aa);
        ma[w] = std::max(ma[w], aa);
        rk[w] += aa;
        Rj[w] += aa;
      }
    }
    if (e[0].D2) {
      T* Ckk = Ck + (n + k) * W;
      for (int w = 0; w < W; ++w) {
        Ckk[w] = -e[w].d2(k);
        chk[w] += Ckk[w] - Ckk[w];
        mx[w] = std::max(mx[w], std::abs(Ckk[w]));
        rk[w] += std::abs(Ckk[w]);
      }
    }
    for (int w = 0; w < W; ++w) rowsum[(n + k) * W + w] = rk[w];
  }
  if (amax != nullptr)
    for (int w = 0; w < W; ++w) amax[w] = ma[w];
  for (int w = 0; w < W; ++w) {
    chkA[w] = chk[w];
    T nrm = 0;
    for (index_t i = 0; i < N; ++i) nrm = std::max(nrm, rowsum[i * W + w]);
    kmax[w] = mx[w];
    knorm[w] = nrm;
  }
}

}  // namespace fastkkt
