"""Type stub: the avx512 build of the core has the API of _core_baseline."""

from fastkkt._core_baseline import *  # noqa: F403
