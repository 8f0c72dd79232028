// The login page: asks for the authenticator code when the API says 2FA is on, then goes on through /after-login
// (consents and the 2FA set-up when due) to where the user was going.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login");
  if (!form) return;
  form.addEventListener("parafa:error", (ev) => {
    if (ev.detail && ev.detail.error === "totp_required") {
      document.getElementById("totp-box").classList.remove("hidden");
      form.querySelector(".error").textContent = "";
      document.getElementById("totp").focus();
    }
  });
  // The server decides what a fresh login goes through: the first-login consents, then the 2FA choice (when the
  // answer's two_factor is setup_due or setup_required), then where the user was going.
  form.addEventListener("parafa:done", () => {
    const after = form.dataset.after || "/";
    window.location.assign("/after-login?next=" + encodeURIComponent(after));
  });
});
