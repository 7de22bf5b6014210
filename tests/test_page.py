"""The page, in a real headless Chromium, served by the README's command on the demo's export and dataset: a dataset
video and a sentence give the moments `Localizer.predict` gives (to the 0.01 s the page shows), with their IoU with
the ground truth; clicking a moment seeks the player; everything works from the keyboard; the screenshot has content.

The export is the demo's (experiments/configs/synthetic.py:demo on nlvl_synthetic/small) with random weights. With
NLVL_DEMO_WORKDIR=<a workdir of experiments/demo.py> the trained demo's export and dataset are served instead, and
with NLVL_PAGE_SCREENSHOT=<path> the screenshot is also written there (docs/figures/page.png was made this way).
"""

import importlib.util
import os
import pathlib
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request

import pytest
import tensorflow_datasets as tfds

from nlvl_tf.data import text
from nlvl_tf.serve import export
from nlvl_tf.serve import localizer as localizer_lib
from nlvl_tf.train import trainer
from tests import browser, server_process
from tests.video import videos

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
DATASET = "nlvl_synthetic/small"


def demo_config():
    path = server_process.REPO / "experiments" / "configs" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("synthetic_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config("demo")


@pytest.fixture(scope="module")
def demo(synthetic_data_dir, tmp_path_factory):
    """(export_dir, data_dir) of the demo: its config and dataset, random weights (or NLVL_DEMO_WORKDIR's run)."""
    if os.environ.get("NLVL_DEMO_WORKDIR"):
        workdir = pathlib.Path(os.environ["NLVL_DEMO_WORKDIR"])
        return workdir / "export", workdir / "tensorflow_datasets"
    workdir = tmp_path_factory.mktemp("demo")
    config = demo_config()
    config.data.data_dir = synthetic_data_dir
    run = trainer.prepare(config, str(workdir))  # what the demo trains, before training
    vocabulary_dir = workdir / "vocabulary"
    export.save(
        run.model, run.config, text.Vocabulary.load(vocabulary_dir), str(vocabulary_dir), str(workdir / "export")
    )
    return workdir / "export", pathlib.Path(synthetic_data_dir)


@pytest.fixture(scope="module")
def first_video(demo):
    """The split's first video: id, duration, features and annotations, read with TFDS directly."""
    example = next(iter(tfds.as_numpy(tfds.builder(DATASET, data_dir=str(demo[1])).as_dataset(split="test"))))
    annotations = example["annotations"]
    return {
        "id": example["video_id"].decode(),
        "duration": float(example["duration"]),
        "features": example["features"],
        "query": annotations["query"][0].decode(),
        "start": float(annotations["start"][0]),
        "end": float(annotations["end"][0]),
    }


@pytest.fixture(scope="module")
def server(demo, first_video, tmp_path_factory):
    """The README's command, plus --videos with a generated file for the first video (4 fps, its duration), and
    --cors."""
    video_dir = tmp_path_factory.mktemp("dataset_videos")
    videos.write_video(video_dir / f"{first_video['id']}.webm", round(first_video["duration"] * 4), 4, codec="libvpx")
    export_dir, data_dir = demo
    flags = [f"--saved_model={export_dir}", f"--dataset={DATASET}", f"--data_dir={data_dir}", f"--videos={video_dir}"]
    flags.append("--cors")  # as tensorflow_model_server --enable_cors_support, for the other-origin test
    process = server_process.ServerProcess(flags, tmp_path_factory.mktemp("log") / "server.log")
    yield process
    process.stop()


def _iou(moment, truth):
    intersection = max(0.0, min(moment["end"], truth["end"]) - max(moment["start"], truth["start"]))
    union = max(moment["end"], truth["end"]) - min(moment["start"], truth["start"])
    return intersection / union


def _ask(page, top_k):
    page.fill("#top-k", str(top_k))
    page.click("#submit")
    page.wait_for_function(f"document.querySelectorAll('#moments li').length === {top_k}")


def test_a_dataset_video_gets_the_localizers_moments_and_a_moment_seeks_the_player(server, demo, first_video, tmp_path):
    with browser.page() as page:
        page.goto(server.url + "/")
        page.wait_for_selector("#dataset-picker:not([hidden])")  # shown once the video list is loaded
        assert 'Model "nlvl"' in page.inner_text("#model-line")
        page.select_option("#video-select", first_video["id"])
        page.wait_for_selector("#annotations li button")
        page.click("#annotations li button >> nth=0")  # the first ground-truth sentence
        assert page.input_value("#query-input") == first_video["query"]
        _ask(page, 3)
        times = browser.moment_times(page)
        ious = page.locator("#moments .iou").all_inner_texts()
        assert page.locator("#timeline rect.moment").count() == 3 and page.locator("#timeline .start").count() == 1
        browser.record_seeks(page)
        page.click(".moment-button >> nth=1")
        browser.wait_for_seek(page, times[1][0])
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    browser.assert_not_blank(tmp_path / "page.png")
    if os.environ.get("NLVL_PAGE_SCREENSHOT"):
        shutil.copyfile(tmp_path / "page.png", os.environ["NLVL_PAGE_SCREENSHOT"])
    localizer = localizer_lib.Localizer.load(str(demo[0]))
    expected = localizer.predict(first_video["features"], first_video["duration"], first_video["query"], top_k=3)
    assert len(times) == len(expected) == 3
    for (start, end), moment, iou in zip(times, expected, ious):
        assert start == pytest.approx(moment["start"], abs=0.01) and end == pytest.approx(moment["end"], abs=0.01)
        assert iou == f"IoU {_iou(moment, first_video):.2f}"


def test_the_page_works_from_the_keyboard(server, first_video):
    with browser.page() as page:
        page.goto(server.url + "/")
        page.wait_for_selector("#dataset-picker:not([hidden])")
        page.focus("#video-select")
        page.keyboard.press("ArrowDown")  # the first video
        page.wait_for_selector("#annotations li button")
        page.keyboard.press("Tab")  # to its first ground-truth sentence
        page.keyboard.press("Enter")  # fills the query and moves the focus there
        assert page.evaluate("document.activeElement.id") == "query-input"
        page.keyboard.press("Enter")  # submits
        page.wait_for_selector("#moments li")
        page.focus(".moment-button >> nth=0")
        start = browser.moment_times(page)[0][0]
        browser.record_seeks(page)
        page.keyboard.press("Enter")
        browser.wait_for_seek(page, start)
        assert page.evaluate("document.activeElement.classList.contains('playing')")


# Holds the page's request for one video's features until the test calls window.releaseHeld(); the reply is then
# handed over read into memory, so the page handles it at once.
HOLD_FEATURES = """(path) => {
  const realFetch = window.fetch;
  window.fetch = (url, options) => {
    const reply = realFetch(url, options);
    if (String(url) !== path) return reply;
    const read = reply.then(async (r) => new Response(await r.arrayBuffer(), {status: r.status, headers: r.headers}));
    return new Promise((resolve) => { window.releaseHeld = () => resolve(read); });
  };
}"""


def test_a_features_reply_for_a_video_no_longer_picked_is_ignored(server):
    """Two videos picked quickly, the first one's features arriving last: the page keeps the second."""
    status, videos_list = server_process.call(f"{server.url}/page/videos")
    assert status == 200 and len(videos_list) >= 2
    first, second = videos_list[0]["id"], videos_list[1]["id"]
    with browser.page() as page:
        page.goto(server.url + "/")
        page.wait_for_selector("#dataset-picker:not([hidden])")
        page.evaluate(HOLD_FEATURES, f"/page/videos/{urllib.parse.quote(first, safe='')}/features")
        page.select_option("#video-select", first)
        page.wait_for_function("window.releaseHeld !== undefined")
        page.select_option("#video-select", second)
        page.wait_for_function(f"state.video !== null && state.video.id === {second!r}")
        shown = page.inner_text("#video-info"), page.inner_text("#annotations")
        page.evaluate("window.releaseHeld()")
        page.wait_for_timeout(1000)  # the page handles the in-memory reply within a few event-loop turns
        assert page.evaluate("state.video.id") == page.input_value("#video-select") == second
        assert (page.inner_text("#video-info"), page.inner_text("#annotations")) == shown


def test_video_files_are_served_in_byte_ranges(server, first_video):
    url = f"{server.url}/page/videos/{first_video['id']}/file"
    headers, whole = server_process.fetch(url)
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "video/webm" and len(whole) > 100
    request = urllib.request.Request(url, headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206 and response.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
        assert response.read() == whole[10:20]
    request = urllib.request.Request(url, headers={"Range": f"bytes={len(whole)}-"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 416


def test_the_page_predicts_through_the_api_of_another_origin(server, first_video):
    """Loaded from localhost with ?api= naming 127.0.0.1 (another origin), the page's predictions are cross-origin
    requests, as to a tensorflow_model_server started with --enable_cors_support: preflight, then POST."""
    port = server.url.rsplit(":", 1)[1]
    with browser.page() as page:
        page.goto(f"http://localhost:{port}/?api={server.url}")
        page.wait_for_selector("#dataset-picker:not([hidden])")
        page.select_option("#video-select", first_video["id"])
        page.wait_for_selector("#annotations li button")
        page.click("#annotations li button >> nth=0")
        _ask(page, 2)
    log = server.log_lines()
    assert any('"OPTIONS /v1/models/nlvl:predict" 204' in line for line in log), log[-5:]


def test_the_console_holds_one_line_per_request_and_nothing_else(server):
    """After start-up (TensorFlow's own few lines), every line the server wrote is a request's."""
    lines = server.log_lines()
    first = next(index for index, line in enumerate(lines) if '"GET ' in line or '"POST ' in line)
    request_line = re.compile(r'\d\d:\d\d:\d\d [\d.]+ "(GET|POST|OPTIONS) \S+" \d{3} \d+B [\d.]+ms')
    others = [line for line in lines[first:] if not request_line.fullmatch(line)]
    assert not others and len(lines) - first > 20, others[:5]
