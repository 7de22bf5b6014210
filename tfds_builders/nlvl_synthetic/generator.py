"""Procedurally generated, seeded, learnable NLVL videos (numpy only, no TFDS, so it is unit-testable).

A video is a sequence of events separated by short idle gaps. Each event is an (action, object)
pair shown for a few feature rows; its visual signature is a prototype vector (action part + object
part + a pair-specific part), blended into its neighbours by a moving average (smooth transitions)
and overlaid with Gaussian noise. Idle rows have a zero signature.

Each query is templated English naming exactly one event:
- plain: "the person opens the door." (the pair occurs once in the video);
- ordinal: "the second time someone opens the door." (the pair occurs 2-3 times);
- after / before: "after folding the towel, the person opens the door." (the door is opened both
  before and after the only towel folding; the cue picks one opening).
Every queried pair has distractors in its video: the same action on another object and another
action on the same object, so neither word alone localizes it.

Everything is a function of (spec.seed, split, video index): the same spec always gives the same
videos, and a video does not depend on how many others are generated.
"""

import collections
import dataclasses
from collections.abc import Iterator

import numpy as np

from nlvl_tf import errors

SPLITS = ("train", "validation", "test")
# (third person, gerund) forms; the first `num_actions` / `num_objects` entries are used.
ACTIONS = (
    ("opens", "opening"),
    ("closes", "closing"),
    ("washes", "washing"),
    ("holds", "holding"),
    ("throws", "throwing"),
    ("carries", "carrying"),
    ("cleans", "cleaning"),
    ("folds", "folding"),
    ("fills", "filling"),
    ("pushes", "pushing"),
    ("lifts", "lifting"),
    ("drops", "dropping"),
)
OBJECTS = ("door", "box", "cup", "book", "laptop", "towel", "bag", "bottle", "phone", "shoe", "pillow", "chair")
ORDINALS = ("first", "second", "third")
_TEMPLATES = {
    "plain": ("the person {v} the {o}.", "a person {v} the {o}.", "someone {v} a {o}.", "person {v} the {o}."),
    "ordinal": ("the person {v} the {o} for the {n} time.", "the {n} time someone {v} the {o}."),
    "after": ("after {cg} the {co}, the person {v} the {o}.", "the person {v} the {o} after {cg} the {co}."),
    "before": ("before {cg} the {co}, the person {v} the {o}.", "the person {v} the {o} before {cg} the {co}."),
}
_PROTOTYPE_STREAM = 7919  # seeds the prototypes apart from every split's videos


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """How videos and queries are drawn. Ranges are inclusive; lengths are feature rows."""

    feature_dim: int
    num_videos: tuple[int, int, int]  # train, validation, test
    num_actions: int
    num_objects: int
    events_per_video: tuple[int, int]  # ordinary videos; at least 5 so every query kind fits
    event_length: tuple[int, int]
    gap_length: tuple[int, int]  # idle rows before each event and after the last
    queries_per_video: tuple[int, int]
    long_video_every: int  # video i is long when i % long_video_every == long_video_every // 2
    long_video_min_rows: int = 601  # a long video gets events until it has at least this many rows
    long_event_length: tuple[int, int] = (10, 30)
    kind_weights: tuple[float, float, float] = (0.6, 0.2, 0.2)  # plain, ordinal, after/before
    noise_std: float = 1.0
    smoothing: int = 3  # width of the moving average that blends neighbouring events
    features_per_second: float = 2.0
    seed: int = 0

    def __post_init__(self):
        if not (2 <= self.num_actions <= len(ACTIONS) and 2 <= self.num_objects <= len(OBJECTS)):
            raise errors.InputError(f"num_actions / num_objects must be in [2, {len(ACTIONS)}] / [2, {len(OBJECTS)}]")
        if self.events_per_video[0] < 5:
            raise errors.InputError(
                f"events_per_video must start at >= 5 (an after/before query needs 5), got {self.events_per_video}"
            )


# Presets of the builder configs `small` (tests, CPU demos) and `large` (benchmarks).
SMALL = SyntheticSpec(
    feature_dim=32,
    num_videos=(500, 100, 100),
    num_actions=6,
    num_objects=6,
    events_per_video=(5, 8),
    event_length=(4, 10),
    gap_length=(0, 3),
    queries_per_video=(1, 3),
    long_video_every=50,
)
LARGE = SyntheticSpec(
    feature_dim=1024,
    num_videos=(2000, 400, 400),
    num_actions=10,
    num_objects=10,
    events_per_video=(5, 12),
    event_length=(4, 16),
    gap_length=(0, 4),
    queries_per_video=(1, 4),
    long_video_every=20,
)


