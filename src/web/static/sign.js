// The signing page (/sign): files by button or drag & drop (removable before sending), a pdf.js preview of each
// PDF on which the holder may draw the box of a visible signature (none: invisible), the upload to
// POST /api/v1/sign-jobs (refusals shown next to their file, before any code is asked), then one TOTP code for the
// batch (the #sign-authorize form, sent by app.js to POST /api/v1/sign-jobs/{id}/authorize) and the download page.
//
// A drawn box is sent as rect_<n> = {"page": p, "rect": [x1, y1, x2, y2]}: page from 1, PDF user-space points of
// that page (pdf.js viewport.convertToPdfPoint: the render scale, the page's /Rotate and its view box), n the file's
// position in the upload from 0 (jobs.rs, appearance()).
//
// A PDF with empty signature fields offers them in a select ("sign into"): the server says which fields are empty
// and where (POST /api/v1/sign-jobs/inspect; pdf.js cannot tell an empty signature field from a signed one), and is
// asked only when pdf.js finds a signature field, or when pdf.js is not there. The field chosen is sent as
// field_<n> = its full name; its own rectangle is where the signature goes, so a drawn box and a field exclude
// each other.
"use strict";

(function () {
  const MIN_POINTS = 10; // jobs.rs refuses smaller boxes
  const MAX_SCALE = 1.5; // CSS pixels per PDF point at most

  function start() {
    const form = document.getElementById("sign-form");
    if (!form) return;
    const auth = document.getElementById("sign-authorize");
    const input = document.getElementById("sign-files");
    const drop = document.getElementById("sign-drop");
    const list = document.getElementById("sign-list");
    const p7s = document.getElementById("sign-p7s");
    const uploadButton = document.getElementById("sign-upload");
    const generalError = document.getElementById("sign-error");
    const text = (name) => form.dataset["text" + name] || "";
    const maxFiles = parseInt(form.dataset.maxFiles, 10) || 20;
    const previews = form.dataset.previews === "1";
    const entries = [];
    let pdfjs = null;

    function loadPdfjs() {
      if (!previews) return Promise.resolve(null);
      if (!pdfjs) {
        pdfjs = import("/static/pdf.min.mjs")
          .then((lib) => {
            lib.GlobalWorkerOptions.workerSrc = "/static/pdf.worker.min.mjs";
            return lib;
          })
          .catch((e) => {
            console.warn("pdf.js could not be loaded", e);
            return null;
          });
      }
      return pdfjs;
    }

    // The name the server gives the file (jobs.rs clean_name), to find the file an error message names.
    function cleanName(name) {
      const base = name.split(/[/\\]/).pop() || "";
      // eslint-disable-next-line no-control-regex
      const cleaned = Array.from(base.replace(/[\u0000-\u001f\u007f-\u009f]/g, "")).slice(0, 200).join("").trim().replace(/^\.+/, "");
      return cleaned || "document";
    }

    function size(bytes) {
      if (bytes < 1024) return bytes + " B";
      if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + " KB";
      return (bytes / (1024 * 1024)).toFixed(1) + " MB";
    }

    async function isPdf(file) {
      const head = new Uint8Array(await file.slice(0, 1029).arrayBuffer());
      const magic = [0x25, 0x50, 0x44, 0x46, 0x2d]; // %PDF-
      for (let i = 0; i + 5 <= head.length && i < 1024; i++) {
        if (magic.every((b, j) => head[i + j] === b)) return true;
      }
      return false;
    }

    function el(tag, props, children) {
      const e = Object.assign(document.createElement(tag), props || {});
      (children || []).forEach((c) => e.append(c));
      return e;
    }

    function update() {
      uploadButton.disabled = entries.length === 0;
      list.classList.toggle("p7s", p7s.checked);
      entries.forEach((entry, n) => {
        entry.li.dataset.index = String(n);
        entry.error.id = "sign-file-error-" + n;
        entry.remove.id = "sign-remove-" + n;
        if (entry.pdf) {
          entry.select.id = "sign-page-" + n;
          entry.selectLabel.htmlFor = entry.select.id;
          entry.fieldSelect.id = "sign-field-" + n;
          entry.fieldLabel.htmlFor = entry.fieldSelect.id;
          entry.clear.id = "sign-clear-" + n;
          entry.state.id = "sign-box-" + n;
          entry.pages.querySelectorAll(".preview").forEach((p) => (p.dataset.fileIndex = String(n)));
        }
      });
    }

    function boxText(entry) {
      if (!entry.state) return;
      if (entry.field) {
        entry.state.textContent = text("InField") + " " + entry.field.name;
      } else {
        entry.state.textContent = entry.rect ? text("Visible") + " " + entry.rect.page : text("Invisible");
      }
      entry.clear.classList.toggle("hidden", !entry.rect);
    }

    // Every file is listed at once (the upload button works right away); PDFs are then recognised and previewed.
    function addFiles(files) {
      generalError.textContent = "";
      const added = [];
      for (const file of Array.from(files)) {
        if (entries.length >= maxFiles) {
          generalError.textContent = text("TooMany") + " (" + maxFiles + ")";
          break;
        }
        const entry = { file, rect: null, field: null, fields: [], pdf: false };
        entries.push(entry);
        entry.remove = el("button", { type: "button", className: "secondary small", textContent: text("Remove") });
        entry.error = el("p", { className: "error" });
        entry.error.setAttribute("role", "alert");
        entry.li = el("li", { className: "file" }, [
          el("div", { className: "file-head" }, [
            el("strong", { className: "name", textContent: file.name }),
            el("span", { className: "muted size", textContent: size(file.size) }),
            entry.remove,
          ]),
          entry.error,
        ]);
        entry.remove.addEventListener("click", () => removeEntry(entry));
        list.append(entry.li);
        added.push(entry);
      }
      update();
      added.forEach(async (entry) => {
        if ((await isPdf(entry.file)) && entries.includes(entry)) {
          entry.pdf = true;
          preparePdf(entry);
        }
      });
    }

    function removeEntry(entry) {
      const i = entries.indexOf(entry);
      if (i < 0) return;
      entries.splice(i, 1);
      entry.li.remove();
      if (entry.doc) entry.doc.destroy();
      generalError.textContent = "";
      update();
    }

    function preparePdf(entry) {
      entry.select = el("select");
      entry.selectLabel = el("label", { textContent: text("Page") });
      entry.state = el("span", { className: "box-state" });
      entry.clear = el("button", { type: "button", className: "secondary small hidden", textContent: text("Clear") });
      entry.pages = el("div", { className: "pages" });
      entry.note = el("p", { className: "muted note" });
      entry.tools = el("div", { className: "pdf-tools hidden" }, [entry.selectLabel, entry.select, entry.state, entry.clear]);
      entry.help = el("p", { className: "muted draw-help hidden", textContent: text("Draw") });
      entry.fieldSelect = el("select");
      entry.fieldLabel = el("label", { textContent: text("FieldLabel") });
      entry.fieldRow = el("div", { className: "pdf-field hidden" }, [entry.fieldLabel, entry.fieldSelect]);
      entry.fieldSelect.addEventListener("change", () => chooseField(entry, entry.fieldSelect.value));
      entry.li.append(
        entry.fieldRow,
        entry.tools,
        entry.help,
        entry.pages,
        entry.note,
        el("p", { className: "muted p7s-note", textContent: text("P7sNote") })
      );
      entry.clear.addEventListener("click", () => {
        entry.rect = null;
        entry.pages.querySelectorAll(".rect").forEach((r) => r.remove());
        boxText(entry);
      });
      entry.select.addEventListener("change", () => showPages(entry));
      boxText(entry);
      update();
      openPdf(entry);
    }

    // A form to the API, with the session's CSRF token.
    function post(url, body) {
      return fetch(url, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRF-Token": window.Parafa ? window.Parafa.csrf() : "" },
        body,
        credentials: "same-origin",
      });
    }

    // The empty signature fields of a PDF, from the server (none when it cannot say: the upload then explains).
    async function learnFields(entry) {
      const body = new FormData();
      body.append("file", entry.file, entry.file.name);
      try {
        const res = await post("/api/v1/sign-jobs/inspect", body);
        if (!res.ok) return;
        const answer = await res.json();
        if (!entries.includes(entry)) return;
        entry.fields = answer.signature_fields || [];
      } catch (_) {
        return;
      }
      if (!entry.fields.length) return;
      entry.fieldSelect.replaceChildren(el("option", { value: "", textContent: text("FieldNew") }));
      entry.fields.forEach((f) => {
        const where = f.page && f.rect ? text("Page") + " " + f.page : text("FieldHidden");
        entry.fieldSelect.append(el("option", { value: f.name, textContent: text("FieldOption") + " " + f.name + " (" + where + ")" }));
      });
      entry.fieldRow.classList.remove("hidden");
    }

    // Whether pdf.js sees a signature field in the document (an error counts as yes: the server is asked).
    async function hasSignatureField(doc) {
      try {
        const fields = await doc.getFieldObjects();
        return !!fields && Object.values(fields).some((list) => list.some((f) => f.type === "signature"));
      } catch (_) {
        return true;
      }
    }

    function chooseField(entry, name) {
      entry.field = entry.fields.find((f) => f.name === name) || null;
      if (entry.field) {
        entry.rect = null;
        entry.pages.querySelectorAll(".rect").forEach((r) => r.remove());
        // The field's page is shown with its rectangle, where the signature will be.
        if (entry.doc && entry.field.page && entry.field.rect) {
          entry.select.value = String(entry.field.page);
          showPages(entry);
        }
      } else {
        entry.pages.querySelectorAll(".rect.field").forEach((r) => r.remove());
      }
      boxText(entry);
    }

    async function openPdf(entry) {
      const lib = await loadPdfjs();
      if (!lib) {
        if (previews) entry.note.textContent = text("NoPreview");
        learnFields(entry);
        return;
      }
      try {
        const data = new Uint8Array(await entry.file.arrayBuffer());
        const task = lib.getDocument({ data, isEvalSupported: false, enableXfa: false });
        // A password-protected PDF: no preview (the server refuses it with its own message on upload).
        task.onPassword = () => task.destroy();
        entry.doc = await task.promise;
      } catch (e) {
        entry.note.textContent = text("NoPreview");
        learnFields(entry);
        return;
      }
      if (!entries.includes(entry)) {
        entry.doc.destroy();
        return;
      }
      if (await hasSignatureField(entry.doc)) learnFields(entry);
      entry.select.append(el("option", { value: "all", textContent: text("AllPages") }));
      for (let p = 1; p <= entry.doc.numPages; p++) {
        entry.select.append(el("option", { value: String(p), textContent: text("Page") + " " + p }));
      }
      entry.select.value = "1";
      entry.tools.classList.remove("hidden");
      entry.help.classList.remove("hidden");
      showPages(entry);
    }

    async function showPages(entry) {
      const token = (entry.renderToken = {});
      entry.pages.replaceChildren();
      const which = entry.select.value === "all"
        ? Array.from({ length: entry.doc.numPages }, (_, i) => i + 1)
        : [parseInt(entry.select.value, 10) || 1];
      for (const [i, p] of which.entries()) {
        if (entry.renderToken !== token) return; // another choice since
        try {
          await renderPage(entry, p, i === 0);
        } catch (e) {
          entry.note.textContent = text("NoPreview");
          return;
        }
      }
    }

    async function renderPage(entry, pageNumber, scroll) {
      const page = await entry.doc.getPage(pageNumber);
      const natural = page.getViewport({ scale: 1 });
      // As large as the column allows, but a whole page within the window (the box may go anywhere on it).
      const available = Math.max(200, entry.pages.clientWidth || list.clientWidth || 600) - 4;
      const tall = Math.max(300, window.innerHeight * 0.85);
      const scale = Math.min(MAX_SCALE, available / natural.width, tall / natural.height);
      const ratio = window.devicePixelRatio || 1;
      const viewport = page.getViewport({ scale: scale * ratio });
      const canvas = el("canvas");
      canvas.width = Math.floor(viewport.width);
      canvas.height = Math.floor(viewport.height);
      canvas.style.width = Math.floor(viewport.width / ratio) + "px";
      canvas.style.height = Math.floor(viewport.height / ratio) + "px";
      const wrap = el("div", { className: "preview" }, [canvas]);
      wrap.dataset.fileIndex = String(entries.indexOf(entry));
      wrap.dataset.page = String(pageNumber);
      // The page's size in points as shown (after /Rotate), for tests and tools that check the drawn box.
      wrap.dataset.pageWidth = String(natural.width);
      wrap.dataset.pageHeight = String(natural.height);
      wrap.setAttribute("role", "img");
      wrap.setAttribute("aria-label", text("PreviewLabel") + " " + pageNumber + " · " + entry.file.name);
      await page.render({ canvas, viewport }).promise;
      // Shown once drawn, and brought into view with the box's tools ready (the first page shown).
      entry.pages.append(el("p", { className: "page-number muted", textContent: text("Page") + " " + pageNumber }), wrap);
      drawable(entry, wrap, canvas, viewport, pageNumber);
      if (scroll) wrap.scrollIntoView({ block: "nearest" });
      if (entry.rect && entry.rect.page === pageNumber) showBox(wrap, canvas, viewport, entry.rect.rect);
      const field = entry.field;
      if (field && field.rect && field.page === pageNumber) showBox(wrap, canvas, viewport, field.rect).classList.add("field");
    }

    // Where the pointer is, in the canvas's CSS pixels (clamped to the page).
    function cssPoint(ev, canvas) {
      const r = canvas.getBoundingClientRect();
      return {
        x: Math.min(Math.max(ev.clientX - r.left, 0), r.width),
        y: Math.min(Math.max(ev.clientY - r.top, 0), r.height),
        w: r.width,
        h: r.height,
      };
    }

    // CSS pixels of the canvas → viewport (canvas) pixels → PDF user space of the page.
    function toPdf(pt, canvas, viewport) {
      const vx = (pt.x * canvas.width) / pt.w;
      const vy = (pt.y * canvas.height) / pt.h;
      return viewport.convertToPdfPoint(vx, vy);
    }

    function placeBox(box, canvas, a, b) {
      box.style.left = canvas.offsetLeft + Math.min(a.x, b.x) + "px";
      box.style.top = canvas.offsetTop + Math.min(a.y, b.y) + "px";
      box.style.width = Math.abs(a.x - b.x) + "px";
      box.style.height = Math.abs(a.y - b.y) + "px";
    }

    // Draws a stored PDF rectangle back on a rendered page.
    function showBox(wrap, canvas, viewport, rect) {
      const [x1, y1, x2, y2] = viewport.convertToViewportRectangle(rect);
      const r = canvas.getBoundingClientRect();
      const kx = (r.width || canvas.width) / canvas.width;
      const ky = (r.height || canvas.height) / canvas.height;
      const box = el("div", { className: "rect" });
      wrap.append(box);
      placeBox(box, canvas, { x: x1 * kx, y: y1 * ky }, { x: x2 * kx, y: y2 * ky });
      return box;
    }

    function drawable(entry, wrap, canvas, viewport, pageNumber) {
      let from = null;
      let box = null;
      wrap.addEventListener("pointerdown", (ev) => {
        if (p7s.checked || ev.button !== 0) return;
        ev.preventDefault();
        wrap.setPointerCapture(ev.pointerId);
        from = cssPoint(ev, canvas);
        entry.pages.querySelectorAll(".rect").forEach((r) => r.remove());
        // A drawn box replaces a chosen field.
        entry.field = null;
        entry.fieldSelect.value = "";
        box = el("div", { className: "rect" });
        wrap.append(box);
        placeBox(box, canvas, from, from);
      });
      wrap.addEventListener("pointermove", (ev) => {
        if (from && box) placeBox(box, canvas, from, cssPoint(ev, canvas));
      });
      const finish = (ev) => {
        if (!from) return;
        const to = cssPoint(ev, canvas);
        const [ax, ay] = toPdf(from, canvas, viewport);
        const [bx, by] = toPdf(to, canvas, viewport);
        from = null;
        const rect = [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by)].map((v) => Math.round(v * 100) / 100);
        entry.error.textContent = "";
        if (rect[2] - rect[0] < MIN_POINTS || rect[3] - rect[1] < MIN_POINTS) {
          if (box) box.remove();
          // A click, not a drag, clears quietly; a small drag says why nothing was kept.
          if (rect[2] - rect[0] >= 2 || rect[3] - rect[1] >= 2) entry.error.textContent = text("Small");
          entry.rect = null;
        } else {
          entry.rect = { page: pageNumber, rect };
        }
        box = null;
        boxText(entry);
      };
      wrap.addEventListener("pointerup", finish);
      wrap.addEventListener("pointercancel", () => {
        from = null;
        if (box) box.remove();
        box = null;
      });
    }

    // --- choosing files ---------------------------------------------------------------------------------------
    input.addEventListener("change", () => {
      addFiles(input.files);
      input.value = "";
    });
    ["dragenter", "dragover"].forEach((t) =>
      drop.addEventListener(t, (ev) => {
        ev.preventDefault();
        drop.classList.add("over");
      })
    );
    ["dragleave", "dragend"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
    drop.addEventListener("drop", (ev) => {
      ev.preventDefault();
      drop.classList.remove("over");
      if (ev.dataTransfer && ev.dataTransfer.files.length) addFiles(ev.dataTransfer.files);
    });
    // A file dropped beside the zone must not replace the page.
    window.addEventListener("dragover", (ev) => ev.preventDefault());
    window.addEventListener("drop", (ev) => ev.preventDefault());
    p7s.addEventListener("change", update);

    // --- upload -----------------------------------------------------------------------------------------------
    function showError(message) {
      const hit = entries.find((e) => message.startsWith(cleanName(e.file.name) + ": "));
      if (hit) {
        hit.error.textContent = message;
        hit.li.classList.add("refused");
        hit.li.scrollIntoView({ block: "nearest" });
      } else {
        generalError.textContent = message;
      }
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      generalError.textContent = "";
      entries.forEach((e) => {
        e.error.textContent = "";
        e.li.classList.remove("refused");
      });
      if (!entries.length) {
        generalError.textContent = text("None");
        return;
      }
      const body = new FormData();
      entries.forEach((e) => body.append("files", e.file, e.file.name));
      if (!p7s.checked) {
        entries.forEach((e, n) => {
          if (e.pdf && e.field) body.append("field_" + n, e.field.name);
          else if (e.pdf && e.rect) body.append("rect_" + n, JSON.stringify(e.rect));
        });
      }
      body.append("p7s_for_pdf", p7s.checked ? "true" : "false");
      uploadButton.disabled = true;
      form.setAttribute("aria-busy", "true");
      const label = uploadButton.textContent;
      uploadButton.textContent = text("Uploading");
      let answer = {};
      let ok = false;
      try {
        const res = await post("/api/v1/sign-jobs", body);
        const raw = await res.text();
        try { answer = raw ? JSON.parse(raw) : {}; } catch (_) { answer = {}; }
        ok = res.ok;
        if (!ok) showError(answer.error_description || res.statusText || "Error " + res.status);
      } catch (e) {
        generalError.textContent = String(e);
      }
      form.removeAttribute("aria-busy");
      uploadButton.textContent = label;
      uploadButton.disabled = false;
      if (ok) showAuthorize(answer);
    });

    // --- one code for the batch ---------------------------------------------------------------------------------
    const progress = document.getElementById("sign-progress");
    const progressText = document.getElementById("sign-progress-text");
    const atext = (name) => auth.dataset["text" + name] || "";

    function showAuthorize(job) {
      const get = (o, path) => path.split(".").reduce((v, k) => (v == null ? undefined : v[k]), o);
      auth.querySelectorAll("[data-field]").forEach((e) => {
        const v = get(job, e.dataset.field);
        e.textContent = v == null ? "—" : String(v);
      });
      const rows = document.getElementById("sign-summary");
      rows.replaceChildren();
      (job.files || []).forEach((f) => {
        rows.append(
          el("tr", {}, [
            el("td", { textContent: f.name }),
            el("td", { textContent: f.format }),
            el("td", { textContent: f.output }),
            el("td", { textContent: (f.field ? atext("InField") + " " + f.field + " · " : "") + (f.visible ? atext("Visible") : atext("Invisible")) }),
          ])
        );
      });
      auth.dataset.api = "/api/v1/sign-jobs/" + encodeURIComponent(job.id) + "/authorize";
      auth.dataset.files = String((job.files || []).length);
      // A batch that does not fit the transactions left is refused whole: say so before a code is spent on it.
      const needed = Number(get(job, "transactions.needed"));
      const left = Number(get(job, "transactions.left"));
      const short = Number.isFinite(needed) && Number.isFinite(left) && needed > left;
      auth.querySelector(".error").textContent = short ? atext("Short") : "";
      document.getElementById("sign-submit").disabled = short;
      form.classList.add("hidden");
      auth.classList.remove("hidden");
      const totp = document.getElementById("sign-totp");
      totp.value = "";
      totp.focus();
    }

    auth.addEventListener("submit", (ev) => {
      if (!auth.dataset.api) {
        ev.preventDefault(); // nothing uploaded yet: never a plain form submission
        return;
      }
      progressText.textContent = atext("Signing") + " (" + (auth.dataset.files || "") + ")";
      progress.classList.remove("hidden");
    });
    auth.addEventListener("parafa:error", () => progress.classList.add("hidden"));
    document.getElementById("sign-back").addEventListener("click", () => {
      auth.classList.add("hidden");
      auth.dataset.api = "";
      form.classList.remove("hidden");
    });

    update();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
