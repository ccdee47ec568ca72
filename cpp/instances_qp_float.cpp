// Explicit instantiation of the QP solver and its adjoint in float (instances.hpp says why).
#include "instances.hpp"

namespace fastkkt {
FASTKKT_INSTANCES_QP(, float)
}  // namespace fastkkt
