"""minigrad.random: the global generator's state protocol (check_state, then apply_state)."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import random as mg_random


def test_check_state_changes_nothing_and_apply_state_continues_the_stream():
    mg.manual_seed(1)
    saved = mg_random.get_state()
    expected = mg_random.generator().standard_normal(4)
    mg.manual_seed(2)
    before = mg_random.get_state()
    prepared = mg_random.check_state(saved)
    assert mg_random.get_state() == before  # checking draws nothing, changes nothing
    mg_random.apply_state(prepared)
    np.testing.assert_array_equal(mg_random.generator().standard_normal(4), expected)


def huge(state):
    state = {**state, "state": {**state["state"], "state": 10**80}}
    return state


@pytest.mark.parametrize(
    "bad",
    [
        lambda s: [1, 2],
        lambda s: {**s, "bit_generator": "MT19937"},
        lambda s: {k: v for k, v in s.items() if k != "state"},
        lambda s: {**s, "state": {"state": "x", "inc": 1}},
        huge,  # too large for PCG64's 128 bits: an OverflowError inside NumPy
    ],
)
def test_bad_states_are_a_value_error_and_change_nothing(bad):
    mg.manual_seed(3)
    before = mg_random.get_state()
    with pytest.raises(ValueError, match="state"):
        mg_random.check_state(bad(before))
    with pytest.raises(ValueError, match="state"):
        mg_random.set_state(bad(before))
    assert mg_random.get_state() == before
