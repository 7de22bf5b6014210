"""When the training loop logs and evaluates (nlvl_tf.train.cadence)."""

import pytest

from nlvl_tf.train import cadence


@pytest.mark.parametrize(
    "steps_per_epoch, evals_per_epoch, expected",
    [(775, 2, [388, 775]), (27, 1, [27]), (10, 3, [3, 7, 10]), (5, 9, [1, 2, 3, 4, 5]), (4, 0, [4])],
)
def test_evaluations_are_evenly_spread_and_end_each_epoch(steps_per_epoch, evals_per_epoch, expected):
    assert cadence.evaluation_positions(steps_per_epoch, evals_per_epoch) == expected


def test_a_775_step_epoch_evaluates_twice_not_at_774_and_775():
    positions = cadence.evaluation_positions(775, 2)
    evaluated = [step for step in range(1, 3 * 775 + 1) if cadence.is_evaluation_step(step, 775, positions)]
    assert evaluated == [388, 775, 1163, 1550, 1938, 2325]


def test_scalars_are_logged_every_n_steps_and_at_the_last_step():
    assert [step for step in range(1, 13) if cadence.is_time(step, 5, 12)] == [5, 10, 12]
    assert [step for step in range(1, 13) if cadence.is_time(step, 0, 12)] == [12]
