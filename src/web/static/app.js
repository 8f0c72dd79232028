// Parafa pages: the little script every page loads (no inline script: the Content-Security-Policy forbids it).
//
// <form data-api="/api/v1/…" [data-method="POST"] [data-next="/orders/{id}"] [data-reload] [data-done="#id"]>
//   is sent to the JSON API with the session's CSRF token. Fields become a JSON object (checkboxes → booleans,
//   data-type="number" → numbers, "a.b" names → nested objects, empty data-optional fields left out); a form with
//   a file input is sent as multipart. On success the page goes to data-next (with {field} taken from the answer),
//   reloads, or shows the element named by data-done, filling its [data-field="a.b"] elements (text) and
//   [data-field-src] (image source) from the answer; a "parafa:done" event carries the answer for page scripts.
//   On failure the API's error_description is shown in the form's .error element and a "parafa:error" event
//   carries the answer. data-manual: only the events (the page's script decides what comes next).
// [data-countdown="60" data-countdown-for="#button"]: counts down, keeping the button disabled until 0.
// input[data-strength]: fills the .meter that follows it (length and character classes; the server decides).
// [data-scroll-gate="#selector"]: enables the selected controls once the element is scrolled to its end.
// [data-confirm="text"] on a button: asks before its form is sent.
"use strict";

(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function setPath(obj, path, value) {
    const parts = path.split(".");
    let o = obj;
    for (let i = 0; i < parts.length - 1; i++) {
      o = o[parts[i]] = o[parts[i]] || {};
    }
    o[parts[parts.length - 1]] = value;
  }

  function getPath(obj, path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }

  function fill(template, answer) {
    return template.replace(/\{([\w.]+)\}/g, (_, k) => encodeURIComponent(String(getPath(answer, k) ?? "")));
  }

  function bodyOf(form) {
    const hasFile = form.querySelector('input[type="file"]');
    if (hasFile) {
      return { body: new FormData(form), json: false };
    }
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.dataset.skip !== undefined) continue;
      if (el.type === "radio") {
        if (el.checked) setPath(out, el.name, el.value);
        continue;
      }
      if (el.type === "checkbox") {
        setPath(out, el.name, el.checked);
        continue;
      }
      let v = el.value;
      if (v === "" && el.dataset.optional !== undefined) continue;
      if (el.dataset.type === "number") v = Number(v);
      setPath(out, el.name, v);
    }
    return { body: JSON.stringify(out), json: true };
  }

  async function send(form, submitter) {
    const error = form.querySelector(".error") || form.appendChild(Object.assign(document.createElement("p"), { className: "error" }));
    error.setAttribute("role", "alert");
    error.textContent = "";
    const buttons = form.querySelectorAll("button, input[type=submit]");
    buttons.forEach((b) => (b.disabled = true));
    form.setAttribute("aria-busy", "true");
    const { body, json } = bodyOf(form);
    // The answer (its errors, a verification's problems) in the page's language, whatever the browser prefers.
    const headers = { Accept: "application/json", "Accept-Language": document.documentElement.lang || "ro", "X-CSRF-Token": csrf() };
    if (json) headers["Content-Type"] = "application/json";
    const method = (submitter && submitter.dataset.method) || form.dataset.method || "POST";
    const url = (submitter && submitter.dataset.api) || form.dataset.api;
    let answer = {};
    let ok = false;
    try {
      const res = await fetch(url, { method, headers, body: method === "GET" ? undefined : body, credentials: "same-origin" });
      const text = await res.text();
      try { answer = text ? JSON.parse(text) : {}; } catch (_) { answer = {}; }
      ok = res.ok;
      if (!ok) {
        error.textContent = answer.error_description || res.statusText || "Error " + res.status;
      }
    } catch (e) {
      error.textContent = String(e);
    }
    form.removeAttribute("aria-busy");
    buttons.forEach((b) => { if (b.dataset.keepDisabled === undefined) b.disabled = false; });
    if (!ok) {
      form.dispatchEvent(new CustomEvent("parafa:error", { detail: answer, bubbles: true }));
      return;
    }
    form.dispatchEvent(new CustomEvent("parafa:done", { detail: answer, bubbles: true }));
    const next = (submitter && submitter.dataset.next) || form.dataset.next;
    if (form.dataset.manual !== undefined) {
      return;
    } else if (next) {
      window.location.assign(fill(next, answer));
    } else if (form.dataset.reload !== undefined) {
      window.location.reload();
    } else if (form.dataset.done) {
      const done = document.querySelector(form.dataset.done);
      if (done) {
        done.querySelectorAll("[data-field]").forEach((el) => { el.textContent = getPath(answer, el.dataset.field) ?? ""; });
        done.querySelectorAll("[data-field-src]").forEach((el) => {
          const v = getPath(answer, el.dataset.fieldSrc);
          if (v) el.src = v.startsWith("data:") || v.startsWith("/") ? v : "data:image/png;base64," + v;
        });
        done.classList.remove("hidden");
        if (form.dataset.hideOnDone !== undefined) form.classList.add("hidden");
      }
    }
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    ev.preventDefault();
    const submitter = ev.submitter;
    const question = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) return;
    send(form, submitter);
  });

  function countdown(el) {
    const button = el.dataset.countdownFor && document.querySelector(el.dataset.countdownFor);
    let left = parseInt(el.dataset.countdown, 10) || 0;
    if (button) button.dataset.keepDisabled = "";
    const tick = () => {
      el.textContent = left > 0 ? String(left) : "";
      el.closest("[data-countdown-box]")?.classList.toggle("hidden", left <= 0);
      if (button) {
        button.disabled = left > 0;
        if (left <= 0) delete button.dataset.keepDisabled;
      }
      if (left-- > 0) setTimeout(tick, 1000);
    };
    tick();
  }

  function strength(input) {
    const meter = input.parentElement.querySelector(".meter");
    if (!meter) return;
    const update = () => {
      const v = input.value;
      let score = 0;
      if (v.length >= 8) score++;
      if (v.length >= 12) score++;
      if (/[a-z]/.test(v) && /[A-Z]/.test(v)) score++;
      if (/\d/.test(v) && /[^A-Za-z0-9]/.test(v)) score++;
      meter.dataset.score = String(score);
      meter.firstElementChild.style.width = (score * 25) + "%";
      meter.setAttribute("aria-valuenow", String(score));
    };
    input.addEventListener("input", update);
    update();
  }

  function scrollGate(el) {
    const targets = () => document.querySelectorAll(el.dataset.scrollGate);
    targets().forEach((t) => (t.disabled = true));
    const check = () => {
      if (el.scrollTop + el.clientHeight >= el.scrollHeight - 4) {
        targets().forEach((t) => (t.disabled = false));
        el.dataset.read = "true";
      }
    };
    el.addEventListener("scroll", check);
    check();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-countdown]").forEach(countdown);
    document.querySelectorAll("input[data-strength]").forEach(strength);
    document.querySelectorAll("[data-scroll-gate]").forEach(scrollGate);
  });

  window.Parafa = { csrf, countdown, fill, getPath };
})();
