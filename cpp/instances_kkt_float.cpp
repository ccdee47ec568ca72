// Explicit instantiation of the KKT engine's drivers and adjoint in float (instances.hpp says why).
#include "instances.hpp"

namespace fastkkt {
FASTKKT_INSTANCES_KKT(, float)
}  // namespace fastkkt
