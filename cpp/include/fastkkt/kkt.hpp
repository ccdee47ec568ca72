// fastkkt/kkt.hpp — the whole KKT engine, for a caller that wants all of it: one dense symmetric
// indefinite KKT system per batch element,
//     K x = b,   K = [ sym(Q) + D₁   Cᵀ  ],   the equality QP: C = A, D₁ = D₂ = 0, b = [−q; c],
//                    [ C            −D₂ ]
// factored with an inertia certificate and solved with iterative refinement, over batches of
// strided, broadcast operands on several threads. Where each part lives:
//   common.hpp      index type, status, scalar rules, the tiled-size threshold
//   record.hpp      the stored factorization's layout (one record per element)
//   ldlt_lanes.hpp  natural-order LDLᵀ of W problems at once (interleaved) and its solves
//   ldlt_tiled.hpp  natural-order LDLᵀ of one large problem, tile by tile
//   ldlt.hpp        one problem: natural order, Bunch–Kaufman fallback, the solve
//   assemble.hpp    K from its blocks; the residual b − K x from the blocks
//   batch.hpp       batch views, threads, the caller-owned workspace
//   drivers.hpp     factor / solve / solve-with-records over a batch, and which kernel runs
//   adjoint.hpp     the backward pass: adjoint solve and input gradients
//   interleave.hpp  the interleaved layout's transposes;  threads.hpp  the thread policy
#pragma once

#include "fastkkt/adjoint.hpp"
#include "fastkkt/assemble.hpp"
#include "fastkkt/batch.hpp"
#include "fastkkt/common.hpp"
#include "fastkkt/drivers.hpp"
#include "fastkkt/ldlt.hpp"
#include "fastkkt/ldlt_lanes.hpp"
#include "fastkkt/ldlt_tiled.hpp"
#include "fastkkt/record.hpp"