@dataclasses.dataclass(frozen=True)
class Event:
    action: int
    object: int
    start: int  # first row
    end: int  # one past the last row

    @property
    def pair(self) -> tuple[int, int]:
        return self.action, self.object


@dataclasses.dataclass(frozen=True)
class Query:
    text: str
    event: int  # index of the event it names
    kind: str  # "plain", "ordinal", "after" or "before"
    ordinal: int = 0  # 1-based occurrence of the pair, for "ordinal"
    cue_event: int = -1  # the event the cue names, for "after" / "before"


@dataclasses.dataclass(frozen=True)
class SyntheticVideo:
    video_id: str
    features: np.ndarray  # [rows, feature_dim] float32
    events: tuple[Event, ...]
    queries: tuple[Query, ...]
    features_per_second: float

    @property
    def duration(self) -> float:
        return len(self.features) / self.features_per_second

    def moment(self, query: Query) -> tuple[float, float]:
        """The named event's (start, end) in seconds."""
        event = self.events[query.event]
        return event.start / self.features_per_second, event.end / self.features_per_second


def prototypes(spec: SyntheticSpec) -> np.ndarray:
    """[num_actions, num_objects, feature_dim] signatures: action part + object part + half-size pair part.

    Shared by all splits, so what a model learns on train transfers to test.
    """
    rng = np.random.default_rng([spec.seed, _PROTOTYPE_STREAM])
    d = spec.feature_dim
    actions = rng.standard_normal((spec.num_actions, 1, d))
    objects = rng.standard_normal((1, spec.num_objects, d))
    return actions + objects + 0.5 * rng.standard_normal((spec.num_actions, spec.num_objects, d))


def _layout(rng: np.random.Generator, spec: SyntheticSpec, long: bool) -> tuple[list[tuple[int, int]], int]:
    """Event row spans and the total row count; idle gaps before each event and after the last."""

    def gap():
        return int(rng.integers(spec.gap_length[0], spec.gap_length[1] + 1))

    lengths = spec.long_event_length if long else spec.event_length
    num_events = int(rng.integers(spec.events_per_video[0], spec.events_per_video[1] + 1))
    spans, position = [], gap()
    while (position < spec.long_video_min_rows) if long else (len(spans) < num_events):
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        spans.append((position, position + length))
        position += length + gap()
    return spans, position


def _random_pair(rng: np.random.Generator, spec: SyntheticSpec, avoid=()) -> tuple[int, int]:
    while True:
        pair = (int(rng.integers(spec.num_actions)), int(rng.integers(spec.num_objects)))
        if pair not in avoid:
            return pair


def _pairs_around_primary(rng: np.random.Generator, spec: SyntheticSpec, num_events: int) -> tuple[list, str, list]:
    """Random pairs for every event, rewritten so that one query of a drawn kind names one event, with distractors.

    Returns (pairs, kind, targets): kind is "plain" (the target pair once), "ordinal" (2-3 times) or
    "temporal" (twice, around a unique cue event); targets are the target pair's events.
    """
    weights = np.asarray(spec.kind_weights) / sum(spec.kind_weights)
    kind = str(rng.choice(["plain", "ordinal", "temporal"], p=weights))
    occurrences = {"plain": 1, "ordinal": int(rng.integers(2, 4)), "temporal": 2}[kind]
    num_cues = int(kind == "temporal")
    # Target occurrences, then the cue (between the two targets), then two distractors: at most 5 <= num_events.
    slots = rng.choice(num_events, size=occurrences + num_cues + 2, replace=False).tolist()
    targets = sorted(slots[: occurrences + num_cues])
    if num_cues:
        cue_slot = targets.pop(1)
    action, obj = target = _random_pair(rng, spec)
    cue = (_other(rng, action, spec.num_actions), _other(rng, obj, spec.num_objects))  # shares no word with target
    pairs = [_random_pair(rng, spec, avoid={target, cue}) for _ in range(num_events)]
    for slot in targets:
        pairs[slot] = target
    if num_cues:
        pairs[cue_slot] = cue
    pairs[slots[-2]] = (action, _other(rng, obj, spec.num_objects))
    pairs[slots[-1]] = (_other(rng, action, spec.num_actions), obj)
    return pairs, kind, targets


def _other(rng: np.random.Generator, value: int, count: int) -> int:
    """A uniformly drawn integer in [0, count) other than `value`."""
    return int((value + rng.integers(1, count)) % count)


