// The download page of a signing job (/sign/{job}): SignedFiles.zip downloads by itself once (a hidden link
// clicked after load; not again when the page is reloaded in the same tab); each file keeps its own link.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const done = document.getElementById("sign-done");
  const link = document.getElementById("sign-zip-auto");
  if (!done || !link) return;
  const key = "parafa-zip-" + done.dataset.job;
  try {
    if (window.sessionStorage.getItem(key)) return;
    window.sessionStorage.setItem(key, "1");
  } catch (_) {
    // no storage: download anyway
  }
  link.click();
});
