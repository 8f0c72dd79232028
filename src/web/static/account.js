// The account pages' steps (enrolment, activation, pairing, recovery, settings). Forms are sent by app.js; this
// file only decides what shows next:
//   <form data-manual data-then="#next-step">: on success the form's [data-step] box hides and #next-step shows;
//     the countdowns in it ([data-countdown-from="valid_for|resend_after"]) start from the API's answer.
//   <form data-manual data-restart>: a resend: on success the countdowns of its own step start again.
//   input[data-same-as="#other"]: the confirmation must equal #other (the browser refuses the form otherwise).
// The pairing's secret (QR code, base32 text, otpauth URI) is put into the page from the answer of
// POST /api/v1/me/totp/pairing/sms only: it is never part of the page's HTML, and a reload loses it.
"use strict";

(function () {
  // Starts the countdowns inside `box` from the API's answer (seconds), replacing any still running.
  function startCountdowns(box, answer) {
    box.querySelectorAll("[data-countdown-from]").forEach((el) => {
      const key = el.dataset.countdownFrom;
      let secs = answer && typeof answer[key] === "number" ? answer[key] : parseInt(el.dataset.countdownDefault || "0", 10);
      const fresh = el.cloneNode(true);
      fresh.dataset.countdown = String(Math.max(0, secs || 0));
      el.replaceWith(fresh);
      if (window.Parafa) window.Parafa.countdown(fresh);
    });
  }

  // Marks step `n` (1-based) of the page's `.steps` list as the current one.
  function markStep(n) {
    document.querySelectorAll(".steps li").forEach((li, i) => {
      li.classList.toggle("current", i + 1 === n);
      if (i + 1 === n) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
  }

  function show(target, answer) {
    target.classList.remove("hidden");
    if (target.dataset.stepIndex) markStep(parseInt(target.dataset.stepIndex, 10));
    startCountdowns(target, answer);
    const first = target.querySelector("input:not([type=hidden]):not([readonly]):not([hidden]), button, a.button");
    if (first) first.focus();
  }

  function fillSecret(answer) {
    const png = "data:image/png;base64," + (answer.qr_png || "");
    const img = document.getElementById("totp-qr");
    if (img) img.src = png;
    const save = document.getElementById("totp-save");
    if (save) save.href = png;
    const secret = document.getElementById("totp-secret");
    if (secret) secret.textContent = answer.secret || "";
    const uri = document.getElementById("totp-uri");
    if (uri) uri.textContent = answer.otpauth_uri || "";
  }

  document.addEventListener("parafa:done", (ev) => {
    const form = ev.target;
    const answer = ev.detail || {};
    if (!(form instanceof HTMLFormElement)) return;
    if (form.id === "pairing-sms") fillSecret(answer);
    // Re-pairing from the login prompt: the next steps go to the flow the answer's token names.
    if (form.dataset.lost !== undefined && answer.token) {
      const base = "/api/v1/totp-reset/" + encodeURIComponent(answer.token);
      document.getElementById("pairing-sms").dataset.api = base + "/sms";
      document.getElementById("pairing-activate").dataset.api = base + "/activate";
    }
    if (form.id === "erasure") {
      const done = document.getElementById("erasure-done");
      // The account is gone and the session with it: only the report stays on the page.
      document.querySelectorAll("main > section").forEach((el) => el.classList.toggle("hidden", el !== done));
      document.querySelectorAll("header.top nav, header.top .who, header.top form").forEach((el) => el.classList.add("hidden"));
      done.classList.remove("hidden");
      window.scrollTo(0, 0);
      done.focus({ preventScroll: true });
      return;
    }
    if (form.dataset.restart !== undefined) {
      const step = form.closest("[data-step]");
      if (step) startCountdowns(step, answer);
      return;
    }
    if (form.dataset.then) {
      const target = document.querySelector(form.dataset.then);
      const step = form.closest("[data-step]");
      if (step && step !== target) step.classList.add("hidden");
      if (target) show(target, answer);
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("input[data-same-as]").forEach((confirm) => {
      const other = document.querySelector(confirm.dataset.sameAs);
      if (!other) return;
      const check = () => confirm.setCustomValidity(confirm.value === other.value ? "" : confirm.dataset.mismatch || "≠");
      confirm.addEventListener("input", check);
      other.addEventListener("input", check);
      check();
    });
    // The activation's resend form asks for the phone number again: take the one typed in the first step.
    const phone = document.getElementById("invitation-phone-input");
    const resend = document.getElementById("invitation-resend-phone");
    if (phone && resend) phone.addEventListener("change", () => { resend.value = phone.value; });
  });
})();