def describable_queries(pairs: list[tuple[int, int]]) -> list[tuple[str, int, int, int]]:
    """Every (kind, event, ordinal, cue_event) that names exactly one event whose pair has both distractors."""
    counts = collections.Counter(pairs)
    positions = collections.defaultdict(list)
    for i, pair in enumerate(pairs):
        positions[pair].append(i)
    actions = collections.Counter(a for a, _ in set(pairs))
    objects = collections.Counter(o for _, o in set(pairs))
    found = []
    for i, (action, obj) in enumerate(pairs):
        if actions[action] < 2 or objects[obj] < 2:
            continue  # no same-action or no same-object distractor
        mine = positions[(action, obj)]
        if len(mine) == 1:
            found.append(("plain", i, 0, -1))
            continue
        if len(mine) <= len(ORDINALS):
            found.append(("ordinal", i, mine.index(i) + 1, -1))
        for cue, cue_pair in enumerate(pairs):
            if counts[cue_pair] != 1 or cue_pair[0] == action or cue_pair[1] == obj:
                continue
            before = [j for j in mine if j < cue]
            after = [j for j in mine if j > cue]
            if before and after and i == after[0]:
                found.append(("after", i, 0, cue))
            if before and after and i == before[-1]:
                found.append(("before", i, 0, cue))
    return found


def _query_text(rng: np.random.Generator, kind: str, pair, ordinal: int, cue_pair) -> str:
    template = _TEMPLATES[kind][int(rng.integers(len(_TEMPLATES[kind])))]
    fields = {"v": ACTIONS[pair[0]][0], "o": OBJECTS[pair[1]]}
    if kind == "ordinal":
        fields["n"] = ORDINALS[ordinal - 1]
    if cue_pair is not None:
        fields.update(cg=ACTIONS[cue_pair[0]][1], co=OBJECTS[cue_pair[1]])
    return template.format(**fields)


def _features(rng: np.random.Generator, spec: SyntheticSpec, protos: np.ndarray, events, num_rows: int) -> np.ndarray:
    clean = np.zeros((num_rows, spec.feature_dim))
    for event in events:
        clean[event.start : event.end] = protos[event.action, event.object]
    # Moving average over `smoothing` rows (edges repeated): transitions blend, boundaries stay put.
    half = spec.smoothing // 2
    padded = np.concatenate([np.repeat(clean[:1], half, 0), clean, np.repeat(clean[-1:], half, 0)])
    cumulative = np.concatenate([np.zeros((1, spec.feature_dim)), np.cumsum(padded, axis=0)])
    smooth = (cumulative[spec.smoothing :] - cumulative[: -spec.smoothing]) / spec.smoothing
    return (smooth + spec.noise_std * rng.standard_normal(smooth.shape)).astype(np.float32)


def generate_video(spec: SyntheticSpec, split: str, index: int, protos: np.ndarray | None = None) -> SyntheticVideo:
    """Video `index` of `split`; `protos` (from `prototypes(spec)`) may be passed to skip recomputing them."""
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), index])
    long = index % spec.long_video_every == spec.long_video_every // 2
    spans, num_rows = _layout(rng, spec, long)
    pairs, kind, targets = _pairs_around_primary(rng, spec, len(spans))
    events = tuple(Event(a, o, s, e) for (a, o), (s, e) in zip(pairs, spans))

    candidates = describable_queries(pairs)
    primary_event = targets[int(rng.integers(len(targets)))]
    wanted = {"plain": ("plain",), "ordinal": ("ordinal",), "temporal": ("after", "before")}[kind]
    primary = [c for c in candidates if c[1] == primary_event and c[0] in wanted]
    rest = [c for c in candidates if c[1] != primary_event]
    num_queries = int(rng.integers(spec.queries_per_video[0], spec.queries_per_video[1] + 1))
    chosen = [primary[int(rng.integers(len(primary)))]]
    for i in rng.permutation(len(rest)):
        if len(chosen) == num_queries:
            break
        if rest[i][1] not in {event for _, event, _, _ in chosen}:
            chosen.append(rest[i])
    queries = tuple(
        Query(_query_text(rng, k, pairs[e], n, pairs[c] if c >= 0 else None), e, k, n, c) for k, e, n, c in chosen
    )
    protos = prototypes(spec) if protos is None else protos
    return SyntheticVideo(
        video_id=f"{split}_{index:05d}",
        features=_features(rng, spec, protos, events, num_rows),
        events=events,
        queries=queries,
        features_per_second=spec.features_per_second,
    )


def generate_split(spec: SyntheticSpec, split: str) -> Iterator[SyntheticVideo]:
    """All videos of a split, in index order."""
    protos = prototypes(spec)
    for index in range(spec.num_videos[SPLITS.index(split)]):
        yield generate_video(spec, split, index, protos)
