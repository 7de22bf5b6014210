"""Writes the Ego4D NLQ dummy data: the same clips and queries in the v1 and the v2 schema (docs/ego4d_nlq.md).

    python tfds_builders/ego4d_nlq/dummy_data/make_dummy_data.py   # rewrites v1/ and v2/ beside this file

Edge cases, each on purpose: clips with non-zero `video_start_sec` (one whose start row 8.5333 x 1.875 =
15.9999375 truncates to 15), a query with no `query` key, a null entry in `language_queries`, a zero-length window
in train and one in validation, a window ending past its clip (clipped), a video without features (vid-c: left out
and reported), a video whose features exist only as `.pt` (vid-d: needs torch) and one with a `.npy` beside an
unreadable `.pt` (vid-e: the `.npy` wins, torch is not touched), and the unannotated test file (v1 style in both
bundles, as Ego4D ships it). Features are seeded random float16 with D = 2304 (the slowfast config).
"""

import copy
import json
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).parent
FEATURE_DIM = 2304
FEATURE_ROWS = {"vid-a": 40, "vid-b": 30, "vid-d": 24, "vid-e": 20, "vid-f": 20}  # no vid-c: no features
TEMPLATE = "Objects: Where is object X before / after event Y?"

# video_uid -> [(clip_uid, video_start_sec, video_end_sec, [(annotation_uid, [query or None])])];
# a query is (text or None, clip_start_sec, clip_end_sec).
TRAIN = {
    "vid-a": [
        (
            "clip-a1",
            0.0,
            8.0,
            [
                (
                    "ann-a1-0",
                    [
                        ("Where did I put the red cup?", 1.2, 3.6),
                        ("What did I pour in the bowl?", 4.0, 4.0),  # zero-length window
                        (None, 5.0, 6.0),  # no query text: skipped, counted; query_idx 2 stays unused
                    ],
                )
            ],
        ),
        (
            "clip-a2",
            8.5333,
            20.0,
            [
                (
                    "ann-a2-0",
                    [
                        ("How many eggs did I crack?", 2.5, 6.25),
                        ("Where was the knife?", 10.0, 12.0),  # ends past the 11.4667 s clip: clipped, counted
                    ],
                )
            ],
        ),
    ],
    "vid-b": [
        (
            "clip-b1",
            2.0,
            14.0,
            [
                ("ann-b1-0", [("Who did I talk to in the kitchen?", 0.5, 2.0), None]),  # a null entry: skipped
                ("ann-b1-1", [("What did I take out of the fridge?", 6.0, 9.5), ("Where is the phone?", 3.25, 4.5)]),
            ],
        ),
    ],
    "vid-c": [("clip-c1", 0.0, 10.0, [("ann-c1-0", [("Did I water the plants?", 1.0, 2.0)])])],
}
VALIDATION = {
    "vid-d": [
        (
            "clip-d1",
            1.0,
            12.0,
            [
                ("ann-d1-0", [("Where did I leave the keys?", 2.0, 4.0), ("What colour was the towel?", 5.5, 7.0)]),
                ("ann-d1-1", [("When did I wash the pan?", 0.0, 1.5)]),
            ],
        ),
    ],
    "vid-e": [
        (
            "clip-e1",
            0.0,
            10.0,
            [
                ("ann-e1-0", [("Did I lock the door?", 3.0, 5.0), ("How many plates were there?", 6.0, 6.0)]),
            ],
        ),
    ],
}
TEST = {"vid-f": [("clip-f1", 4.0, 9.0, [("ann-f1-0", ["Where did I put the scissors?", "What did I cut?", None])])]}


def frame(seconds):
    return round(seconds * 30)


def query_v1(text, start, end, clip_start):
    entry = {
        "clip_start_sec": start,
        "clip_end_sec": end,
        "video_start_sec": clip_start + start,
        "video_end_sec": clip_start + end,
        "video_start_frame": frame(clip_start + start),
        "video_end_frame": frame(clip_start + end),
        "template": TEMPLATE,
        "slot_x": "cup",
        "verb_x": "put",
        "raw_tags": [TEMPLATE, "cup", "put"],
    }
    if text is not None:
        entry["query"] = text
    return entry


