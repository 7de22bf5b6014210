"""Properties of the synthetic generator: reproducible, consistent, unambiguous, and learnable."""

import dataclasses
import re

import numpy as np
import pytest

from . import generator

TINY = dataclasses.replace(generator.SMALL, num_videos=(60, 20, 20), long_video_every=10)


@pytest.fixture(scope="module")
def small_splits():
    return {split: list(generator.generate_split(generator.SMALL, split)) for split in ("train", "test")}


def read_query(text):
    """Parses a query's text back into (kind, (action, object), ordinal, cue pair), independently of the generator."""
    verbs = {third: i for i, (third, _) in enumerate(generator.ACTIONS)}
    gerunds = {gerund: i for i, (_, gerund) in enumerate(generator.ACTIONS)}
    objects = {name: i for i, name in enumerate(generator.OBJECTS)}
    words = re.findall(r"[a-z]+", text)
    verb = next(i for i, w in enumerate(words) if w in verbs)
    target = (verbs[words[verb]], objects[words[verb + 2]])  # "<verb> the|a <object>"
    for relation in ("after", "before"):
        if relation in words:
            cue = next(i for i, w in enumerate(words) if w in gerunds)
            return relation, target, 0, (gerunds[words[cue]], objects[words[cue + 2]])
    ordinals = [generator.ORDINALS.index(w) + 1 for w in words if w in generator.ORDINALS]
    return ("ordinal", target, ordinals[0], None) if ordinals else ("plain", target, 0, None)


def events_matching(pairs, kind, target, ordinal, cue):
    """Indices of the events a parsed query can mean, by the query's plain-English reading."""
    mine = [i for i, pair in enumerate(pairs) if pair == target]
    if kind == "plain":
        return mine
    if kind == "ordinal":
        return mine[ordinal - 1 : ordinal] if len(mine) >= ordinal else []
    cues = [i for i, pair in enumerate(pairs) if pair == cue]
    if len(cues) != 1:
        return cues  # an ambiguous cue: fails the caller's uniqueness check
    if kind == "after":
        return [i for i in mine if i > cues[0]][:1]
    return [i for i in mine if i < cues[0]][-1:]


def test_same_spec_same_videos_and_seed_changes_them():
    first = list(generator.generate_split(TINY, "train"))
    second = list(generator.generate_split(TINY, "train"))
    other_seed = list(generator.generate_split(dataclasses.replace(TINY, seed=1), "train"))
    for a, b, c in zip(first, second, other_seed):
        assert a.video_id == b.video_id and a.events == b.events and a.queries == b.queries
        np.testing.assert_array_equal(a.features, b.features)
        assert a.features.shape != c.features.shape or not np.array_equal(a.features, c.features)


def test_video_does_not_depend_on_split_size_and_splits_differ():
    video = generator.generate_video(TINY, "validation", 7)
    from_split = list(generator.generate_split(dataclasses.replace(TINY, num_videos=(1, 30, 1)), "validation"))[7]
    assert video.video_id == from_split.video_id == "validation_00007"
    np.testing.assert_array_equal(video.features, from_split.features)
    assert generator.generate_video(TINY, "test", 7).events != video.events


def test_events_and_moments_lie_inside_the_video(small_splits):
    for video in small_splits["train"] + small_splits["test"]:
        assert video.features.dtype == np.float32 and video.features.shape[1] == generator.SMALL.feature_dim
        bounds = [(e.start, e.end) for e in video.events]
        assert all(0 <= s < e for s, e in bounds) and bounds[-1][1] <= len(video.features)
        assert all(prev_end <= start for (_, prev_end), (start, _) in zip(bounds, bounds[1:]))
        assert 1 <= len(video.queries) <= generator.SMALL.queries_per_video[1]
        for query in video.queries:
            start, end = video.moment(query)
            assert 0 <= start < end <= video.duration
            assert video.duration == len(video.features) / 2.0


