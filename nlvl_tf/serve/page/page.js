// The page: pick a dataset video or upload one, type a sentence, see the ranked moments.
// Predictions use TensorFlow Serving's REST API only (POST /v1/models/<name>:predict, GET .../metadata), so the
// page works against tensorflow_model_server serving the same SavedModel (?api=http://host:8501, the server started
// with --enable_cors_support); /page/* routes give it videos.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = {
  config: null,     // /page/config
  api: "",          // base URL of the TF Serving API
  model: null,      // {featureDim, maxTopK, signature}: read from the model's signature defs
  video: null,      // {id, duration, rows, features: Float32Array, hasFile, annotations}
  truth: null,      // the selected ground truth {query, start, end}
  answer: null,     // the last prediction, for redrawing
  choice: 0,        // counts the videos chosen: a reply that arrives after another choice is ignored
};

async function fetchJson(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    throw new Error(`${url} answered ${response.status} without JSON`);
  }
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : `${url} answered ${response.status}`);
  }
  return body;
}

function setStatus(id, text, isError = false) {
  const element = $(id);
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function dims(tensorInfo) {
  return tensorInfo.tensor_shape.dim.map((dim) => Number(dim.size));
}

// The model's feature dimension, moments per query (K) and whether it has the `details` signature, from the
// signature defs TF Serving's metadata API returns.
function describeModel(metadata) {
  const signatures = metadata.metadata.signature_def.signature_def;
  const serving = signatures.serving_default;
  const hasDetails = "details" in signatures;
  return {
    featureDim: dims(serving.inputs.video_features)[2],
    maxTopK: dims(serving.outputs.score)[1],
    signature: hasDetails ? "details" : "serving_default",
  };
}

async function start() {
  try {
    state.config = await fetchJson("/page/config");
    // The API predictions go to: ?api=<URL> on the page's address, else serve.py's --api_url, else this server.
    state.api = (new URLSearchParams(window.location.search).get("api") || state.config.api_url || "").replace(/\/$/, "");
    const name = encodeURIComponent(state.config.model_name);
    const metadata = await fetchJson(`${state.api}/v1/models/${name}/metadata`);
    state.model = describeModel(metadata);
  } catch (error) {
    setStatus("model-line", `The model could not be reached: ${error.message}`, true);
    return;
  }
  const model = state.model;
  $("model-line").textContent =
    `Model "${state.config.model_name}": ${model.featureDim}-d video features, up to ${model.maxTopK} moments ` +
    `per sentence.`;
  $("top-k").max = model.maxTopK;
  $("top-k").value = Math.min(5, model.maxTopK);
  if (state.config.dataset) {
    $("dataset-name").textContent = `${state.config.dataset} (${state.config.split})`;
    let videos = [];
    try {
      videos = await fetchJson("/page/videos");
    } catch (error) {
      setStatus("source-status", `The dataset's videos could not be listed: ${error.message}`, true);
    }
    const select = $("video-select");
    select.append(new Option("Choose a video", ""));
    for (const video of videos) {
      const option = new Option(`${video.id} (${video.duration.toFixed(1)} s, ${video.annotations.length} sentences)`,
        video.id);
      option.video = video;
      select.append(option);
    }
    select.addEventListener("change", () => {
      const option = select.selectedOptions[0];
      if (option && option.video) chooseDatasetVideo(option.video);
    });
    $("dataset-picker").hidden = false;
  }
  if (state.config.uploads) {
    $("upload-limit").textContent = state.config.max_upload_mb.toFixed(0);
    $("upload-box").hidden = false;
    $("upload-input").addEventListener("change", uploadVideo);
  }
  if (!state.config.dataset && !state.config.uploads) {
    setStatus("source-status", "This server has neither a dataset (--dataset) nor uploads (--extractor).", true);
  }
  $("query-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localize();
  });
  $("player").addEventListener("timeupdate", drawPlayhead);
  window.addEventListener("resize", () => state.answer && draw(state.answer));
}

async function loadFeatures(id) {
  const response = await fetch(`/page/videos/${encodeURIComponent(id)}/features`);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `features of ${id}: HTTP ${response.status}`);
  }
  const features = new Float32Array(await response.arrayBuffer());
  const rows = Number(response.headers.get("X-Rows"));
  const dim = Number(response.headers.get("X-Dim"));
  if (dim !== state.model.featureDim) {
    throw new Error(`the video has ${dim}-d features; the model takes ${state.model.featureDim}-d`);
  }
  return {features, rows};
}

async function chooseDatasetVideo(video) {
  const choice = ++state.choice;
  setStatus("source-status", `Reading the features of ${video.id}\u2026`);
  try {
    const {features, rows} = await loadFeatures(video.id);
    if (choice !== state.choice) return;  // another video was chosen meanwhile: its reply decides
    setVideo({id: video.id, duration: video.duration, rows, features, hasFile: video.has_file,
      annotations: video.annotations});
    $("video-info").textContent = `${video.duration.toFixed(2)} s, ${rows} feature rows` +
      (video.has_file ? "" : " (no video file)");
    showAnnotations(video.annotations);
    setStatus("source-status", "");
  } catch (error) {
    if (choice === state.choice) setStatus("source-status", error.message, true);
  }
}

