// Orders pages: the invoice person/company toggle of the order form, the identification links the API answers
// with, the size check of the rekey document copy, and the rekey notice step.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The order form: company fields only for a company invoice; the natural-person confirmation only for a person.
  const orderForm = document.getElementById("order-form");
  if (orderForm) {
    const company = document.getElementById("company-fields");
    const confirm = document.getElementById("person-confirm");
    const namePerson = document.getElementById("name-person");
    const nameCompany = document.getElementById("name-company");
    const toggle = () => {
      const isCompany = document.getElementById("invoice-company").checked;
      company.classList.toggle("hidden", !isCompany);
      company.querySelectorAll("input").forEach((i) => (i.disabled = !isCompany));
      confirm.classList.toggle("hidden", isCompany);
      confirm.querySelectorAll("input").forEach((i) => (i.disabled = isCompany));
      namePerson.classList.toggle("hidden", isCompany);
      nameCompany.classList.toggle("hidden", !isCompany);
    };
    orderForm.querySelectorAll('input[name="invoice.type"]').forEach((r) => r.addEventListener("change", toggle));
    toggle();
  }

  // Forms whose answer carries a link to follow (data-go="url"): the identification provider's page. The
  // built-in sandbox provider's page is on this site: follow its path, whatever host the link names.
  document.querySelectorAll("form[data-go]").forEach((form) => {
    form.addEventListener("parafa:done", (ev) => {
      const link = ev.detail && ev.detail[form.dataset.go];
      if (!link) return;
      let target = link;
      try {
        const u = new URL(link, window.location.href);
        if (u.pathname.startsWith("/identity/sandbox/")) target = u.pathname;
      } catch (_) { /* keep the link */ }
      window.location.assign(target);
    });
  });

  // The issuance can take a few seconds (the key pair is made in the HSM).
  const issueForm = document.getElementById("issue-form");
  if (issueForm) {
    const wait = document.getElementById("issue-wait");
    issueForm.addEventListener("submit", () => wait && wait.classList.remove("hidden"));
    issueForm.addEventListener("parafa:error", () => wait && wait.classList.add("hidden"));
  }

  // The rekey document copy: checked in the browser too (the server decides).
  const photo = document.getElementById("rekey-photo");
  if (photo) {
    const form = photo.form;
    const error = document.getElementById("rekey-photo-error");
    const max = parseInt(photo.dataset.maxBytes, 10) || 0;
    const tooLarge = () => max > 0 && photo.files.length > 0 && photo.files[0].size > max;
    const check = () => {
      const bad = tooLarge();
      error.textContent = bad ? photo.dataset.tooLarge : "";
      photo.setAttribute("aria-invalid", bad ? "true" : "false");
      return !bad;
    };
    photo.addEventListener("change", check);
    // Runs before app.js's document-level listener: a file too large is never sent.
    form.addEventListener("submit", (ev) => {
      if (!check()) {
        ev.preventDefault();
        ev.stopPropagation();
        photo.focus();
      }
    });
  }

  // The rekey notice step: once the notice is acknowledged, on to the order form.
  const notice = document.getElementById("rekey-notice-form");
  if (notice) {
    notice.addEventListener("submit", (ev) => {
      ev.preventDefault();
      window.location.assign(notice.dataset.localNext);
    });
  }
});
