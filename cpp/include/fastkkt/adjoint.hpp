// fastkkt/adjoint.hpp — the backward pass: the adjoint solve and the gradients of the inputs.
//
// For x = [z; λ] = K⁻¹[−q; c] with K = [[sym(Q), Aᵀ], [A, 0]] and a loss ℓ(z, λ), the adjoint
// solve with the kept factorization (K is symmetric)
//     K [d_z; d_λ] = −[∂ℓ/∂z; ∂ℓ/∂λ]
// gives
//     ∂ℓ/∂q = d_z,   ∂ℓ/∂c = −d_λ,
//     ∂ℓ/∂Q = ½ (d_z zᵀ + z d_zᵀ)   (n×n: K holds sym(Q)),
//     ∂ℓ/∂A = d_λ zᵀ + λ d_zᵀ        (m×n: A appears as A and Aᵀ in K).
// Elements whose forward or adjoint solve failed get exactly zero gradients.
// Nothing here allocates per element, throws inside a parallel region, or knows about Python.
#pragma once

#include <algorithm>
#include <cstdint>

#include "fastkkt/batch.hpp"
#include "fastkkt/drivers.hpp"
#include "fastkkt/threads.hpp"

namespace fastkkt {

// The input gradients of the backward pass for elements that own their Q and A. With x = [z; λ]
// the solution and d = [d_z; d_λ] = −K⁻¹[∂ℓ/∂z; ∂ℓ/∂λ] from the adjoint solve,
//     ∂ℓ/∂Q = ½ (d_z zᵀ + z d_zᵀ)   (n×n: K holds sym(Q)),
//     ∂ℓ/∂A = d_λ zᵀ + λ d_zᵀ        (m×n: A appears as A and Aᵀ in K).
// z, dz (B×n), lam, dlam (B×m), dQ (B×n×n), dA (B×m×n) contiguous; either output may be null.
// Elements with info ≠ 0 get zero gradients (their z, λ, d may be NaN).
template <class T>
void outer_grads(index_t b0, index_t b1, index_t n, index_t m, const T* z, const T* lam,
                 const T* dz, const T* dlam, const std::int32_t* info, T* dQ, T* dA, int nthreads) {
  const double per = 3.0 * static_cast<double>(n) * static_cast<double>(n + m) + 1.0;
  const int nt = threads_for(nthreads, b1 - b0, static_cast<double>(b1 - b0) * per);
  parallel_for(b0, b1, nt, std::max<index_t>(1, (b1 - b0) / nt), [&](index_t b, int) {
    const bool ok = info[b] == kSolved;
    const T* zb = z + b * n;
    const T* dzb = dz + b * n;
    if (dQ != nullptr) {
      T* G = dQ + b * n * n;
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j)
          G[i * n + j] = ok ? T(0.5) * (dzb[i] * zb[j] + zb[i] * dzb[j]) : T(0);
    }
    if (dA != nullptr) {
      const T* lb = lam + b * m;
      const T* dlb = dlam + b * m;
      T* G = dA + b * m * n;
      for (index_t k = 0; k < m; ++k)
        for (index_t j = 0; j < n; ++j) G[k * n + j] = ok ? dlb[k] * zb[j] + lb[k] * dzb[j] : T(0);
    }
  });
}

// The backward pass of fastkkt.torch for elements [b0, b1), in one call: the adjoint solve
//     K [d_z; d_λ] = −[g_z; g_λ]
// with the kept factorizations (P.q holds g_z and P.c holds −g_λ, so this is
// solve_factored_batch's K x = [−q; c]), then the input gradients
//     ∂ℓ/∂q = d_z,   ∂ℓ/∂c = −d_λ,   ∂ℓ/∂Q, ∂ℓ/∂A as in outer_grads.
// Writes dz (∂ℓ/∂q) and gc (∂ℓ/∂c), B×n and B×m, and dQ, dA where not null; ainfo (B) receives
// the adjoint solve's status. Elements whose factorization failed get d = 0 (their gradients
// are exactly zero); z, lam and info are the forward pass's.
template <class T>
void backward_batch(const Problem<T>& P, const Strided<T>& records,
                    const Strided<std::int32_t>& finfo, const T* z, const T* lam,
                    const std::int32_t* info, T* dz, T* gc, std::int32_t* ainfo, T* dQ, T* dA,
                    index_t b0, index_t b1, int nthreads, WorkspacePool<T>* pool = nullptr) {
  const index_t n = P.n, m = P.m;
  solve_factored_batch(P, records, finfo, dz, gc, ainfo, b0, b1, nthreads, pool);  // gc: d_λ
  for (index_t b = b0; b < b1; ++b)
    if (ainfo[b] != kSolved) {
      for (index_t i = 0; i < n; ++i) dz[b * n + i] = 0;
      for (index_t k = 0; k < m; ++k) gc[b * m + k] = 0;
    }
  outer_grads(b0, b1, n, m, z, lam, dz, gc, info, dQ, dA, nthreads);
  for (index_t i = b0 * m; i < b1 * m; ++i) gc[i] = -gc[i];
}

}  // namespace fastkkt
