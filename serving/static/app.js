// PoseFramer's search page: plain JavaScript, no build step, nothing fetched from elsewhere.
//
// The query pose lives in the pixel frame of what the editor shows (the uploaded image, a
// result's original, or a blank 512 × 768 canvas), which is the frame the API reads
// `keypoints` in. An uploaded image is sent once as `image`; the figure the service finds
// in it (`query_keypoints`) becomes the editable pose, and every later search sends that
// pose as `keypoints`, so what the editor shows is exactly what is searched. A drawing made
// on the page is such an image: its strokes are kept as vectors in the blank canvas's frame,
// and it is sent as a PNG on white exactly as an upload is.
"use strict";

(() => {
  const COCO17 = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
  ];
  const BONES = [
    [5, 7], [7, 9], [6, 8], [8, 10], [11, 13], [13, 15], [12, 14], [14, 16],
    [5, 6], [11, 12], [5, 11], [6, 12], [0, 1], [0, 2], [1, 3], [2, 4],
  ];
  const NOSE = 0;
  const L_SHOULDER = 5;
  const R_SHOULDER = 6;
  const VISIBLE = 0.3; // as the service's VISIBLE_SCORE: below it a joint is not "in view"
  const BLANK = { width: 512, height: 768 };
  // A standing figure facing the viewer, in the blank canvas's pixels.
  const DEFAULT_FIGURE = [
    [256, 120], [266, 110], [246, 110], [280, 118], [232, 118],
    [306, 190], [206, 190], [322, 300], [190, 300], [330, 400], [182, 400],
    [286, 400], [226, 400], [290, 540], [222, 540], [292, 680], [220, 680],
  ];
  // Images larger than this are scaled down in the browser before they are sent: detection
  // needs no more, and the upload stays well under the service's size limit.
  const MAX_SEND_SIDE = 2048;
  const MAX_SEND_BYTES = 4 * 1024 * 1024;
  // The drawing's pose is read this long after the last stroke, unless asked for sooner.
  const FIND_DELAY_MS = 600;
  const ERASER_SCALE = 4; // the eraser is this many times the pen's width
  const NO_FIGURE_IN_DRAWING = "No figure found in your drawing yet — try a fuller figure " +
    "(head, body, arms, legs), or pose the default figure.";

  // OpenPose COCO-18 order (nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri, r_hip,
  // r_knee, r_ank, l_hip, l_knee, l_ank, r_eye, l_eye, r_ear, l_ear) as COCO-17 indices;
  // null is the neck, which COCO-17 lacks: the mid-point of the shoulders.
  const OPENPOSE18 = [0, null, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3];
  // OpenPose's limb pairs (1-based COCO-18) and colours, as ControlNet's annotator draws them.
  const OPENPOSE_LIMBS = [
    [2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11],
    [2, 12], [12, 13], [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18],
  ];
  const OPENPOSE_COLOURS = [
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
    [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
    [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
  ];

  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const el = {
    dropzone: $("dropzone"),
    editor: $("editor"),
    backdrop: $("editor-backdrop"),
    dropHint: $("drop-hint"),
    upload: $("upload"),
    defaultFigure: $("default-figure"),
    drawMode: $("draw-mode"),
    drawTools: $("draw-tools"),
    drawHint: $("draw-hint"),
    drawStatus: $("draw-status"),
    sketch: $("sketch"),
    tools: Array.from(document.querySelectorAll("#draw-tools [data-tool]")),
    widths: Array.from(document.querySelectorAll("#draw-tools [data-width]")),
    undo: $("draw-undo"),
    clearDrawing: $("draw-clear"),
    findPose: $("find-pose"),
    clear: $("clear-query"),
    text: $("text"),
    textField: $("text-field"),
    textStatus: $("text-status"),
    textWhy: $("text-why"),
    textWhyReason: $("text-why-reason"),
    lambda: $("lambda"),
    lambdaField: $("lambda-field"),
    lambdaValue: $("lambda-value"),
    mirror: $("mirror"),
    useLook: $("use-look"),
    lookStatus: $("look-status"),
    framing: Array.from(document.querySelectorAll('input[name="framing"]')),
    exportJson: $("export-query-json"),
    exportPng: $("export-query-png"),
    summary: $("summary"),
    warnings: $("warnings"),
    error: $("error"),
    results: $("results"),
    loadMore: $("load-more"),
    showSkeletons: $("show-skeletons"),
    serviceStatus: $("service-status"),
    template: $("result-template"),
  };

  const pageSize = (() => {
    const k = Number(new URLSearchParams(location.search).get("k"));
    return Number.isInteger(k) && k >= 1 && k <= 100 ? k : 24;
  })();

  const state = {
    frame: { ...BLANK, background: null }, // background: an image URL, or null (blank)
    pose: null, // 17 [x, y, score] in frame pixels, or null
    image: null, // a data URL waiting to be searched (and its figure found)
    imageName: null,
    ownedUrl: null, // object URL of the uploaded image, revoked when replaced
    textProblem: null, // why text search is unavailable (the long reason), or null
    textSummary: null, // the same in one sentence, for people (the service's, or our own)
    textRejected: false, // the service refused text beside a pose: leave the text out
    loading: false, // the service is still loading its models
    lookImage: null, // the uploaded picture (data URL), for matching its look with CLIP
    drawing: false, // the editor is the drawing canvas (Draw mode)
    // The pose was read from, or posed over, a drawing: its left and right are ambiguous, so
    // it is matched mirrored too, as the service matches the drawing itself.
    drawnPose: false,
    randomClip: false,
    caps: { offset: false, cursor: false }, // optional request fields the service accepts
    results: [],
    seen: new Set(),
    served: 0, // results the service returned for this query (the next offset)
    cursor: null,
    exhausted: true,
    lastQuery: null,
    lastVersion: null,
    requestSeq: 0,
    completed: 0,
    controller: null,
  };

  // ------------------------------------------------------------------ helpers

  function svg(name, attrs = {}, parent = null) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function side(index) {
    if (index === NOSE) return "centre";
    return index % 2 === 1 ? "left" : "right";
  }

  function boneSide(a, b) {
    const sa = side(a);
    return sa === side(b) ? sa : "centre";
  }

  const visible = (kp) => Array.isArray(kp) && kp[2] >= VISIBLE;
  const fmt = (value) => (value === null || value === undefined ? "—" : value.toFixed(3));
  const fmt2 = (value) => (value === null || value === undefined ? "—" : value.toFixed(2));
  const debounced = (fn, ms) => {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  };
  const lambdaValue = () => Number(el.lambda.value);
  const jointLabel = (name) => name.replace("_", " ");

  function showError(message) {
    el.error.textContent = message || "";
    el.error.hidden = !message;
  }

  function isHttpUrl(text) {
    return typeof text === "string" && /^https?:\/\//i.test(text);
  }

  // ------------------------------------------------------------------ the pose editor

  const editor = { joints: [], bones: [], neck: null, unit: 1, drag: null };

  function setFrame(width, height, background) {
    state.frame = { width, height, background };
    el.dropzone.style.aspectRatio = `${width} / ${height}`;
  }

  function renderEditor() {
    const { width, height, background } = state.frame;
    const root = el.editor;
    root.replaceChildren();
    root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    // An HTML <img> under the SVG, not an SVG <image>: it applies the photo's EXIF
    // orientation, as the service does when it finds the figure.
    if (background) {
      if (el.backdrop.getAttribute("src") !== background) el.backdrop.src = background;
      el.backdrop.alt = state.imageName ? `Your image: ${state.imageName}` : "The query image";
    } else {
      el.backdrop.removeAttribute("src");
    }
    el.backdrop.hidden = !background;
    // Over a drawing the frame is only an outline: the canvas beneath is the page.
    const blank = !background && !state.drawing;
    svg("rect", { x: 0, y: 0, width, height, class: blank ? "frame blank" : "frame" }, root);
    editor.joints = [];
    editor.bones = [];
    editor.neck = null;
    el.dropHint.hidden = Boolean(background || state.pose || state.drawing);
    el.editor.dataset.state = state.pose ? "posed" : state.image ? "detecting" : "empty";
    updateDrawControls();
    if (!state.pose) {
      updateExportLinks();
      return;
    }
    const bones = svg("g", { class: "bones" }, root);
    editor.neck = svg("line", { class: "bone centre" }, bones);
    for (const [a, b] of BONES) {
      editor.bones.push({ a, b, node: svg("line", { class: `bone ${boneSide(a, b)}` }, bones) });
    }
    const joints = svg("g", { class: "joints" }, root);
    COCO17.forEach((name, i) => {
      const g = svg("g", {
        class: `joint ${side(i)}`,
        tabindex: 0,
        role: "button",
        "aria-roledescription": "draggable joint",
        "data-testid": "joint",
        "data-joint": name,
      }, joints);
      const hit = svg("circle", { class: "hit" }, g);
      const dot = svg("circle", { class: "dot" }, g);
      const title = svg("title", {}, g);
      editor.joints.push({ g, hit, dot, title, i });
      bindJoint(g, i);
    });
    sizeEditor();
    updateEditor();
  }

  // Handle sizes are in screen pixels, whatever the image's resolution.
  function sizeEditor() {
    const ctm = el.editor.getScreenCTM();
    editor.unit = ctm && ctm.a > 0 ? 1 / ctm.a : Math.max(state.frame.width, state.frame.height) / 500;
    for (const joint of editor.joints) {
      joint.dot.setAttribute("r", 6 * editor.unit);
      joint.hit.setAttribute("r", 14 * editor.unit);
    }
  }

  function updateEditor() {
    const pose = state.pose;
    if (!pose) return;
    const placeLine = (node, p, q, show, dashed) => {
      node.setAttribute("x1", p[0]);
      node.setAttribute("y1", p[1]);
      node.setAttribute("x2", q[0]);
      node.setAttribute("y2", q[1]);
      node.classList.toggle("hidden", !show);
      node.classList.toggle("faint", dashed);
    };
    const active = (kp) => kp[2] > 0;
    for (const bone of editor.bones) {
      const p = pose[bone.a];
      const q = pose[bone.b];
      placeLine(bone.node, p, q, active(p) && active(q), !(visible(p) && visible(q)));
    }
    const ls = pose[L_SHOULDER];
    const rs = pose[R_SHOULDER];
    const mid = [(ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2];
    const nose = pose[NOSE];
    placeLine(editor.neck, nose, mid, active(nose) && active(ls) && active(rs),
      !(visible(nose) && visible(ls) && visible(rs)));
    for (const joint of editor.joints) {
      const [x, y, c] = pose[joint.i];
      for (const circle of [joint.hit, joint.dot]) {
        circle.setAttribute("cx", x);
        circle.setAttribute("cy", y);
      }
      joint.g.classList.toggle("dont-care", c <= 0);
      joint.g.classList.toggle("faint", c > 0 && c < VISIBLE);
      const where = `at ${Math.round(x)}, ${Math.round(y)}`;
      const note = c <= 0 ? " (don't care)" : c < VISIBLE ? " (uncertain)" : "";
      const label = `${jointLabel(COCO17[joint.i])} ${where}${note}`;
      joint.g.setAttribute("aria-label", label);
      joint.title.textContent = label;
    }
    updateExportLinks();
  }

  function framePoint(event) {
    const ctm = el.editor.getScreenCTM();
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(ctm.inverse());
    const { width, height } = state.frame;
    return [Math.min(Math.max(point.x, 0), width), Math.min(Math.max(point.y, 0), height)];
  }

  function bindJoint(g, i) {
    g.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      g.setPointerCapture(event.pointerId);
      g.classList.add("dragging");
      editor.drag = { i, pointer: event.pointerId, moved: false };
    });
    g.addEventListener("pointermove", (event) => {
      const drag = editor.drag;
      if (!drag || drag.pointer !== event.pointerId || drag.i !== i) return;
      const [x, y] = framePoint(event);
      state.pose[i] = [x, y, 1]; // placed by hand: certain
      drag.moved = true;
      updateEditor();
    });
    const release = (event) => {
      const drag = editor.drag;
      if (!drag || drag.pointer !== event.pointerId || drag.i !== i) return;
      editor.drag = null;
      g.classList.remove("dragging");
      if (drag.moved) poseEdited(true);
    };
    g.addEventListener("pointerup", release);
    g.addEventListener("pointercancel", release);
    g.addEventListener("keydown", (event) => {
      const step = (Math.max(state.frame.width, state.frame.height) / 100) * (event.shiftKey ? 5 : 1);
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      const [x, y, c] = state.pose[i];
      if (event.key in moves) {
        const [dx, dy] = moves[event.key];
        const { width, height } = state.frame;
        state.pose[i] = [Math.min(Math.max(x + dx, 0), width), Math.min(Math.max(y + dy, 0), height), 1];
      } else if (event.key === "Delete" || event.key === "Backspace") {
        state.pose[i] = [x, y, c > 0 ? 0 : 1];
      } else {
        return;
      }
      event.preventDefault();
      updateEditor();
      poseEdited(false);
    });
  }

  const searchSoon = debounced(() => runSearch(), 350);

  function poseEdited(now) {
    state.image = null; // from now on the edited pose is the query
    el.editor.dataset.state = "posed";
    if (now) runSearch();
    else searchSoon();
  }

  function placeDefaultFigure() {
    const { width, height } = state.frame;
    const scale = Math.min(width / BLANK.width, height / BLANK.height);
    const dx = (width - BLANK.width * scale) / 2;
    const dy = (height - BLANK.height * scale) / 2;
    state.pose = DEFAULT_FIGURE.map(([x, y]) => [dx + x * scale, dy + y * scale, 1]);
    state.image = null;
    state.drawnPose = state.drawing;
    if (state.drawing) {
      // Posed over the drawing: the joints, not the pen, answer the pointer now.
      cancelFind();
      showDrawStatus("");
      sketch.tool = "joints";
      applyDrawMode();
    }
    renderEditor();
    runSearch();
  }

  function clearQuery() {
    leaveDrawMode();
    sketch.strokes = [];
    sketch.history = [];
    redrawSketch();
    state.drawnPose = false;
    releaseOwnedUrl();
    setFrame(BLANK.width, BLANK.height, null);
    state.pose = null;
    state.image = null;
    state.imageName = null;
    state.lookImage = null;
    applyLookStatus();
    el.upload.value = "";
    showError("");
    renderEditor();
    runSearch();
  }

  function releaseOwnedUrl() {
    if (state.ownedUrl) URL.revokeObjectURL(state.ownedUrl);
    state.ownedUrl = null;
  }

  // ------------------------------------------------------------------ the drawing canvas

  // Strokes in the blank canvas's frame (512 × 768), so the drawing is redrawn at any size,
  // undone stroke by stroke, and exported at the frame's size, whose pixels the pose read
  // from it is in. `history` holds the stroke lists before each change (a stroke, a clear).
  const sketch = { strokes: [], history: [], current: null, tool: "pen", width: 6, timer: null, frame: 0 };

  function paintSketch(ctx, strokes) {
    const { width, height } = BLANK;
    ctx.save();
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.beginPath();
    ctx.rect(0, 0, width, height);
    ctx.clip();
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const stroke of strokes) {
      const points = stroke.points;
      // The eraser paints the page's white: the exported drawing has no transparency.
      ctx.strokeStyle = ctx.fillStyle = stroke.eraser ? "#fff" : "#000";
      ctx.lineWidth = stroke.width;
      ctx.beginPath();
      if (points.length === 1) {
        ctx.arc(points[0][0], points[0][1], stroke.width / 2, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      // Through the mid-points, with the sampled points as controls: a smooth line.
      ctx.moveTo(points[0][0], points[0][1]);
      for (let i = 1; i < points.length - 1; i += 1) {
        const [x, y] = points[i];
        const [nx, ny] = points[i + 1];
        ctx.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2);
      }
      const last = points[points.length - 1];
      ctx.lineTo(last[0], last[1]);
      ctx.stroke();
    }
    ctx.restore();
  }

  // The canvas covers the editor frame; the page is drawn where the SVG editor (which
  // letterboxes, xMidYMid meet) shows the frame, so strokes and skeleton line up.
  function resizeSketch() {
    if (el.sketch.hidden) return;
    const rect = el.sketch.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(rect.width * dpr));
    const height = Math.max(1, Math.round(rect.height * dpr));
    if (el.sketch.width !== width || el.sketch.height !== height) {
      el.sketch.width = width;
      el.sketch.height = height;
    }
    redrawSketch();
  }

  function redrawSketch() {
    if (el.sketch.hidden) return;
    const ctx = el.sketch.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, el.sketch.width, el.sketch.height);
    const rect = el.sketch.getBoundingClientRect();
    const ctm = el.editor.getScreenCTM();
    if (!ctm || rect.width <= 0) return;
    const dpr = el.sketch.width / rect.width;
    ctx.setTransform(dpr * ctm.a, 0, 0, dpr * ctm.d, dpr * (ctm.e - rect.left), dpr * (ctm.f - rect.top));
    paintSketch(ctx, sketch.current ? [...sketch.strokes, sketch.current] : sketch.strokes);
  }

  function redrawSoon() {
    if (sketch.frame) return;
    sketch.frame = requestAnimationFrame(() => {
      sketch.frame = 0;
      redrawSketch();
    });
  }

  // The drawing as the service reads an upload: a PNG of the frame, black on white.
  function sketchDataUrl() {
    const canvas = document.createElement("canvas");
    canvas.width = BLANK.width;
    canvas.height = BLANK.height;
    paintSketch(canvas.getContext("2d"), sketch.strokes);
    return canvas.toDataURL("image/png");
  }

  function showDrawStatus(message) {
    el.drawStatus.textContent = message;
    el.drawStatus.hidden = !message;
  }

  function updateDrawControls() {
    const strokes = sketch.strokes.length;
    if (sketch.tool === "joints" && !state.pose) sketch.tool = "pen";
    for (const button of el.tools) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === sketch.tool));
    }
    el.tools.find((b) => b.dataset.tool === "joints").disabled = !state.pose;
    for (const button of el.widths) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.width) === sketch.width));
    }
    el.undo.disabled = sketch.history.length === 0;
    el.clearDrawing.disabled = strokes === 0;
    el.findPose.disabled = strokes === 0;
    el.dropzone.dataset.tool = sketch.tool;
    el.sketch.dataset.strokes = String(strokes);
    el.sketch.setAttribute("aria-label", strokes
      ? `Your drawing: ${strokes} stroke${strokes === 1 ? "" : "s"}`
      : "Your drawing: empty");
  }

  function applyDrawMode() {
    el.dropzone.classList.toggle("drawing", state.drawing);
    el.drawMode.setAttribute("aria-pressed", String(state.drawing));
    el.sketch.hidden = !state.drawing;
    el.drawTools.hidden = !state.drawing;
    el.drawHint.hidden = !state.drawing;
    if (!state.drawing) showDrawStatus("");
    updateDrawControls();
    resizeSketch();
  }

  // Draw mode: the blank frame becomes a white page to draw on; the strokes of an earlier
  // visit are still there, and searched again.
  function enterDrawMode() {
    if (state.drawing) return;
    releaseOwnedUrl();
    setFrame(BLANK.width, BLANK.height, null);
    state.drawing = true;
    state.pose = null;
    state.image = null;
    state.imageName = null;
    state.lookImage = null;
    state.drawnPose = false;
    sketch.tool = "pen";
    el.upload.value = "";
    applyLookStatus();
    showError("");
    applyDrawMode();
    renderEditor();
    if (sketch.strokes.length) findPose();
    else runSearch();
  }

  // Out of Draw mode the strokes are kept (Draw brings them back); a pose read from them
  // stays in the editor, on the blank canvas.
  function leaveDrawMode() {
    if (!state.drawing) return;
    cancelFind();
    endStroke(null);
    state.drawing = false;
    applyDrawMode();
    renderEditor();
  }

  function cancelFind() {
    clearTimeout(sketch.timer);
    sketch.timer = null;
  }

  function findSoon() {
    cancelFind();
    sketch.timer = setTimeout(findPose, FIND_DELAY_MS);
  }

  function findPose() {
    cancelFind();
    if (!state.drawing) return;
    if (!sketch.strokes.length) {
      showDrawStatus("Draw a figure first.");
      return;
    }
    showDrawStatus("");
    state.image = sketchDataUrl();
    state.imageName = "your drawing";
    state.lookImage = state.image;
    applyLookStatus();
    el.editor.dataset.state = "detecting";
    runSearch();
  }

  // The drawing changed: read its pose again soon; an empty one is no query.
  function drawingChanged() {
    redrawSketch();
    updateDrawControls();
    if (sketch.strokes.length) {
      findSoon();
      return;
    }
    cancelFind();
    showDrawStatus("");
    state.pose = null;
    state.image = null;
    state.lookImage = null;
    state.drawnPose = false;
    applyLookStatus();
    renderEditor();
    runSearch();
  }

  function undoStroke() {
    if (!sketch.history.length) return;
    sketch.strokes = sketch.history.pop();
    drawingChanged();
  }

  function clearDrawing() {
    if (!sketch.strokes.length) return;
    sketch.history.push(sketch.strokes);
    sketch.strokes = [];
    drawingChanged();
  }

  function addPoint(event) {
    const points = sketch.current.points;
    const [x, y] = framePoint(event);
    const last = points[points.length - 1];
    if (last && Math.abs(last[0] - x) < 0.25 && Math.abs(last[1] - y) < 0.25) return;
    points.push([x, y]);
  }

  // The stroke under way ends (kept when `keep`; Draw mode left mid-stroke drops it).
  function endStroke(event, keep = false) {
    const stroke = sketch.current;
    if (!stroke || (event && event.pointerId !== stroke.pointer)) return;
    sketch.current = null;
    if (!keep) {
      redrawSketch();
      return;
    }
    sketch.history.push(sketch.strokes);
    sketch.strokes = [...sketch.strokes, stroke];
    drawingChanged();
  }

  function bindSketch() {
    const canvas = el.sketch;
    canvas.addEventListener("pointerdown", (event) => {
      if (!state.drawing || sketch.tool === "joints" || sketch.current) return;
      if (event.pointerType === "mouse" && event.button !== 0) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      cancelFind(); // not while a figure is being drawn
      const eraser = sketch.tool === "eraser";
      sketch.current = {
        pointer: event.pointerId,
        eraser,
        width: sketch.width * (eraser ? ERASER_SCALE : 1),
        points: [],
      };
      addPoint(event);
      redrawSoon();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!sketch.current || event.pointerId !== sketch.current.pointer) return;
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      for (const e of events.length ? events : [event]) addPoint(e);
      redrawSoon();
    });
    canvas.addEventListener("pointerup", (event) => endStroke(event, true));
    canvas.addEventListener("pointercancel", (event) => endStroke(event, true));
    for (const button of el.tools) {
      button.addEventListener("click", () => {
        sketch.tool = button.dataset.tool;
        updateDrawControls();
      });
    }
    for (const button of el.widths) {
      button.addEventListener("click", () => {
        sketch.width = Number(button.dataset.width);
        if (sketch.tool === "joints") sketch.tool = "pen";
        updateDrawControls();
      });
    }
    el.undo.addEventListener("click", undoStroke);
    el.clearDrawing.addEventListener("click", clearDrawing);
    el.findPose.addEventListener("click", findPose);
    el.drawMode.addEventListener("click", () => (state.drawing ? leaveDrawMode() : enterDrawMode()));
    // Ctrl+Z (⌘Z) undoes a stroke, except where the browser undoes typing.
    document.addEventListener("keydown", (event) => {
      if (!state.drawing || !(event.ctrlKey || event.metaKey) || event.shiftKey || event.altKey) return;
      if (event.key.toLowerCase() !== "z") return;
      const target = event.target;
      if (target instanceof Element && target.closest('input[type="search"], input[type="text"], textarea, [contenteditable]')) return;
      event.preventDefault();
      undoStroke();
    });
  }

  // ------------------------------------------------------------------ uploads

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("the browser cannot read this file as an image"));
      img.src = url;
    });
  }

  function readDataUrl(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  async function loadFile(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      showError(`${file.name} is not an image: choose a photo or a sketch (JPEG, PNG, WebP…).`);
      return;
    }
    showError("");
    const url = URL.createObjectURL(file);
    let img;
    try {
      img = await loadImage(url);
    } catch (error) {
      URL.revokeObjectURL(url);
      showError(`${file.name}: ${error.message}.`);
      return;
    }
    let width = img.naturalWidth;
    let height = img.naturalHeight;
    let dataUrl;
    let shownUrl = url;
    if (Math.max(width, height) > MAX_SEND_SIDE || file.size > MAX_SEND_BYTES) {
      const scale = Math.min(1, MAX_SEND_SIDE / Math.max(width, height));
      width = Math.max(1, Math.round(width * scale));
      height = Math.max(1, Math.round(height * scale));
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff"; // a transparent sketch stays dark lines on white
      ctx.fillRect(0, 0, width, height);
      ctx.drawImage(img, 0, 0, width, height);
      dataUrl = canvas.toDataURL("image/jpeg", 0.92);
      URL.revokeObjectURL(url);
      shownUrl = URL.createObjectURL(dataUrlToBlob(dataUrl));
    } else {
      dataUrl = await readDataUrl(file);
    }
    leaveDrawMode();
    state.drawnPose = false;
    releaseOwnedUrl();
    state.ownedUrl = shownUrl;
    state.imageName = file.name;
    setFrame(width, height, shownUrl);
    state.pose = null;
    state.image = dataUrl;
    state.lookImage = dataUrl;
    applyLookStatus();
    renderEditor();
    runSearch();
  }

  // ------------------------------------------------------------------ search

  function selectedFramings() {
    return el.framing.filter((box) => box.checked).map((box) => box.value);
  }

  // The query as the form stands, or a string saying why there is none.
  function buildQuery() {
    const body = { k: pageSize, lambda: lambdaValue() };
    // Unticked, `mirror` is left to the service: it matches an uploaded drawing mirrored too
    // (its left and right are ambiguous), anything else not.
    if (el.mirror.checked) body.mirror = true;
    const framings = selectedFramings();
    if (framings.length === 0) return "Choose at least one framing.";
    if (framings.length < el.framing.length) body.framing = framings;
    if (state.image) {
      body.image = state.image;
    } else if (state.pose && state.pose.some((kp) => kp[2] > 0)) {
      body.keypoints = state.pose.map(([x, y, c]) => [
        Math.round(x * 100) / 100, Math.round(y * 100) / 100, Math.round(c * 1000) / 1000,
      ]);
      if (state.drawnPose) body.mirror = true;
    }
    const text = el.text.value.trim();
    const posed = Boolean(body.image || body.keypoints);
    // Beside a pose the text goes even when text search is down: the service then ranks by
    // pose and says so in `warnings`. Alone it would only be refused.
    if (text && !state.textRejected && (!state.textProblem || posed)) body.text = text;
    if (lookWanted()) {
      // The picture counts for its look too: with its figure on the first search, beside the
      // edited pose afterwards.
      if (body.image) body.image_use = "both";
      else {
        body.image = state.lookImage;
        body.image_use = "look";
      }
    }
    if (!body.image && !body.keypoints && !body.text) {
      if (text && state.textProblem) {
        return `${textNote()} Upload a picture or pose the default figure to search by pose.`;
      }
      if (state.drawing) {
        return "Draw a figure (head, body, arms, legs), pose the default figure, or type a " +
          "description.";
      }
      return "Upload a photo or sketch, draw one, pose the default figure, or type a description.";
    }
    return body;
  }

  function describeQuery(body) {
    const parts = [];
    const drawn = state.drawing && body.image && body.image_use !== "look";
    if (body.image && body.image_use !== "look") {
      parts.push(drawn ? "the figure in your drawing" : "the figure in your image");
    }
    if (body.keypoints) parts.push("your pose");
    if (body.text) parts.push(`“${body.text}”`);
    if (body.image_use) parts.push("the look of your picture");
    let text = parts.join(" + ");
    const posed = (body.image && body.image_use !== "look") || body.keypoints;
    if (posed && (body.text || body.image_use)) text += ` (λ ${body.lambda.toFixed(2)})`;
    if (body.mirror || (drawn && body.mirror === undefined)) text += ", mirrored too";
    return text;
  }

  async function runSearch({ append = false } = {}) {
    let body;
    if (append) {
      if (!state.lastQuery || state.exhausted) return;
      body = { ...state.lastQuery };
      if (state.caps.cursor && state.cursor) body.cursor = state.cursor;
      else if (state.caps.offset) body.offset = state.served;
      else body.k = Math.min(100, state.served + pageSize); // the service pages no further
    } else {
      const built = buildQuery();
      if (typeof built === "string") {
        if (state.controller) state.controller.abort();
        state.requestSeq += 1;
        resetResults();
        showWarnings([]);
        el.summary.textContent = built;
        finish();
        return;
      }
      body = built;
    }
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const seq = ++state.requestSeq;
    setBusy(true);
    let response;
    let data = null;
    try {
      response = await fetch("search", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      data = await response.json().catch(() => null);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (seq !== state.requestSeq) return;
      showError(`The search service could not be reached (${error.message}). Is it running?`);
      setBusy(false);
      finish();
      return;
    }
    if (seq !== state.requestSeq) return; // a newer search has started
    state.controller = null;
    setBusy(false);
    if (!response.ok) {
      handleFailure(response.status, data && data.detail, body, append);
    } else {
      showError("");
      if (body.image && body.image_use !== "look") {
        state.image = null;
        state.pose = data.query_keypoints ? data.query_keypoints.map((kp) => kp.slice(0, 3)) : null;
        state.drawnPose = state.drawing;
        if (state.drawing) showDrawStatus("");
        renderEditor();
      }
      const query = { ...body, k: pageSize };
      delete query.image;
      delete query.image_use;
      delete query.offset;
      delete query.cursor;
      if (state.pose && body.image) {
        query.keypoints = state.pose.map((kp) => kp.slice());
        if (state.drawnPose) query.mirror = true; // the next pages rank as this one did
      }
      const notes = warningsFor(data, body);
      // Describe what was searched, less what the service left out.
      const used = { ...body };
      if (notes.some((w) => w.code === "text_ignored")) delete used.text;
      if (notes.some((w) => w.code === "look_ignored")) delete used.image_use;
      showResults(data, used, append, query);
      if (!append) showWarnings(notes);
    }
    finish();
  }

  // What the service said about the query (`warnings`), and what the page itself left out.
  function warningsFor(data, body) {
    const list = Array.isArray(data && data.warnings) ? data.warnings : [];
    const notes = list
      .map((w) => (w && typeof w === "object" ? w : { code: "", message: String(w) }))
      .filter((w) => w.message);
    const typed = el.text.value.trim();
    if (typed && !body.text && !notes.some((w) => w.code === "text_ignored")) {
      notes.push({
        code: "text_ignored",
        message: "Your description was not used, as text search is unavailable: these " +
          "results match the pose only.",
      });
    }
    return notes;
  }

  function showWarnings(notes) {
    el.warnings.replaceChildren();
    for (const note of notes) {
      const p = document.createElement("p");
      p.textContent = note.message;
      if (note.code) p.dataset.code = note.code;
      el.warnings.append(p);
    }
    el.warnings.hidden = notes.length === 0;
  }

  function finish() {
    state.completed += 1;
    el.results.dataset.seq = String(state.completed);
  }

  function setBusy(busy) {
    el.results.setAttribute("aria-busy", busy ? "true" : "false");
    el.results.classList.toggle("busy", busy);
    el.loadMore.disabled = busy;
    if (!busy) return;
    el.summary.textContent = !state.image
      ? "Searching…"
      : state.drawing
        ? "Reading the pose in your drawing and searching…"
        : "Finding the figure and searching…";
  }

  function handleFailure(status, detail, body, append) {
    const message = detail || `the service answered ${status}`;
    if (status === 503 && body.image_use && !append) {
      // CLIP cannot match looks now: search without the look, and say why.
      el.useLook.checked = false;
      el.lookStatus.textContent = `Matching the look is unavailable: ${message}`;
      runSearch();
      return;
    }
    if (status === 503 && body.text && !append) {
      // Text search is down (models loading, or no weights): say so in one sentence (the
      // reason sits behind "why?"), and search the pose without the text.
      if (!state.textProblem) {
        state.textProblem = message;
        state.textSummary = null;
      }
      state.textRejected = true;
      applyTextStatus();
      refreshHealthSoon();
      if (body.image || body.keypoints) {
        runSearch();
        return;
      }
      resetResults();
      showWarnings([]);
      showError("");
      el.summary.textContent = `${textNote()} Upload a picture or pose the default figure ` +
        "to search by pose.";
      return;
    }
    if (body.image && body.image_use !== "look" && state.drawing) {
      // The drawing stays as it is, to be finished or posed over; the pose of an earlier
      // version of it no longer stands for it.
      state.image = null;
      state.pose = null;
      renderEditor();
      showError("");
      showDrawStatus(status === 422 ? NO_FIGURE_IN_DRAWING : `Your drawing could not be searched: ${message}`);
    } else if (body.image && body.image_use !== "look") {
      // No figure found, unreadable or too large: do not resend it on every keystroke.
      state.image = null;
      renderEditor();
      showError(
        `${message.replace(/[.\s]+$/, "")}. Try another image, or pose the default figure over ` +
          "this one (Default figure).",
      );
    } else {
      showError(message);
    }
    if (!append) {
      resetResults();
      showWarnings([]);
    }
    el.summary.textContent = append ? "Could not load more results." : "No results.";
  }

  function resetResults() {
    state.results = [];
    state.seen = new Set();
    state.served = 0;
    state.cursor = null;
    state.exhausted = true;
    state.lastQuery = null;
    el.results.replaceChildren();
    el.loadMore.hidden = true;
  }

  function showResults(data, body, append, query) {
    if (!append) resetResults();
    state.lastQuery = query;
    state.lastVersion = data.table_version;
    const results = Array.isArray(data.results) ? data.results : [];
    const fresh = results.filter((r) => !state.seen.has(r.id));
    const start = state.results.length;
    for (const result of fresh) {
      state.seen.add(result.id);
      state.results.push(result);
    }
    const asked = body.k === undefined ? pageSize : body.k;
    const paged = state.caps.cursor || state.caps.offset; // else: ask for more, up to k = 100
    state.served = paged ? state.served + results.length : results.length;
    state.cursor = data.next_cursor || null;
    state.exhausted =
      results.length < asked ||
      (append && fresh.length === 0) || // the service repeats itself: nothing more to get
      (state.caps.cursor && !state.caps.offset && !state.cursor) ||
      (!paged && asked >= 100);
    const items = fresh.map((result, n) => buildCard(result, start + n + 1));
    el.results.append(...items);
    el.loadMore.hidden = state.exhausted;
    const count = state.results.length;
    el.summary.textContent = count
      ? `${count} result${count === 1 ? "" : "s"} for ${describeQuery(body)} · index version ${data.table_version}`
      : `Nothing matches ${describeQuery(body)}.`;
  }

  // ------------------------------------------------------------------ result cards

  function buildCard(result, rank) {
    const card = el.template.content.firstElementChild.cloneNode(true);
    card.dataset.id = result.id;
    card.dataset.score = result.score.toFixed(6);
    const field = (name) => card.querySelector(`[data-field="${name}"]`);
    const framing = String(result.framing || "").replace("_", " ");
    const credit = creditOf(result);
    const thumb = card.querySelector(".thumb");
    thumb.href = result.image_url;
    thumb.setAttribute("aria-label", `Result ${rank}: open the full picture`);
    const img = thumb.querySelector("img");
    img.src = result.thumbnail_url;
    img.alt = `Result ${rank}: ${framing}${credit.text ? `, ${credit.text}` : ""}`;
    const overlay = card.querySelector("svg.overlay");
    if (result.keypoints) {
      withImageSize(result, (width, height) => drawOverlay(overlay, result.keypoints, width, height));
    }
    field("score").textContent = `match ${fmt2(result.score)}`;
    field("mirrored").hidden = !result.mirrored;
    field("framing").textContent = framing;
    field("pose").textContent = fmt2(result.pose_score);
    field("clip").textContent = fmt2(result.clip_score);
    // A part the query did not have (no text, or no pose) scores nothing: leave it out.
    card.querySelector('[data-part="pose"]').hidden = result.pose_score == null;
    card.querySelector('[data-part="clip"]').hidden = result.clip_score == null;
    field("scores").title =
      `score ${fmt(result.score)} · pose ${fmt(result.pose_score)} · text ${fmt(result.clip_score)}`;
    fillSource(field("source"), credit);
    fillLicence(field("licence"), result);

    const use = card.querySelector('[data-testid="use-pose"]');
    const json = card.querySelector('[data-testid="export-result-json"]');
    const png = card.querySelector('[data-testid="export-result-png"]');
    const stem = `poseframer-${result.image_id.slice(0, 12)}-${Math.max(result.person_index, 0)}`;
    if (result.keypoints) {
      use.addEventListener("click", () => usePose(result));
      bindDownload(json, `${stem}-openpose.json`, () =>
        withKnownSize(result, (w, h) => openposeJsonBlob(result.keypoints, w, h)));
      bindDownload(png, `${stem}-openpose.png`, () =>
        withKnownSize(result, (w, h) => openposePngBlob(result.keypoints, w, h)));
      use.setAttribute("aria-label", `Use the pose of result ${rank}`);
      json.setAttribute("aria-label", `Result ${rank}'s skeleton as OpenPose JSON`);
      png.setAttribute("aria-label", `Result ${rank}'s skeleton as a PNG`);
    } else {
      use.disabled = true;
      use.title = "This image has no person";
      json.remove();
      png.remove();
    }
    return card;
  }

  // The keypoints are in pixels of the stored image: its size is in the result (`width`,
  // `height`); a service without them gets it from the original image, loaded once.
  const sizeCache = new Map();
  function withImageSize(result, callback) {
    if (result.width > 0 && result.height > 0) {
      callback(result.width, result.height);
      return;
    }
    let pending = sizeCache.get(result.image_id);
    if (!pending) {
      pending = loadImage(result.image_url).then((img) => [img.naturalWidth, img.naturalHeight]);
      sizeCache.set(result.image_id, pending);
    }
    pending.then(([w, h]) => {
      result.width = w;
      result.height = h;
      callback(w, h);
    }).catch(() => {});
  }

  function withKnownSize(result, make) {
    if (result.width > 0 && result.height > 0) return make(result.width, result.height);
    return null; // its size is still loading (the overlay needs it too)
  }

  function drawOverlay(node, keypoints, width, height) {
    node.setAttribute("viewBox", `0 0 ${width} ${height}`);
    node.replaceChildren();
    const r = Math.max(width, height) / 90;
    const ls = keypoints[L_SHOULDER];
    const rs = keypoints[R_SHOULDER];
    const lines = BONES.map(([a, b]) => [keypoints[a], keypoints[b], boneSide(a, b)]);
    if (visible(ls) && visible(rs)) {
      lines.push([keypoints[NOSE], [(ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2, 1], "centre"]);
    }
    for (const [p, q, where] of lines) {
      if (!visible(p) || !visible(q)) continue;
      svg("line", { x1: p[0], y1: p[1], x2: q[0], y2: q[1], class: `bone ${where}` }, node);
    }
    keypoints.forEach((kp, i) => {
      if (visible(kp)) svg("circle", { cx: kp[0], cy: kp[1], r, class: `dot ${side(i)}` }, node);
    });
  }

  function link(href, text, title) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (title) a.title = title;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function shortUrl(href) {
    try {
      const url = new URL(href);
      return url.hostname + (url.pathname.length > 1 ? url.pathname : "");
    } catch {
      return href;
    }
  }

  const clean = (value) => (typeof value === "string" ? value.trim() : "");

  // The last part of a path or URL, and never a whole server path.
  function fileName(uri) {
    const path = isHttpUrl(uri) ? (() => {
      try {
        return decodeURIComponent(new URL(uri).pathname);
      } catch {
        return uri;
      }
    })() : uri;
    return path.split(/[\\/]/).filter(Boolean).pop() || "";
  }

  // Who made the picture and where it was found: the attribution (linked to the page it
  // came from), else that page, else, as a last resort, the file's name.
  function creditOf(result) {
    const uri = clean(result.source_uri);
    const attribution = clean(result.attribution);
    const page = isHttpUrl(result.page_url) ? result.page_url : isHttpUrl(uri) ? uri : null;
    if (attribution) return { text: attribution, href: page, kind: "attribution" };
    if (page) return { text: shortUrl(page), href: page, kind: "page" };
    const name = fileName(uri);
    return { text: name || "source unknown", href: null, kind: name ? "file" : "unknown" };
  }

  function fillSource(node, credit) {
    node.dataset.kind = credit.kind;
    if (credit.href) node.append(link(credit.href, credit.text, credit.href));
    else node.append(credit.text);
    if (credit.kind !== "file" && credit.kind !== "unknown") node.title = credit.text;
  }

  function fillLicence(node, result) {
    const licence = clean(result.licence || result.license);
    const licenceUrl = result.licence_url || result.license_url;
    if (!licence && !isHttpUrl(licenceUrl)) return;
    node.hidden = false;
    node.title = `Licence: ${licence || licenceUrl}`;
    if (isHttpUrl(licenceUrl)) node.append(link(licenceUrl, licence || shortUrl(licenceUrl), licenceUrl));
    else node.append(licence);
  }

  function usePose(result) {
    const apply = (width, height) => {
      leaveDrawMode();
      state.drawnPose = false;
      releaseOwnedUrl();
      setFrame(width, height, result.image_url);
      state.pose = result.keypoints.map((kp) => kp.slice(0, 3));
      state.image = null;
      state.imageName = null;
      state.lookImage = null;
      applyLookStatus();
      renderEditor();
      el.dropzone.scrollIntoView({ block: "nearest", behavior: "smooth" });
      runSearch();
    };
    withImageSize(result, apply);
  }

  // ------------------------------------------------------------------ OpenPose export

  // COCO-18 keypoints [x, y, c, …]; joints under VISIBLE (and "don't care") are 0, 0, 0,
  // OpenPose's "not detected".
  function openposeKeypoints(pose) {
    const flat = [];
    for (const source of OPENPOSE18) {
      let point = null;
      if (source === null) {
        const l = pose[L_SHOULDER];
        const r = pose[R_SHOULDER];
        if (visible(l) && visible(r)) point = [(l[0] + r[0]) / 2, (l[1] + r[1]) / 2, Math.min(l[2], r[2])];
      } else if (visible(pose[source])) {
        point = pose[source];
      }
      if (point) {
        flat.push(Math.round(point[0] * 100) / 100, Math.round(point[1] * 100) / 100,
          Math.round(Math.min(point[2], 1) * 1000) / 1000);
      } else {
        flat.push(0, 0, 0);
      }
    }
    return flat;
  }

  function openposeJsonBlob(pose, width, height) {
    const document_ = {
      version: 1.3,
      people: [{
        person_id: [-1],
        pose_keypoints_2d: openposeKeypoints(pose),
        face_keypoints_2d: [],
        hand_left_keypoints_2d: [],
        hand_right_keypoints_2d: [],
        pose_keypoints_3d: [],
        face_keypoints_3d: [],
        hand_left_keypoints_3d: [],
        hand_right_keypoints_3d: [],
      }],
      canvas_width: Math.round(width),
      canvas_height: Math.round(height),
    };
    return new Blob([JSON.stringify(document_)], { type: "application/json" });
  }

  // Drawn as ControlNet's OpenPose annotator (controlnet_aux draw_bodypose) draws a body, on
  // black: limbs as ellipses 4 px in half-width in 60 % of the limb's colour, joints as discs
  // of radius 4 in full colour. Above 500 px the limbs thicken as with its
  // xinsir_stick_scaling (the SDXL openpose ControlNet's), so large canvases stay legible.
  function openposeCanvas(pose, width, height) {
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(width));
    canvas.height = Math.max(1, Math.round(height));
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const flat = openposeKeypoints(pose);
    const points = [];
    for (let i = 0; i < 18; i += 1) {
      points.push(flat[i * 3 + 2] > 0 ? [flat[i * 3], flat[i * 3 + 1]] : null);
    }
    const maxSide = Math.max(canvas.width, canvas.height);
    const scale = maxSide < 500 ? 1 : Math.min(2 + Math.floor(maxSide / 1000), 7);
    const stick = 4 * scale;
    OPENPOSE_LIMBS.forEach(([a, b], n) => {
      const p = points[a - 1];
      const q = points[b - 1];
      if (!p || !q) return;
      const [r, g, bl] = OPENPOSE_COLOURS[n].map((c) => Math.floor(c * 0.6));
      const length = Math.hypot(q[0] - p[0], q[1] - p[1]);
      ctx.fillStyle = `rgb(${r}, ${g}, ${bl})`;
      ctx.beginPath();
      ctx.ellipse((p[0] + q[0]) / 2, (p[1] + q[1]) / 2, Math.max(length / 2, 0.5), stick,
        Math.atan2(q[1] - p[1], q[0] - p[0]), 0, 2 * Math.PI);
      ctx.fill();
    });
    points.forEach((p, n) => {
      if (!p) return;
      const [r, g, b] = OPENPOSE_COLOURS[n];
      ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
      ctx.beginPath();
      ctx.arc(p[0], p[1], 4, 0, 2 * Math.PI);
      ctx.fill();
    });
    return canvas;
  }

  function dataUrlToBlob(dataUrl) {
    const [head, data] = dataUrl.split(",", 2);
    const type = head.slice(5).split(";")[0];
    const bytes = atob(data);
    const array = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i += 1) array[i] = bytes.charCodeAt(i);
    return new Blob([array], { type });
  }

  function openposePngBlob(pose, width, height) {
    return dataUrlToBlob(openposeCanvas(pose, width, height).toDataURL("image/png"));
  }

  // A download link whose file is made when it is clicked (the browser follows the
  // link after the click handlers ran, so the fresh blob: URL is the one downloaded).
  function bindDownload(link, filename, makeBlob) {
    let url = null;
    link.addEventListener("click", (event) => {
      const blob = makeBlob();
      if (!blob) {
        event.preventDefault();
        showError("There is no pose to export yet.");
        return;
      }
      if (url) URL.revokeObjectURL(url);
      url = URL.createObjectURL(blob);
      link.href = url;
      link.download = filename;
    });
  }

  function updateExportLinks() {
    const ready = Boolean(state.pose);
    for (const link of [el.exportJson, el.exportPng]) {
      link.classList.toggle("disabled", !ready);
      link.setAttribute("aria-disabled", ready ? "false" : "true");
    }
  }

  const queryExport = (make) => () =>
    state.pose ? make(state.pose, state.frame.width, state.frame.height) : null;

  // ------------------------------------------------------------------ service status

  let healthTimer = null;
  let healthDelay = 2000;
  const LOADING_POLL_MS = 1000;

  // Look again later, less and less often: CLIP may still be loading (seconds), or be
  // missing until someone fixes the configuration. While the service says it is loading,
  // look every second.
  function refreshHealthSoon() {
    clearTimeout(healthTimer);
    if (state.loading) {
      healthTimer = setTimeout(refreshHealth, LOADING_POLL_MS);
      return;
    }
    healthTimer = setTimeout(refreshHealth, healthDelay);
    healthDelay = Math.min(healthDelay * 1.5, 30000);
  }

  function lookWanted() {
    return Boolean(el.useLook.checked && state.lookImage && !state.textProblem);
  }

  function applyLookStatus() {
    el.useLook.disabled = !state.lookImage || Boolean(state.textProblem);
    if (el.useLook.disabled) el.useLook.checked = false;
    el.lookStatus.textContent = !state.lookImage
      ? "Upload a picture to match its look (colours, style, setting) as well as its pose."
      : state.textProblem
        ? "Matching the look needs text search, which is unavailable."
        : "";
    applyLambdaState();
  }

  // The one sentence people read about text search; the service's `summary` when it sends
  // one (the long `reason` is for whoever runs the service, behind "why?").
  function textNote() {
    if (state.loading) return "Loading models… text search will be ready shortly.";
    if (!state.textProblem) return "";
    if (state.textSummary) return state.textSummary;
    if (/still loading/i.test(state.textProblem)) {
      return "Text search is still loading: try again in a moment.";
    }
    return "Text search is unavailable on this server; pose search works.";
  }

  function applyTextStatus() {
    applyLookStatus();
    const mode = state.loading ? "loading" : state.textProblem ? "unavailable" : "available";
    el.textField.dataset.textSearch = mode;
    const note = textNote();
    if (note) {
      el.textStatus.textContent = note;
      el.textStatus.classList.add("warning");
    } else {
      el.textStatus.textContent = state.randomClip
        ? "Text search runs on test weights here, so its results mean nothing."
        : "";
      el.textStatus.classList.toggle("warning", state.randomClip);
    }
    const reason = state.textProblem && !state.loading ? state.textProblem : "";
    el.textWhyReason.textContent = reason;
    el.textWhy.hidden = !reason || reason === note;
    if (el.textWhy.hidden) el.textWhy.open = false;
  }

  // λ weighs pose against text: it means something only with text (or a look) to weigh.
  function applyLambdaState() {
    const mixed = Boolean(el.text.value.trim()) || Boolean(el.useLook.checked && state.lookImage);
    const why = state.loading || /still loading/i.test(state.textProblem || "")
      ? "Text search is still loading: the weighting works once it is ready"
      : state.textProblem
        ? "Text search is unavailable, so results are ranked by pose only"
        : !mixed
          ? "Type a description to weigh pose against text"
          : "";
    el.lambda.disabled = Boolean(why);
    el.lambda.setAttribute("aria-disabled", why ? "true" : "false");
    el.lambda.title = why || "Slide left for pose, right for text";
    el.lambdaField.classList.toggle("disabled", Boolean(why));
    showLambda();
  }

  function describeService(health) {
    if (health.table_version === null || health.table_version === undefined) {
      return health.message || "Nothing has been indexed yet.";
    }
    const rows = health.rows || {};
    const images = rows.images ?? "?";
    return `Searching ${images} image${images === 1 ? "" : "s"} · index version ` +
      `${health.table_version}${health.tag ? ` (${health.tag})` : ""}`;
  }

  async function refreshHealth() {
    let health;
    try {
      const response = await fetch("health", { cache: "no-store" });
      health = await response.json();
    } catch (error) {
      el.serviceStatus.textContent = "The search service cannot be reached.";
      el.serviceStatus.title = error.message;
      refreshHealthSoon();
      return;
    }
    el.serviceStatus.title = "";
    const wasBlocked = state.loading || Boolean(state.textProblem);
    state.loading = health.status === "loading";
    el.serviceStatus.classList.toggle("loading", state.loading);
    el.serviceStatus.textContent = state.loading ? "Loading models…" : describeService(health);
    const text = health.text_search || { available: false, reason: null };
    state.randomClip = Boolean(text.random_weights);
    if (text.available && !state.loading) {
      state.textProblem = null;
      state.textSummary = null;
      state.textRejected = false;
    } else {
      state.textProblem = text.reason || text.summary || "text search is unavailable";
      state.textSummary = text.summary || null;
    }
    applyTextStatus();
    if (state.loading || state.textProblem) {
      refreshHealthSoon();
      return;
    }
    healthDelay = 2000;
    if (wasBlocked && el.text.value.trim()) runSearch();
  }

  async function detectCapabilities() {
    try {
      const spec = await (await fetch("openapi.json")).json();
      const props = spec?.components?.schemas?.SearchRequest?.properties || {};
      state.caps = { offset: "offset" in props, cursor: "cursor" in props };
    } catch {
      state.caps = { offset: false, cursor: false };
    }
  }

  // ------------------------------------------------------------------ wiring

  function showLambda() {
    const lam = lambdaValue();
    el.lambdaValue.textContent = el.lambda.disabled
      ? "pose only"
      : `λ = ${lam.toFixed(2)}: pose ${Math.round(lam * 100)} % · text ${Math.round((1 - lam) * 100)} %`;
    el.lambda.setAttribute("aria-valuetext", `λ ${lam.toFixed(2)}, pose weight ${Math.round(lam * 100)} percent`);
  }

  el.upload.addEventListener("change", () => loadFile(el.upload.files[0]));
  el.defaultFigure.addEventListener("click", placeDefaultFigure);
  el.clear.addEventListener("click", clearQuery);
  el.text.addEventListener("input", () => {
    applyLambdaState();
    searchSoon();
  });
  el.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      runSearch();
    }
  });
  const lambdaSoon = debounced(() => runSearch(), 250);
  el.lambda.addEventListener("input", () => {
    showLambda();
    lambdaSoon();
  });
  el.mirror.addEventListener("change", () => runSearch());
  el.useLook.addEventListener("change", () => {
    applyLambdaState();
    runSearch();
  });
  el.showSkeletons.addEventListener("change", () => {
    el.results.classList.toggle("no-skeletons", !el.showSkeletons.checked);
  });
  for (const box of el.framing) box.addEventListener("change", () => runSearch());
  el.loadMore.addEventListener("click", () => runSearch({ append: true }));
  bindDownload(el.exportJson, "poseframer-query-openpose.json", queryExport(openposeJsonBlob));
  bindDownload(el.exportPng, "poseframer-query-openpose.png", queryExport(openposePngBlob));

  for (const type of ["dragenter", "dragover"]) {
    el.dropzone.addEventListener(type, (event) => {
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      el.dropzone.classList.add("dragover");
    });
  }
  el.dropzone.addEventListener("dragleave", () => el.dropzone.classList.remove("dragover"));
  el.dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    el.dropzone.classList.remove("dragover");
    loadFile(event.dataTransfer && event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const file = Array.from(event.clipboardData?.files || []).find((f) => f.type.startsWith("image/"));
    if (file) loadFile(file);
  });
  new ResizeObserver(() => {
    sizeEditor();
    resizeSketch();
  }).observe(el.dropzone);
  bindSketch();

  setFrame(BLANK.width, BLANK.height, null);
  applyLambdaState();
  renderEditor();
  detectCapabilities();
  refreshHealth();
})();