def test_every_query_names_exactly_its_event_and_has_distractors(small_splits):
    kinds = set()
    for video in small_splits["train"] + small_splits["test"]:
        pairs = [e.pair for e in video.events]
        assert len({q.event for q in video.queries}) == len(video.queries)
        for query in video.queries:
            kind, target, ordinal, cue = read_query(query.text)
            kinds.add(kind)
            assert kind == query.kind and target == pairs[query.event]
            assert events_matching(pairs, kind, target, ordinal, cue) == [query.event], (video.video_id, query)
            action, obj = target
            assert any(a == action and o != obj for a, o in pairs), (video.video_id, query.text)
            assert any(a != action and o == obj for a, o in pairs), (video.video_id, query.text)
    assert kinds == {"plain", "ordinal", "after", "before"}


def test_lengths_mostly_short_with_a_few_long_videos(small_splits):
    rows = np.array([len(v.features) for v in small_splits["train"]])
    assert np.mean(rows < 128) >= 0.95
    assert np.sum(rows > 600) == 10  # every 50th of 500
    assert np.median(rows) < 80


def test_spec_refuses_too_few_events():
    with pytest.raises(ValueError, match="events_per_video"):
        dataclasses.replace(generator.SMALL, events_per_video=(4, 8))


def iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def runs(labels, value):
    """[(start_row, end_row)) runs of consecutive rows labelled `value`."""
    edges = np.diff(np.concatenate([[0], (labels == value).astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def test_learnable_well_above_query_blind_baselines(small_splits):
    """A template matcher fit on train (pair means) and reading the query text localizes test queries far
    better than the better of two query-blind baselines: a uniformly random span, and train's mean
    normalised moment."""
    na, no, d = generator.SMALL.num_actions, generator.SMALL.num_objects, generator.SMALL.feature_dim
    sums, counts = np.zeros((na * no + 1, d)), np.zeros(na * no + 1)
    normalised = []
    for video in small_splits["train"]:
        labels = np.full(len(video.features), na * no)  # idle rows: the last template
        for e in video.events:
            labels[e.start : e.end] = e.action * no + e.object
        np.add.at(sums, labels, video.features)
        np.add.at(counts, labels, 1)
        normalised += [np.array(video.moment(q)) / video.duration for q in video.queries]
    templates = sums / counts[:, None]
    mean_start, mean_end = np.mean(normalised, axis=0)

    rng = np.random.default_rng(0)
    hits = {"matcher": [], "random": [], "mean": []}
    for video in small_splits["test"]:
        distances = ((video.features[:, None, :] - templates[None]) ** 2).sum(-1)
        labels = distances.argmin(-1)
        for query in video.queries:
            kind, (action, obj), ordinal, cue = read_query(query.text)
            found = runs(labels, action * no + obj)
            if kind == "ordinal":
                found = found[ordinal - 1 : ordinal]
            elif kind in ("after", "before"):
                cue_run = max(runs(labels, cue[0] * no + cue[1]), key=lambda r: r[1] - r[0], default=(0, 0))
                found = (
                    [r for r in found if r[0] >= cue_run[1]][:1]
                    if kind == "after"
                    else [r for r in found if r[1] <= cue_run[0]][-1:]
                )
            predicted = np.array(max(found, key=lambda r: r[1] - r[0], default=(0, 0))) / 2.0
            truth, duration = video.moment(query), video.duration
            hits["matcher"].append(iou(predicted, truth) >= 0.5)
            hits["mean"].append(iou((mean_start * duration, mean_end * duration), truth) >= 0.5)
            spans = np.sort(rng.uniform(0, duration, size=(100, 2)), axis=1)
            hits["random"].append(np.mean([iou(s, truth) >= 0.5 for s in spans]))
    r1 = {name: float(np.mean(values)) for name, values in hits.items()}
    assert max(r1["random"], r1["mean"]) < 0.35, r1
    assert r1["matcher"] >= 0.9, r1
