"""Every method acts: each installed optimizer × selector on the darts and nb201 spaces, and each shrinker on
nb201, run through the engine at its components' ``tiny`` presets (1 epoch, 2 steps) and checked with the
components' own ``acted(activity)``. Generated from the registry (``nasfw.testing.acts_matrix``), so a newly
installed plugin is covered; pairs the components declare meaningless are skipped with their reason."""

from __future__ import annotations

import pytest

from nasfw import testing as kit

CASES = kit.acts_matrix()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_method_acts(case: kit.ActsCase) -> None:
    if case.skip:
        pytest.skip(case.skip)
    kit.check_acts(case)


def test_matrix_covers_every_registered_component() -> None:
    from nasfw.registry import get_registry

    reg = get_registry()
    assert {c.optimizer for c in CASES if not c.shrinker} == set(reg.names("optimizer"))
    assert {c.selector for c in CASES if not c.shrinker} == set(reg.names("selector"))
    assert {c.shrinker for c in CASES if c.shrinker} == set(reg.names("shrinker"))
    skipped = [c for c in CASES if c.skip]
    assert all("optimizer 'none' does not search" in c.skip for c in skipped)  # only declared reasons