function showAnnotations(annotations) {
  const list = $("annotations");
  list.replaceChildren();
  annotations.forEach((annotation, index) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.dataset.index = index;
    const times = document.createElement("span");
    times.className = "times";
    times.textContent = ` ${annotation.start.toFixed(2)} \u2013 ${annotation.end.toFixed(2)} s`;
    button.append(annotation.query, times);
    button.addEventListener("click", () => {
      for (const other of list.querySelectorAll("button")) other.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-pressed", "true");
      state.truth = annotation;
      $("query-input").value = annotation.query;
      $("query-input").focus();
    });
    item.append(button);
    list.append(item);
  });
}

async function uploadVideo() {
  const file = $("upload-input").files[0];
  if (!file) return;
  const limit = state.config.max_upload_mb * 2 ** 20;
  if (file.size > limit) {
    setStatus("source-status", `${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB, over the ` +
      `${state.config.max_upload_mb.toFixed(0)} MiB limit`, true);
    return;
  }
  const choice = ++state.choice;
  setStatus("source-status", `Uploading ${file.name} and extracting its features\u2026`);
  try {
    const video = await fetchJson("/page/uploads", {
      method: "POST",
      body: file,
      headers: {"Content-Type": file.type || "application/octet-stream", "X-Filename": encodeURIComponent(file.name)},
    });
    const {features, rows} = await loadFeatures(video.id);
    if (choice !== state.choice) return;
    setVideo({id: video.id, duration: video.duration, rows, features, hasFile: true, annotations: []});
    $("annotations").replaceChildren();
    $("video-select").value = "";
    $("video-info").textContent = "";
    setStatus("source-status", `${file.name}: ${video.duration.toFixed(2)} s, ${rows} feature rows.`);
  } catch (error) {
    if (choice === state.choice) setStatus("source-status", `${file.name}: ${error.message}`, true);
  }
}

function setVideo(video) {
  state.video = video;
  state.truth = null;
  state.answer = null;
  $("moments").replaceChildren();
  $("timeline").replaceChildren($("timeline").querySelector("title"));
  $("legend").hidden = true;
  const player = $("player");
  player.hidden = !video.hasFile;
  $("player-note").hidden = video.hasFile;
  if (video.hasFile) {
    player.src = `/page/videos/${encodeURIComponent(video.id)}/file`;
  } else {
    player.removeAttribute("src");
    player.load();
  }
  $("submit").disabled = false;
}

// The TF Serving predict request for the current video and a sentence: columnar "inputs", a batch of one.
function predictRequest(query) {
  const {features, rows} = state.video;
  const dim = state.model.featureDim;
  const matrix = [];
  for (let row = 0; row < rows; row++) matrix.push(Array.from(features.subarray(row * dim, (row + 1) * dim)));
  return {
    signature_name: state.model.signature,
    inputs: {video_features: [matrix], video_length: [rows], duration: [state.video.duration], query: [query]},
  };
}

async function localize() {
  if (!state.video) {
    setStatus("query-status", "Choose or upload a video first.", true);
    return;
  }
  const query = $("query-input").value;
  const topK = Number($("top-k").value);
  if (!query.trim()) {
    setStatus("query-status", "Type a sentence first.", true);
    return;
  }
  if (!(topK >= 1 && topK <= state.model.maxTopK)) {
    setStatus("query-status", `Moments to show must be between 1 and ${state.model.maxTopK}.`, true);
    return;
  }
  if (state.truth && state.truth.query !== query) state.truth = null;
  setStatus("query-status", "Localizing\u2026");
  $("submit").disabled = true;
  try {
    const started = performance.now();
    const name = encodeURIComponent(state.config.model_name);
    const body = await fetchJson(`${state.api}/v1/models/${name}:predict`, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(predictRequest(query)),
    });
    const outputs = body.outputs;
    const moments = outputs.start_time[0].slice(0, topK).map((start, index) => ({
      rank: index + 1, start, end: outputs.end_time[0][index], score: outputs.score[0][index],
    }));
    state.answer = {moments, outputs, duration: state.video.duration};
    showMoments(moments);
    draw(state.answer);
    setStatus("query-status", `${moments.length} moments in ${Math.round(performance.now() - started)} ms.`);
  } catch (error) {
    setStatus("query-status", error.message, true);
  } finally {
    $("submit").disabled = false;
  }
}

function iou(a, b) {
  const intersection = Math.max(0, Math.min(a.end, b.end) - Math.max(a.start, b.start));
  const union = Math.max(a.end, b.end) - Math.min(a.start, b.start);
  return union > 0 ? intersection / union : 0;
}

