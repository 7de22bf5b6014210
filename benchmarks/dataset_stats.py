r"""Prints a built NLVL dataset's Table 1 statistics beside the paper's (VSLNet, TPAMI 2021, Table 1).

  python benchmarks/dataset_stats.py --dataset=charades_sta --data_dir=/tmp/tfds [--config=i3d]

Per split: videos and annotations. Over the paper's pool of splits (Charades-STA train + test,
ActivityNet Captions train + test (= val_1, not val_2), TACoS train + val + test): vocabulary size
and mean query length (tokens of `nlvl_tf.text.tokenize`, the project's TF re-implementation of
nltk's `word_tokenize` on lower-cased text), mean video length over unique videos, and the mean and
population std of moment lengths (end - start) over every annotation, start >= end ones included.

What differs from the paper's protocol: moment lengths use the stored times, which are clipped to
[0, duration] (the paper used the raw file times: Charades-STA 8.09 s instead of 8.22 s), and
TACoS_org's moment stats are per annotation, not per clip line as the paper computed them. The last
line printed is one JSON object.
"""

import json

import numpy as np
import tensorflow_datasets as tfds
from absl import flags

from nlvl_tf import cli
from nlvl_tf.data import text

_DATASET = flags.DEFINE_string("dataset", None, "Built dataset name, e.g. charades_sta.")
_CONFIG = flags.DEFINE_string("config", None, "Builder config (default: the first one built).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir the dataset was built into.")

# Table 1 of the paper; videos/annotations per split (no entry: the paper shows "-").
PAPER = {
    "charades_sta": dict(
        videos={"train": 5338, "test": 1334},
        annotations={"train": 12408, "test": 3720},
        vocab=1303,
        video_s=30.59,
        query_tokens=7.22,
        moment_s=8.22,
        moment_std_s=3.59,
    ),
    "activitynet_captions": dict(
        videos={"train": 10009, "test": 4917},
        annotations={"train": 37421, "test": 17505},
        vocab=12460,
        video_s=117.61,
        query_tokens=14.78,
        moment_s=36.18,
        moment_std_s=40.18,
    ),
    "tacos/tan": dict(
        videos={"train": 75, "validation": 27, "test": 25},
        annotations={"train": 9790, "validation": 4436, "test": 4001},
        vocab=1983,
        video_s=287.14,
        query_tokens=9.42,
        moment_s=25.26,
        moment_std_s=50.71,
    ),
    "tacos/org": dict(
        videos={"train": 75, "validation": 27, "test": 25},
        annotations={"train": 10146, "validation": 4589, "test": 4083},
        vocab=2033,
        video_s=287.14,
        query_tokens=10.05,
        moment_s=5.45,
        moment_std_s=7.56,
    ),
}
# Splits pooled for the vocabulary and mean lengths; unlisted datasets pool every split.
POOLS = {"charades_sta": ("train", "test"), "activitynet_captions": ("train", "test")}
_STATS = ("vocab", "video_s", "query_tokens", "moment_s", "moment_std_s")


def read_split(builder, split):
    """[(video_id, duration, queries, moment lengths)] of a split, without decoding the features."""
    dataset = builder.as_dataset(split=split, decoders={"features": tfds.decode.SkipDecoding()})
    return [
        (
            ex["video_id"].decode(),
            float(ex["duration"]),
            [q.decode() for q in ex["annotations"]["query"]],
            ex["annotations"]["end"] - ex["annotations"]["start"],
        )
        for ex in tfds.as_numpy(dataset)
    ]


def table1_stats(splits, pool):
    """The paper's per-split counts and pooled statistics for {split: read_split(...)}."""
    videos = [video for split in pool for video in splits[split]]
    durations = dict((video_id, duration) for video_id, duration, _, _ in videos)
    tokens = text.tokenize_to_lists([query for _, _, queries, _ in videos for query in queries])
    moments = np.concatenate([lengths for _, _, _, lengths in videos]).astype(np.float64)
    return {
        "videos": {split: len(records) for split, records in splits.items()},
        "annotations": {split: sum(len(queries) for _, _, queries, _ in records) for split, records in splits.items()},
        "vocab": len({token for query in tokens for token in query}),
        "video_s": float(np.mean(list(durations.values()))),
        "query_tokens": float(np.mean([len(query) for query in tokens])),
        "moment_s": float(np.mean(moments)),
        "moment_std_s": float(np.std(moments)),
    }


def format_table(ours, paper):
    def cell(value):
        return f"{value:>12.2f}" if isinstance(value, float) else f"{value:>12}"

    rows = [f"{'statistic':<24}{'ours':>12}{'paper':>12}"]
    for split in ours["videos"]:
        for kind in ("videos", "annotations"):
            rows.append(f"{kind + ' ' + split:<24}{cell(ours[kind][split])}{cell(paper.get(kind, {}).get(split, '-'))}")
    for name in _STATS:
        rows.append(f"{name:<24}{cell(ours[name])}{cell(paper.get(name, '-'))}")
    return "\n".join(rows)


def main(argv):
    del argv
    name = f"{_DATASET.value}/{_CONFIG.value}" if _CONFIG.value else _DATASET.value
    builder = tfds.builder(name, data_dir=_DATA_DIR.value)
    key = f"{builder.name}/{builder.builder_config.name}"
    splits = {split: read_split(builder, split) for split in builder.info.splits}
    pool = POOLS.get(builder.name, tuple(splits))
    ours = table1_stats(splits, pool)
    paper = PAPER.get(key, PAPER.get(builder.name, {}))
    print(f"{key} (pooled over {' + '.join(pool)}), Table 1:")
    print(format_table(ours, paper))
    print(json.dumps({"dataset": key, "pool": list(pool), "ours": ours, "paper": paper}))


if __name__ == "__main__":
    flags.mark_flags_as_required(["dataset", "data_dir"])
    cli.run(main)
