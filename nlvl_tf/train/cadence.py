"""When the loop does periodic work (big_vision's `itstime`): scalars every n steps, evaluations at fixed positions
of every epoch."""


def is_time(step, every_n_steps, total_steps):
    """True every `every_n_steps` steps (counted from 0) and at the last step; `every_n_steps` 0 means only the last."""
    return step == total_steps or (every_n_steps > 0 and step % every_n_steps == 0)


def evaluation_positions(steps_per_epoch, evals_per_epoch):
    """The positions (1 .. steps_per_epoch) inside an epoch after which the loop evaluates: evals_per_epoch of them,
    evenly spread, the last at the epoch's end (with 775 steps and 2 evaluations: after 388 and 775)."""
    count = max(1, min(int(evals_per_epoch), steps_per_epoch))
    return sorted({round(k * steps_per_epoch / count) for k in range(1, count + 1)})


def is_evaluation_step(step, steps_per_epoch, positions):
    """True when the step just finished (1-based, counted over all epochs) ends at one of `positions`."""
    return (step - 1) % steps_per_epoch + 1 in positions