function showMoments(moments) {
  const list = $("moments");
  list.replaceChildren();
  for (const moment of moments) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "moment-button";
    button.dataset.rank = moment.rank;
    const parts = [
      ["rank", `#${moment.rank}`],
      ["moment-times", `${moment.start.toFixed(2)} \u2013 ${moment.end.toFixed(2)} s`],
      ["score", `score ${moment.score.toFixed(4)}`],
      ["iou", state.truth ? `IoU ${iou(moment, state.truth).toFixed(2)}` : ""],
    ];
    for (const [name, text] of parts) {
      const span = document.createElement("span");
      span.className = name;
      span.textContent = text;
      button.append(span);
    }
    button.setAttribute("aria-label", `Moment ${moment.rank}: ${moment.start.toFixed(2)} to ` +
      `${moment.end.toFixed(2)} seconds` + (state.video.hasFile ? ", play from its start" : ""));
    button.addEventListener("click", () => playMoment(moment));
    item.append(button);
    list.append(item);
  }
}

function playMoment(moment) {
  for (const button of document.querySelectorAll(".moment-button")) {
    button.classList.toggle("playing", Number(button.dataset.rank) === moment.rank);
  }
  if (!state.video.hasFile) return;
  const player = $("player");
  player.currentTime = moment.start;
  player.play().catch(() => {});  // autoplay may be refused; the time is set either way
}

function svgElement(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.append(element);
  return element;
}

function niceStep(duration) {
  const rough = duration / 8;
  const power = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough);
}

// The timeline: moments as bars (best on top), the ground truth, and under them the start / end probabilities and
// the highlighting per position of the resampled video (the `details` signature; absent with serving_default).
function draw(answer) {
  const svg = $("timeline");
  const width = Math.max(300, svg.clientWidth || 800);
  const height = 260;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren(svg.querySelector("title"));
  const left = 12, right = width - 12, axisY = height - 24;
  const x = (seconds) => left + (right - left) * seconds / answer.duration;
  const rowHeight = Math.min(14, 110 / answer.moments.length);
  let y = 8;
  for (const moment of answer.moments) {
    const bar = svgElement("rect", {
      class: `moment rank-${moment.rank}`, x: x(moment.start), y, height: rowHeight - 3,
      width: Math.max(2, x(moment.end) - x(moment.start)),
    }, svg);
    svgElement("title", {}, bar).textContent = `#${moment.rank}: ${moment.start.toFixed(2)} \u2013 ` +
      `${moment.end.toFixed(2)} s`;
    bar.addEventListener("click", () => playMoment(moment));
    y += rowHeight;
  }
  if (state.truth) {
    svgElement("rect", {class: "truth", x: x(state.truth.start), y: y + 2, height: 10,
      width: Math.max(2, x(state.truth.end) - x(state.truth.start))}, svg);
  }
  const top = y + 18;
  const curveHeight = axisY - top - 4;
  const outputs = answer.outputs;
  if (outputs.start_prob) {
    const length = outputs.length[0];
    const position = (i) => x((i + 0.5) * answer.duration / length);
    const probabilities = outputs.start_prob[0].slice(0, length).concat(outputs.end_prob[0].slice(0, length));
    const peak = Math.max(...probabilities, 1e-9);
    const curve = (values, scale) => values.slice(0, length)
      .map((value, i) => `${position(i).toFixed(1)},${(axisY - curveHeight * value / scale).toFixed(1)}`).join(" ");
    if (outputs.highlight) {
      const points = `${x(0)},${axisY} ${curve(outputs.highlight[0], 1)} ${x(answer.duration)},${axisY}`;
      svgElement("polygon", {class: "highlight", points}, svg);
    }
    if (outputs.clip_score) {  // VSLNet-L: the nil score of each clip of the scale the ranking used
      svgElement("polyline", {class: "clip", points: curve(outputs.clip_score[0], 1)}, svg);
    }
    svgElement("polyline", {class: "start", points: curve(outputs.start_prob[0], peak)}, svg);
    svgElement("polyline", {class: "end", points: curve(outputs.end_prob[0], peak)}, svg);
  }
  svgElement("line", {class: "axis", x1: left, x2: right, y1: axisY, y2: axisY}, svg);
  const step = niceStep(answer.duration);
  for (let t = 0; t <= answer.duration + 1e-9; t += step) {
    svgElement("line", {class: "axis", x1: x(t), x2: x(t), y1: axisY, y2: axisY + 4}, svg);
    svgElement("text", {class: "tick-label", x: x(t), y: axisY + 17, "text-anchor": "middle"}, svg).textContent =
      `${Number(t.toFixed(2))} s`;
  }
  svgElement("line", {id: "playhead", class: "playhead", x1: left, x2: left, y1: 4, y2: axisY, visibility: "hidden"},
    svg);
  $("legend").hidden = false;
  $("clip-key").hidden = !outputs.clip_score;
  drawPlayhead();
}

function drawPlayhead() {
  const line = document.getElementById("playhead");
  if (!line || !state.answer || !state.video.hasFile) return;
  const svg = $("timeline");
  const width = Math.max(300, svg.clientWidth || 800);
  const position = 12 + (width - 24) * $("player").currentTime / state.answer.duration;
  line.setAttribute("x1", position);
  line.setAttribute("x2", position);
  line.setAttribute("visibility", "visible");
}

start();
