"""Checks of layer constructor arguments, shared by every layer: each returns the value in its canonical type or raises
a ValueError that names the argument."""


def rate(name, value):
    """A probability in [0, 1) (dropout rates), as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def positive_int(name, value):
    """An int >= 1 (sizes, counts, lengths)."""
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_ints(name, values):
    """A non-empty sequence of ints >= 1, as a tuple."""
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {values!r}")
    return tuple(positive_int(f"{name}[{index}]", value) for index, value in enumerate(values))


def choice(name, value, options):
    """One of `options`."""
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value
