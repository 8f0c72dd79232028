// The operator console (/operator): the revocation form's address from the credential typed in, the audit
// verification's result in words, and Enter in a reason field never sends a verdict (the first button accepts).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const revoke = document.getElementById("revoke-form");
  const credential = document.getElementById("revoke-credential");
  if (revoke && credential) {
    const setApi = () => {
      const id = credential.value.trim();
      revoke.dataset.api = id ? revoke.dataset.apiTemplate.replace("{id}", encodeURIComponent(id)) : "";
    };
    credential.addEventListener("input", setApi);
    setApi();
    revoke.addEventListener("submit", (ev) => {
      setApi();
      if (!revoke.dataset.api) ev.preventDefault();
    });
  }

  document.querySelectorAll("form.decision input[type=text]").forEach((input) => {
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") ev.preventDefault();
    });
  });

  const audit = document.getElementById("audit-form");
  if (audit) {
    const result = document.getElementById("audit-result");
    audit.addEventListener("submit", () => {
      result.textContent = "";
      result.className = "";
    });
    audit.addEventListener("parafa:done", (ev) => {
      const v = ev.detail || {};
      result.className = v.intact ? "ok" : "error";
      result.textContent = (v.intact ? audit.dataset.textIntact : audit.dataset.textBroken) + " " + (v.rows ?? "") +
        (v.broken ? " — " + v.broken : "");
    });
  }
});
