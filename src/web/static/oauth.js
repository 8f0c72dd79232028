// The OAuth consent page: app.js sends the holder's answer with the session's CSRF token; the answer names where
// the browser goes next (the application's redirect URI, with a code or with access_denied).
"use strict";
document.addEventListener("parafa:done", (ev) => {
  const to = ev.detail && ev.detail.redirect;
  if (typeof to === "string" && to) window.location.assign(to);
});
