// The login page: asks for the authenticator code when the API says 2FA is on, then goes on to the 2FA set-up
// (when due) or to where the user was going.
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
  form.addEventListener("parafa:done", (ev) => {
    const tf = ev.detail && ev.detail.two_factor;
    const after = form.dataset.after || "/";
    if (tf === "setup_due" || tf === "setup_required") {
      window.location.assign("/2fa?next=" + encodeURIComponent(after));
    } else {
      window.location.assign(after);
    }
  });
});