def query_v2(text, start, end, clip_start):
    return {**query_v1(text, start, end, clip_start), "slot_y": None, "verb_y": "[verb_not_applicable]"}


def clip_entry(clip_uid, video_start, video_end, annotations):
    """A clip's keys in v1 (v2 adds the clip_* ones)."""
    return {
        "clip_uid": clip_uid,
        "video_start_sec": video_start,
        "video_end_sec": video_end,
        "video_start_frame": frame(video_start),
        "video_end_frame": frame(video_end),
        "annotations": annotations,
    }


def annotated_file(videos, version):
    """One split file in the v1 or v2 schema."""
    query = query_v1 if version == 1 else query_v2
    out = []
    for video_uid, clips in videos.items():
        clip_entries = []
        for clip_uid, video_start, video_end, annotations in clips:
            annotation_entries = []
            for annotation_uid, queries in annotations:
                entry = {
                    "annotation_uid": annotation_uid,
                    "language_queries": [None if q is None else query(*q, video_start) for q in queries],
                }
                if version == 2 and annotation_uid == "ann-d1-1":
                    entry["request_uid"] = "req-d1-1"  # some v2 val annotations carry one
                annotation_entries.append(entry)
            clip = clip_entry(clip_uid, video_start, video_end, annotation_entries)
            if version == 2:
                clip.update(
                    clip_start_sec=0,
                    clip_end_sec=round(video_end - video_start, 4),
                    clip_start_frame=0,
                    clip_end_frame=frame(video_end - video_start),
                    source_clip_uid=f"source-{clip_uid}",
                )
            clip_entries.append(clip)
        video = {"video_uid": video_uid, "clips": clip_entries}
        if version == 2:
            video["split"] = "train" if video_uid in TRAIN else "val"
        out.append(video)
    header = {"version": "v1", "date": "220216", "description": "NLQ dummy data", "manifest": "s3://ego4d/manifest"}
    if version == 2:
        header = {"version": "2.0", "date": "230106", "description": "NLQ dummy data", "metadata": {}}
    return {**header, "videos": out}


def test_file():
    """The unannotated test file, v1 style (Ego4D ships it so in both bundles): queries are only {"query": text}."""
    videos = []
    for video_uid, clips in TEST.items():
        clip_entries = []
        for clip_uid, video_start, video_end, annotations in clips:
            annotation_entries = [
                {"annotation_uid": uid, "language_queries": [{} if q is None else {"query": q} for q in queries]}
                for uid, queries in annotations
            ]
            clip_entries.append(clip_entry(clip_uid, video_start, video_end, annotation_entries))
        videos.append({"video_uid": video_uid, "clips": clip_entries})
    return {"version": "1", "date": "220216", "description": "NLQ dummy test", "manifest": "", "videos": videos}


def write_features(feature_dir):
    import torch  # only to write vid-d.pt, the official format

    feature_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for video_uid, rows in FEATURE_ROWS.items():
        features = rng.standard_normal((rows, FEATURE_DIM)).astype(np.float16)
        if video_uid == "vid-d":
            torch.save(torch.from_numpy(features), feature_dir / f"{video_uid}.pt")
        else:
            np.save(feature_dir / f"{video_uid}.npy", features)
    (feature_dir / "vid-e.pt").write_bytes(b"not a torch file: the .npy beside it must be read instead")


def main():
    write_features(HERE / "v1" / "features")
    for version in (1, 2):
        directory = HERE / f"v{version}"
        directory.mkdir(exist_ok=True)
        for name, videos in (("nlq_train.json", TRAIN), ("nlq_val.json", VALIDATION)):
            (directory / name).write_text(json.dumps(annotated_file(copy.deepcopy(videos), version), indent=1) + "\n")
        (directory / "nlq_test_unannotated.json").write_text(json.dumps(test_file(), indent=1) + "\n")
    link = HERE / "v2" / "features"
    if not link.exists():
        link.symlink_to("../v1/features")  # one copy of the features for both schemas


if __name__ == "__main__":
    main()
